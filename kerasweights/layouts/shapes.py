"""The shapes a layer's config implies for its stored variables, for every weighted built-in class.

Each function maps a config to ``{variable: expected shape}``, where ``None`` is any size and a
leading ``...`` any number of leading axes (what depends on the input, which configs do not
always record). Only what the config fixes is checked: ``units``, ``filters``,
``kernel_size``, ``input_dim``/``output_dim``, ``num_heads``/``key_dim``, and that
normalization statistics agree with each other. Recurrent layers check their own gate
splits (``recurrent.py``); Keras 1 files (``nb_filter``, ``output_dim``, ``dim_ordering``
with channels-first kernels) are only checked where no ordering question arises.
"""

from __future__ import annotations

from collections.abc import Callable
from types import EllipsisType
from typing import Any

from ..errors import LayoutError
from ._base import Config, Context, Shape

Dim = int | None
Spec = tuple[Dim | EllipsisType, ...]
Expectation = Callable[[Config, Context, dict[str, Shape]], tuple[dict[str, Spec], str]]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _sizes(value: Any, rank: int) -> tuple[int | None, ...] | None:
    """``kernel_size`` as ``rank`` sizes (an int means the same size on every axis)."""
    if _int(value) is not None:
        return (value,) * rank
    if isinstance(value, (list, tuple)) and len(value) == rank and all(_int(v) for v in value):
        return tuple(value)
    return None


def _rank(class_name: str) -> int:
    return int(next(ch for ch in class_name if ch.isdigit()))


def _keras1(config: Config) -> bool:
    return "nb_filter" in config or ("output_dim" in config and "units" not in config)


