"""Safe, read-only access to HDF5 files: no links followed, no plugins loaded."""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

import h5py
import numpy as np

from ..errors import CorruptFileError, KerasWeightsError, LimitExceededError, UnsafeContentError
from ..limits import Limits
from ._files import open_regular
from ._h5guard import AttributeFacts, DatasetFacts, HeapGuard, check_string_lengths, refuse_long_strings

_GUARDS: weakref.WeakValueDictionary[Any, HeapGuard] = weakref.WeakValueDictionary()  # by h5py file number


# Filters that ship inside libhdf5; any other id would make HDF5 search
# HDF5_PLUGIN_PATH for a shared library, i.e. load code named by the file.
_BUILTIN_FILTERS = {"gzip", "lzf", "shuffle", "fletcher32", "scaleoffset", "szip", "nbit"}


def open_h5(source: str | os.PathLike[str] | IO[bytes], owned: bool = False) -> h5py.File:
    """Open an HDF5 file read-only, without file locking, translating failures.

    Paths are opened here too (regular files only), so that every byte libhdf5 reads passes
    through :class:`HeapGuard` (h5py's file-object driver); closing the returned file closes
    it, and the file object given when ``owned``.
    """
    if isinstance(source, (str, os.PathLike)):
        owned = True
        try:
            file: IO[bytes] = open_regular(source, buffering=0)
        except OSError as exc:
            raise CorruptFileError(f"cannot open as HDF5 ({exc.strerror or exc})") from None
    else:
        file = source
    guard = None
    try:
        guard = HeapGuard(file, owned)
        h5 = _GuardedH5File(guard, "r", locking=False)
    except (OSError, ValueError, OverflowError, RuntimeError, SystemError) as exc:
        # OverflowError: h5py's file-object driver handed an absurd address from a damaged file
        if guard is not None:
            guard.close()
        elif owned:
            file.close()
        if isinstance(exc, CorruptFileError):
            raise
        raise CorruptFileError(f"cannot open as HDF5 ({_reason(exc)})") from None
    h5.guard = guard
    _GUARDS[h5.id.fileno] = guard
    return h5


class _GuardedH5File(h5py.File):  # type: ignore[misc]  # h5py ships no type stubs
    """An ``h5py.File`` that closes its :class:`HeapGuard` after itself (libhdf5 first, always)."""

    guard: HeapGuard | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.guard is not None:
                self.guard.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KerasWeightsError):  # raised by HeapGuard under libhdf5
        return exc.problem
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
    guard = _GUARDS.get(node.id.fileno)
    facts = guard.attributes(h5py.h5o.get_info(node.id).addr, node.name) if guard is not None else None
    return _str_list(guard, facts, lambda: node, name, node.name)


def _str_list(
    guard: HeapGuard | None,
    facts: dict[bytes, AttributeFacts] | None,
    node_of: Callable[[], Any],
    name: str,
    where: str,
) -> list[str] | None:
    """:func:`read_str_list` given what ``guard`` read of the object's attributes (``facts``;
    both ``None`` for a file not opened by :func:`open_h5`).

    Fixed-length strings are decoded from the object header and variable-length ones read from
    the global heap by the guard; ``node_of()`` opens the object for libhdf5 only for anything
    else. libhdf5 finds an attribute by walking every other one (3,000 chunks took seconds),
    and opening 4,000 layers' ``weight_names`` cost more than reading them.
    """
    names = facts if facts is not None else node_of().attrs
    try:
        if _key(name, facts) in names:
            parts = [name]
        elif _key(f"{name}0", facts) in names:
            parts = []
            while _key(f"{name}{len(parts)}", facts) in names:
                parts.append(f"{name}{len(parts)}")
        else:
            return None
        out: list[str] = []
        for part in parts:
            known = facts.get(part.encode()) if facts is not None else None
            strings = _known_strings(guard, known, part, where) if guard is not None and known is not None else None
            if strings is not None:
                out.extend(strings)
                continue
            arr = np.asarray(_attr(node_of(), part))
            if arr.dtype.kind in "fiu" and arr.size == 0:
                continue
            out.extend(decode(v) for v in np.atleast_1d(arr).ravel())
    except (OSError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"cannot read attribute {name!r} of {where!r} ({_reason(exc)})") from None
    return out


