"""Join a config tree with stored arrays: which arrays belong to which layer, under which names.

Legacy HDF5 stores one group per top-level layer (a nested model's or wrapper's weights
flattened: every trainable weight first, then every non-trainable one, as Keras's
``_legacy_weights`` does). Keras 3 stores one ``vars`` group per object, at paths named
after classes with counters (``layers/gru_1/cell``), not after the user's layer names.
"""

from __future__ import annotations

from .. import layouts
from ..config import LayerSpec
from ..formats import LegacyStorage, VarsStorage
from ..layouts import WEIGHTLESS_CLASSES, Context, Var
from ..layouts.keras import layer_path
from ..model import Layer
from ..store import StoredArray
from .weights import SUFFIX, assign

# -- tree from config ---------------------------------------------------------------------------


def from_spec(spec: LayerSpec, path: str, major: int) -> Layer:
    layer = Layer(
        path=path,
        name=spec.name,
        class_name=spec.class_name,
        config=spec.config,
        kind=spec.kind,
        rule=_rule(spec),
        module=spec.module,
        registered_name=spec.registered_name,
        context=Context(keras_major=major),
    )
    layer.children = [from_spec(child, layer_path(path, child.name), major) for child in spec.children]
    return layer


def _rule(spec: LayerSpec) -> layouts.Rule | None:
    """The layout rule of a layer, or of a wrapper that owns variables (SpectralNormalization's
    ``vector_u``); an ``RNN`` whose cell Keras does not ship has none (its weights stay unsplit)."""
    if spec.kind == "model" or (spec.class_name == "RNN" and layouts.custom_cell(spec.config)):
        return None
    return layouts.rule_for(spec.class_name)


def custom_cell_notes(root: Layer) -> list[str]:
    """Why a generic RNN's weights are not split: its cell is not one Keras ships."""
    return [
        f"layer {layer.path!r} is an RNN with the custom cell {cell}: its weights are kept as stored, not split into gates"
        for layer in root.walk()
        if layer.class_name == "RNN" and (cell := layouts.custom_cell(layer.config))
    ]


def storage_keys(layer: Layer, spec: LayerSpec) -> list[tuple[Layer, str]]:
    out = [(layer, spec.storage_key)]
    for child_layer, child_spec in zip(layer.children, spec.children):
        out += storage_keys(child_layer, child_spec)
    return out


# -- legacy HDF5 ----------------------------------------------------------------------------------


def bind_legacy(root: Layer, storage: LegacyStorage, major: int, notes: list[str]) -> None:
    matched = set()
    for layer in root.children:
        arrays = storage.layers.get(layer.name)
        if arrays is None:
            continue
        matched.add(layer.name)
        _distribute(layer, arrays, major)
    for name in storage.layer_names:
        if name not in matched and storage.layers.get(name):
            from .inferred import infer_legacy_layer  # (only for such strays: not imported up front)

            notes.append(f"stored layer {name!r} is not in the model config; shown as inferred")
            root.children.append(infer_legacy_layer(name, storage.layers[name], major))


def _leaves(layer: Layer) -> list[Layer]:
    """Layers that own variables: every leaf, and wrappers with a rule (SpectralNormalization)."""
    return [l for l in layer.walk() if l.kind == "layer" or l.rule is not None]


def _distribute(layer: Layer, arrays: list[StoredArray], major: int) -> None:
    leaves = _leaves(layer)
    if len(leaves) == 1:
        assign(leaves[0], arrays, major)
        return
    if not arrays:
        return
    # Keras's own order: every trainable weight in layer order, then every non-trainable one.
    plan: list[tuple[Layer, list[Var]]] = []
    for leaf in leaves:
        if leaf.rule is None:
            plan.append((leaf, []))
            continue
        variables = [v for v in leaf.rule.variables(leaf.config, Context(keras_major=major)) if not v.shared]
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
        assign(leaves[0], arrays[:half], major)
        assign(leaves[1], arrays[half:], major)
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
                assign(leaf, [got[i] for i in range(len(vs))], major, [v.trainable for v in vs])
        return
    _distribute_by_name(layer, leaves, arrays, major)


def _looks_weighted(layer: Layer) -> bool:
    return layer.class_name not in WEIGHTLESS_CLASSES


def _ancestors(top: Layer, leaf: Layer) -> list[Layer]:
    chain = []
    for layer in top.walk():
        if leaf.path == layer.path or leaf.path.startswith(layer.path + "/"):
            chain.append(layer)
    return chain


def _distribute_by_name(layer: Layer, leaves: list[Layer], arrays: list[StoredArray], major: int) -> None:
    """Fallback when counts do not add up (custom sublayers): match leaf names in stored names."""
    if not leaves:  # a config that lists no sublayers where weights are stored: keep them, unsplit
        assign(layer, arrays, major)
        layer.problems.append(
            f"layer {layer.path!r} ({layer.class_name}): its config has no sublayers, yet {len(arrays)} arrays are stored for it"
        )
        return
    groups: dict[int, list[StoredArray]] = {}
    for array in arrays:
        parts = SUFFIX.sub("", array.stored_name).split("/")[:-1]
        owner = next((leaf for leaf in reversed(leaves) if leaf.name in parts), None)
        owner = owner or next((leaf for leaf in leaves if leaf.rule is None and _looks_weighted(leaf)), leaves[0])
        groups.setdefault(id(owner), []).append(array)
    for leaf in leaves:
        if id(leaf) in groups:
            assign(leaf, groups[id(leaf)], major)


# -- Keras 3 vars trees ---------------------------------------------------------------------------


def bind_vars(root: Layer, storage: VarsStorage, keys: dict[int, str], major: int, notes: list[str]) -> None:
    claimed: set[str] = set()

    def visit(layer: Layer, prefix: str) -> None:
        for child in layer.children:
            key = keys.get(id(child), "")
            if storage.layers_key != "layers" and key.startswith("layers/"):
                key = storage.layers_key + key[len("layers") :]
            child_prefix = _resolve(storage, layer_path(prefix, key), child.name, layer.kind == "model")
            visit(child, child_prefix)
        if layer.kind == "layer" or layer.rule is not None:
            arrays = []
            for group in _groups_of(layer, prefix, storage):
                if group not in claimed:
                    claimed.add(group)
                    arrays += storage.groups[group]
            assign(layer, arrays, major)

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
                path = layer_path(prefix, name) if name else prefix
                if path in storage.groups:
                    out.append(path)
                    break
        return out
    if not prefix:  # the whole file belongs to one custom model
        below = [g for g in storage.groups if g.split("/")[0] not in ("optimizer", "metrics")]
    else:
        below = [g for g in storage.groups if g == prefix or g.startswith(prefix + "/")]
    return sorted(below, key=lambda g: (g.count("/"), g))
