"""Which files under a folder are model files (by name or by content)."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import KerasWeightsError
from ..formats import TABLE_MAGIC, hdf5_superblock, kind_of, load_json, open_h5, open_regular, remote
from ..limits import DEFAULT_LIMITS, Limits

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras", ".weights.json")  # .weights.h5 ends in .h5
WEIGHTS_SUFFIXES = (".weights.h5", ".weights.json", "_weights.h5", "_weights.hdf5", ".h5", ".hdf5")
CONFIG_NAMES = ("{}.json", "{}_config.json", "{}.config.json")
"""Where a config beside weights file ``X.weights.h5`` (or ``X.h5``...) is looked for: ``X.json``..."""
_CONFIG_HEAD = 4096
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
    """A folder that is one model: ``save(zipped=False)``, a SavedModel, a TF.js model or a checkpoint folder."""
    if os.path.isfile(os.path.join(path, "config.json")) and any(
        os.path.exists(os.path.join(path, m)) for m in ("model.weights.h5", "variables.h5", NPZ_MEMBER)
    ):
        return True
    if any(os.path.isfile(os.path.join(path, m)) for m in ("saved_model.pb", "keras_metadata.pb", "checkpoint")):
        return True
    return _is_tfjs_json(os.path.join(path, "model.json"))


def _is_tfjs_json(path: str) -> bool:
    try:
        with open_regular(path) as f:
            head = f.read(_CONFIG_HEAD * 16)
    except (OSError, KerasWeightsError):
        return False
    return b'"weightsManifest"' in head or (b'"modelTopology"' in head and b'"layers-model"' in head)


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
            if not _regular(full):
                yield full  # a pipe, device or socket is never opened: audit reports it unreadable
            elif name.lower().endswith(".json") and not name.lower().endswith(".weights.json"):
                if is_model_config(full) and not _has_weights_beside(full, names):
                    yield full  # a config on its own; one beside weights is audited with them
            elif name.lower().endswith(MODEL_SUFFIXES) or _looks_like_model(full):
                yield full


def _regular(path: str) -> bool:
    """A regular file (links followed); a dangling link counts as one (it is reported missing)."""
    try:
        return kind_of(os.stat(path).st_mode) is None
    except OSError:
        return True


def _looks_like_model(path: str) -> bool:
    """HDF5 (found as :func:`kerasweights.open` finds it, after any user block), or a zip holding config.json.

    Every Keras archive has ``config.json``; other zips (``.npz`` arrays, documents, wheels)
    are not model files and would only add ``unreadable`` noise.
    """
    try:
        with open_regular(path) as f:
            if f.read(4) in (b"PK\x03\x04", b"PK\x05\x06"):
                with zipfile.ZipFile(f) as archive:
                    return "config.json" in archive.namelist()
            if hdf5_superblock(f) is not None:
                return True
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, KerasWeightsError):
        return False
    return path.endswith(".index") and _ends_with_table_magic(path)  # a TF checkpoint index


def _ends_with_table_magic(path: str) -> bool:
    try:
        with open_regular(path) as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - 8, 0))
            return size >= 48 and f.read(8) == TABLE_MAGIC
    except (OSError, KerasWeightsError):
        return False


# -- model configs (``model.to_json()``) -------------------------------------------------------------


def model_config_of(document: Any) -> dict[str, Any] | None:
    """The model config in a parsed JSON document: ``{"class_name": ..., "config": {...}}`` (or one
    wrapped as ``{"model_config": ...}``), else ``None``."""
    if isinstance(document, dict) and isinstance(document.get("model_config"), dict):
        document = document["model_config"]
    if (
        isinstance(document, dict)
        and isinstance(document.get("class_name"), str)
        and isinstance(document.get("config"), (dict, list))
    ):
        return document
    return None


def is_model_config(path: str, limits: Limits = DEFAULT_LIMITS) -> bool:
    """A JSON file holding a Keras model config (what ``model.to_json()`` writes)."""
    try:
        with open_regular(path) as f:
            head = f.read(_CONFIG_HEAD)
            if head.lstrip()[:1] != b"{" or b'"class_name"' not in head or b'"weight_map"' in head:
                return False
            data = head + f.read(limits.max_json_bytes + 1 - len(head))
        return model_config_of(load_json(data, "JSON file", limits)) is not None
    except (OSError, KerasWeightsError):
        return False


def _stems(name: str) -> list[str]:
    """``X`` of ``X.weights.h5``, ``X_weights.h5``, ``X.h5``...: longest suffix first, each stem once."""
    lower = name.lower()
    return list(dict.fromkeys(name[: -len(s)] for s in WEIGHTS_SUFFIXES if lower.endswith(s) and len(name) > len(s)))


def sidecar_config(path: str) -> str | None:
    """The model config beside weights file ``X.weights.h5``/``X.h5``/``X.weights.json``, if there is one:
    ``X.json``, ``X_config.json`` or ``X.config.json`` that is a model config."""
    if remote.is_url(path) or os.path.isdir(path):
        return None
    folder, name = os.path.split(path)
    for stem in _stems(name):
        for pattern in CONFIG_NAMES:
            candidate = os.path.join(folder, pattern.format(stem))
            if os.path.isfile(candidate) and is_model_config(candidate):
                return candidate
    return None


def _has_weights_beside(config: str, names: set[str]) -> bool:
    """True when ``config`` is the sidecar of a weights-only file in the same folder (audited with it)."""
    folder, name = os.path.split(config)
    stems = [name[: -len(s)] for s in ("_config.json", ".config.json", ".json") if name.endswith(s)]
    for stem in stems:
        for suffix in (".weights.h5", ".weights.json"):
            if f"{stem}{suffix}" in names:
                return True
        for suffix in (".h5", ".hdf5", "_weights.h5", "_weights.hdf5"):
            if f"{stem}{suffix}" in names and _is_weights_only_h5(os.path.join(folder, f"{stem}{suffix}")):
                return True
    return False


def _is_weights_only_h5(path: str) -> bool:
    try:
        with open_h5(path) as h5:
            return "model_config" not in h5.attrs
    except Exception:
        return False
