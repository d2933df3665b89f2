"""Join a config tree with stored arrays: which arrays belong to which layer, under which names.

Legacy HDF5 stores one group per top-level layer (a nested model's or wrapper's weights
flattened: every trainable weight first, then every non-trainable one, as Keras's
``_legacy_weights`` does). Keras 3 stores one ``vars`` group per object, at paths named
after classes with counters (``layers/gru_1/cell``), not after the user's layer names.
"""

from __future__ import annotations

import re

from . import layouts
from .config import LayerSpec, parse_model, to_snake_case
from .formats import LegacyStorage, RawModel, VarsStorage
from .layouts import Context, Var
from .model import Layer, Model, Weight
from .store import StoredArray

_SUFFIX = re.compile(r":\d+$")


def build_model(raw: RawModel) -> Model:
    notes = list(raw.notes)
    major = keras_major(raw)
    if raw.config is not None:
        spec = parse_model(raw.config)
        if not spec.is_model:
            # A subclassed (custom) model or a bare layer: one layer holding everything stored.
            spec = LayerSpec("Model", spec.name, {}, children=[spec], is_model=True)
            notes.append(
                f"the model is a {spec.children[0].class_name}, not Sequential or Functional: its sublayers are not described by its config"
            )
        root = _from_spec(spec, "", major)
        keys = {id(layer): key for layer, key in _storage_keys(root, spec)}
        if isinstance(raw.storage, LegacyStorage):
            _bind_legacy(root, raw.storage, major, notes)
        else:
            _bind_vars(root, raw.storage, keys, major, notes)
    else:
        root = Layer(path="", name="model", class_name="Model", config={}, kind="model")
        if isinstance(raw.storage, LegacyStorage):
            _infer_legacy(root, raw.storage, major)
        else:
            _infer_vars(root, raw.storage, major)
        notes.append(
            "the file has no model config: layer classes and configs were inferred from weight names and shapes"
        )
    return Model(raw, root, notes)


def keras_major(raw: RawModel) -> int:
    version = raw.keras_version
    if version and version[:1].isdigit():
        return int(version.split(".")[0])
    if isinstance(raw.storage, LegacyStorage):
        return 1 if raw.format == "h5-weights" else 2
    return 3


# -- tree from config ---------------------------------------------------------------------------


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _from_spec(spec: LayerSpec, path: str, major: int) -> Layer:
    layer = Layer(
        path=path,
        name=spec.name,
        class_name=spec.class_name,
        config=spec.config,
        kind=spec.kind,
        rule=layouts.rule_for(spec.class_name) if spec.kind == "layer" else None,
        module=spec.module,
        registered_name=spec.registered_name,
        context=Context(keras_major=major),
    )
    layer.children = [_from_spec(child, _join(path, child.name), major) for child in spec.children]
    return layer


def _storage_keys(layer: Layer, spec: LayerSpec) -> list[tuple[Layer, str]]:
    out = [(layer, spec.storage_key)]
    for child_layer, child_spec in zip(layer.children, spec.children):
        out += _storage_keys(child_layer, child_spec)
    return out


def _assign(layer: Layer, arrays: list[StoredArray], major: int, trainable: list[bool] | None = None) -> None:
    shorts = _short_names(arrays)
    layer.context = Context(keras_major=major, stored_names=tuple(shorts))
    variables: list[Var] | None = None
    if layer.rule is not None:
        variables = layer.rule.variables(layer.config, layer.context)
        if len(variables) != len(arrays):
            expected = ", ".join(v.name for v in variables) or "none"
            layer.problems.append(
                f"layer {layer.path!r} ({layer.class_name}): expected {len(variables)} weights ({expected}), "
                f"found {len(arrays)} ({', '.join(shorts) or 'none'})"
            )
            variables = None
    if variables is None:
        names, flags = shorts, [True] * len(arrays)
    else:
        names, flags = [v.name for v in variables], [v.trainable for v in variables]
    if trainable is not None:
        flags = trainable
    layer.weights = [Weight(n, layer.path, a, t) for n, a, t in zip(names, arrays, flags)]


