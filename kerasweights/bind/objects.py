"""Join a config tree with a TensorFlow object graph (SavedModel, TF checkpoint).

tf.keras tracks a model's layers as ``layer-<i>`` (position in ``model.layers``; Functional
models count their InputLayers, Sequential ones do not), a Bidirectional's halves as
``forward_layer``/``backward_layer``, a wrapped layer as ``layer``, and each layer's
variables as attributes (``cell/kernel``) in the order they were created, which is
``layer.weights`` order. Layer names are not stored in checkpoints; SavedModels name
every layer node in ``keras_metadata.pb``, and those names are preferred when present.
"""

from __future__ import annotations

import re

from .. import layouts
from ..formats import ObjectStorage, TrackedObject
from ..formats.tf_objects import NOT_LAYER_STATE, variables_below
from ..layouts.keras import layer_path
from ..model import Layer
from ..store import StoredArray
from .inferred import _make_inferred as make_inferred  # one inference for every storage
from .weights import assign, inferred_container

_LAYER = re.compile(r"^layer-(\d+)$")
_WITH_WEIGHTS = re.compile(r"^layer_with_weights-(\d+)$")


def bind_objects(
    root: Layer, storage: ObjectStorage, keys: dict[int, str], whole_root: bool, major: int, notes: list[str]
) -> None:
    """Give every leaf layer of ``root`` the variables below its node."""
    claimed: set[int] = set()

    def give(layer: Layer, arrays: list[StoredArray]) -> None:
        claimed.update(id(a) for a in arrays)
        assign(layer, _rule_order(layer, arrays), major)

    def visit(layer: Layer, node: TrackedObject | None) -> None:
        if layer.kind == "model":
            for i, child in enumerate(layer.children):
                visit(child, _model_child(node, i, child.name) if node is not None else None)
        elif layer.kind == "wrapper":
            for child in layer.children:
                visit(child, node.child(keys.get(id(child), "layer")) if node is not None else None)
        else:
            give(layer, variables_below(node) if node is not None else [])

    if whole_root and len(root.children) == 1:  # a subclassed model given as one custom layer
        visit(root.children[0], storage.root)
    else:
        visit(root, storage.root)
    leftovers = [a.stored_name for a in storage.arrays if id(a) not in claimed]
    if leftovers:
        notes.append(f"stored variables not matched to any layer: {', '.join(sorted(leftovers))}")


def _model_child(node: TrackedObject, position: int, name: str) -> TrackedObject | None:
    layers = [(int(m.group(1)), child) for local, child in node.children if (m := _LAYER.match(local))]
    if any(child.name is not None for _, child in layers):  # SavedModel: names from keras_metadata.pb
        named = next((child for _, child in layers if child.name == name), None)
        if named is not None:
            return named
    return next((child for i, child in layers if i == position), None)


def _rule_order(layer: Layer, arrays: list[StoredArray]) -> list[StoredArray]:
    """Creation order is ``layer.weights`` order; when the names say otherwise, the rule's order wins."""
    if layer.rule is None or len(arrays) < 2:
        return arrays
    wanted = [v.name for v in layer.rule.variables(layer.config, layer.context)]
    shorts = [a.stored_name.rsplit("/", 1)[-1] for a in arrays]
    if len(set(shorts)) == len(shorts) and sorted(shorts) == sorted(wanted) and shorts != wanted:
        by_name = dict(zip(shorts, arrays))
        return [by_name[n] for n in wanted]
    return arrays


# -- no config: infer from the object graph -----------------------------------------------------------


def infer_objects(root: Layer, storage: ObjectStorage, major: int, notes: list[str] | None = None) -> None:
    """Layers from the object graph alone (no config): classes guessed from variable names and shapes.

    Sequential and Functional models track their layers as ``layer-<i>``; a subclassed model
    tracks them by attribute name (``self.rnn``), so there any child holding variables below
    it (and not itself a variable) is taken as a layer.
    """

    def layer_children(node: TrackedObject) -> list[tuple[str, TrackedObject]]:
        seen: set[int] = set()
        out = []
        for i, child in sorted((int(m.group(1)), c) for local, c in node.children if (m := _LAYER.match(local))):
            if id(child) not in seen:
                seen.add(id(child))
                alias = next(
                    (local for local, c in node.children if c is child and _WITH_WEIGHTS.match(local)), f"layer-{i}"
                )
                out.append((alias, child))
        if not out:  # some writers track only layer_with_weights-<k>
            out = [(local, c) for local, c in node.children if _WITH_WEIGHTS.match(local)]
        return out

    def attribute_layers(node: TrackedObject) -> list[tuple[str, TrackedObject]]:
        seen: set[int] = set()
        out = []
        for local, child in node.children:
            if local in NOT_LAYER_STATE or local.startswith("__") or child.array is not None or id(child) in seen:
                continue
            seen.add(id(child))
            if variables_below(child):
                out.append((local, child))
        return out

    def sublayers(node: TrackedObject) -> list[tuple[str, TrackedObject]]:
        return layer_children(node) or attribute_layers(node)

    claimed: set[int] = set()

    def add(container: Layer, layer: Layer) -> None:
        claimed.update(id(w.array) for w in layer.all_weights())
        container.children.append(layer)

    visited: set[int] = {id(storage.root)}  # object graphs can hold cycles and shared objects

    def build(container: Layer, node: TrackedObject) -> None:
        for alias, child in sublayers(node):
            if id(child) in visited:
                continue
            visited.add(id(child))
            arrays = variables_below(child)
            name = child.name or alias
            path = layer_path(container.path, name)
            if not arrays:
                continue
            if child.child("forward_layer") is not None and child.child("backward_layer") is not None:
                sub = inferred_container(path, name, "Bidirectional", "wrapper")
                for half in ("forward_layer", "backward_layer"):
                    half_node = child.child(half)
                    assert half_node is not None
                    half_name = half_node.name or half
                    sub.children.append(
                        make_inferred(
                            f"{path}/{half_name}", half_name, variables_below(half_node), major, recurrent=True
                        )
                    )
                add(container, sub)
            elif child.child("layer") is not None and child.child("cell") is None and not layer_children(child):
                inner = child.child("layer")
                assert inner is not None
                sub = inferred_container(path, name, child.class_name or "TimeDistributed", "wrapper")
                inner_name = inner.name or "layer"
                sub.children.append(
                    make_inferred(f"{path}/{inner_name}", inner_name, variables_below(inner), major, inner.class_name)
                )
                add(container, sub)
            elif child.child("cell") is None and child.child("_query_dense") is None and sublayers(child):
                sub = inferred_container(path, name, child.class_name or "Model", "model")
                build(sub, child)
                claimed.update(id(w.array) for w in sub.all_weights())
                container.children.append(sub)
            else:
                class_name = child.class_name
                if class_name is None and child.child("_query_dense") is not None:
                    class_name = "MultiHeadAttention"
                recurrent = child.child("cell") is not None
                if (
                    class_name is not None
                    and layouts.rule_for(class_name) is None
                    and class_name not in layouts.RECURRENT_CLASSES
                ):
                    class_name = None if not child.name else class_name
                add(container, make_inferred(path, name, arrays, major, class_name, recurrent=recurrent))

    build(root, storage.root)
    leftovers = [a.stored_name for a in storage.arrays if id(a) not in claimed]
    if leftovers and notes is not None:
        notes.append(f"stored variables not matched to any layer: {', '.join(sorted(leftovers))}")
