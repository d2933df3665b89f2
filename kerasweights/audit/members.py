"""Inventory every member of a ``.keras`` archive or ``save(zipped=False)`` folder.

Each member is checked by name and by content: pickles of any protocol (opcodes only, see
:mod:`.pickles`), names that are absolute or climb out of the archive, links, executables
and scripts, archives inside the archive (scanned in turn, within :class:`Limits`), and
members Keras does not write. Nothing is extracted to disk, unpickled or run.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from ..formats import ZipArchive, open_regular, remote
from ..limits import Limits
from . import pickles
from .finding import Finding

MEMBER_CODES = frozenset({"pickle-member", "member-path", "executable-member", "nested-archive", "unexpected-member"})
# What Keras (3, and tf.keras 2.10+) writes into a .keras archive or folder; assets/ holds
# files layers save themselves (lookup vocabularies, tokenizer files).
KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5", "variables.h5", "model.weights.npz"})
_READ_BY_LOADER = frozenset({"config.json", "metadata.json", "model.weights.h5", "variables.h5"})
ASSETS = "assets/"
NPZ_MEMBER = "model.weights.npz"
# What Keras 3.0-3.8 pickles into model.weights.npz itself (numpy arrays of backend variables).
NPZ_KERAS_IMPORTS = ("numpy.", "keras.", "tensorflow.", "jax.", "jaxlib.", "torch.", "functools.partial")
SCRIPT_SUFFIXES = (
    ".py",
    ".pyc",
    ".pyo",
    ".pyw",
    ".sh",
    ".bash",
    ".zsh",
    ".bat",
    ".cmd",
    ".ps1",
    ".vbs",
    ".js",
    ".exe",
    ".dll",
    ".so",
    ".dylib",
    ".jar",
    ".com",
    ".scr",
    ".msi",
)
_NATIVE_MAGIC = {
    b"\x7fELF": "an ELF executable or shared library",
    b"MZ": "a Windows executable (PE)",
    b"\xfe\xed\xfa\xce": "a Mach-O executable",
    b"\xfe\xed\xfa\xcf": "a Mach-O executable",
    b"\xce\xfa\xed\xfe": "a Mach-O executable",
    b"\xcf\xfa\xed\xfe": "a Mach-O executable",
}
_HEAD = 512
_SEP = "!/"  # a member inside a nested archive: "assets/bundle.zip!/evil.pkl"


@dataclass
class Entry:
    """One member: its name, size, Unix mode if known, link target if a link, and how to open it."""

    name: str
    size: int
    opener: Callable[[], IO[bytes]]
    mode: int | None = None
    link: str | None = None
    is_dir: bool = False


def member_findings(source: str, file_format: str | None, limits: Limits) -> list[Finding]:
    """Findings on every member of a ``.keras`` archive (``keras-zip``) or folder (``keras-dir``)."""
    if file_format == "keras-dir" and not remote.is_url(source) and os.path.isdir(source):
        return _scan(list(_dir_entries(Path(source))), "", 0, limits, top=True)
    if file_format != "keras-zip":
        return []
    handle: IO[bytes] = remote.open_url(source) if remote.is_url(source) else open_regular(source)  # type: ignore[assignment]
    with handle:
        archive = ZipArchive(handle, limits)
        try:
            return _scan(_zip_entries(archive, limits), "", 0, limits, top=True)
        finally:
            archive.close()


# -- where members come from -------------------------------------------------------------------------


def _zip_entries(archive: ZipArchive, limits: Limits) -> list[Entry]:
    out = []
    for name in archive.names():
        info = archive.info(name)
        assert info is not None
        mode = info.external_attr >> 16 if info.create_system == 3 else None  # 3: Unix
        link = None
        opener = _member_opener(archive, name)
        if mode is not None and stat.S_ISLNK(mode):
            link = _small_read(opener, 4096).decode("utf-8", "replace")
        out.append(Entry(name, info.file_size, opener, mode, link, info.is_dir()))
    return out


def _member_opener(archive: ZipArchive, name: str) -> Callable[[], IO[bytes]]:
    return lambda: archive.open_binary(name)


def _file_opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: open_regular(path)


def _bytes_opener(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)


def _dir_entries(root: Path) -> Iterator[Entry]:
    for folder, dirs, files in os.walk(root):  # links are listed, never followed
        for name in sorted(dirs + files):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                yield Entry(rel, 0, _refuse, st.st_mode, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                yield Entry(rel + "/", 0, _refuse, st.st_mode, is_dir=True)
            elif stat.S_ISREG(st.st_mode):
                yield Entry(rel, st.st_size, _file_opener(path), st.st_mode)
            else:
                yield Entry(rel, 0, _refuse, st.st_mode)


def _refuse() -> IO[bytes]:
    raise OSError("not a regular file")


def _nested_entries(data: bytes, kind: str, name: str, limits: Limits) -> list[Entry]:
    """Members of an archive held in memory: zip, tar (any compression), or one compressed stream."""
    if kind == "zip":
        archive = ZipArchive(io.BytesIO(data), limits)
        return _zip_entries(archive, limits)
    if kind == "tar":
        return _tar_entries(io.BytesIO(data), limits)
    inner = _decompress(data, kind, limits)
    if _archive_kind(inner[:_HEAD]) == "tar":  # .tar.gz, .tar.bz2, .tar.xz: one archive, not two
        return _tar_entries(io.BytesIO(inner), limits)
    stem = name.rsplit("/", 1)[-1]
    for suffix in (".gz", ".bz2", ".xz", ".lzma"):
        stem = stem.removesuffix(suffix)
    return [Entry(stem or "data", len(inner), _bytes_opener(inner))]


def _tar_entries(file: IO[bytes], limits: Limits) -> list[Entry]:
    out: list[Entry] = []
    budget = limits.max_nested_bytes  # what the members may add up to, read into memory
    with tarfile.open(fileobj=file, mode="r:") as tar:
        for info in tar:
            if len(out) >= limits.max_members:
                raise ValueError(f"over {limits.max_members:,} members")
            link = info.linkname if info.issym() or info.islnk() else None
            blob = b""
            if info.isfile():
                handle = tar.extractfile(info)
                blob = handle.read(min(info.size, budget)) if handle is not None else b""
                budget -= len(blob)
            out.append(Entry(info.name, info.size, _bytes_opener(blob), info.mode, link, info.isdir()))
    return out


def _decompress(data: bytes, kind: str, limits: Limits) -> bytes:
    cap = min(limits.max_nested_bytes, limits.max_member_bytes)
    if kind == "gzip":
        out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, cap + 1)
    elif kind == "bz2":
        out = bz2.BZ2Decompressor().decompress(data, cap + 1)
    else:
        out = lzma.LZMADecompressor().decompress(data, cap + 1)
    if len(out) > cap:
        raise ValueError(f"inflates beyond the limit of {cap:,} bytes")
    return out


def _small_read(opener: Callable[[], IO[bytes]], n: int) -> bytes:
    with opener() as f:
        return f.read(n)


# -- the checks ----------------------------------------------------------------------------------


def _archive_kind(head: bytes) -> str | None:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def _climbs_out(name: str) -> str | None:
    """Why a member name points outside the archive, or ``None``."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":" and text[0].isalpha()):
        return "is an absolute path"
    if ".." in PurePosixPath(text).parts:
        return "climbs out of the archive (..)"
    return None


