"""Layers inferred from storage alone, for weights-only files read without a config.

Each layer's class and config are guessed from its weight names and shapes and marked as
inferred; the guesses are checked against the layout rules.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re

from .. import layouts
from ..config import to_snake_case
from ..formats import LegacyStorage, VarsStorage
from ..layouts import Config, Context
from ..layouts.keras import KERAS1_NAME, KERAS1_VARIABLES, layer_path
from ..model import Layer
from ..store import StoredArray
from .weights import SUFFIX, assign, inferred_container, short_names


def _class_from_snake(snake: str) -> str | None:
    return _classes_by_snake(tuple(layouts.known_classes())).get(re.sub(r"_\d+$", "", snake))


@functools.cache
def _classes_by_snake(known: tuple[str, ...]) -> dict[str, str]:
    """Class names by their snake_case storage prefix (``dense`` -> ``Dense``), the first one winning."""
    out: dict[str, str] = {}
    for name in [
        *known,
        *sorted(layouts.WEIGHTLESS_CLASSES),
        "Bidirectional",
        "TimeDistributed",
        "Sequential",
        "Functional",
    ]:
        out.setdefault(to_snake_case(name), name)
    return out


def _infer_recurrent(shapes: list[tuple[int, ...]]) -> tuple[str, Config]:
    kernel, recurrent = shapes[0], shapes[1]
    units = recurrent[-2]
    gates = recurrent[-1] // max(units, 1)
    config: Config = {"units": units, "use_bias": len(shapes) > 2}
    bias = shapes[2] if len(shapes) > 2 else None
    if len(kernel) > 2:
        name = f"ConvLSTM{len(kernel) - 2}D"
        config = {"filters": units, "use_bias": bias is not None}
    elif gates == 4:
        name = "CuDNNLSTM" if bias == (8 * units,) else "LSTM"
    elif gates == 3:
        name = "CuDNNGRU" if bias == (6 * units,) else "GRU"
        config["reset_after"] = bias is not None and len(bias) == 2
    else:
        name = "SimpleRNN"
    return name, config


def _infer_leaf(arrays: list[StoredArray], shorts: list[str], recurrent: bool, major: int) -> tuple[str, Config]:
    shapes = [a.shape for a in arrays]
    keras1 = [KERAS1_NAME.search(n) for n in shorts]
    if major == 1 and shorts and all(keras1):  # Keras 1: <layer>_W, <layer>_b, <layer>_W_i ...
        gates = {m.group(2) for m in keras1 if m and m.group(2)}
        if gates:
            units = shapes[1][-1]
            family = "GRU" if gates == {"z", "r", "h"} else "LSTM" if gates == {"i", "f", "c", "o"} else "Unknown"
            return family, {"units": units, "use_bias": True}
        shorts = [KERAS1_VARIABLES[m.group(1)] for m in keras1 if m]
    names = set(shorts)
    if (recurrent or {"kernel", "recurrent_kernel"} <= names) and len(shapes) >= 2 and len(shapes[1]) >= 2:
        return _infer_recurrent(shapes)
    if names == {"embeddings"}:
        return "Embedding", {}
    if {"moving_mean", "moving_variance"} <= names or (
        len(arrays) == 4 and all(len(s) == 1 and s == shapes[0] for s in shapes)
    ):
        return "BatchNormalization", {}
    if names in ({"gamma", "beta"}, {"gamma"}):
        return "LayerNormalization", {}
    if {"depthwise_kernel", "pointwise_kernel"} <= names:
        return f"SeparableConv{len(shapes[0]) - 2}D", {"use_bias": len(arrays) == 3}
    if arrays and shorts[0] in ("kernel", "0") and len(arrays) <= 2:
        rank = len(shapes[0])
        use_bias = len(arrays) == 2
        if rank == 2:
            return "Dense", {"units": shapes[0][1], "use_bias": use_bias}
        if 3 <= rank <= 5:
            return f"Conv{rank - 2}D", {"filters": shapes[0][-1], "use_bias": use_bias}
    return "Unknown", {}


def _make_inferred(
    path: str, name: str, arrays: list[StoredArray], major: int, class_name: str | None = None, recurrent: bool = False
) -> Layer:
    """A layer whose class and config are guessed from its stored arrays (and storage name)."""
    guessed, config = _infer_leaf(arrays, short_names(arrays), recurrent, major) if arrays else ("Unknown", {})
    recurrent_names = (*layouts.RECURRENT_CLASSES, "RNN")  # a generic RNN's cell is told by its shapes
    if class_name is None or (class_name in recurrent_names and guessed in layouts.RECURRENT_CLASSES):
        class_name = guessed  # shapes give units and reset_after, and tell GRU from CuDNNGRU
    elif guessed != class_name:
        config = {}  # the class named by storage wins; the guess's config is not for it
    rule = layouts.rule_for(class_name)
    if rule is not None:
        config = _fit_flags(rule, {"name": name, **config}, len(arrays), major)
    layer = Layer(
        path=path, name=name, class_name=class_name, config={"name": name, **config}, inferred=True, rule=rule
    )
    assign(layer, arrays, major)
    return layer


_FLAG_GUESSES: tuple[Config, ...] = (
    {},
    {"use_bias": False},
    {"center": False},
    {"scale": False},
    {"center": False, "scale": False},
)


def _fit_flags(rule: layouts.Rule, config: Config, count: int, major: int) -> Config:
    """The first common flag setting (use_bias, center, scale) under which the rule stores ``count`` arrays."""
    for guess in _FLAG_GUESSES:
        candidate = {**config, **guess}
        if len(rule.variables(candidate, Context(keras_major=major))) == count:
            return candidate
    return config


def infer_legacy(root: Layer, storage: LegacyStorage, major: int) -> None:
    for name in storage.layer_names:
        root.children.append(infer_legacy_layer(name, storage.layers.get(name, []), major))


_MHA_PARTS = {"query", "key", "value", "attention_output"}


def infer_legacy_layer(name: str, arrays: list[StoredArray], major: int, path: str | None = None) -> Layer:
    path = path or name
    fwd = [a for a in arrays if "/forward_" in a.stored_name]
    bwd = [a for a in arrays if "/backward_" in a.stored_name]
    if fwd and bwd and len(fwd) + len(bwd) == len(arrays):
        wrapper = inferred_container(path, name, "Bidirectional", "wrapper")
        for half in (fwd, bwd):
            half_name = next(p for p in half[0].stored_name.split("/") if p.startswith(("forward_", "backward_")))
            wrapper.children.append(_make_inferred(f"{path}/{half_name}", half_name, half, major))
        return wrapper
    # A nested model stores its sublayers' weights under their names: split where names part ways.
    scopes = [SUFFIX.sub("", a.stored_name).split("/")[:-1] for a in arrays]
    common = 0
    while scopes and all(len(s) > common for s in scopes) and len({s[common] for s in scopes}) == 1:
        common += 1
    branches = [s[common] if len(s) > common else None for s in scopes]
    distinct = list(dict.fromkeys(b for b in branches if b is not None))
    if len(distinct) >= 2 and None not in branches and not set(distinct) <= _MHA_PARTS:
        model = inferred_container(path, name, "Model", "model")
        for sub in distinct:
            sub_arrays = [a for a, b in zip(arrays, branches) if b == sub]
            model.children.append(infer_legacy_layer(sub, sub_arrays, major, f"{path}/{sub}"))
        return model
    if distinct and set(distinct) <= _MHA_PARTS:
        return _make_inferred(path, name, arrays, major, "MultiHeadAttention")
    return _make_inferred(path, name, arrays, major)


def infer_vars(root: Layer, storage: VarsStorage, major: int) -> None:
    prefix = storage.layers_key
    ordered = sorted(storage.groups)  # the groups under any prefix are one contiguous run of these

    def under(base: str) -> list[str]:
        """The groups whose path starts with ``base``, in sorted order (linear in how many there are)."""
        out = []
        for group in itertools.islice(ordered, bisect.bisect_left(ordered, base), None):
            if not group.startswith(base):
                break
            out.append(group)
        return out

    def build(container: Layer, base: str) -> None:
        keys = dict.fromkeys(group[len(base) + 1 :].split("/")[0] for group in under(base + "/"))
        for key in sorted(keys, key=_natural):
            path = f"{base}/{key}"
            inside = under(path + "/")
            name = storage.names.get(path, key)
            child_path = layer_path(container.path, name)
            snake_class = _class_from_snake(key)
            if any(g.startswith(f"{path}/layers") for g in inside):
                child = inferred_container(child_path, name, snake_class or "Model", "model")
                build(child, f"{path}/layers")
            elif any(g.startswith(f"{path}/forward_layer") for g in inside):
                child = inferred_container(child_path, name, "Bidirectional", "wrapper")
                for half in ("forward_layer", "backward_layer"):
                    half_path = f"{path}/{half}"
                    half_name = storage.names.get(half_path, half)
                    arrays = [a for g in inside if g.startswith(half_path) for a in storage.groups[g]]
                    child.children.append(
                        _make_inferred(f"{child_path}/{half_name}", half_name, arrays, major, recurrent=True)
                    )
            elif any(g.startswith(f"{path}/layer/") or g == f"{path}/layer" for g in inside):
                child = inferred_container(child_path, name, "TimeDistributed", "wrapper")
                inner = [g for g in inside if g.startswith(f"{path}/layer")]
                arrays = [a for g in sorted(inner, key=lambda g: (g.count("/"), g)) for a in storage.groups[g]]
                inner_name = storage.names.get(f"{path}/layer", "layer")
                child.children.append(_make_inferred(f"{child_path}/{inner_name}", inner_name, arrays, major, None))
            else:
                groups = sorted(([path] if path in storage.groups else []) + inside, key=lambda g: (g.count("/"), g))
                arrays = [a for g in groups for a in storage.groups[g]]
                recurrent = any(g.endswith("/cell") for g in groups)
                child = _make_inferred(child_path, name, arrays, major, snake_class, recurrent=recurrent)
            container.children.append(child)

    build(root, prefix)


def _natural(key: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    assert match is not None
    return (match.group(1), int(match.group(2) or 0))