def _short_names(arrays: list[StoredArray]) -> list[str]:
    shorts = [_SUFFIX.sub("", a.stored_name).split("/")[-1] for a in arrays]
    if len(set(shorts)) != len(shorts):  # e.g. Keras 3.0-3.2 legacy h5 of MHA: bare, repeated names
        shorts = [_SUFFIX.sub("", a.stored_name) for a in arrays]
    if len(set(shorts)) != len(shorts):  # Keras 3 custom objects: vars/0 in several groups
        shorts = [a.key.replace("/vars/", "/") for a in arrays]
    return shorts


# -- legacy HDF5 ----------------------------------------------------------------------------------


def _bind_legacy(root: Layer, storage: LegacyStorage, major: int, notes: list[str]) -> None:
    matched = set()
    for layer in root.children:
        arrays = storage.layers.get(layer.name)
        if arrays is None:
            continue
        matched.add(layer.name)
        _distribute(layer, arrays, major)
    for name in storage.layer_names:
        if name not in matched and storage.layers.get(name):
            notes.append(f"stored layer {name!r} is not in the model config; shown as inferred")
            root.children.append(_infer_legacy_layer(name, storage.layers[name], major))


def _leaves(layer: Layer) -> list[Layer]:
    return [l for l in layer.walk() if l.kind == "layer"]


def _distribute(layer: Layer, arrays: list[StoredArray], major: int) -> None:
    leaves = _leaves(layer)
    if len(leaves) == 1:
        _assign(leaves[0], arrays, major)
        return
    if not arrays:
        return
    # Keras's own order: every trainable weight in layer order, then every non-trainable one.
    plan: list[tuple[Layer, list[Var]]] = []
    for leaf in leaves:
        if leaf.rule is None:
            plan.append((leaf, []))
            continue
        variables = leaf.rule.variables(leaf.config, Context(keras_major=major))
        frozen = not all(l.config.get("trainable", True) is not False for l in _ancestors(layer, leaf))
        plan.append((leaf, [Var(v.name, v.trainable and not frozen) for v in variables]))
    if (
        layer.class_name == "Bidirectional"
        and len(leaves) == 2
        and len(arrays) % 2 == 0
        and (sum(len(v) for _, v in plan) != len(arrays))
    ):
        # Keras 1 per-gate halves: forward weights, then backward (convert_nested_bidirectional)
        half = len(arrays) // 2
        _assign(leaves[0], arrays[:half], major)
        _assign(leaves[1], arrays[half:], major)
        return
    if sum(len(v) for _, v in plan) == len(arrays) and all(
        l.rule is not None or not _looks_weighted(l) for l in leaves
    ):
        slots: list[tuple[Layer, int]] = [(leaf, i) for leaf, vs in plan for i, v in enumerate(vs) if v.trainable]
        slots += [(leaf, i) for leaf, vs in plan for i, v in enumerate(vs) if not v.trainable]
        per_leaf: dict[int, dict[int, StoredArray]] = {}
        for (leaf, i), array in zip(slots, arrays):
            per_leaf.setdefault(id(leaf), {})[i] = array
        for leaf, vs in plan:
            got = per_leaf.get(id(leaf), {})
            if vs:
                _assign(leaf, [got[i] for i in range(len(vs))], major, [v.trainable for v in vs])
        return
    _distribute_by_name(layer, leaves, arrays, major)


def _looks_weighted(layer: Layer) -> bool:
    return layer.class_name not in _WEIGHTLESS


def _ancestors(top: Layer, leaf: Layer) -> list[Layer]:
    chain = []
    for layer in top.walk():
        if leaf.path == layer.path or leaf.path.startswith(layer.path + "/"):
            chain.append(layer)
    return chain