def _scan(entries: list[Entry], prefix: str, depth: int, limits: Limits, top: bool) -> list[Finding]:
    out: list[Finding] = []
    for entry in entries:
        shown = f"{prefix}{entry.name}"
        flagged = False
        why = _climbs_out(entry.name)
        if why:
            out.append(Finding("member-path", "error", f"member {shown!r} {why}; extracting it writes outside"))
            flagged = True
        if entry.link is not None:
            target = entry.link
            outside = _climbs_out(target) or _climbs_out(str(PurePosixPath(entry.name).parent / target))
            severity = "error" if outside else "warning"
            out.append(Finding("member-path", severity, f"member {shown!r} is a link to {target!r} (never followed)"))
            continue
        if entry.is_dir:
            continue
        if top and entry.name in _READ_BY_LOADER:
            continue  # read and checked by the model reader itself
        if top and entry.name == NPZ_MEMBER:
            out += _npz_findings(entry, limits)  # pickled-weights itself is reported by the scan
            continue
        try:
            flagged = _content_findings(entry, shown, depth, limits, out) or flagged
        except Exception as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            out.append(Finding("unexpected-member", "warning", f"member {shown!r} could not be inspected ({reason})"))
            continue
        if top and not flagged and entry.name not in KERAS_MEMBERS and not entry.name.startswith(ASSETS):
            out.append(
                Finding(
                    "unexpected-member", "warning", f"member {shown!r} ({entry.size:,} bytes) is not one Keras writes"
                )
            )
    return out


