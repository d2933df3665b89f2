"""Opening files safely: regular files only, and a model's own files only inside its folder.

A named pipe given as a model blocks ``open()`` forever, ``/dev/zero`` reads endlessly, and
a symbolic link in a model's folder can point anywhere. Every reader opens files through
:func:`open_regular` (and, for files a model names, :func:`inside`), never ``open()``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from ..errors import CorruptFileError, LimitExceededError, UnsafeContentError, UnsupportedFormatError

_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def kind_of(mode: int) -> str | None:
    """What a file of ``mode`` is when it is not a regular file (``None`` when it is)."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_regular(path: str | os.PathLike[str], what: str | None = None) -> os.stat_result:
    """``stat(path)`` (links followed) when it is a regular file; else :class:`UnsupportedFormatError`."""
    info = os.stat(path)
    _refuse(kind_of(info.st_mode), what)
    return info


def _refuse(kind: str | None, what: str | None) -> None:
    if kind is None:
        return
    if what is None:  # the file the user named: the error line already starts with its name
        raise UnsupportedFormatError(f"not a regular file but {kind}; refusing to read it")
    raise UnsupportedFormatError(f"{what} is {kind}, not a regular file; refusing to read it")


def open_regular(path: str | os.PathLike[str], what: str | None = None, buffering: int = -1) -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file, without ever blocking.

    The kind is checked before opening (a socket cannot be opened at all) and again on the
    opened descriptor, which is opened non-blocking: a file swapped for a pipe in between
    is refused too, not waited on. ``what`` names the file in the error (``"shard 'x.h5'"``).
    """
    check_regular(path, what)
    fd = os.open(path, _FLAGS)
    try:
        _refuse(kind_of(os.fstat(fd).st_mode), what)
        if _FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def inside(folder: str | os.PathLike[str], name: str, what: str, where: str = "the model's folder") -> Path:
    """``folder/name`` once ``name`` is a relative path (subfolders allowed) whose target, links
    followed, stays in ``folder``.

    Sharded weights, TF.js shards, checkpoints and ``save(zipped=False)`` folders name their
    files; an absolute path, ``..`` or a symbolic link among them could make kerasweights read
    (and export) any file on the machine.
    """
    parts = name.replace("\\", "/").split("/")  # (a backslash separates on Windows)
    rooted = os.path.isabs(name) or parts[0] == "" or ":" in name[:3]  # /x, \\x, C:x (and "")
    if rooted or "\x00" in name or ".." in parts or parts[-1] in ("", "."):
        raise UnsafeContentError(f"{what} points outside {where}")
    path = Path(folder) / name
    base = os.path.realpath(folder)
    target = os.path.realpath(path)
    if os.path.commonpath([base, target]) != base:
        raise UnsafeContentError(
            f"{what} is a symbolic link to {target}, outside {where}; such links are never followed"
        )
    return path


def open_inside(
    folder: str | os.PathLike[str], name: str, what: str, where: str = "the model's folder", buffering: int = -1
) -> IO[bytes]:
    """:func:`open_regular` on ``folder/name`` after :func:`inside`, checking the opened file is the
    one whose target was checked (a link swapped in between is refused)."""
    path = inside(folder, name, what, where)
    target = os.path.realpath(path)
    file = open_regular(path, what, buffering)
    try:
        opened, checked = os.fstat(file.fileno()), os.stat(target)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise UnsafeContentError(f"{what} changed while it was opened; refusing to read it")
    except BaseException:
        file.close()
        raise
    return file


def read_small(file: IO[bytes], what: str, max_bytes: int) -> bytes:
    """The whole of an opened metadata file, refused before reading when it is over ``max_bytes``."""
    size = os.fstat(file.fileno()).st_size
    if size > max_bytes:
        raise LimitExceededError(f"{what} is {size:,} bytes, over the limit of {max_bytes:,}")
    return file.read(max_bytes + 1)


def read_small_file(path: str | os.PathLike[str], what: str, max_bytes: int) -> bytes:
    """:func:`read_small` of the regular file at ``path``; a missing one is a damaged model."""
    try:
        file = open_regular(path, what)
    except FileNotFoundError:
        raise CorruptFileError(f"{what} is missing") from None
    with file:
        return read_small(file, what, max_bytes)