def _distribute_by_name(layer: Layer, leaves: list[Layer], arrays: list[StoredArray], major: int) -> None:
    """Fallback when counts do not add up (custom sublayers): match leaf names in stored names."""
    groups: dict[int, list[StoredArray]] = {}
    for array in arrays:
        parts = _SUFFIX.sub("", array.stored_name).split("/")[:-1]
        owner = next((leaf for leaf in reversed(leaves) if leaf.name in parts), None)
        owner = owner or next((leaf for leaf in leaves if leaf.rule is None and _looks_weighted(leaf)), leaves[0])
        groups.setdefault(id(owner), []).append(array)
    for leaf in leaves:
        if id(leaf) in groups:
            _assign(leaf, groups[id(leaf)], major)


# -- Keras 3 vars trees ---------------------------------------------------------------------------


def _bind_vars(root: Layer, storage: VarsStorage, keys: dict[int, str], major: int, notes: list[str]) -> None:
    claimed: set[str] = set()

    def visit(layer: Layer, prefix: str) -> None:
        for child in layer.children:
            key = keys.get(id(child), "")
            if storage.layers_key != "layers" and key.startswith("layers/"):
                key = storage.layers_key + key[len("layers") :]
            child_prefix = _resolve(storage, _join(prefix, key), child.name, layer.kind == "model")
            visit(child, child_prefix)
        if layer.kind == "layer":
            arrays = []
            for group in _groups_of(layer, prefix, storage):
                if group not in claimed:
                    claimed.add(group)
                    arrays += storage.groups[group]
            _assign(layer, arrays, major)

    visit(root, "")
    leftovers = [
        g
        for g, arrays in storage.groups.items()
        if arrays and g not in claimed and g.split("/")[0] not in ("optimizer", "metrics", "")
    ]
    if leftovers:
        notes.append(f"stored variable groups not matched to any layer: {', '.join(sorted(leftovers))}")


def _resolve(storage: VarsStorage, path: str, name: str, in_container: bool) -> str:
    """Prefer the group whose ``vars@name`` (Keras >= 3.6) is the layer's name."""
    if not in_container or not storage.names:
        return path
    if storage.names.get(path) == name:
        return path
    parent = path.rsplit("/", 1)[0]
    for candidate, label in storage.names.items():
        if label == name and candidate.rsplit("/", 1)[0] == parent:
            return candidate
    return path


def _groups_of(layer: Layer, prefix: str, storage: VarsStorage) -> list[str]:
    if layer.rule is not None:
        out = []
        for group in layer.rule.v3_groups:
            for name in (group, *layer.rule.aliases_v3.get(group, ())):
                path = _join(prefix, name) if name else prefix
                if path in storage.groups:
                    out.append(path)
                    break
        return out
    if not prefix:  # the whole file belongs to one custom model
        below = [g for g in storage.groups if g.split("/")[0] not in ("optimizer", "metrics")]
    else:
        below = [g for g in storage.groups if g == prefix or g.startswith(prefix + "/")]
    return sorted(below, key=lambda g: (g.count("/"), g))


# -- no config: infer from storage ----------------------------------------------------------------

_WEIGHTLESS = {
    "InputLayer",
    "Dropout",
    "Activation",
    "Flatten",
    "Reshape",
    "Masking",
    "Lambda",
    "RepeatVector",
    "Permute",
    "Concatenate",
    "Add",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Subtract",
    "Dot",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Cropping1D",
    "Cropping2D",
    "UpSampling1D",
    "UpSampling2D",
    "Softmax",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "TFOpLambda",
    "SlicingOpLambda",
    "Merge",
    "AlphaDropout",
    "ActivityRegularization",
}


def _class_from_snake(snake: str) -> str | None:
    base = re.sub(r"_\d+$", "", snake)
    for name in [
        *layouts.known_classes(),
        *sorted(_WEIGHTLESS),
        "Bidirectional",
        "TimeDistributed",
        "Sequential",
        "Functional",
    ]:
        if to_snake_case(name) == base:
            return name
    return None