def _dense(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    units = _int(config.get("units", config.get("output_dim")))
    if units is None:
        return {}, ""
    return {"kernel": (None, units), "bias": (units,)}, f"units={units}"


def _locally_connected(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    filters = _int(config.get("filters", config.get("nb_filter")))
    if filters is None or config.get("implementation", 1) != 1:
        return {}, ""
    return {"kernel": (..., filters), "bias": (..., filters)}, f"filters={filters}"


def _conv(transposed: bool) -> Expectation:
    def expect(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
        filters = _int(config.get("filters"))
        if filters is None or _keras1(config):
            return {}, ""
        rank = _rank(str(config.get("class_name", ""))) if config.get("class_name") else None
        kernel = shapes.get("kernel")
        rank = rank or (len(kernel) - 2 if kernel is not None and len(kernel) >= 3 else None)
        sizes = _sizes(config.get("kernel_size"), rank) if rank else None
        channels: tuple[Dim, Dim] = (filters, None) if transposed else (None, filters)
        kernel_spec: Spec = (*sizes, *channels) if sizes else (..., *channels)
        out: dict[str, Spec] = {"kernel": kernel_spec, "bias": (filters,)}
        what = f"filters={filters}" + (f", kernel_size={list(sizes)}" if sizes else "")
        return out, what

    return expect


def _depthwise(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    multiplier = _int(config.get("depth_multiplier", 1))
    if multiplier is None:
        return {}, ""
    name = "kernel" if "kernel" in shapes else "depthwise_kernel"
    return {name: (..., None, multiplier), "bias": (None,)}, f"depth_multiplier={multiplier}"


def _separable(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    filters = _int(config.get("filters"))
    multiplier = _int(config.get("depth_multiplier", 1))
    if filters is None or multiplier is None or _keras1(config):
        return {}, ""
    return (
        {
            "depthwise_kernel": (..., None, multiplier),
            "pointwise_kernel": (..., None, filters),
            "bias": (filters,),
        },
        f"filters={filters}, depth_multiplier={multiplier}",
    )


def _embedding(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    rows, width = _int(config.get("input_dim")), _int(config.get("output_dim"))
    if rows is None or width is None:
        return {}, ""
    return {"embeddings": (rows, width)}, f"input_dim={rows}, output_dim={width}"


def _same_as_first(*names: str) -> Expectation:
    """Statistics and scales of one normalization layer: every variable has the same shape."""

    def expect(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
        present = [n for n in names if n in shapes]
        if not present:
            return {}, ""
        first = shapes[present[0]]
        return {n: tuple(first) for n in present[1:]}, f"the shape of {present[0]} {tuple(first)}"

    return expect


def _multi_head(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    heads, key_dim = _int(config.get("num_heads")), _int(config.get("key_dim"))
    if heads is None or key_dim is None:
        return {}, ""
    value_dim = _int(config.get("value_dim")) or key_dim
    out: dict[str, Spec] = {
        "query/kernel": (..., heads, key_dim),
        "query/bias": (heads, key_dim),
        "key/kernel": (..., heads, key_dim),
        "key/bias": (heads, key_dim),
        "value/kernel": (..., heads, value_dim),
        "value/bias": (heads, value_dim),
        "attention_output/kernel": (heads, value_dim, ...),
    }
    return out, f"num_heads={heads}, key_dim={key_dim}, value_dim={value_dim}"


def _attention(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    return {"scale": (), "concat_score_weight": ()}, "a scalar (Attention's scale and concat_score_weight)"


def _prelu(config: Config, context: Context, shapes: dict[str, Shape]) -> tuple[dict[str, Spec], str]:
    shared = config.get("shared_axes")
    axes = [shared] if isinstance(shared, int) else shared if isinstance(shared, list) else []
    alpha = shapes.get("alpha")
    if alpha is None or not all(isinstance(a, int) and 1 <= a <= len(alpha) for a in axes):
        return {}, ""
    spec: Spec = tuple(1 if axis in axes else None for axis in range(1, len(alpha) + 1))
    return {"alpha": spec}, f"shared_axes={axes}"


EXPECTATIONS: dict[str, Expectation] = {
    "Dense": _dense,
    "LocallyConnected1D": _locally_connected,
    "LocallyConnected2D": _locally_connected,
    **{f"Conv{n}D": _conv(False) for n in (1, 2, 3)},
    **{f"Conv{n}DTranspose": _conv(True) for n in (1, 2, 3)},
    "DepthwiseConv1D": _depthwise,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable,
    "SeparableConv2D": _separable,
    "Embedding": _embedding,
    "BatchNormalization": _same_as_first(
        "gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev"
    ),
    "SyncBatchNormalization": _same_as_first("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": _same_as_first("gamma", "beta"),
    "GroupNormalization": _same_as_first("gamma", "beta"),
    "Normalization": _same_as_first("mean", "variance"),
    "MultiHeadAttention": _multi_head,
    "Attention": _attention,
    "PReLU": _prelu,
}
"""Expected shapes by layer class; classes absent here (EinsumDense, AdditiveAttention,
RMSNormalization) have shapes that depend on the input or an equation the config alone does
not settle."""


def fits(actual: Shape, expected: Spec) -> bool:
    if expected[:1] == (...,):
        tail = expected[1:]
        return len(actual) >= len(tail) and all(
            e is None or a == e for a, e in zip(actual[len(actual) - len(tail) :], tail)
        )
    if expected[-1:] == (...,):
        head = expected[:-1]
        return len(actual) >= len(head) and all(e is None or a == e for a, e in zip(actual, head))
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def _shown(expected: Spec) -> str:
    parts = ["..." if e is ... else "?" if e is None else str(e) for e in expected]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check(class_name: str, layer: str, config: Config, shapes: dict[str, Shape], context: Context) -> None:
    """Raise :class:`LayoutError` for the first stored variable whose shape the config rules out."""
    expectation = EXPECTATIONS.get(class_name)
    if expectation is None:
        return
    expected, why = expectation({**config, "class_name": class_name}, context, shapes)
    for var, spec in expected.items():
        actual = shapes.get(var)
        if actual is not None and not fits(tuple(actual), spec):
            raise LayoutError(f"layer {layer!r}: {var} has shape {tuple(actual)}, expected {_shown(spec)} for {why}")
