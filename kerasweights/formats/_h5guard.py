"""The file object under libhdf5, and checks for damage libhdf5 would not survive.

Refused before libhdf5 sees them: heaps that would hang it (below) and attribute strings
declaring absurd lengths (see :func:`check_string_lengths`).

libhdf5 (2.0 and older) trusts two lists it decodes from the file and never ends on some
damaged ones: the objects of a global heap collection (``GCOL``: variable-length strings,
i.e. every Keras attribute), walked by each object's declared size, where a size of 0 does
not advance; and the free list of a local heap (``HEAP``: the link names of a group),
where a cycle never ends. A zeroed region or a flipped bit makes either, and the process
hangs inside C where no signal reaches it.

h5py's file-object driver passes libhdf5's reads through unchanged (no read-ahead, no
merging), and libhdf5 reads both structures from their first byte, so :class:`HeapGuard`
recognises them by signature at the start of a read and walks them as libhdf5 will,
before handing the bytes over.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from ..errors import CorruptFileError
from ._h5dense import DenseAttributes

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_GCOL = b"GCOL"
_HEAP = b"HEAP"
_U64 = (1 << 64) - 1
_FREE_NULL = 1  # the end of a local heap's free list
_MAX_FREE_BLOCKS = 100_000  # real free lists hold a block or two


class HeapGuard(io.RawIOBase):
    """A read-only file for h5py that checks heaps as libhdf5 loads them."""

    def __init__(self, file: IO[bytes], owned: bool) -> None:
        super().__init__()
        self._file = file
        self._owned = owned
        self._end = file.seek(0, io.SEEK_END)
        self._base, self._addr_size, self._length_size = _superblock(file, self._end)
        self._attributes: dict[int, dict[bytes, AttributeFacts]] = {}  # by object header address
        self._collections: dict[int, dict[int, tuple[int, int]]] = {}  # global heaps: index -> (where, size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(pos, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start = self._file.tell()
        got = self._file.readinto(view) or 0  # type: ignore[attr-defined]
        if got < len(view):
            view[got:] = bytes(len(view) - got)  # h5py ignores short reads: make the rest defined
        signature = view[:4]
        if signature == _GCOL:
            self._check_global_heap(view, start)
        elif signature == _HEAP:
            self._check_local_heap(view, start)
        return got

    def close(self) -> None:
        if self._owned and not self.closed:
            self._file.close()
        super().close()

    @property
    def addr_size(self) -> int:
        return self._addr_size

    @property
    def length_size(self) -> int:
        return self._length_size

    def attributes(self, header_address: int, where: str) -> dict[bytes, AttributeFacts]:
        """What each attribute of the object at ``header_address`` declares, by name.

        Compact attributes are read from the object header (version 1 or 2, continuation
        blocks followed), dense ones from the fractal heap its Attribute Info message names.
        Computed once per object: reading thousands of ``layer_names<i>`` stays linear.
        """
        cached = self._attributes.get(header_address)
        if cached is None:
            found: dict[bytes, AttributeFacts] = {}
            for message in self._attribute_messages(header_address, where):
                name = _attribute_name(message)
                if name is not None:
                    facts = _decode_attribute(message, self._addr_size, self._length_size)
                    if name in found:  # (two messages of one name: libhdf5 picks one; check the worst)
                        facts = AttributeFacts(longest=max(facts.longest, found[name].longest))
                    found[name] = facts
            cached = self._attributes[header_address] = found
        return cached

    def vlen_string(self, ref: tuple[int, int, int]) -> bytes | None:
        """The bytes of a variable-length string in a global heap collection (III.E), read here
        instead of by libhdf5 (which opens the attribute and allocates per string): ``None``
        when the collection does not hold it as declared, and libhdf5 decides."""
        length, address, index = ref
        if length == 0:
            return b""  # (libhdf5 stores no heap object for an empty string)
        objects = self._collections.get(address)
        if objects is None:
            objects = self._collections[address] = self._collection(address)
        found = objects.get(index)
        if found is None or found[1] < length:
            return None
        start = found[0]
        data = self._read_at(start, length)
        return None if data is None else bytes(data)

    def _collection(self, address: int) -> dict[int, tuple[int, int]]:
        n = self._length_size
        pos = self._base + address
        head = self._read_at(pos, 8 + n)
        if head is None or bytes(head[:4]) != _GCOL or head[4] != 1:
            return {}
        size = _u(head, 8, n)
        heap = self._read_at(pos, size) if size <= _MAX_COLLECTION else None
        if heap is None:
            return {}
        _walk_global_heap(heap, address, n)  # refuses a collection libhdf5 would loop on
        out: dict[int, tuple[int, int]] = {}
        header = 8 + n
        p = header
        while p + header <= size:
            index, obj_size = _u(heap, p, 2), _u(heap, p + 8, n)
            if index == 0:
                break  # free space: the rest of the collection
            out.setdefault(index, (pos + p + header, obj_size))
            p += header + (obj_size + 7) // 8 * 8
        return out

    def dataset_facts(self, header_address: int) -> DatasetFacts | None:
        """A dataset's shape and dtype from its object header, or ``None`` when libhdf5 must say.

        Decoded only for a plain integer or IEEE float type, a simple or scalar dataspace and a
        storage layout that fits them (one message of each, none shared): what libhdf5 would
        refuse to open (a compact or contiguous size that is not the shape's, say) is left to
        it, so it is refused as before. Decoding here costs less than opening the dataset, and
        leaves none open for the file's close to walk: 8,000 opens and their close were a third
        of summarising a 4,000-layer model.
        """
        found: dict[int, list[tuple[int, memoryview]]] = {kind: [] for kind in _DATASET_MESSAGES}
        for kind, flags, data in self._header_messages(header_address):
            if kind in found:
                found[kind].append((flags, data))
        if any(len(messages) != 1 or messages[0][0] & _SHARED for messages in found.values()):
            return None  # missing, repeated, or shared (the data is then a reference)
        datatype = found[_DATATYPE_MESSAGE][0][1]
        shape = _decode_dataspace(found[_DATASPACE_MESSAGE][0][1], self._length_size)
        dtype = _decode_datatype(datatype)
        if shape is None or dtype is None:
            return None
        nbytes = math.prod(shape) * _u(datatype, 4, 4)
        if not _layout_fits(found[_LAYOUT_MESSAGE][0][1], len(shape), nbytes, self._addr_size, self._length_size):
            return None
        return DatasetFacts(shape, dtype)

    def _attribute_messages(self, header_address: int, where: str) -> Iterator[memoryview]:
        for kind, _, data in self._header_messages(header_address):
            if kind == _ATTRIBUTE_MESSAGE and len(data) > 8:
                yield data
            elif kind == _ATTRIBUTE_INFO_MESSAGE:
                dense = DenseAttributes(self._read_at, self._base, self._addr_size, self._length_size, where)
                yield from dense.messages(data)

    def _header_messages(self, header_address: int) -> Iterator[tuple[int, int, memoryview]]:
        """(type, flags, data) of every message in an object header (version 1 or 2),
        continuation blocks followed; nothing for a header this cannot read."""
        pos = self._base + header_address
        head = self._read_at(pos, 16)
        if head is None:
            return
        if head[0] == 1:  # version 1: no signature, 16-byte prefix, then messages
            v2, creation_order, chunks = False, False, [(pos + 16, _u(head, 8, 4))]
        elif bytes(head[:4]) == b"OHDR" and head[4] == 2:
            flags = head[5]
            p = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 0x03)
            prefix = self._read_at(pos, p + width)
            if prefix is None:
                return
            v2, creation_order, chunks = True, bool(flags & 0x04), [(pos + p + width, _u(prefix, p, width))]
        else:
            return
        seen: set[int] = set()
        while chunks:
            start, size = chunks.pop()
            if start in seen or len(seen) >= _MAX_HEADER_CHUNKS:
                return  # a loop, or absurdly many chunks: libhdf5 refuses these itself
            seen.add(start)
            chunk = self._read_at(start, size) if size <= _MAX_HEADER_CHUNK else None
            if chunk is None:
                continue
            if v2 and bytes(chunk[:4]) == b"OCHK":
                chunk = chunk[4:-4]  # signature and checksum around a continuation block
            for kind, flags, data in _messages(chunk, v2, creation_order):
                if kind == _CONTINUATION_MESSAGE and len(data) >= self._addr_size + self._length_size:
                    address = _u(data, 0, self._addr_size)
                    chunks.append((self._base + address, _u(data, self._addr_size, self._length_size)))
                else:
                    yield kind, flags, data

    def _read_at(self, pos: int, size: int) -> memoryview | None:
        """``size`` bytes at ``pos``, or None past the end (libhdf5 refuses those itself)."""
        if pos + size > self._end:
            return None
        here = self._file.tell()
        self._file.seek(pos)
        data = self._file.read(size)
        self._file.seek(here)
        return memoryview(data)

    def _check_global_heap(self, view: memoryview, start: int) -> None:
        header = 8 + self._length_size  # signature, version, 3 reserved bytes, collection size
        if len(view) < header or view[4] != 1:
            return  # libhdf5 refuses other versions itself
        size = int.from_bytes(view[8:header], "little")
        # libhdf5 reads the first 4 KiB, then the rest of a bigger collection: check it whole now
        heap = view if size <= len(view) else self._read_at(start, size)
        if heap is not None:
            _walk_global_heap(heap[:size], start, self._length_size)

    def _check_local_heap(self, view: memoryview, start: int) -> None:
        size_of = self._length_size
        prefix = 8 + 2 * size_of + self._addr_size  # signature, version, reserved, sizes, address
        if len(view) < prefix or view[4] != 0:
            return  # libhdf5 refuses other versions itself
        size = int.from_bytes(view[8 : 8 + size_of], "little")
        free = int.from_bytes(view[8 + size_of : 8 + 2 * size_of], "little")
        address = int.from_bytes(view[8 + 2 * size_of : prefix], "little")
        if free == _FREE_NULL or free >= size:
            return  # empty free list, or one libhdf5 refuses itself
        block = self._read_at(self._base + address, size)
        if block is not None:
            _walk_free_list(block, free, size_of, start)


def _superblock(file: IO[bytes], end: int) -> tuple[int, int, int]:
    """Where the superblock is (addresses count from there), and its address and length sizes."""
    offset = 0
    while offset + 16 <= end:  # libhdf5 looks at 0, 512, 1024, 2048, ...
        file.seek(offset)
        head = file.read(16)
        if head[:8] == HDF5_SIGNATURE:
            addr_size, length_size = (head[13], head[14]) if head[8] < 2 else (head[9], head[10])
            return offset, _size(addr_size), _size(length_size)
        offset = offset * 2 if offset else 512
    return 0, 8, 8


def _size(value: int) -> int:
    return value if value in (2, 4, 8) else 8  # (libhdf5 refuses other sizes)


def _walk_global_heap(heap: memoryview, address: int, length_size: int) -> None:
    """Step through a collection's objects as libhdf5 does; refuse a step of 0."""
    header = 8 + length_size  # an object's: index, reference count, 4 reserved bytes, size
    size = len(heap)
    p = header
    while p + header <= size:
        index = int.from_bytes(heap[p : p + 2], "little")
        obj_size = int.from_bytes(heap[p + 8 : p + header], "little")
        step = obj_size if index == 0 else (header + ((obj_size + 7) & _U64) // 8 * 8) & _U64
        if step == 0:
            raise CorruptFileError(
                f"HDF5 global heap at byte {address:,} is damaged "
                "(an object of size 0 that would make libhdf5 loop forever)"
            )
        if p + step > size:
            return  # libhdf5 stops: "ran off end of input buffer"
        p += step


def _walk_free_list(block: memoryview, free: int, length_size: int, address: int) -> None:
    """Follow a local heap's free list as libhdf5 does; refuse one that loops or overruns."""
    size = len(block)
    node = 2 * length_size  # a free block starts with: offset of the next one, its own size
    for _ in range(min(size // node + 1, _MAX_FREE_BLOCKS)):
        if free == _FREE_NULL:
            return
        if free >= size:
            return  # libhdf5: "bad heap free list"
        if free + node > size:
            raise CorruptFileError(f"HDF5 local heap at byte {address:,} is damaged (a free block past its end)")
        following = int.from_bytes(block[free : free + length_size], "little")
        if following == 0 or free + int.from_bytes(block[free + length_size : free + node], "little") > size:
            return  # libhdf5 refuses these itself
        free = following
    if free != _FREE_NULL:
        raise CorruptFileError(
            f"HDF5 local heap at byte {address:,} is damaged (its free list loops, which libhdf5 would follow forever)"
        )


# -- variable-length attribute strings -----------------------------------------------------------
#
# Before libhdf5 reads a variable-length string it allocates and zeroes a buffer of the length
# the attribute declares (up to 4 GiB) and only then looks for the string: a 28 KB file made
# the process touch 4 GB. The declared lengths sit in the attribute message of the object
# header, so that is read here first.

_DATASPACE_MESSAGE = 0x0001
_DATATYPE_MESSAGE = 0x0003
_LAYOUT_MESSAGE = 0x0008
_DATASET_MESSAGES = (_DATASPACE_MESSAGE, _DATATYPE_MESSAGE, _LAYOUT_MESSAGE)
_ATTRIBUTE_MESSAGE = 0x000C
_CONTINUATION_MESSAGE = 0x0010
_ATTRIBUTE_INFO_MESSAGE = 0x0015
_VLEN_CLASS = 9
_MAX_HEADER_CHUNKS = 100_000
_MAX_COLLECTION = 64 * 1024 * 1024  # (libhdf5 writes 4 KiB collections, bigger only for one big object)
_MAX_HEADER_CHUNK = 4 * 1024 * 1024  # (header chunks hold a few KiB; past this, libhdf5 decides)
_SHARED = 0x02  # header message flag: the message is stored elsewhere and this is a reference


def check_string_lengths(guard: HeapGuard, header_address: int, name: str, where: str, limit: int) -> None:
    """Refuse attribute ``name`` of the object at ``header_address`` if it declares a string over ``limit``."""
    refuse_long_strings(guard.attributes(header_address, where).get(name.encode()), name, where, limit)


def refuse_long_strings(facts: AttributeFacts | None, name: str, where: str, limit: int) -> None:
    """Refuse an attribute (its ``facts``, from :meth:`HeapGuard.attributes`) declaring a string over ``limit``."""
    length = facts.longest if facts is not None else 0
    if length > limit:
        raise CorruptFileError(
            f"attribute {name!r} of {where!r} declares a string of {length:,} bytes, over the limit of {limit:,}"
        )


def _attribute_name(message: memoryview) -> bytes | None:
    """The name in an attribute message (versions 1 to 3), without its terminating zero."""
    if len(message) < 8 or message[0] not in (1, 2, 3):
        return None
    offset = 9 if message[0] == 3 else 8
    return bytes(message[offset : offset + _u(message, 2, 2)]).split(b"\0", 1)[0]


def _u(data: memoryview | bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "little")


def _messages(chunk: memoryview, v2: bool, creation_order: bool) -> list[tuple[int, int, memoryview]]:
    """(type, flags, data) of the header messages in one chunk."""
    out, p = [], 0
    head = (4 + (2 if creation_order else 0)) if v2 else 8
    while p + head <= len(chunk):
        if v2:
            kind, size, flags = chunk[p], _u(chunk, p + 1, 2), chunk[p + 3]
        else:
            kind, size, flags = _u(chunk, p, 2), _u(chunk, p + 2, 2), chunk[p + 4]
        out.append((kind, flags, chunk[p + head : p + head + size]))
        p += head + size
    return out


@dataclass(frozen=True)
class AttributeFacts:
    """What an attribute message says, read without libhdf5."""

    longest: int = 0
    """The longest string a variable-length string attribute declares (0 for other types)."""
    strings: tuple[bytes, ...] | None = None
    """The values of a fixed-length string attribute (Keras's ``layer_names``, ``weight_names``)."""
    empty_numbers: bool = False
    """A numeric attribute with no elements (how Keras stores an empty list)."""
    vlen_refs: tuple[tuple[int, int, int], ...] | None = None
    """A variable-length string attribute's elements: each (length, global heap collection
    address, object index), in order; ``None`` for other types or a truncated message."""
    rank: int = 0
    """The rank of its dataspace (0: a scalar), for strings."""


_STRING_CLASS, _FIXED_POINT, _FLOATING_POINT = 3, 0, 1
_MAX_DECODED = 1 << 20  # bytes of fixed-length string data decoded here (Keras's chunks stay under 64 KiB)


def _decode_attribute(message: memoryview, addr_size: int, length_size: int) -> AttributeFacts:
    """The facts of one attribute message (IV.A.2.m); anything unusual is left to libhdf5."""
    version = message[0] if len(message) else 0
    if version not in (1, 2, 3) or (version > 1 and message[1] & 0x03) or len(message) < 8:
        return AttributeFacts()  # shared datatype or dataspace, or unknown: libhdf5 decides
    name_size, type_size, space_size = _u(message, 2, 2), _u(message, 4, 2), _u(message, 6, 2)
    pad = _pad8 if version == 1 else _unpadded
    p = 8 + (1 if version == 3 else 0) + pad(name_size)
    datatype, p = message[p : p + type_size], p + pad(type_size)
    space, p = message[p : p + space_size], p + pad(space_size)
    if len(datatype) < 8 or len(space) < 4:
        return AttributeFacts()
    rank = space[1]
    first = 8 if space[0] == 1 else 4
    count = 1
    for i in range(rank):
        count *= _u(space, first + i * length_size, length_size)
    if space[0] == 2 and space[3] == 2:
        count = 0  # a null dataspace
    data = message[p:]
    kind, size = datatype[0] & 0x0F, _u(datatype, 4, 4)
    if kind == _VLEN_CLASS:
        element = 4 + addr_size + 4  # length, heap collection address, object index
        present = min(count, len(data) // element)
        longest = max((_u(data, i * element, 4) for i in range(present)), default=0)
        refs = None
        if present == count and datatype[1] & 0x0F == 1:  # variable-length *strings*, all there
            at = range(0, count * element, element)
            refs = tuple((_u(data, i, 4), _u(data, i + 4, addr_size), _u(data, i + 4 + addr_size, 4)) for i in at)
        return AttributeFacts(longest=longest, vlen_refs=refs, rank=rank)
    if kind == _STRING_CLASS and size and count * size <= min(len(data), _MAX_DECODED):
        strings = tuple(bytes(data[i * size : (i + 1) * size]).rstrip(b"\0") for i in range(count))
        return AttributeFacts(strings=strings, rank=rank)
    if kind in (_FIXED_POINT, _FLOATING_POINT) and count == 0:
        return AttributeFacts(empty_numbers=True)
    return AttributeFacts()


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def _unpadded(n: int) -> int:
    return n


# -- dataset shapes and types --------------------------------------------------------------------

_MAX_RANK = 32  # (H5S_MAX_RANK)
_MAX_DIM = 1 << 63  # (numpy's dimensions are signed 64-bit)
_IEEE_FLOATS = {  # size -> (bit offset, precision, exponent location and size, mantissa location and size, bias)
    2: (0, 16, 10, 5, 0, 10, 15),
    4: (0, 32, 23, 8, 0, 23, 127),
    8: (0, 64, 52, 11, 0, 52, 1023),
}


@dataclass(frozen=True)
class DatasetFacts:
    """What a dataset's header declares, read without opening it."""

    shape: tuple[int, ...]
    dtype: str
    """numpy's name for it (``float32``, ``>f4``, ``int64``), as h5py would give."""


def _decode_dataspace(data: memoryview, length_size: int) -> tuple[int, ...] | None:
    """The current dimensions of a simple or scalar dataspace (IV.A.2.b), else ``None``."""
    if len(data) < 4:
        return None
    version, rank, flags = data[0], data[1], data[2]
    if version == 1:
        first = 8
    elif version == 2 and data[3] in (0, 1):  # scalar or simple (2 is the null dataspace)
        first = 4
    else:
        return None
    if rank > _MAX_RANK or flags & ~0x01 or len(data) < first + rank * length_size:
        return None  # (flag 0x02, a permutation index, was never implemented by libhdf5)
    shape = tuple(_u(data, first + i * length_size, length_size) for i in range(rank))
    return shape if all(n < _MAX_DIM for n in shape) else None


def _decode_datatype(data: memoryview) -> str | None:
    """numpy's name for a standard integer or IEEE float type (IV.A.2.d), else ``None``."""
    if len(data) < 12:
        return None
    kind, bits, size = data[0] & 0x0F, data[1], _u(data, 4, 4)
    offset, precision = _u(data, 8, 2), _u(data, 10, 2)
    if kind == _FIXED_POINT and size in (1, 2, 4, 8) and bits & ~0x09 == 0 and (offset, precision) == (0, 8 * size):
        return _dtype_name(bits & 0x01, "i" if bits & 0x08 else "u", size)
    if kind == _FLOATING_POINT and size in _IEEE_FLOATS and len(data) >= 20:
        # byte order bits 0 and 6 (VAX when both), no padding bits, an implied leading 1, sign at the top
        layout = (offset, precision, data[12], data[13], data[14], data[15], _u(data, 16, 4))
        if bits & ~0x01 == 0x20 and data[2] == 8 * size - 1 and layout == _IEEE_FLOATS[size]:
            return _dtype_name(bits & 0x01, "f", size)
    return None


def _layout_fits(data: memoryview, rank: int, nbytes: int, addr_size: int, length_size: int) -> bool:
    """Whether a data layout message (IV.A.2.i, versions 3 to 5) fits a dataset of ``rank``
    dimensions and ``nbytes`` bytes, as libhdf5 checks when it opens one."""
    if len(data) < 4 or data[0] not in (3, 4, 5):
        return False  # versions 1 and 2 (libhdf5 1.4 and older), or damaged
    kind = data[1]
    if kind == 0:  # compact: the values are in the message
        return _u(data, 2, 2) == nbytes
    if kind == 1:  # contiguous: address, then size
        return len(data) >= 2 + addr_size + length_size and _u(data, 2 + addr_size, length_size) == nbytes
    if kind == 2:  # chunked: one more chunk dimension than the dataset's (the element size)
        return (data[2] if data[0] == 3 else data[3]) == rank + 1  # (4 and 5: flags first)
    return False  # virtual: libhdf5 (and the audit) decide


@functools.cache
def _dtype_name(big_endian: int, char: str, size: int) -> str:
    return str(np.dtype(f"{'>' if big_endian else '<'}{char}{size}"))