def _infer_recurrent(shapes: list[tuple[int, ...]]) -> tuple[str, dict]:
    kernel, recurrent = shapes[0], shapes[1]
    units = recurrent[-2]
    gates = recurrent[-1] // max(units, 1)
    config: dict = {"units": units, "use_bias": len(shapes) > 2}
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


_KERAS1 = re.compile(r"(?:^|_)([WUb])(?:_([a-z]))?$")
_KERAS1_NAMES = {"W": "kernel", "U": "recurrent_kernel", "b": "bias"}


def _infer_leaf(arrays: list[StoredArray], shorts: list[str], recurrent: bool, major: int) -> tuple[str, dict]:
    shapes = [a.shape for a in arrays]
    keras1 = [_KERAS1.search(n) for n in shorts]
    if major == 1 and shorts and all(keras1):  # Keras 1: <layer>_W, <layer>_b, <layer>_W_i ...
        gates = {m.group(2) for m in keras1 if m and m.group(2)}
        if gates:
            units = shapes[1][-1]
            family = "GRU" if gates == {"z", "r", "h"} else "LSTM" if gates == {"i", "f", "c", "o"} else "Unknown"
            return family, {"units": units, "use_bias": True}
        shorts = [_KERAS1_NAMES[m.group(1)] for m in keras1 if m]
    names = set(shorts)
    if recurrent or {"kernel", "recurrent_kernel"} <= names:
        if len(shapes) >= 2 and len(shapes[1]) >= 2:
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
    guessed, config = _infer_leaf(arrays, _short_names(arrays), recurrent, major) if arrays else ("Unknown", {})
    if class_name is None or (class_name in layouts.RECURRENT_CLASSES and guessed in layouts.RECURRENT_CLASSES):
        class_name = guessed  # shapes give units and reset_after, and tell GRU from CuDNNGRU
    elif guessed != class_name:
        config = {}  # the class named by storage wins; the guess's config is not for it
    rule = layouts.rule_for(class_name)
    if rule is not None:
        config = _fit_flags(rule, {"name": name, **config}, len(arrays), major)
    layer = Layer(
        path=path, name=name, class_name=class_name, config={"name": name, **config}, inferred=True, rule=rule
    )
    _assign(layer, arrays, major)
    return layer


_FLAG_GUESSES = ({}, {"use_bias": False}, {"center": False}, {"scale": False}, {"center": False, "scale": False})


def _fit_flags(rule: layouts.Rule, config: dict, count: int, major: int) -> dict:
    """The first common flag setting (use_bias, center, scale) under which the rule stores ``count`` arrays."""
    for guess in _FLAG_GUESSES:
        candidate = {**config, **guess}
        if len(rule.variables(candidate, Context(keras_major=major))) == count:
            return candidate
    return config


def _infer_legacy(root: Layer, storage: LegacyStorage, major: int) -> None:
    for name in storage.layer_names:
        root.children.append(_infer_legacy_layer(name, storage.layers.get(name, []), major))


_MHA_PARTS = {"query", "key", "value", "attention_output"}


