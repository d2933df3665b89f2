"""Non-recurrent Keras layers as ``torch.nn`` modules: Dense, Embedding, Conv1D/2D/3D,
LayerNormalization and BatchNormalization. Pure numpy: torch is never imported.

Each converter returns the module's class name, constructor arguments, tensors (torch names
and layouts) and notes (what the user must do around the module: permute channels-last inputs,
apply the fused activation). :func:`inexact_reasons` says why torch would compute something
else; such layers are refused unless forced or skipped (see :mod:`.torch`).

Decisions: a Keras activation fused into Dense/Conv is a note, not a refusal (the weights are
exact; the activation is one call after the module). BatchNormalization's input rank is not
in the layer config, so the module is ``BatchNorm1d`` unless the config's axis says otherwise:
``BatchNorm1d``/``2d``/``3d`` hold the same tensors and compute the same thing, they differ
only in the input rank they accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import LayoutError
from ..model import Layer

CONV_CLASSES = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3, "Convolution1D": 1, "Convolution2D": 2, "Convolution3D": 3}
CLASSES = ("Dense", "Embedding", "LayerNormalization", "BatchNormalization", *CONV_CLASSES)
_CHANNELS_LAST = {1: "x.permute(0, 2, 1)", 2: "x.permute(0, 3, 1, 2)", 3: "x.permute(0, 4, 1, 2, 3)"}


@dataclass
class Converted:
    """One layer's ``torch.nn`` module: class name, constructor arguments, tensors, notes."""

    module: str
    kwargs: dict[str, Any]
    params: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


def inexact_reasons(layer: Layer) -> list[str]:
    """Why the torch module would not compute what Keras computes (empty when it would)."""
    c = layer.config
    if layer.inferred:
        return ["no layer config in the file (padding, strides and activation unknown: pass config=)"]
    if layer.class_name in CONV_CLASSES:
        rank = CONV_CLASSES[layer.class_name]
        padding = str(c.get("padding", "valid")).lower()
        strides = _tuple(c.get("strides", c.get("subsample", 1)), rank)
        if padding == "causal":
            return ["padding='causal' (torch.nn convolutions pad both sides; pad the input on the left instead)"]
        if padding == "same" and any(s != 1 for s in strides):
            why = "torch supports 'same' for stride 1 only, and Keras's padding then depends on the input size"
            return [f"padding='same' with strides={strides} ({why})"]
        if padding not in ("valid", "same"):
            return [f"padding={padding!r}"]
    if layer.class_name == "LayerNormalization":
        if c.get("rms_scaling"):
            return ["rms_scaling=True (Keras scales by the variance, which torch.nn.LayerNorm does not do)"]
        axes = c.get("axis", -1)
        axes = axes if isinstance(axes, list) else [axes]
        negative = sorted(a for a in axes if isinstance(a, int) and a < 0)
        if len(negative) == len(axes) and negative != list(range(-len(axes), 0)):
            return [f"axis={c.get('axis')} (torch.nn.LayerNorm normalizes the last dimensions only)"]
    if layer.class_name == "BatchNormalization":
        axis = c.get("axis", -1)
        if isinstance(axis, list) and len(axis) != 1:
            return [f"axis={axis} (torch.nn.BatchNorm normalizes one channel axis)"]
        if c.get("renorm"):
            return ["renorm=True (batch renormalization has no torch.nn counterpart)"]
    return []


def convert(layer: Layer, input_rank: int | None = None) -> Converted:
    """The ``torch.nn`` module for a layer of :data:`CLASSES`; ``input_rank`` (batch axis
    included), when known, picks ``BatchNorm1d``/``2d``/``3d``."""
    if layer.class_name == "Dense":
        return _dense(layer)
    if layer.class_name == "Embedding":
        return _embedding(layer)
    if layer.class_name in CONV_CLASSES:
        return _conv(layer, CONV_CLASSES[layer.class_name])
    if layer.class_name == "LayerNormalization":
        return _layer_norm(layer)
    if layer.class_name == "BatchNormalization":
        return _batch_norm(layer, input_rank)
    raise ValueError(f"no torch.nn conversion for {layer.class_name}")


# -- converters --------------------------------------------------------------------------------


def _read(layer: Layer, name: str) -> np.ndarray | None:
    matrices = layer.matrices()
    return matrices[name].read() if name in matrices else None


def _activation_note(layer: Layer) -> list[str]:
    act = layer.config.get("activation", "linear")
    if isinstance(act, dict):
        act = act.get("config") if isinstance(act.get("config"), str) else act.get("class_name")
    name = str(act or "linear").rsplit(".", 1)[-1].lower()
    if name == "linear":
        return []
    torch_name = {"swish": "silu", "gelu": "gelu", "softmax": "softmax(dim=-1)"}.get(name, name)
    return [f"apply Keras's activation {name!r} after the module (torch.nn.functional.{torch_name})"]


def _dense(layer: Layer) -> Converted:
    kernel = _required(layer, "kernel")
    bias = _read(layer, "bias")
    params = {"weight": np.ascontiguousarray(kernel.T)}  # Keras x @ W == torch x @ weight.T
    if bias is not None:
        params["bias"] = np.array(bias)
    kwargs = {"in_features": int(kernel.shape[0]), "out_features": int(kernel.shape[1]), "bias": bias is not None}
    return Converted("Linear", kwargs, params, _activation_note(layer))


