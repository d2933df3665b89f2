"""Keras 3 formats: ``.keras`` archives and directories, ``*.weights.h5``, sharded weights."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import IO, Any

import h5py

from ..errors import ConfigError, CorruptFileError, UnsafeContentError, UnsupportedFormatError
from ..limits import Limits
from . import _hdf5
from ._files import inside, open_inside, read_small
from ._json import load_json
from ._raw import RawModel, VarsStorage
from ._vars import read_vars_tree
from ._zip import ZipArchive

WEIGHT_MEMBERS = ("model.weights.h5", "variables.h5")  # variables.h5: tf.keras 2.10/2.11
NPZ_MEMBER = "model.weights.npz"


def read_archive(file: IO[bytes], raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from an open ``.keras`` zip archive."""
    archive = ZipArchive(file, limits)
    raw.resources.callback(archive.close)
    raw.format = "keras-zip"
    raw.members = archive.names()
    if "config.json" not in raw.members:
        raise UnsupportedFormatError(
            "zip archive is not a Keras model: it has no config.json "
            f"(members: {', '.join(sorted(raw.members)[:5]) or 'none'})"
        )
    raw.config = _model_config(
        load_json(archive.read_bytes("config.json", limits.max_json_bytes), "config.json", limits)
    )
    if "metadata.json" in raw.members:
        _apply_metadata(
            raw, load_json(archive.read_bytes("metadata.json", limits.max_json_bytes), "metadata.json", limits)
        )
    member = next((m for m in WEIGHT_MEMBERS if m in raw.members), None)
    if member is None:
        if NPZ_MEMBER in raw.members:
            raise UnsafeContentError(
                f"weights are stored as {NPZ_MEMBER}, a pickle; kerasweights never unpickles weights"
            )
        raise CorruptFileError("archive has no model.weights.h5 member")
    handle = archive.open_binary(member)
    raw.resources.callback(handle.close)
    h5 = _hdf5.open_h5(handle)
    raw.resources.callback(h5.close)  # closed before the handle under it (LIFO)
    _read_weights(h5, raw, limits)


def read_directory(path: Path, raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from a ``save(zipped=False)`` directory.

    Only regular files whose targets stay inside the folder are read (see ``_files``).
    """
    raw.format = "keras-dir"
    raw.members = sorted(p.name for p in path.iterdir())
    present = set(raw.members)
    if "config.json" not in present:
        raise UnsupportedFormatError("directory is not a Keras model: it has no config.json")
    raw.config = _model_config(load_json(_read_small(path, "config.json", limits), "config.json", limits))
    if "metadata.json" in present:
        _apply_metadata(raw, load_json(_read_small(path, "metadata.json", limits), "metadata.json", limits))
    member = next((m for m in WEIGHT_MEMBERS if m in present), None)
    if member is None:
        if NPZ_MEMBER in present:
            raise UnsafeContentError(
                f"weights are stored as {NPZ_MEMBER}, a pickle; kerasweights never unpickles weights"
            )
        raise CorruptFileError("directory has no model.weights.h5")
    h5 = _hdf5.open_h5(open_inside(path, member, member, buffering=0), owned=True)
    raw.resources.callback(h5.close)
    _read_weights(h5, raw, limits)


def read_weights_file(h5: h5py.File, raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from a Keras 3 / tf.keras 2.12+ ``*.weights.h5`` file."""
    raw.format = "weights-h5"
    _read_weights(h5, raw, limits)


def is_vars_tree(h5: h5py.File) -> bool:
    return any(k in h5 for k in ("layers", "vars", "_layer_checkpoint_dependencies", "optimizer"))


def read_sharded(index_path: Path, index: dict[str, Any], raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from a sharded-weights index (``*.weights.json``) and its shards."""
    raw.format = "weights-sharded"
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise ConfigError("sharded weights index has no weight_map object")
    shards: dict[str, None] = {}  # (a dict: ordered, and each name checked once, in constant time)
    for value in weight_map.values():
        for name in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            if isinstance(name, str):
                shards.setdefault(name)
    # Keras 3.10 listed only a group's first shard: take every numbered shard that exists too.
    base = re.escape(index_path.name.removesuffix(".json").removesuffix(".weights"))
    pattern = re.compile(rf"{base}_\d{{5}}\.weights\.h5")
    for found in sorted(p.name for p in index_path.parent.iterdir() if pattern.fullmatch(p.name)):
        shards.setdefault(found)
    storage = VarsStorage(groups={})
    folder = index_path.parent
    for name in shards:
        what = f"shard name {name!r}"
        inside(folder, name, what, "the index's folder")
        if not os.path.lexists(folder / name):
            raise CorruptFileError(f"shard {name} listed in the index is missing")
        h5 = _hdf5.open_h5(open_inside(folder, name, what, "the index's folder", buffering=0), owned=True)
        raw.resources.callback(h5.close)
        _, optimizer = read_vars_tree(h5, limits, into=storage)
        raw.optimizer_bytes += optimizer
        raw.link_finders.append(functools.partial(_hdf5.links_outside, h5))
        raw.members.append(name)
    raw.storage = storage


def _read_weights(h5: h5py.File, raw: RawModel, limits: Limits) -> None:
    storage, optimizer = read_vars_tree(h5, limits)
    raw.storage = storage
    raw.optimizer_bytes = optimizer
    raw.link_finders.append(lambda: _hdf5.links_outside(h5))


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _model_config(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):  # (None would pass for "no config": infer from weights)
        kind = _JSON_TYPES.get(type(document), "null")
        raise ConfigError(f"config.json holds {kind}, not a model config object")
    return document


def _apply_metadata(raw: RawModel, metadata: object) -> None:
    if not isinstance(metadata, dict):
        raise ConfigError("metadata.json is not a JSON object")
    version = metadata.get("keras_version")
    raw.keras_version = str(version) if version is not None else None
    backend = metadata.get("backend")
    raw.backend = str(backend) if backend is not None else None


def _read_small(folder: Path, name: str, limits: Limits) -> bytes:
    with open_inside(folder, name, name) as f:
        return read_small(f, name, limits.max_json_bytes)