def _infer_legacy_layer(name: str, arrays: list[StoredArray], major: int, path: str | None = None) -> Layer:
    path = path or name
    fwd = [a for a in arrays if "/forward_" in a.stored_name]
    bwd = [a for a in arrays if "/backward_" in a.stored_name]
    if fwd and bwd and len(fwd) + len(bwd) == len(arrays):
        wrapper = Layer(
            path=path, name=name, class_name="Bidirectional", config={"name": name}, kind="wrapper", inferred=True
        )
        for half in (fwd, bwd):
            half_name = next(p for p in half[0].stored_name.split("/") if p.startswith(("forward_", "backward_")))
            wrapper.children.append(_make_inferred(f"{path}/{half_name}", half_name, half, major))
        return wrapper
    # A nested model stores its sublayers' weights under their names: split where names part ways.
    scopes = [_SUFFIX.sub("", a.stored_name).split("/")[:-1] for a in arrays]
    common = 0
    while scopes and all(len(s) > common for s in scopes) and len({s[common] for s in scopes}) == 1:
        common += 1
    branches = [s[common] if len(s) > common else None for s in scopes]
    distinct = list(dict.fromkeys(b for b in branches if b is not None))
    if len(distinct) >= 2 and None not in branches and not set(distinct) <= _MHA_PARTS:
        model = Layer(path=path, name=name, class_name="Model", config={"name": name}, kind="model", inferred=True)
        for sub in distinct:
            sub_arrays = [a for a, b in zip(arrays, branches) if b == sub]
            model.children.append(_infer_legacy_layer(sub, sub_arrays, major, f"{path}/{sub}"))
        return model
    if distinct and set(distinct) <= _MHA_PARTS:
        return _make_inferred(path, name, arrays, major, "MultiHeadAttention")
    return _make_inferred(path, name, arrays, major)


def _infer_vars(root: Layer, storage: VarsStorage, major: int) -> None:
    prefix = storage.layers_key

    def build(container: Layer, base: str) -> None:
        keys: list[str] = []
        for group in storage.groups:
            if group.startswith(base + "/"):
                key = group[len(base) + 1 :].split("/")[0]
                if key not in keys:
                    keys.append(key)
        for key in sorted(keys, key=_natural):
            path = f"{base}/{key}"
            name = storage.names.get(path, key)
            layer_path = _join(container.path, name)
            snake_class = _class_from_snake(key)
            if f"{path}/layers" in {g[: len(path) + 7] for g in storage.groups}:
                child = Layer(
                    path=layer_path,
                    name=name,
                    class_name=snake_class or "Model",
                    config={"name": name},
                    kind="model",
                    inferred=True,
                )
                build(child, f"{path}/layers")
            elif any(g.startswith(f"{path}/forward_layer") for g in storage.groups):
                child = Layer(
                    path=layer_path,
                    name=name,
                    class_name="Bidirectional",
                    config={"name": name},
                    kind="wrapper",
                    inferred=True,
                )
                for half in ("forward_layer", "backward_layer"):
                    half_path = f"{path}/{half}"
                    half_name = storage.names.get(half_path, half)
                    arrays = [a for g in sorted(storage.groups) if g.startswith(half_path) for a in storage.groups[g]]
                    child.children.append(
                        _make_inferred(f"{layer_path}/{half_name}", half_name, arrays, major, recurrent=True)
                    )
            elif any(g.startswith(f"{path}/layer/") or g == f"{path}/layer" for g in storage.groups):
                child = Layer(
                    path=layer_path,
                    name=name,
                    class_name="TimeDistributed",
                    config={"name": name},
                    kind="wrapper",
                    inferred=True,
                )
                inner = [g for g in storage.groups if g.startswith(f"{path}/layer")]
                arrays = [a for g in sorted(inner, key=lambda g: (g.count("/"), g)) for a in storage.groups[g]]
                inner_name = storage.names.get(f"{path}/layer", "layer")
                child.children.append(_make_inferred(f"{layer_path}/{inner_name}", inner_name, arrays, major, None))
            else:
                groups = sorted(
                    (g for g in storage.groups if g == path or g.startswith(path + "/")),
                    key=lambda g: (g.count("/"), g),
                )
                arrays = [a for g in groups for a in storage.groups[g]]
                recurrent = any(g.endswith("/cell") for g in groups)
                child = _make_inferred(layer_path, name, arrays, major, snake_class, recurrent=recurrent)
            container.children.append(child)

    build(root, prefix)


def _natural(key: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    assert match is not None
    return (match.group(1), int(match.group(2) or 0))
