"""HDF5 dense attribute storage, read just far enough to find every attribute message.

With the 1.8+ file format (``libver='latest'``), an object with more than 8 attributes (or
one too big for its header) keeps them in a *fractal heap*, indexed by name in a version 2
B-tree, instead of in its object header (HDF5 spec, III.G, III.A.2 and IV.A.2.v). The
attribute messages there declare string lengths just like compact ones (see
``_h5guard.check_string_lengths``), so they are found here: every record of the name index
gives a heap ID, and a heap ID gives the message's place in a direct block of the heap (or,
for a "huge" message, its address in the huge-object B-tree).

Every structure is bounded (records, depth, blocks visited); anything this reader cannot
follow is a :class:`CorruptFileError`, so an attribute is never read unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import CorruptFileError

ReadAt = Callable[[int, int], "memoryview | None"]  # (address, size) -> bytes, None past the end

_MAX_RECORDS = 1_000_000  # attribute messages of one object (real objects hold a handful)
_MAX_DEPTH = 16  # of a B-tree, and of nested indirect blocks
_MAX_NODE = 1 << 20  # bytes of one B-tree node or heap header
_MAX_MESSAGE = 1 << 26  # bytes of one (huge) attribute message
_NAME_INDEX = 8  # B-tree record type: attribute name index
_HUGE_INDIRECT = 1  # B-tree record type: indirectly accessed, unfiltered huge objects


def _u(data: memoryview, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "little")


def _log2(value: int) -> int:
    return max(value, 1).bit_length() - 1


def _enc_size(value: int) -> int:
    """Bytes libhdf5 uses for a number up to ``value`` (``H5VM_limit_enc_size``)."""
    return _log2(value) // 8 + 1


class DenseAttributes:
    """The attribute messages of one object whose attributes live in a fractal heap."""

    def __init__(self, read_at: ReadAt, base: int, addr_size: int, length_size: int, where: str) -> None:
        self._read = read_at
        self._base = base
        self._addr = addr_size
        self._len = length_size
        self._where = where  # the object, for messages
        self._visited = 0

    def messages(self, info: memoryview) -> Iterator[memoryview]:
        """Every attribute message, given the object's Attribute Info message (type 0x15)."""
        if len(info) < 2 or info[0] != 0:
            raise self._damaged("an attribute info message of unknown version")
        p = 2 + (2 if info[1] & 0x01 else 0)
        heap_address, index_address = _u(info, p, self._addr), _u(info, p + self._addr, self._addr)
        if self._undefined(heap_address) or self._undefined(index_address):
            return  # no attribute was ever stored densely
        heap = _FractalHeap(self, heap_address)
        for record in self.btree_records(index_address, _NAME_INDEX):
            heap_id, flags = record[: heap.id_length], record[heap.id_length] if len(record) > heap.id_length else 0
            if flags & 0x02:
                raise self._damaged("an attribute stored as a shared message, which kerasweights does not read")
            message = heap.object(heap_id)
            if message is not None:
                yield message

    # -- the parts ---------------------------------------------------------------------------------

    def read(self, address: int, size: int, signature: bytes | None = None) -> memoryview:
        self._visited += 1
        if self._visited > _MAX_RECORDS or size > _MAX_MESSAGE:
            raise self._damaged("a dense attribute structure too large to check")
        data = self._read(self._base + address, size)
        if data is None or (signature is not None and bytes(data[:4]) != signature):
            what = signature.decode() if signature else "data"
            raise self._damaged(f"a broken {what} block at byte {address:,}")
        return data

    def btree_records(self, address: int, record_type: int) -> Iterator[memoryview]:
        """Every record of the version 2 B-tree whose header is at ``address``."""
        a, n = self._addr, self._len
        header = self.read(address, 22 + a + n, b"BTHD")
        if header[4] != 0 or header[5] != record_type:
            raise self._damaged(f"a B-tree of type {header[5]} where type {record_type} belongs")
        node_size, record_size, depth = _u(header, 6, 4), _u(header, 10, 2), _u(header, 12, 2)
        root, root_records = _u(header, 16, a), _u(header, 16 + a, 2)
        if node_size > _MAX_NODE or record_size == 0 or depth > _MAX_DEPTH or node_size < 10 + record_size:
            raise self._damaged("a B-tree header with impossible sizes")
        if self._undefined(root) or root_records == 0:
            return
        # the sizes of the child pointers' fields, computed as libhdf5 does (H5B2__hdr_init)
        leaf_max = (node_size - 10) // record_size
        nrec_size = _enc_size(leaf_max)
        cumulative, cumulative_size = [leaf_max], [0]
        for level in range(1, depth + 1):
            pointer = a + nrec_size + (cumulative_size[level - 1] if level > 1 else 0)
            most = (node_size - (10 + pointer)) // (record_size + pointer)
            cumulative.append((most + 1) * cumulative[level - 1] + most)
            cumulative_size.append(_enc_size(cumulative[level]))
        seen: set[int] = set()
        stack = [(root, depth, root_records)]
        while stack:
            node, level, count = stack.pop()
            if node in seen:
                raise self._damaged("a B-tree whose nodes loop")
            seen.add(node)
            signature = b"BTLF" if level == 0 else b"BTIN"
            data = self.read(node, node_size, signature)
            end = 6 + count * record_size
            if end > node_size:
                raise self._damaged("a B-tree node with more records than fit")
            for i in range(count):
                yield data[6 + i * record_size : 6 + (i + 1) * record_size]
            if level > 0:
                p = end
                width = a + nrec_size + (cumulative_size[level - 1] if level > 1 else 0)
                if p + (count + 1) * width > node_size:
                    raise self._damaged("a B-tree node with more children than fit")
                for _ in range(count + 1):
                    stack.append((_u(data, p, a), level - 1, _u(data, p + a, nrec_size)))
                    p += width

    def _undefined(self, address: int) -> bool:
        return address == (1 << (8 * self._addr)) - 1

    def _damaged(self, what: str) -> CorruptFileError:
        return CorruptFileError(f"attributes of {self._where!r} are stored densely with {what}; refusing to read them")