def _content_findings(entry: Entry, shown: str, depth: int, limits: Limits, out: list[Finding]) -> bool:
    """Pickle, executable and nested-archive findings of one member; True when it got one."""
    if entry.size == 0:
        return False
    with entry.opener() as f:
        head = f.read(_HEAD)
        offset = pickles.npy_pickle_offset(head)
        f.seek(offset or 0)
        found = pickles.scan(io.BufferedReader(f) if isinstance(f, io.RawIOBase) else f)
    if found is not None:
        where = " (an object array of a .npy file)" if offset else ""
        if found.imports_callable:
            names = ", ".join(found.imports[:8]) + (", ..." if len(found.imports) > 8 else "")
            out.append(
                Finding(
                    "pickle-member",
                    "error",
                    f"member {shown!r} is a protocol {found.protocol} pickle{where} that imports {names}; "
                    "unpickling it calls them (never unpickled here)",
                )
            )
        else:
            out.append(
                Finding(
                    "pickle-member",
                    "warning",
                    f"member {shown!r} is a protocol {found.protocol} pickle{where} (imports nothing; "
                    "never unpickled here)",
                )
            )
        return True
    flagged = False
    native = next((what for magic, what in _NATIVE_MAGIC.items() if head.startswith(magic)), None)
    executable_bit = entry.mode is not None and stat.S_ISREG(entry.mode) and bool(entry.mode & 0o111)
    if native or head.startswith(b"#!") or entry.name.lower().endswith(SCRIPT_SUFFIXES) or executable_bit:
        what = native or ("a script (#!)" if head.startswith(b"#!") else "")
        if not what:
            what = "a script or program by its name" if entry.name.lower().endswith(SCRIPT_SUFFIXES) else ""
        if executable_bit:
            what = f"{what}, marked executable" if what else "marked executable"
        out.append(Finding("executable-member", "warning", f"member {shown!r} is {what}; Keras never writes one"))
        flagged = True
    kind = _archive_kind(head)
    if kind is not None:
        out += _nested(entry, shown, kind, depth, limits)
        flagged = True
    return flagged


def _nested(entry: Entry, shown: str, kind: str, depth: int, limits: Limits) -> list[Finding]:
    label = {"zip": "zip archive", "tar": "tar archive"}.get(kind, f"{kind}-compressed file")
    if depth + 1 > limits.max_nesting:
        return [
            Finding(
                "nested-archive",
                "warning",
                f"member {shown!r} is a {label} nested deeper than {limits.max_nesting}; not scanned",
            )
        ]
    if entry.size > limits.max_nested_bytes:
        return [
            Finding(
                "nested-archive",
                "warning",
                f"member {shown!r} is a {label} of {entry.size:,} bytes, over the limit of "
                f"{limits.max_nested_bytes:,}; not scanned",
            )
        ]
    with entry.opener() as f:
        data = f.read(limits.max_nested_bytes + 1)
    try:
        inner = _nested_entries(data, kind, shown, limits)
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return [Finding("nested-archive", "warning", f"member {shown!r} is a {label} that cannot be read ({reason})")]
    if kind == "tar" and any(e.name == "" for e in inner):
        inner = [e for e in inner if e.name]
    count = f"{len(inner):,} member{'s' if len(inner) != 1 else ''}"
    out = [
        Finding(
            "nested-archive", "warning", f"member {shown!r} is a {label} ({count}, scanned); Keras never nests archives"
        )
    ]
    return out + _scan(inner, f"{shown}{_SEP}", depth + 1, limits, top=False)


def _npz_findings(entry: Entry, limits: Limits) -> list[Finding]:
    """Imports of the pickles in ``model.weights.npz`` beyond the numpy/Keras ones Keras pickles there."""
    if entry.size > limits.max_nested_bytes:
        return []
    with entry.opener() as f:
        data = f.read(limits.max_nested_bytes + 1)
    strange: dict[str, None] = {}
    for inner in _nested_entries(data, "zip", NPZ_MEMBER, limits):
        with inner.opener() as f:
            offset = pickles.npy_pickle_offset(f.read(_HEAD))
            if offset is None:
                continue
            f.seek(offset)
            found = pickles.scan(io.BufferedReader(f) if isinstance(f, io.RawIOBase) else f)
        for name in found.imports if found else ():
            if not name.startswith(NPZ_KERAS_IMPORTS):
                strange[name] = None
    if not strange:
        return []
    names = ", ".join(list(strange)[:8]) + (", ..." if len(strange) > 8 else "")
    return [
        Finding(
            "pickle-member",
            "error",
            f"member {NPZ_MEMBER!r} holds pickles that import {names}, beyond the numpy and Keras objects "
            "Keras pickles there; unpickling it calls them (never unpickled here)",
        )
    ]
