"""Keras 3 ``vars`` trees (``model.weights.h5``, ``*.weights.h5``, shards)."""

from __future__ import annotations

import h5py

from ..errors import CorruptFileError
from ..limits import Limits
from ..store import StoredArray
from . import _hdf5
from ._raw import VarsStorage


def stored_array(ds: h5py.Dataset, stored_name: str, limits: Limits) -> StoredArray:
    if ds.shape is None:  # a null dataspace: no shape and no values (h5py gives shape None)
        raise CorruptFileError(f"dataset {ds.name} has a null dataspace (no shape, no values) where a weight belongs")
    return StoredArray(
        key=ds.name.lstrip("/"),
        stored_name=stored_name,
        shape=tuple(int(n) for n in ds.shape),
        dtype=_hdf5.dtype_name(ds),
        _reader=lambda index: _hdf5.read_dataset(ds, limits, index),
    )


def _order(name: str) -> tuple[int, int, str]:
    # vars/10 must come after vars/2; named keys (idf_weights) after the numbered ones
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def read_vars_tree(root: h5py.Group, limits: Limits, into: VarsStorage | None = None) -> tuple[VarsStorage, int]:
    """Collect every ``vars`` group below ``root`` (hard links only).

    One libhdf5 visit of every object (each once, whatever hard links make of the graph)
    finds the ``vars`` groups; only those are opened. Returns the storage and the number of
    bytes of optimizer state.
    """
    storage = into or VarsStorage(groups={})
    optimizer_bytes = 0
    for path in _hdf5.group_paths(root):
        parts = path.split("/")
        if parts[-1] != "vars" or "vars" in parts[:-1]:  # (what is inside a vars group is not a layer)
            continue
        layer = "/".join(parts[:-1])
        node = _hdf5.get(root, path)
        if not isinstance(node, h5py.Group):
            continue
        arrays = storage.groups.setdefault(layer, [])
        have = {a.stored_name for a in arrays}
        new = [
            stored_array(ds, k, limits)
            for k, ds in _hdf5.children(node)
            if isinstance(ds, h5py.Dataset) and k not in have
        ]
        arrays.extend(new)
        arrays.sort(key=lambda a: _order(a.stored_name))
        label = _hdf5.attr_str(node, "name")
        if label is not None:
            storage.names[layer] = label
        if parts[0] == "optimizer":
            optimizer_bytes += sum(a.nbytes for a in new)
    if "_layer_checkpoint_dependencies" in root and "layers" not in root:
        storage.layers_key = "_layer_checkpoint_dependencies"
    return storage, optimizer_bytes