class _FractalHeap:
    """Just enough of a fractal heap (III.G) to find its objects by heap ID."""

    def __init__(self, owner: DenseAttributes, address: int) -> None:
        a, n = owner._addr, owner._len
        self._owner = owner
        size = 4 + 1 + 2 + 2 + 1 + 4 + n + a + n + a + 8 * n + 2 + n + n + 2 + 2 + a + 2
        h = owner.read(address, size, b"FRHP")
        if h[4] != 0:
            raise owner._damaged("a fractal heap of unknown version")
        self.id_length = _u(h, 5, 2)
        if _u(h, 7, 2):  # filtered heaps: blocks would need inflating
            raise owner._damaged("a filtered fractal heap")
        max_managed = _u(h, 10, 4)
        p = 14 + n  # next huge object ID
        self._huge_btree = _u(h, p, a)
        p += a + n + a + 8 * n  # free space, its manager, managed space counters, huge and tiny counters
        self._width = _u(h, p, 2)
        self._start = _u(h, p + 2, n)
        self._max_direct = _u(h, p + 2 + n, n)
        max_heap_bits = _u(h, p + 2 + 2 * n, 2)
        self._root = _u(h, p + 6 + 2 * n, a)
        self._root_rows = _u(h, p + 6 + 2 * n + a, 2)
        self._offset_size = (max_heap_bits + 7) // 8
        self._length_size = min((_log2(self._max_direct) + 7) // 8, _enc_size(max_managed))
        if not (self._width and self._start and self._max_direct >= self._start) or self._width & (self._width - 1):
            raise owner._damaged("a fractal heap with an impossible doubling table")
        self._direct_rows = _log2(self._max_direct) - _log2(self._start) + 2
        self._first_row_bits = _log2(self._start) + _log2(self._width)
        self._huge: dict[int, tuple[int, int]] | None = None

    def object(self, heap_id: memoryview) -> memoryview | None:
        """The object a heap ID names (``None`` for tiny objects: too small to be an attribute message)."""
        owner = self._owner
        if len(heap_id) < 1:
            raise owner._damaged("an empty heap ID")
        kind = (heap_id[0] >> 4) & 0x03
        if kind == 0:  # managed: offset and length in the heap's address space
            offset = _u(heap_id, 1, self._offset_size)
            length = _u(heap_id, 1 + self._offset_size, self._length_size)
            block, start = self._direct_block(offset)
            return owner.read(block + offset - start, length)
        if kind == 1:  # huge: address and length in a long ID, else the ID is a key in the huge-object B-tree
            a, n = owner._addr, owner._len
            if len(heap_id) >= 1 + a + n:
                return owner.read(_u(heap_id, 1, a), _u(heap_id, 1 + a, n))
            key = _u(heap_id, 1, len(heap_id) - 1)
            address, length = self._huge_objects().get(key, (None, 0))
            if address is None:
                raise owner._damaged("a huge heap object missing from its index")
            return owner.read(address, length)
        return None

    def _huge_objects(self) -> dict[int, tuple[int, int]]:
        if self._huge is None:
            owner, a, n = self._owner, self._owner._addr, self._owner._len
            self._huge = {}
            if not owner._undefined(self._huge_btree):
                for record in owner.btree_records(self._huge_btree, _HUGE_INDIRECT):
                    self._huge[_u(record, a + n, n)] = (_u(record, 0, a), _u(record, a, n))
        return self._huge

    def _row_size(self, row: int) -> int:
        return self._start if row == 0 else self._start << (row - 1)

    def _direct_block(self, offset: int) -> tuple[int, int]:
        """The address of the direct block holding heap ``offset``, and the heap offset it starts at."""
        owner = self._owner
        if self._root_rows == 0:
            return self._root, 0
        a = owner._addr
        address, rows, start = self._root, self._root_rows, 0
        for _ in range(_MAX_DEPTH):
            data = owner.read(address, 5 + a + self._offset_size + rows * self._width * a, b"FHIB")
            here, found = start, None
            for row in range(rows):
                size = self._row_size(row)
                if here <= offset < here + size * self._width:
                    found = (row, (offset - here) // size, size)
                    break
                here += size * self._width
            if found is None:
                break
            row, column, size = found
            child = _u(data, 5 + a + self._offset_size + (row * self._width + column) * a, a)
            if owner._undefined(child):
                break
            if row < self._direct_rows:
                return child, here + column * size
            address, rows, start = child, _log2(size) - self._first_row_bits + 1, here + column * size
        raise owner._damaged(f"a heap ID (offset {offset:,}) outside the heap's blocks")