def _known_strings(guard: HeapGuard, known: AttributeFacts, name: str, where: str) -> list[str] | None:
    """The strings of an attribute as the guard read them, or ``None`` when libhdf5 must."""
    if known.strings is not None:
        return [v.decode("utf-8", errors="replace") for v in known.strings]
    if known.empty_numbers:
        return []  # Keras stores [] as an empty float array
    if known.vlen_refs is None:
        return None
    refuse_long_strings(known, name, where, _MAX_ATTRIBUTE_STRING)
    out = []
    for ref in known.vlen_refs:
        data = guard.vlen_string(ref)
        if data is None:
            return None
        out.append(data.decode("utf-8", errors="replace"))
    return out


def _key(name: str, facts: dict[bytes, AttributeFacts] | None) -> str | bytes:
    return name.encode() if facts is not None else name


_TEXT_OR_NUMBERS = {h5py.h5t.STRING, h5py.h5t.INTEGER, h5py.h5t.FLOAT}
_MAX_ATTRIBUTE_STRING = 256 * 1024 * 1024  # model_config is the longest: JSON, refused over 64 MiB anyway


def _attr(node: h5py.Group | h5py.File, name: str) -> Any:
    """An attribute's value, once its type is one Keras writes (text, or numbers for an empty list).

    A damaged type can be worse than unreadable: h5py 3.16 reads a variable-length sequence
    attribute through a conversion that makes libhdf5 write to the file, and crash.
    """
    kind = node.attrs.get_id(name).get_type().get_class()
    if kind not in _TEXT_OR_NUMBERS:
        raise CorruptFileError(f"attribute {name!r} of {node.name!r} is not text (HDF5 type class {kind})")
    guard = _GUARDS.get(node.id.fileno)
    if guard is not None:  # (a file opened by open_h5: its declared string lengths are checked first)
        check_string_lengths(guard, h5py.h5o.get_info(node.id).addr, name, node.name, _MAX_ATTRIBUTE_STRING)
    return node.attrs[name]


def attr_str(node: h5py.Group | h5py.File, name: str) -> str | None:
    """A scalar string attribute, or ``None`` when absent."""
    guard = _GUARDS.get(node.id.fileno)
    if guard is not None:
        value = header_str(guard, h5py.h5o.get_info(node.id).addr, name, node.name)
        if value is not None:
            return value
    try:
        if name not in node.attrs:
            return None
        return decode(_attr(node, name))
    except (OSError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"cannot read attribute {name!r} ({_reason(exc)})") from None


def header_str(guard: HeapGuard, address: int, name: str, where: str) -> str | None:
    """A scalar variable-length string attribute read from the object header and global heap
    by :class:`HeapGuard` (its declared length checked first), or ``None`` when it is not one
    (absent, another type, or stored otherwise: libhdf5 reads those)."""
    facts = guard.attributes(address, where).get(name.encode())
    strings = _known_strings(guard, facts, name, where) if facts is not None and facts.rank == 0 else None
    return strings[0] if strings is not None and len(strings) == 1 else None


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
    """Hard-linked members of a group (links to elsewhere are skipped, not followed).

    One pass of libhdf5's link iteration, then one open per member: a group of thousands of
    layers costs two calls per layer, not four lookups by name.
    """
    hard: list[bytes] = []

    def visit(name: bytes, info: Any) -> None:
        if info.type == h5py.h5l.TYPE_HARD:
            hard.append(name)

    try:
        group.id.links.iterate(visit, info=True)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise CorruptFileError(f"cannot list {group.name} ({_reason(exc)})") from None
    for raw in hard:
        name = raw.decode("utf-8", "surrogateescape")
        try:
            oid = h5py.h5o.open(group.id, raw)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"cannot read {group.name.rstrip('/')}/{name} ({_reason(exc)})") from None
        if isinstance(oid, h5py.h5g.GroupID):
            yield name, h5py.Group(oid)
        elif isinstance(oid, h5py.h5d.DatasetID):
            yield name, h5py.Dataset(oid)


