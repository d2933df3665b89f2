"""TensorFlow tensor bundles: the ``.index`` table and ``.data-NNNNN-of-NNNNN`` shards.

The index is a LevelDB-format sorted-string table (blocks of prefix-compressed keys, each
block followed by a type byte and a masked CRC32C, a 48-byte footer with the magic
``0xdb4775248b80fb57``). Its values are ``BundleEntryProto`` messages (dtype, shape, shard,
offset, size, CRC32C of the bytes); the ``""`` key holds a ``BundleHeaderProto``. The data
shards are raw tensor bytes. The index is read whole when the model is opened (it is small);
a tensor's bytes are read, and their CRC32C checked, only when that tensor is asked for.
"""

from __future__ import annotations

import math
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from ..errors import CorruptFileError, LimitExceededError, UnsupportedFormatError
from ..limits import Limits
from ..store import Index, StoredArray
from . import _crc32c, _protobuf
from ._files import inside, open_regular, read_small_file

TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)
FOOTER_BYTES = 48
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

# tensorflow/core/framework/types.proto: DataType -> numpy dtype
DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    19: "float16",
    22: "uint32",
    23: "uint64",
    8: "complex64",
    18: "complex128",
}
DT_STRING = 7


def is_index(head_and_tail: bytes) -> bool:
    """True when the last 8 bytes given are the table magic (``file[-8:]``)."""
    return head_and_tail[-8:] == TABLE_MAGIC


@dataclass(frozen=True)
class Entry:
    key: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int
    sliced: bool


