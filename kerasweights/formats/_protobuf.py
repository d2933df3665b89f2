"""The few TensorFlow protocol buffer messages kerasweights reads, described in code.

TensorFlow's ``.proto`` files are not a dependency: this module builds a
``FileDescriptorProto`` at import with only the fields we use (field numbers as in
TensorFlow's ``tensor_bundle.proto``, ``trackable_object_graph.proto``,
``saved_model.proto``, ``meta_graph.proto``, ``graph.proto``, ``function.proto`` and
tf_keras's ``saved_metadata.proto``). Fields we do not describe are skipped by the
parser. Enums are declared ``int32`` (same wire encoding) so that an unknown value
is a number we can report, not a parse failure.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..errors import CorruptFileError, LimitExceededError

# (google.protobuf is imported on first use: `import kerasweights` stays as cheap as numpy + h5py)

# message name -> [(field name, number, type or message name, repeated)]
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "VersionDef": [("producer", 1, "int32", False), ("min_consumer", 2, "int32", False)],
    "Dim": [("size", 1, "int64", False), ("name", 2, "string", False)],
    "TensorShapeProto": [("dim", 2, "Dim", True), ("unknown_rank", 3, "bool", False)],
    "BundleHeaderProto": [
        ("num_shards", 1, "int32", False),
        ("endianness", 2, "int32", False),
        ("version", 3, "VersionDef", False),
    ],
    "TensorSliceProto": [],
    "BundleEntryProto": [
        ("dtype", 1, "int32", False),
        ("shape", 2, "TensorShapeProto", False),
        ("shard_id", 3, "int32", False),
        ("offset", 4, "int64", False),
        ("size", 5, "int64", False),
        ("crc32c", 6, "fixed32", False),
        ("slices", 7, "TensorSliceProto", True),
    ],
    "ObjectReference": [("node_id", 1, "int32", False), ("local_name", 2, "string", False)],
    "SerializedTensor": [
        ("name", 1, "string", False),
        ("full_name", 2, "string", False),
        ("checkpoint_key", 3, "string", False),
    ],
    "SlotVariableReference": [
        ("original_variable_node_id", 1, "int32", False),
        ("slot_name", 2, "string", False),
        ("slot_variable_node_id", 3, "int32", False),
    ],
    "TrackableObject": [
        ("children", 1, "ObjectReference", True),
        ("attributes", 2, "SerializedTensor", True),
        ("slot_variables", 3, "SlotVariableReference", True),
    ],
    "TrackableObjectGraph": [("nodes", 1, "TrackableObject", True)],
    # tf_keras/protobuf/saved_metadata.proto (keras_metadata.pb)
    "SavedObject": [
        ("node_id", 2, "int32", False),
        ("node_path", 3, "string", False),
        ("identifier", 4, "string", False),
        ("metadata", 5, "string", False),
        ("version", 6, "VersionDef", False),
    ],
    "SavedMetadata": [("nodes", 1, "SavedObject", True)],
    # saved_model.pb: only what the audit needs (which ops the graphs hold)
    "NodeDef": [("name", 1, "string", False), ("op", 2, "string", False)],
    "OpDef": [("name", 1, "string", False)],
    "FunctionDef": [("signature", 1, "OpDef", False), ("node_def", 3, "NodeDef", True)],
    "FunctionDefLibrary": [("function", 1, "FunctionDef", True)],
    "GraphDef": [("node", 1, "NodeDef", True), ("library", 2, "FunctionDefLibrary", False)],
    "MetaInfoDef": [("tags", 4, "string", True), ("tensorflow_version", 5, "string", False)],
    # saved_model.pb's object graph: TF <= 2.4 kept each Keras layer's JSON metadata here
    "SavedUserObject": [("identifier", 1, "string", False), ("metadata", 3, "string", False)],
    "GraphObject": [("children", 1, "ObjectReference", True), ("user_object", 4, "SavedUserObject", False)],
    "SavedObjectGraph": [("nodes", 1, "GraphObject", True)],
    "MetaGraphDef": [
        ("meta_info_def", 1, "MetaInfoDef", False),
        ("graph_def", 2, "GraphDef", False),
        ("object_graph_def", 7, "SavedObjectGraph", False),
    ],
    "SavedModel": [("saved_model_schema_version", 1, "int64", False), ("meta_graphs", 2, "MetaGraphDef", True)],
}

_PACKAGE = "kerasweights.tf"


@cache
def _classes() -> dict[str, Any]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    _F = descriptor_pb2.FieldDescriptorProto
    _TYPES = {
        "int32": _F.TYPE_INT32,
        "int64": _F.TYPE_INT64,
        "fixed32": _F.TYPE_FIXED32,
        "bool": _F.TYPE_BOOL,
        "string": _F.TYPE_STRING,
        "bytes": _F.TYPE_BYTES,
    }
    proto = descriptor_pb2.FileDescriptorProto(name="kerasweights/tf.proto", package=_PACKAGE, syntax="proto3")
    for name, fields in _MESSAGES.items():
        msg = proto.message_type.add(name=name)
        for field_name, number, kind, repeated in fields:
            field = msg.field.add(name=field_name, number=number)
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if kind in _TYPES:
                field.type = _TYPES[kind]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{kind}"
    pool = descriptor_pool.DescriptorPool()  # our own pool: never collides with TensorFlow's
    pool.AddSerializedFile(proto.SerializeToString())
    found = pool.FindFileByName(proto.name)
    return {name: message_factory.GetMessageClass(found.message_types_by_name[name]) for name in _MESSAGES}


def __getattr__(name: str) -> Any:
    """The message classes (``SavedModel``, ``BundleEntryProto``...), built on first use."""
    if name in _MESSAGES:
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse(cls: Any, data: bytes, what: str, max_bytes: int) -> Any:
    """``cls`` parsed from ``data``; a :class:`KerasWeightsError` for oversized or damaged bytes."""
    from google.protobuf import message

    if len(data) > max_bytes:
        raise LimitExceededError(f"{what} is {len(data):,} bytes, over the limit of {max_bytes:,}")
    msg = cls()
    try:
        msg.ParseFromString(data)
    except (message.DecodeError, ValueError, RuntimeError) as exc:  # (RuntimeError: recursion limit)
        raise CorruptFileError(f"{what} is not a valid protocol buffer ({exc or type(exc).__name__})") from None
    return msg