def objects(root: h5py.Group) -> list[tuple[str, int]]:
    """Every object below ``root`` reachable by hard links, each once (libhdf5's visit keeps
    track of what it has seen: a group inside itself, or 2**40 paths, cost one visit each):
    ``(path relative to root, h5py.h5o.TYPE_...)`` in depth-first name order."""
    found: list[tuple[str, int]] = []

    def visit(name: bytes, info: Any) -> None:
        if name != b".":
            found.append((name.decode("utf-8", "surrogateescape"), info.type))

    try:
        h5py.h5o.visit(root.id, visit, info=True)
    except (OSError, ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise CorruptFileError(f"cannot walk {root.name} ({_reason(exc)})") from None
    return found


def group_paths(root: h5py.Group) -> list[str]:
    return [path for path, kind in objects(root) if kind == h5py.h5o.TYPE_GROUP]


CLOSED = "the model is closed; read weights before closing it"


class Tree:
    """What :func:`objects` found below ``root``, to open by path without re-checking each link:
    a path it found was reached through hard links only. Other paths go through :func:`get`,
    which refuses soft and external links with their own error."""

    def __init__(self, root: h5py.Group) -> None:
        self.root = root
        self._base = root.name.rstrip("/")  # (h5py asks libhdf5 for a name each time)
        self._guard = _GUARDS.get(root.id.fileno)
        self.kinds: dict[str, int] = {}
        self.headers: dict[str, tuple[int, int]] = {}  # path -> (object header address, attribute count or -1)

        def visit(name: bytes, info: Any) -> None:
            if name != b".":
                path = name.decode("utf-8", "surrogateescape")
                self.kinds[path] = info.type
                # h5py < 3.11 has no num_attrs: -1, unknown, reads the header as any other
                self.headers[path] = (info.addr, getattr(info, "num_attrs", -1))

        try:
            h5py.h5o.visit(root.id, visit, info=True)
        except (OSError, ValueError, TypeError, RuntimeError, KeyError) as exc:
            raise CorruptFileError(f"cannot walk {root.name} ({_reason(exc)})") from None

    def attr_str(self, path: str, name: str) -> str | None:
        """A string attribute of the object at ``path``, from its header when it can be
        (no object opened), else through libhdf5."""
        address, count = self.headers[path]
        if count == 0:
            return None
        value = header_str(self._guard, address, name, self._where(path)) if self._guard is not None else None
        if value is not None:
            return value
        node = self.get(path)
        return attr_str(node, name) if node is not None else None

    def str_list(self, path: str, name: str) -> list[str] | None:
        """:func:`read_str_list` of the object at ``path``, which is opened only if libhdf5
        must read the attribute."""
        address, count = self.headers[path]
        if count == 0:
            return None
        where = self._where(path)
        facts = self._guard.attributes(address, where) if self._guard is not None else None
        return _str_list(self._guard, facts, lambda: self.get(path), name, where)

    def dataset_facts(self, path: str) -> DatasetFacts | None:
        """The shape and dtype of the dataset at ``path`` from its header, without opening it
        (``None``: open it and ask libhdf5)."""
        return self._guard.dataset_facts(self.headers[path][0]) if self._guard is not None else None

    def dataset(self, path: str) -> h5py.h5d.DatasetID:
        if not self.root.id.valid:  # (libhdf5's own words for this differ between versions)
            raise KerasWeightsError(CLOSED)
        try:
            return h5py.h5d.open(self.root.id, path.encode("utf-8", "surrogateescape"))
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"cannot read {self._where(path)} ({_reason(exc)})") from None

    def _where(self, path: str) -> str:
        return f"{self._base}/{path}"

    def get(self, path: str) -> h5py.Group | h5py.Dataset | None:
        if path not in self.kinds:
            return get(self.root, path)
        try:
            oid = h5py.h5o.open(self.root.id, path.encode("utf-8", "surrogateescape"))
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"cannot read {self._where(path)} ({_reason(exc)})") from None
        if isinstance(oid, h5py.h5g.GroupID):
            return h5py.Group(oid)
        if isinstance(oid, h5py.h5d.DatasetID):
            return h5py.Dataset(oid)
        return None


