"""Keras 3 ``vars`` trees (``model.weights.h5``, ``*.weights.h5``, shards)."""

from __future__ import annotations

from collections.abc import Callable

import h5py
import numpy as np

from ..errors import CorruptFileError, KerasWeightsError
from ..limits import Limits
from ..store import Index, Reader, StoredArray
from . import _hdf5
from ._raw import VarsStorage


def stored_array(ds: h5py.Dataset, stored_name: str, limits: Limits) -> StoredArray:
    return lean_array(ds.id, ds.name.lstrip("/"), stored_name, limits)


def lean_array(dsid: h5py.h5d.DatasetID, key: str, stored_name: str, limits: Limits) -> StoredArray:
    """A stored array from a dataset's low-level id: shape and dtype now, the h5py object only
    when it is read."""
    shape = dsid.shape
    if shape is None:  # a null dataspace: no shape and no values (h5py gives shape None)
        raise CorruptFileError(f"dataset /{key} has a null dataspace (no shape, no values) where a weight belongs")
    dtype = dsid.dtype
    return StoredArray(
        key=key,
        stored_name=stored_name,
        shape=tuple(int(n) for n in shape),
        dtype="bfloat16" if dtype.kind == "V" and dtype.itemsize == 2 else str(dtype),
        _reader=_reader(lambda: dsid, limits),
    )


def tree_array(tree: _hdf5.Tree, path: str, key: str, stored_name: str, limits: Limits) -> StoredArray:
    """The stored array at ``path`` of ``tree``: shape and dtype from its header when the guard
    can decode them, the dataset opened only when it is read (a 4,000-layer model holds 8,000
    of these); else as :func:`lean_array`."""
    facts = tree.dataset_facts(path)
    if facts is None:
        return lean_array(tree.dataset(path), key, stored_name, limits)
    return StoredArray(
        key=key,
        stored_name=stored_name,
        shape=facts.shape,
        dtype=facts.dtype,
        _reader=_reader(lambda: tree.dataset(path), limits),
    )


def _reader(open_dataset: Callable[[], h5py.h5d.DatasetID], limits: Limits) -> Reader:
    dataset: list[h5py.Dataset] = []

    def read(index: Index) -> np.ndarray:
        if not dataset:
            dsid = open_dataset()
            if not dsid.valid:  # the file was closed (h5py < 3.11 fails in h5py.Dataset() below)
                raise KerasWeightsError(_hdf5.CLOSED)
            dataset.append(h5py.Dataset(dsid))
        return _hdf5.read_dataset(dataset[0], limits, index)

    return read


def _order(name: str) -> tuple[int, int, str]:
    # vars/10 must come after vars/2; named keys (idf_weights) after the numbered ones
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def read_vars_tree(root: h5py.Group, limits: Limits, into: VarsStorage | None = None) -> tuple[VarsStorage, int]:
    """Collect every ``vars`` group below ``root`` (hard links only).

    One libhdf5 visit of every object (each once, whatever hard links make of the graph)
    finds the ``vars`` groups and their datasets; datasets are opened by path, ``vars`` groups
    not at all (their ``name`` comes from their header). Returns the storage and the number
    of bytes of optimizer state.
    """
    storage = into or VarsStorage(groups={})
    optimizer_bytes = 0
    tree = _hdf5.Tree(root)
    base = root.name.strip("/")
    members: dict[str, list[str]] = {}
    for path, kind in tree.kinds.items():
        parent, _, name = path.rpartition("/")
        if kind == h5py.h5o.TYPE_GROUP and name == "vars" and "vars" not in parent.split("/"):
            members[path] = []  # (what is inside a vars group is not a layer)
        elif kind == h5py.h5o.TYPE_DATASET and parent in members:
            members[parent].append(name)
    for path, names in members.items():
        layer = path.rpartition("/")[0]
        arrays = storage.groups.setdefault(layer, [])
        have = {a.stored_name for a in arrays}
        new = [
            tree_array(tree, f"{path}/{k}", f"{base}/{path}/{k}".lstrip("/"), k, limits) for k in names if k not in have
        ]
        arrays.extend(new)
        arrays.sort(key=lambda a: _order(a.stored_name))
        label = tree.attr_str(path, "name")
        if label is not None:
            storage.names[layer] = label
        if path.split("/")[0] == "optimizer":
            optimizer_bytes += sum(a.nbytes for a in new)
    if "_layer_checkpoint_dependencies" in root and "layers" not in root:
        storage.layers_key = "_layer_checkpoint_dependencies"
    return storage, optimizer_bytes
