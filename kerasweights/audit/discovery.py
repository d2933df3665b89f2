"""Which files under a folder are model files (by name or by content)."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Iterator

from ..formats import _hdf5, remote

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras", ".weights.json")  # .weights.h5 ends in .h5
NPZ_MEMBER = "model.weights.npz"
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})  # git-lfs copies live in .git
_SHARD = re.compile(r"(.+)_\d{5}\.weights\.h5")


# -- many files --------------------------------------------------------------------------------------


def iter_model_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The model files named by ``paths``, sorted, each once.

    Directories are walked recursively for ``.h5``, ``.hdf5``, ``.keras``, ``.weights.h5``,
    ``.weights.json`` and any other file that is HDF5, or a zip with a ``config.json``
    member, by its content; version-control folders are skipped; a ``save(zipped=False)``
    folder counts as one model, and shards listed by a ``.weights.json`` beside them are not
    repeated. Files and URLs named directly are always kept (a missing one becomes an
    ``unreadable`` finding).
    """
    found: set[str] = set()
    for item in paths:
        path = os.fspath(item)
        if remote.is_url(path) or not os.path.isdir(path) or _is_keras_dir(path):
            found.add(path)
        else:
            found.update(_walk(path))
    return sorted(found)


def _is_keras_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json")) and any(
        os.path.exists(os.path.join(path, m)) for m in ("model.weights.h5", "variables.h5", NPZ_MEMBER)
    )


def _walk(root: str) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        models = [d for d in dirs if _is_keras_dir(os.path.join(folder, d))]
        yield from (os.path.join(folder, d) for d in models)
        dirs[:] = [d for d in dirs if d not in models and d not in _SKIP_DIRS]
        names = set(files)
        for name in files:
            shard = _SHARD.fullmatch(name)
            if shard and f"{shard.group(1)}.weights.json" in names:
                continue  # read through its index
            full = os.path.join(folder, name)
            if name.lower().endswith(MODEL_SUFFIXES) or _looks_like_model(full):
                yield full


def _looks_like_model(path: str) -> bool:
    """HDF5 (signature at 0 or after a 512/1024/2048-byte user block), or a zip holding config.json.

    Every Keras archive has ``config.json``; other zips (``.npz`` arrays, documents, wheels)
    are not model files and would only add ``unreadable`` noise.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(2056)
            if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                with zipfile.ZipFile(f) as archive:
                    return "config.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return any(head[o : o + 8] == _hdf5.HDF5_SIGNATURE for o in (0, 512, 1024, 2048))