def links_outside(root: h5py.Group) -> list[str]:
    """Describe every soft/external link, external-storage or virtual dataset under ``root``."""
    found: list[str] = []
    odd: list[bytes] = []

    def visit(name: bytes, info: Any) -> None:
        if info.type != h5py.h5l.TYPE_HARD:
            odd.append(name)

    if not root.id.valid:
        raise KerasWeightsError("the model is closed; ask for its external links before closing it")
    base = root.name.rstrip("/")
    try:
        root.id.links.visit(visit, info=True)
        datasets = [path for path, kind in objects(root) if kind == h5py.h5o.TYPE_DATASET]
    except (OSError, ValueError, TypeError, RuntimeError, KerasWeightsError):
        return found
    for raw in odd:
        name = raw.decode("utf-8", "surrogateescape")
        try:
            link = root.get(name, getlink=True)
        except (OSError, KeyError, ValueError, TypeError):
            continue
        if isinstance(link, h5py.ExternalLink):
            found.append(f"{base}/{name} is an external link to {link.filename}:{link.path}")
        elif isinstance(link, h5py.SoftLink):
            found.append(f"{base}/{name} is a soft link to {link.path}")
    for path in datasets:
        try:
            plist = h5py.h5d.open(root.id, path.encode("utf-8", "surrogateescape")).get_create_plist()
            if plist.get_external_count():
                node = root[path]
                found.append(f"{base}/{path} {dataset_problem(node)}")
            elif plist.get_layout() == h5py.h5d.VIRTUAL:
                found.append(f"{base}/{path} is a virtual dataset mapping other files")
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return found


def dataset_problem(ds: h5py.Dataset) -> str | None:
    """Why a dataset must not be read, or ``None`` when it is plain."""
    try:
        if ds.external:
            return "keeps its data in external files " + ", ".join(str(e[0]) for e in ds.external)
        if ds.is_virtual:
            return "is a virtual dataset mapping other files"
        filters = ds._filters
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
    return cast(np.dtype, ds.dtype)


def dtype_name(ds: h5py.Dataset) -> str:
    if ds.dtype.kind == "V" and ds.dtype.itemsize == 2:
        return "bfloat16"
    return str(ds.dtype)


def read_dataset(ds: h5py.Dataset, limits: Limits, index: tuple[int | slice, ...] = ()) -> np.ndarray:
    """Read a dataset (or ``ds[index]``) after checking its storage and declared size."""
    if not ds.id.valid:
        raise KerasWeightsError(CLOSED)
    problem = dataset_problem(ds)
    if problem:
        raise UnsafeContentError(f"dataset {ds.name} {problem}; refusing to read it")
    if ds.dtype.kind in "OSU":  # strings, not weights (and variable-length ones live in the global heap)
        raise CorruptFileError(f"dataset {ds.name} holds {ds.dtype} values, not numbers")
    nbytes = math.prod(ds.shape) * ds.dtype.itemsize  # (exact: int64 would wrap for a hostile shape)
    if nbytes > limits.max_array_bytes:
        raise LimitExceededError(
            f"dataset {ds.name} declares {nbytes:,} bytes, over the limit of {limits.max_array_bytes:,}"
        )
    try:
        data = ds[index] if index else ds[()]
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"cannot read dataset {ds.name} ({_reason(exc)})") from None
    data = np.asarray(data)
    if data.dtype.kind == "V" and data.dtype.itemsize == 2:  # bfloat16 -> float32, exactly
        data = (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return cast(np.ndarray, data)
