"""The few TensorFlow protocol buffer messages kerasweights reads, described in code.

TensorFlow's ``.proto`` files are not a dependency: ``_MESSAGES`` lists only the fields we
use (field numbers as in TensorFlow's ``tensor_bundle.proto``, ``trackable_object_graph.proto``,
``saved_model.proto``, ``meta_graph.proto``, ``graph.proto``, ``function.proto`` and
tf_keras's ``saved_metadata.proto``); fields not listed are skipped. Enums are declared
``int32`` (same wire encoding) so that an unknown value is a number we can report.

One schema, two decoders:

- :func:`parse` builds ``protobuf`` runtime classes from the schema (a ``FileDescriptorProto``
  made on first use) and lets the runtime's C parser read the big messages: ``saved_model.pb``
  (megabytes of traced graphs, read by the audit and for TF <= 2.4 metadata).
- :func:`decode` is a small pure-Python wire-format reader for the small messages read on
  every open (bundle header and entries, the checkpoint object graph, ``keras_metadata.pb``):
  importing the runtime costs more than reading them (it would make ``summary`` of a
  SavedModel slower than of its ``.h5``), and no C parser sees the bytes a model opens with.
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


class Message:
    """A decoded message: one attribute per schema field (lists for repeated ones; an absent
    sub-message is an empty one, as with the protobuf runtime)."""

    def __init__(self, name: str) -> None:
        self._name = name
        for field_name, _, kind, repeated in _MESSAGES[name]:
            value: Any = [] if repeated else _DEFAULTS[kind] if kind in _DEFAULTS else Message(kind)
            setattr(self, field_name, value)

    def __getattr__(self, name: str) -> Any:  # (only for attributes not set: keeps mypy quiet)
        raise AttributeError(f"{self._name} has no field {name!r}")

    def __repr__(self) -> str:
        return f"<{self._name} {self.__dict__}>"


_DEFAULTS: dict[str, Any] = {"int32": 0, "int64": 0, "fixed32": 0, "bool": False, "string": "", "bytes": b""}
_WIRE = {"int32": 0, "int64": 0, "bool": 0, "fixed32": 5, "string": 2, "bytes": 2}  # messages: 2
_MAX_DEPTH = 16  # our schema nests 6 deep; deeper data is not ours to follow


def decode(name: str, data: bytes | memoryview, what: str, max_bytes: int) -> Message:
    """``data`` decoded as message ``name`` in pure Python; damaged bytes are a CorruptFileError."""
    if len(data) > max_bytes:
        raise LimitExceededError(f"{what} is {len(data):,} bytes, over the limit of {max_bytes:,}")
    try:
        return _decode(name, memoryview(data), 0)
    except _WireError as exc:
        raise CorruptFileError(f"{what} is not a valid protocol buffer ({exc})") from None


class _WireError(Exception):
    pass


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise _WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _decode(name: str, data: memoryview, depth: int) -> Message:
    if depth > _MAX_DEPTH:
        raise _WireError("messages nested too deeply")
    msg = Message(name)
    fields = _BY_NUMBER[name]
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        raw: Any
        value: Any
        if wire == 0:
            raw, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise _WireError("truncated 64-bit field")
            raw, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise _WireError(f"field {number} runs past the end of its message")
            raw, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            if pos + 4 > end:
                raise _WireError("truncated 32-bit field")
            raw, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise _WireError(f"wire type {wire} (groups are not used by these messages)")
        spec = fields.get(number)
        if spec is None:
            continue  # a field we do not read
        field_name, kind, repeated = spec
        if _WIRE.get(kind, 2) != wire:
            raise _WireError(f"field {field_name} has wire type {wire}")
        if kind == "string":
            try:
                value = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                raise _WireError(f"field {field_name} is not UTF-8") from None
        elif kind == "bytes":
            value = bytes(raw)
        elif kind == "bool":
            value = bool(raw)
        elif kind == "int32" or kind == "int64":
            value = raw - (1 << 64) if raw >= 1 << 63 else raw  # negative numbers are 10-byte varints
        elif kind == "fixed32":
            value = raw
        else:
            value = _decode(kind, raw, depth + 1)
        if repeated:
            getattr(msg, field_name).append(value)
        else:
            setattr(msg, field_name, value)
    return msg


_BY_NUMBER = {
    name: {number: (field_name, kind, repeated) for field_name, number, kind, repeated in fields}
    for name, fields in _MESSAGES.items()
}


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
