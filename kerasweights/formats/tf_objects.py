"""The object graph of a TF checkpoint (``_CHECKPOINTABLE_OBJECT_GRAPH``) as :class:`TrackedObject` nodes.

Tensors are found through the graph, never by key strings: in a SavedModel a variable's key
can be ``variables/7/.ATTRIBUTES/VARIABLE_VALUE`` (the root's flat list) while the graph
still reaches it as ``layer_with_weights-2/forward_layer/cell/kernel``.
"""

from __future__ import annotations

from collections import deque

from ..errors import CorruptFileError, UnsupportedFormatError
from ..limits import Limits
from ..store import StoredArray
from . import _protobuf
from ._raw import ObjectStorage, TrackedObject
from .tensor_bundle import OBJECT_GRAPH_KEY, TensorBundle

# Children that are views or bookkeeping, not where a layer keeps its variables: lists of
# the same variables (SavedModel), metrics, traced functions, and the optimizer (counted apart).
NOT_LAYER_STATE = frozenset(
    {
        "variables",
        "trainable_variables",
        "non_trainable_variables",
        "regularization_losses",
        "keras_api",
        "signatures",
        "_default_save_signature",
        "__call__",
        "call_and_return_all_conditional_losses",
        "call_and_return_conditional_losses",
        "optimizer",
        "save_counter",
        "_trainable_weights",
        "_non_trainable_weights",
        "_self_tracked_trackables",
    }
)
VARIABLE_VALUE = "VARIABLE_VALUE"


def read_objects(bundle: TensorBundle, limits: Limits) -> tuple[ObjectStorage, int]:
    """The bundle's object graph with every variable attached; returns it and the optimizer's bytes."""
    if OBJECT_GRAPH_KEY not in bundle.entries:
        raise UnsupportedFormatError(
            "the checkpoint has no object graph (a TF1 name-based checkpoint, not written by tf.keras)"
        )
    data = bundle.read_string(OBJECT_GRAPH_KEY)
    graph = _protobuf.decode("TrackableObjectGraph", data, "checkpoint object graph", limits.max_protobuf_bytes)
    count = len(graph.nodes)
    if count == 0:
        raise CorruptFileError("checkpoint object graph has no nodes")
    nodes = [TrackedObject(node_id=i) for i in range(count)]
    slots: set[int] = set()
    for i, proto in enumerate(graph.nodes):
        for ref in proto.children:
            if not 0 <= ref.node_id < count:
                raise CorruptFileError(f"checkpoint object graph: node {i} has a child {ref.node_id} of {count} nodes")
            nodes[i].children.append((ref.local_name, nodes[ref.node_id]))
        for slot in proto.slot_variables:
            if 0 <= slot.slot_variable_node_id < count:
                slots.add(slot.slot_variable_node_id)
    paths = _paths(nodes[0])
    for i, proto in enumerate(graph.nodes):
        for attribute in proto.attributes:
            if attribute.name != VARIABLE_VALUE:
                continue
            entry = bundle.entries.get(attribute.checkpoint_key)
            if entry is None:
                raise CorruptFileError(
                    f"checkpoint object graph names {attribute.checkpoint_key!r}, which the index lacks"
                )
            nodes[i].array = bundle.stored_array(entry, paths.get(i, attribute.checkpoint_key))
    optimizer_nodes = _reachable(
        [n for n in (nodes[0].child("optimizer"),) if n is not None] + [nodes[s] for s in slots]
    )
    model_nodes = _reachable([nodes[0]], skip=NOT_LAYER_STATE)
    in_optimizer = {id(n) for n in optimizer_nodes}
    arrays = [n.array for n in model_nodes if n.array is not None and id(n) not in in_optimizer]
    optimizer_bytes = sum(n.array.nbytes for n in optimizer_nodes if n.array is not None)
    return ObjectStorage(root=nodes[0], arrays=arrays), optimizer_bytes


def _reachable(starts: list[TrackedObject], skip: frozenset[str] = frozenset()) -> list[TrackedObject]:
    seen: set[int] = set()
    out: list[TrackedObject] = []
    stack = list(reversed(starts))
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        stack.extend(child for name, child in reversed(node.children) if name not in skip)
    return out


def _paths(root: TrackedObject) -> dict[int, str]:
    """The first path from the root to each node, by breadth-first search over layer state."""
    paths: dict[int, str] = {root.node_id: ""}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for name, child in node.children:
            if name in NOT_LAYER_STATE or child.node_id in paths:
                continue
            base = paths[node.node_id]
            paths[child.node_id] = f"{base}/{name}" if base else name
            queue.append(child)
    return paths


def variables_below(node: TrackedObject) -> list[StoredArray]:
    """Every variable under a layer's node in the order its attributes were tracked (creation order)."""
    return [n.array for n in _reachable([node], skip=NOT_LAYER_STATE) if n.array is not None]
