"""Safe, read-only access to HDF5 files: no links followed, no plugins loaded."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import IO, Any

import h5py
import numpy as np

from ..errors import CorruptFileError, KerasWeightsError, LimitExceededError, UnsafeContentError
from ..limits import Limits

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# Filters that ship inside libhdf5; any other id would make HDF5 search
# HDF5_PLUGIN_PATH for a shared library, i.e. load code named by the file.
_BUILTIN_FILTERS = {"gzip", "lzf", "shuffle", "fletcher32", "scaleoffset", "szip", "nbit"}


def open_h5(source: str | os.PathLike[str] | IO[bytes]) -> h5py.File:
    """Open an HDF5 file read-only, without file locking, translating failures.

    Paths are opened here too, so that every byte libhdf5 reads passes through
    :class:`HeapGuard` (h5py's file-object driver); closing the returned file closes it.
    """
    owned = isinstance(source, (str, os.PathLike))
    try:
        file: IO[bytes] = open(source, "rb", buffering=0) if owned else source  # type: ignore[arg-type]  # noqa: SIM115
    except OSError as exc:
        raise CorruptFileError(f"cannot open as HDF5 ({exc.strerror or exc})") from None
    guard = HeapGuard(file, owned)
    try:
        h5 = _GuardedH5File(guard, "r", locking=False)
    except (OSError, ValueError, OverflowError, RuntimeError, SystemError) as exc:
        # OverflowError: h5py's file-object driver handed an absurd address from a damaged file
        guard.close()
        if isinstance(exc, CorruptFileError):
            raise
        raise CorruptFileError(f"cannot open as HDF5 ({_reason(exc)})") from None
    h5.guard = guard
    return h5


class _GuardedH5File(h5py.File):
    """An ``h5py.File`` that closes its :class:`HeapGuard` after itself (libhdf5 first, always)."""

    guard: HeapGuard | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.guard is not None:
                self.guard.close()


_GCOL = b"GCOL"
_U64 = (1 << 64) - 1


class HeapGuard(io.RawIOBase):
    """The file under libhdf5, checking each global heap collection as libhdf5 loads it.

    libhdf5 (2.0 and older) decodes a collection object by object, stepping by each
    object's declared size; a step of 0 (a zeroed region makes one) never ends, so a
    damaged file hangs the process. h5py's file-object driver hands libhdf5's reads
    through unchanged, and a collection is always read from its first byte, so a read
    that starts with ``GCOL`` is walked here first, the way libhdf5 will walk it.
    """

    def __init__(self, file: IO[bytes], owned: bool) -> None:
        super().__init__()
        self._file = file
        self._owned = owned
        self._length_size = _length_size(file)

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
        if view[:4] == _GCOL:
            self._check_heap(view, start)
        return got

    def _check_heap(self, view: memoryview, start: int) -> None:
        header = 8 + self._length_size
        size = int.from_bytes(view[8:header], "little") if len(view) >= header else 0
        if size <= len(view):
            _check_heap(view, start, self._length_size)
            return
        # libhdf5 read the first 4 KiB and reads the rest next: check the whole collection now
        end = self._file.seek(0, io.SEEK_END)
        if start + size <= end:  # (past the end, libhdf5 refuses it itself)
            self._file.seek(start)
            _check_heap(memoryview(self._file.read(size)), start, self._length_size)
        self._file.seek(start + len(view))

    def close(self) -> None:
        if self._owned and not self.closed:
            self._file.close()
        super().close()


def _length_size(file: IO[bytes]) -> int:
    """The superblock's "size of lengths" (8 in every file h5py writes)."""
    end = file.seek(0, io.SEEK_END)
    offset = 0
    while offset + 16 <= end:
        file.seek(offset)
        head = file.read(16)
        if head[:8] == HDF5_SIGNATURE:
            size = head[14] if head[8] < 2 else head[10]
            return size if size in (2, 4, 8) else 8
        offset = offset * 2 if offset else 512
    return 8


def _check_heap(heap: memoryview, address: int, length_size: int) -> None:
    """Walk a global heap collection as libhdf5 does; refuse one it would never finish."""
    header = 8 + length_size  # signature, version, 3 reserved bytes, collection size
    if len(heap) < header or heap[4] != 1:
        return  # libhdf5 refuses other versions itself
    size = int.from_bytes(heap[8:header], "little")
    if size > len(heap):
        return  # only the header is used from this read; libhdf5 reads the whole collection next
    p = header
    while p + header <= size:  # object header: index, reference count, 4 reserved bytes, size
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


def _reason(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    # h5py's messages look like "Unable to synchronously open file (file signature not found)"
    if "(" in text and text.endswith(")"):
        text = text[text.rfind("(") + 1 : -1]
    return text or type(exc).__name__


def decode(value: Any) -> str:
    """An attribute value (bytes, numpy bytes, str, 0-d array) as ``str``."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def read_str_list(node: h5py.Group, name: str) -> list[str] | None:
    """Read a list-of-strings attribute, following Keras's ``name0, name1, ...`` chunking.

    Returns ``None`` when the attribute is absent.
    """
    attrs = node.attrs
    try:
        if name in attrs:
            chunks = [attrs[name]]
        elif f"{name}0" in attrs:
            chunks = []
            while f"{name}{len(chunks)}" in attrs:
                chunks.append(attrs[f"{name}{len(chunks)}"])
        else:
            return None
    except (OSError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"cannot read attribute {name!r} of {node.name!r} ({_reason(exc)})") from None
    out: list[str] = []
    for chunk in chunks:
        arr = np.asarray(chunk)
        if arr.dtype.kind in "fiu" and arr.size == 0:  # Keras stores [] as an empty float array
            continue
        out.extend(decode(v) for v in np.atleast_1d(arr).ravel())
    return out


def attr_str(node: h5py.Group | h5py.File, name: str) -> str | None:
    """A scalar string attribute, or ``None`` when absent."""
    try:
        if name not in node.attrs:
            return None
        return decode(node.attrs[name])
    except (OSError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"cannot read attribute {name!r} ({_reason(exc)})") from None


def get(group: h5py.Group, path: str) -> h5py.Group | h5py.Dataset | None:
    """Follow ``path`` through hard links only; ``None`` when a part is missing.

    Soft and external links are refused: they could point at other files or
    make a dataset appear in two places.
    """
    node: Any = group
    for part in (p for p in path.split("/") if p):
        if not isinstance(node, h5py.Group):
            return None
        try:
            link = node.get(part, getlink=True)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"cannot read {node.name}/{part} ({_reason(exc)})") from None
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise UnsafeContentError(
                f"{node.name}/{part} is an HDF5 external link to {link.filename!r}; links are never followed"
            )
        if isinstance(link, h5py.SoftLink):
            raise UnsafeContentError(
                f"{node.name}/{part} is an HDF5 soft link to {link.path!r}; links are never followed"
            )
        try:
            node = node[part]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"cannot read {node.name}/{part} ({_reason(exc)})") from None
    return node


def children(group: h5py.Group) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """Hard-linked members of a group (links to elsewhere are skipped, not followed)."""
    try:
        names = list(group.keys())
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"cannot list {group.name} ({_reason(exc)})") from None
    for name in names:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.HardLink):
            node = get(group, name)
            if node is not None:
                yield name, node


def links_outside(root: h5py.Group) -> list[str]:
    """Describe every soft/external link, external-storage or virtual dataset under ``root``."""
    found: list[str] = []

    def walk(group: h5py.Group) -> None:
        try:
            names = list(group.keys())
        except (OSError, ValueError, TypeError):
            return
        for name in names:
            try:
                link = group.get(name, getlink=True)
            except (OSError, KeyError, ValueError, TypeError):
                continue
            full = f"{group.name.rstrip('/')}/{name}"
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{full} is an external link to {link.filename}:{link.path}")
            elif isinstance(link, h5py.SoftLink):
                found.append(f"{full} is a soft link to {link.path}")
            else:
                try:
                    node = group[name]
                except (OSError, KeyError, ValueError, TypeError):
                    continue
                if isinstance(node, h5py.Group):
                    walk(node)
                elif isinstance(node, h5py.Dataset):
                    problem = dataset_problem(node)
                    if problem and "filter" not in problem:
                        found.append(f"{full} {problem}")

    walk(root)
    return found


def dataset_problem(ds: h5py.Dataset) -> str | None:
    """Why a dataset must not be read, or ``None`` when it is plain."""
    try:
        if ds.external:
            return "keeps its data in external files " + ", ".join(str(e[0]) for e in ds.external)
        if ds.is_virtual:
            return "is a virtual dataset mapping other files"
        filters = ds._filters  # noqa: SLF001 - h5py exposes filters only here
    except (OSError, ValueError, TypeError) as exc:
        return f"has an unreadable layout ({_reason(exc)})"
    unknown = [str(f) for f in filters if f not in _BUILTIN_FILTERS]
    if unknown:
        return f"needs unknown HDF5 filter(s) {', '.join(unknown)} (plugins are never loaded)"
    return None


def dataset_dtype(ds: h5py.Dataset) -> np.dtype:
    """The logical dtype: Keras stores bfloat16 as opaque 2-byte data with a ``dtype`` attribute."""
    if ds.dtype.kind == "V" and ds.dtype.itemsize == 2:
        return np.dtype("float32")
    return ds.dtype


def dtype_name(ds: h5py.Dataset) -> str:
    if ds.dtype.kind == "V" and ds.dtype.itemsize == 2:
        return "bfloat16"
    return str(ds.dtype)


def read_dataset(ds: h5py.Dataset, limits: Limits) -> np.ndarray:
    """Read a whole dataset after checking its storage and declared size."""
    if not ds.id.valid:
        raise KerasWeightsError("the model is closed; read weights before closing it")
    problem = dataset_problem(ds)
    if problem:
        raise UnsafeContentError(f"dataset {ds.name} {problem}; refusing to read it")
    if ds.dtype.kind in "OSU":  # strings, not weights (and variable-length ones live in the global heap)
        raise CorruptFileError(f"dataset {ds.name} holds {ds.dtype} values, not numbers")
    nbytes = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize if ds.shape else ds.dtype.itemsize
    if nbytes > limits.max_array_bytes:
        raise LimitExceededError(
            f"dataset {ds.name} declares {nbytes:,} bytes, over the limit of {limits.max_array_bytes:,}"
        )
    try:
        data = ds[()]
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"cannot read dataset {ds.name} ({_reason(exc)})") from None
    data = np.asarray(data)
    if data.dtype.kind == "V" and data.dtype.itemsize == 2:  # bfloat16 -> float32, exactly
        data = (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return data


