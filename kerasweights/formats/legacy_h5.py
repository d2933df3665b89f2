"""Legacy HDF5 files: Keras 1/2, tf.keras and Keras 3's legacy writer (full model or weights only)."""

from __future__ import annotations

import contextlib

import h5py

from ..errors import CorruptFileError, UnsupportedFormatError
from ..limits import Limits
from ..store import StoredArray
from . import _hdf5
from ._json import load_json
from ._raw import LegacyStorage, RawModel
from ._vars import stored_array, tree_array


def is_legacy(f: h5py.File) -> bool:
    """A legacy file has ``model_config`` or a ``layer_names`` list at the root."""
    attrs = f.attrs
    return any(k in attrs for k in ("model_config", "layer_names", "layer_names0"))


def read_legacy(f: h5py.File, raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from a legacy full-model or weights-only HDF5 file."""
    model_config = _hdf5.attr_str(f, "model_config")
    if model_config is not None:
        raw.format = "h5-full"
        raw.config = load_json(model_config, "model_config attribute", limits)
        weights = _hdf5.get(f, "model_weights")
        if weights is None:
            weights = f  # a config-only save: no weights group at all
            raw.notes.append("the file holds no model_weights group")
        training = _hdf5.attr_str(f, "training_config")
        if training is not None:
            with contextlib.suppress(CorruptFileError):
                raw.training_config = load_json(training, "training_config attribute", limits)
    else:
        raw.format = "h5-weights"
        weights = f
    if not isinstance(weights, h5py.Group):
        raise CorruptFileError("model_weights is not an HDF5 group")
    raw.keras_version = _hdf5.attr_str(f, "keras_version") or _hdf5.attr_str(weights, "keras_version")
    raw.backend = _hdf5.attr_str(f, "backend") or _hdf5.attr_str(weights, "backend")
    raw.storage = _read_layers(weights, limits)
    optimizer = _hdf5.get(f, "optimizer_weights")
    if isinstance(optimizer, h5py.Group):
        raw.optimizer_bytes = _group_bytes(optimizer)


def _read_layers(weights: h5py.Group, limits: Limits) -> LegacyStorage:
    layer_names = _hdf5.read_str_list(weights, "layer_names")
    if layer_names is None:
        if weights.name != "/":
            raise CorruptFileError("model_weights has no layer_names attribute")
        raise UnsupportedFormatError("HDF5 file without Keras model_config or layer_names")
    layers: dict[str, list[StoredArray]] = {}
    tree = _hdf5.Tree(weights)  # one visit of every object: below, headers are read and nothing is opened
    base = weights.name.strip("/")
    for name in layer_names:
        group = None  # opened only when needed: 4,000 layers cost 4,000 opens
        if tree.kinds.get(name) == h5py.h5o.TYPE_GROUP:  # reached by hard links: read from its header
            weight_names = tree.str_list(name, "weight_names")
        else:  # missing, not a group, or behind a link that get() refuses with its own error
            group = tree.get(name)
            if not isinstance(group, h5py.Group):
                raise CorruptFileError(f"layer {name!r} is listed in layer_names but has no group")
            weight_names = _hdf5.read_str_list(group, "weight_names")
        arrays = []
        for weight_name in weight_names or []:
            path = f"{name}/{weight_name}"
            if "/" not in name and tree.kinds.get(path) == h5py.h5o.TYPE_DATASET:  # reached by hard links
                arrays.append(tree_array(tree, path, f"{base}/{path}".lstrip("/"), weight_name, limits))
                continue
            if group is None:
                group = tree.get(name)
            ds = _hdf5.get(group, weight_name)
            if not isinstance(ds, h5py.Dataset):
                raise CorruptFileError(f"weight {weight_name!r} of layer {name!r} is missing")
            arrays.append(stored_array(ds, weight_name, limits))
        layers[name] = arrays
    return LegacyStorage(layer_names=layer_names, layers=layers)


def _group_bytes(group: h5py.Group, seen: set[object] | None = None) -> int:
    seen = set() if seen is None else seen  # hard links can make a group appear twice, or inside itself
    if group.id in seen:
        return 0
    seen.add(group.id)
    total = 0
    for _, node in _hdf5.children(group):
        if isinstance(node, h5py.Dataset):
            total += int(node.size) * node.dtype.itemsize
        elif isinstance(node, h5py.Group):
            total += _group_bytes(node, seen)
    return total