def _embedding(layer: Layer) -> Converted:
    table = _required(layer, "embeddings")
    notes = []
    if layer.config.get("mask_zero"):
        notes.append("mask_zero=True: torch.nn.Embedding makes no mask; id 0 is looked up like any other id")
    kwargs = {"num_embeddings": int(table.shape[0]), "embedding_dim": int(table.shape[1])}
    return Converted("Embedding", kwargs, {"weight": np.array(table)}, notes)


def _conv(layer: Layer, rank: int) -> Converted:
    c = layer.config
    kernel = _required(layer, "kernel")  # (*kernel, in / groups, out)
    bias = _read(layer, "bias")
    groups = int(c.get("groups", 1) or 1)
    order = (rank + 1, rank, *range(rank))  # torch: (out, in / groups, *kernel)
    params = {"weight": np.ascontiguousarray(np.transpose(kernel, order))}
    if bias is not None:
        params["bias"] = np.array(bias)
    kwargs: dict[str, Any] = {
        "in_channels": int(kernel.shape[rank]) * groups,
        "out_channels": int(kernel.shape[rank + 1]),
        "kernel_size": tuple(int(k) for k in kernel.shape[:rank]),
        "stride": _tuple(c.get("strides", 1), rank),
        "padding": str(c.get("padding", "valid")).lower(),
        "dilation": _tuple(c.get("dilation_rate", 1), rank),
        "groups": groups,
        "bias": bias is not None,
    }
    notes = []
    if c.get("data_format", "channels_last") != "channels_first":
        notes.append(f"torch takes channels first: feed {_CHANNELS_LAST[rank]} of Keras's channels-last input")
    return Converted(f"Conv{rank}d", kwargs, params, notes + _activation_note(layer))


def _layer_norm(layer: Layer) -> Converted:
    gamma, beta = _read(layer, "gamma"), _read(layer, "beta")
    shape = next(a.shape for a in (gamma, beta) if a is not None) if gamma is not None or beta is not None else None
    if shape is None:
        raise LayoutError(f"layer {layer.path!r}: LayerNormalization without gamma or beta")
    dtype = (gamma if gamma is not None else beta).dtype  # type: ignore[union-attr]
    params = {
        "weight": np.array(gamma) if gamma is not None else np.ones(shape, dtype),
        "bias": np.array(beta) if beta is not None else np.zeros(shape, dtype),
    }
    notes = []
    if gamma is None or beta is None:
        missing = " and ".join(n for n, a in (("scale", gamma), ("center", beta)) if a is None)
        notes.append(f"{missing}=False: weight is ones / bias is zeros (keep them so if you train)")
    kwargs = {"normalized_shape": tuple(int(n) for n in shape), "eps": float(layer.config.get("epsilon", 1e-3))}
    return Converted("LayerNorm", kwargs, params, notes)


def _batch_norm(layer: Layer, input_rank: int | None) -> Converted:
    c = layer.config
    mean, var = _required(layer, "moving_mean"), _required(layer, "moving_variance")
    gamma, beta = _read(layer, "gamma"), _read(layer, "beta")
    params = {
        "weight": np.array(gamma) if gamma is not None else np.ones_like(mean),
        "bias": np.array(beta) if beta is not None else np.zeros_like(mean),
        "running_mean": np.array(mean),
        "running_var": np.array(var),
        "num_batches_tracked": np.array(0, dtype=np.int64),  # load_state_dict expects it
    }
    axis = c.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) else axis
    # The input's rank: from the model config's build_config (Keras 3 .keras files), or from
    # the axis tf.keras stores resolved (2 for a channels-last rank-3 input).
    rank = input_rank if input_rank is not None else (axis + 1 if isinstance(axis, int) and axis > 1 else None)
    module = {4: "BatchNorm2d", 5: "BatchNorm3d"}.get(rank or 0, "BatchNorm1d")
    momentum = 1.0 - float(c.get("momentum", 0.99))  # Keras keeps `momentum` of the old value
    kwargs = {"num_features": int(mean.shape[0]), "eps": float(c.get("epsilon", 1e-3)), "momentum": round(momentum, 10)}
    notes = []
    last = axis == -1 or (rank is not None and axis == rank - 1)
    if rank is not None and rank >= 3 and last:
        notes.append(f"torch normalizes dimension 1: feed {_CHANNELS_LAST[rank - 2]} of Keras's channels-last input")
    elif rank is None and axis != 1:
        notes.append(
            "torch normalizes dimension 1: move Keras's channel axis there for inputs of rank 3 or more "
            "(x.permute(0, 2, 1)); BatchNorm2d/3d load the same tensors, for images and volumes"
        )
    if gamma is None or beta is None:
        missing = " and ".join(n for n, a in (("scale", gamma), ("center", beta)) if a is None)
        notes.append(f"{missing}=False: weight is ones / bias is zeros (keep them so if you train)")
    return Converted(module, kwargs, params, notes)


def _required(layer: Layer, name: str) -> np.ndarray:
    value = _read(layer, name)
    if value is None:
        raise LayoutError(
            f"layer {layer.path!r}: no {name} among its weights ({', '.join(layer.matrices()) or 'none'})"
        )
    return value


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    if isinstance(value, (list, tuple)) and len(value) == rank:
        return tuple(int(v) for v in value)
    return (1,) * rank