def _varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise CorruptFileError("index table holds a truncated or overlong number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


class _Table:
    """A LevelDB table held in memory: every (key, value) in key order."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.what = what
        if len(data) < FOOTER_BYTES or data[-8:] != TABLE_MAGIC:
            raise CorruptFileError(f"{what} is not a tensor bundle index (no table footer; truncated?)")
        footer = len(data) - FOOTER_BYTES
        _, pos = self._handle(footer, footer + 40)  # metaindex (unused)
        self.index_handle, _ = self._handle(pos, footer + 40)

    def _handle(self, pos: int, end: int) -> tuple[tuple[int, int], int]:
        offset, pos = _varint(self.data, pos, end)
        size, pos = _varint(self.data, pos, end)
        return (offset, size), pos

    def _block(self, handle: tuple[int, int]) -> memoryview:
        offset, size = handle
        limit = len(self.data) - FOOTER_BYTES
        if offset + size + 5 > limit:
            raise CorruptFileError(f"{self.what}: block at {offset} of {size:,} bytes runs past the end of the file")
        block = memoryview(self.data)[offset : offset + size]
        kind = self.data[offset + size]
        stored = struct.unpack_from("<I", self.data, offset + size + 1)[0]
        if _crc32c.value(bytes(self.data[offset : offset + size + 1])) != _crc32c.unmask(stored):
            raise CorruptFileError(f"{self.what}: block at {offset} fails its CRC32C check (damaged file)")
        if kind != 0:
            raise UnsupportedFormatError(
                f"{self.what}: block at {offset} is compressed (type {kind}); only uncompressed tables are read"
            )
        return block

    def _entries(self, block: memoryview) -> list[tuple[bytes, memoryview]]:
        if len(block) < 4:
            raise CorruptFileError(f"{self.what}: a block is too short")
        restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
        end = len(block) - 4 - 4 * restarts
        if restarts == 0 or end < 0:
            raise CorruptFileError(f"{self.what}: a block has a bad restart count ({restarts})")
        out: list[tuple[bytes, memoryview]] = []
        key = b""
        pos = 0
        while pos < end:
            shared, pos = _varint(block, pos, end)
            unshared, pos = _varint(block, pos, end)
            value_len, pos = _varint(block, pos, end)
            if shared > len(key) or pos + unshared + value_len > end:
                raise CorruptFileError(f"{self.what}: a block entry runs past its block")
            key = key[:shared] + bytes(block[pos : pos + unshared])
            pos += unshared
            out.append((key, block[pos : pos + value_len]))
            pos += value_len
        return out

    def items(self) -> list[tuple[bytes, memoryview]]:
        out: list[tuple[bytes, memoryview]] = []
        for _, handle_bytes in self._entries(self._block(self.index_handle)):
            offset, pos = _varint(handle_bytes, 0, len(handle_bytes))
            size, _ = _varint(handle_bytes, pos, len(handle_bytes))
            out += self._entries(self._block((offset, size)))
        return out


class TensorBundle:
    """An open tensor bundle: entries from the index, shards opened on first read."""

    def __init__(self, prefix: Path, folder: Path, limits: Limits, label: str | None = None) -> None:
        self.prefix = prefix
        self.folder = folder
        self.limits = limits
        self.label = label or prefix.name
        index_name = prefix.name + ".index"
        index_path = inside(folder, index_name, f"tensor bundle index {index_name!r}")
        data = read_small_file(index_path, f"{self.label}.index", limits.max_index_bytes)
        what = f"{self.label}.index"
        header: Any = None
        self.entries: dict[str, Entry] = {}
        for key_bytes, value in _Table(data, what).items():
            if not key_bytes:
                header = _protobuf.decode(
                    "BundleHeaderProto", bytes(value), f"{what} header", limits.max_protobuf_bytes
                )
                continue
            key = key_bytes.decode("utf-8", errors="replace")
            proto = _protobuf.decode(
                "BundleEntryProto", bytes(value), f"{what} entry {key!r}", limits.max_protobuf_bytes
            )
            shape = tuple(int(d.size) for d in proto.shape.dim)
            if any(n < 0 for n in shape) or proto.offset < 0 or proto.size < 0:
                raise CorruptFileError(f"{what}: entry {key!r} has a negative size, offset or dimension")
            self.entries[key] = Entry(
                key,
                int(proto.dtype),
                shape,
                int(proto.shard_id),
                int(proto.offset),
                int(proto.size),
                int(proto.crc32c),
                len(proto.slices) > 0,
            )
        if header is None:
            raise CorruptFileError(f"{what} has no bundle header")
        self.num_shards = int(header.num_shards)
        if not 1 <= self.num_shards <= 100_000:
            raise CorruptFileError(f"{what}: header declares {self.num_shards} data shards")
        self.byteorder: Literal["<", ">"] = ">" if header.endianness == 1 else "<"
        for entry in self.entries.values():
            if not 0 <= entry.shard_id < self.num_shards:
                raise CorruptFileError(f"{what}: entry {entry.key!r} is in shard {entry.shard_id} of {self.num_shards}")
        self._files: dict[int, IO[bytes]] = {}
        self._lock = threading.Lock()

    def shard_name(self, shard_id: int) -> str:
        return f"{self.prefix.name}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def shard_names(self) -> list[str]:
        return [self.shard_name(i) for i in range(self.num_shards)]

    def check_shards(self) -> None:
        """Every shard exists inside the folder and holds the bytes its entries point at."""
        sizes = {}
        for i in range(self.num_shards):
            path = inside(self.folder, self.shard_name(i), f"data shard {self.shard_name(i)!r}")
            if not path.is_file():
                raise CorruptFileError(f"data shard {self.shard_name(i)} is missing")
            sizes[i] = path.stat().st_size
        for entry in self.entries.values():
            if entry.offset + entry.size > sizes[entry.shard_id]:
                raise CorruptFileError(
                    f"tensor {entry.key!r} ends at byte {entry.offset + entry.size:,} of "
                    f"{self.shard_name(entry.shard_id)}, which has {sizes[entry.shard_id]:,} bytes (truncated?)"
                )

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()

    def _bytes(self, entry: Entry, check: bool = True, limit: int | None = None) -> bytes:
        limit = self.limits.max_array_bytes if limit is None else limit
        if entry.size > limit:
            raise LimitExceededError(f"tensor {entry.key!r} is {entry.size:,} bytes, over the limit of {limit:,}")
        name = self.shard_name(entry.shard_id)
        with self._lock:
            f = self._files.get(entry.shard_id)
            if f is None:
                f = open_regular(
                    inside(self.folder, name, f"data shard {name!r}"), f"data shard {name}"
                )  # closed by close()
                self._files[entry.shard_id] = f
            f.seek(entry.offset)
            data = f.read(entry.size)
        if len(data) != entry.size:
            raise CorruptFileError(f"{name}: tensor {entry.key!r} is cut short ({len(data):,} of {entry.size:,} bytes)")
        if check:
            self._check(entry, data, data)
        return data

    def _check(self, entry: Entry, data: bytes, covered: bytes) -> None:
        if _crc32c.value(covered) != _crc32c.unmask(entry.crc32c):
            name = self.shard_name(entry.shard_id)
            raise CorruptFileError(f"{name}: tensor {entry.key!r} fails its CRC32C check (damaged shard)")

    def read_string(self, key: str) -> bytes:
        """A scalar string tensor (``_CHECKPOINTABLE_OBJECT_GRAPH``), CRC32C checked."""
        entry = self.entries.get(key)
        if entry is None or entry.dtype != DT_STRING or entry.shape != ():
            raise CorruptFileError(f"{self.label}.index has no scalar string {key!r}")
        data = self._bytes(entry, check=False, limit=self.limits.max_protobuf_bytes)
        # [varint64 length][4-byte masked CRC32C of the lengths][bytes]; TensorFlow's CRC covers the
        # length as a 4-byte integer (not the varint), then the length CRC, then the bytes.
        length, pos = _varint(data, 0, len(data))
        if pos + 4 + length != len(data) or length > 0xFFFFFFFF:
            raise CorruptFileError(f"string tensor {key!r} has a length that does not fit its bytes")
        self._check(entry, data, struct.pack("<I", length) + data[pos:])
        return data[pos + 4 :]

    def dtype_name(self, entry: Entry) -> str:
        name = DTYPES.get(entry.dtype)
        if name is None:
            raise UnsupportedFormatError(
                f"tensor {entry.key!r} has TensorFlow dtype {entry.dtype}, not a numeric type kerasweights reads"
            )
        return name

    def stored_array(self, entry: Entry, stored_name: str) -> StoredArray:
        dtype = self.dtype_name(entry)
        if entry.sliced:
            raise UnsupportedFormatError(
                f"tensor {entry.key!r} is saved as partitioned slices, which kerasweights does not read"
            )
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        expected = math.prod(entry.shape) * itemsize  # (exact: int64 would wrap for a hostile shape)
        if expected != entry.size:
            raise CorruptFileError(
                f"tensor {entry.key!r} of shape {entry.shape} ({dtype}) should take {expected:,} bytes, the index says {entry.size:,}"
            )

        def read(index: Index) -> np.ndarray:
            data = self._bytes(entry)
            if dtype == "bfloat16":  # exactly, as float32
                raw16 = np.frombuffer(data, dtype=f"{self.byteorder}u2").astype(np.uint32) << 16
                array = raw16.view(np.float32).reshape(entry.shape)
            else:
                array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder(self.byteorder)).reshape(entry.shape)
                array = array.astype(array.dtype.newbyteorder("="), copy=False)
            return array[(*index, Ellipsis)] if index else array

        return StoredArray(key=entry.key, stored_name=stored_name, shape=entry.shape, dtype=dtype, _reader=read)
