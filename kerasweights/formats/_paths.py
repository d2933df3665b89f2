"""Files a model names inside its own folder (shards, bundles): never a path that leaves it."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CorruptFileError, LimitExceededError, UnsafeContentError
from ._files import open_regular


def inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` once ``name`` is a relative path that stays in ``folder``, links resolved.

    A symlinked shard pointing elsewhere is refused like ``../x``: the model must not make
    kerasweights read files its owner did not ship with it.
    """
    if not name or "\x00" in name or os.path.isabs(name) or name.startswith(("/", "\\")) or ":" in name[:3]:
        raise UnsafeContentError(f"{what} {name!r} is not a plain file name inside the model's folder")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeContentError(f"{what} {name!r} points outside the model's folder")
    path = folder / name
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.commonpath([real_folder, real]) != real_folder:
        raise UnsafeContentError(f"{what} {name!r} is a link to {real}, outside the model's folder")
    return path


def read_small(path: Path, what: str, max_bytes: int) -> bytes:
    """The whole of a metadata file, refused before reading when over ``max_bytes``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorruptFileError(f"{what} is missing") from None
    if size > max_bytes:
        raise LimitExceededError(f"{what} is {size:,} bytes, over the limit of {max_bytes:,}")
    with open_regular(path, what) as f:  # (a named pipe is refused, never waited on)
        return f.read(max_bytes + 1)
