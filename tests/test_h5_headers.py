"""Shapes, dtypes and string attributes read from HDF5 object headers by the guard (issue 13).

A summary decodes each dataset's dataspace and datatype messages itself instead of opening
the dataset through libhdf5, and reads variable-length string attributes from the global
heap. These tests hold both readers to libhdf5's answer on every Keras file here (fixtures
and the third-party corpus) and on crafted files of every type h5py writes: the guard
either agrees exactly or declines (``None``) and libhdf5 answers.
"""

from __future__ import annotations

import contextlib
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zipfile_deflate64  # noqa: F401  (teaches zipfile Deflate64, for one fixture)
from conftest import FIXTURES, corpus_files

import kerasweights
from kerasweights.cli import main
from kerasweights.formats import _hdf5

FIXTURE_FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".h5", ".keras"))


def weights_member(path: Path, tmp_path: Path) -> Path:
    """The HDF5 file to look at: the file itself, or a ``.keras`` archive's weights member."""
    if not zipfile.is_zipfile(path):
        return path
    with zipfile.ZipFile(path) as archive:
        if "model.weights.h5" not in archive.namelist():
            pytest.skip("no weights member")
        out = tmp_path / "model.weights.h5"
        out.write_bytes(archive.read("model.weights.h5"))
    return out


def compare_with_libhdf5(path: Path) -> tuple[int, int]:
    """(datasets, decoded by the guard) after checking every decoded one against libhdf5."""
    decoded = total = 0
    with _hdf5.open_h5(path) as h5:
        tree = _hdf5.Tree(h5)
        for where, kind in tree.kinds.items():
            if kind != h5py.h5o.TYPE_DATASET:
                continue
            total += 1
            facts = tree.dataset_facts(where)
            if facts is None:
                continue
            decoded += 1
            dsid = tree.dataset(where)
            assert (facts.shape, facts.dtype) == (dsid.shape, str(dsid.dtype)), where
    return total, decoded


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[str(p.relative_to(FIXTURES)) for p in FIXTURE_FILES])
def test_shapes_and_dtypes_of_keras_fixtures_agree_with_libhdf5(path, tmp_path):
    total, decoded = compare_with_libhdf5(weights_member(path, tmp_path))
    if "bfloat16" not in path.name:  # (bfloat16 is opaque: libhdf5 answers for it)
        assert decoded == total


@pytest.mark.parametrize("path", corpus_files("h5-full", "h5-weights", "keras-zip"))
def test_shapes_and_dtypes_of_corpus_files_agree_with_libhdf5(path, tmp_path):
    with contextlib.suppress(kerasweights.KerasWeightsError):  # (what is said of a damaged file: elsewhere)
        compare_with_libhdf5(weights_member(path, tmp_path))


def typed_datasets(h5: h5py.File) -> None:
    for name in [
        "<f2",
        "<f4",
        "<f8",
        ">f2",
        ">f4",
        ">f8",
        "|i1",
        "<i2",
        "<i4",
        "<i8",
        ">i2",
        ">i8",
        "|u1",
        "<u2",
        ">u4",
        "<u8",
    ]:
        h5.create_dataset(
            f"plain/{name.strip('<>|')}_{'be' if name[0] == '>' else 'le'}", data=np.arange(6, dtype=name)
        )
    h5["other/bool"] = np.array([True, False])
    h5["other/complex"] = np.ones(3, np.complex64)
    h5["other/compound"] = np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")])
    h5["other/fixed_string"] = np.array([b"abc", b"de"])
    h5.create_dataset("other/vlen_string", data=["a", "bc"], dtype=h5py.string_dtype())
    h5["other/opaque2"] = np.zeros(4, "V2")  # (how Keras stores bfloat16)
    h5["other/null"] = h5py.Empty("f4")
    h5["shape/scalar"] = np.float32(1.5)
    h5["shape/empty"] = np.zeros((0, 3), "f4")
    h5["shape/rank5"] = np.zeros((1, 2, 1, 3, 1), "f4")
    h5.create_dataset("shape/chunked_gzip", data=np.arange(100.0).reshape(10, 10), chunks=(5, 5), compression="gzip")
    h5.create_dataset("shape/resizable", data=np.zeros((2, 3), "f4"), maxshape=(None, 3))
    h5["committed"] = np.dtype("<f4")
    h5.create_dataset("other/shared_type", shape=(2,), dtype=h5["committed"])


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_crafted_types_are_decoded_exactly_or_left_to_libhdf5(tmp_path, libver):
    path = tmp_path / "types.h5"
    with h5py.File(path, "w", libver=libver) as h5:
        typed_datasets(h5)
    decoded: dict[str, Any] = {}
    with _hdf5.open_h5(path) as h5:
        tree = _hdf5.Tree(h5)
        for where, kind in tree.kinds.items():
            if kind == h5py.h5o.TYPE_DATASET:
                facts = tree.dataset_facts(where)
                decoded[where] = facts
                if facts is not None:
                    dsid = tree.dataset(where)
                    assert (facts.shape, facts.dtype) == (dsid.shape, str(dsid.dtype)), where
    assert all(decoded[k] is not None for k in decoded if k.startswith(("plain/", "shape/"))), decoded
    assert all(decoded[k] is None for k in decoded if k.startswith("other/")), decoded
    assert decoded["plain/f4_be"].dtype == ">f4"
    assert decoded["shape/scalar"].shape == ()


def test_arrays_decoded_from_headers_read_their_values(tmp_path):
    """Through the public API: a weights file of big-endian and integer arrays reads back exactly."""
    path = tmp_path / "m.weights.h5"
    kernel = np.arange(12, dtype=">f4").reshape(3, 4)
    with h5py.File(path, "w") as h5:
        h5["layers/dense/vars/0"] = kernel
        h5["layers/dense/vars/1"] = np.arange(4, dtype="<f8")
    config = {
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"name": "dense", "units": 4}}]},
    }
    with kerasweights.open(path, config=config) as model:
        layer = model.layer("dense")
        assert [(w.name, w.shape, w.dtype) for w in layer.weights] == [
            ("kernel", (3, 4), ">f4"),
            ("bias", (4,), "float64"),
        ]
        np.testing.assert_array_equal(layer.weight("kernel").read(), kernel)


@pytest.mark.parametrize("libver", ["earliest", "latest"])
@pytest.mark.parametrize(
    "values",
    [
        pytest.param(["dense/kernel:0", "dense/bias:0"], id="names"),
        pytest.param(["", "a", ""], id="empty-strings"),
        pytest.param(["καλημέρα", "名前/kernel"], id="unicode"),
        pytest.param([], id="none"),
    ],
)
def test_variable_length_string_lists_read_from_the_heap_match_h5py(tmp_path, values, libver):
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w", libver=libver) as h5:
        group = h5.create_group("layer")
        group.attrs.create("weight_names", data=values, dtype=h5py.string_dtype())
        for i in range(12):  # (past 8 attributes, "latest" keeps them in dense storage)
            group.attrs[f"filler{i}"] = i
    with h5py.File(path, "r") as h5:
        expected = [v.decode() if isinstance(v, bytes) else v for v in h5["layer"].attrs["weight_names"]]
    with _hdf5.open_h5(path) as h5:
        assert _hdf5.Tree(h5).str_list("layer", "weight_names") == expected == values
        assert _hdf5.read_str_list(h5["layer"], "weight_names") == values


@pytest.mark.parametrize("rows", [0, 7, 2**62, 2**64 - 1], ids=["zero", "seven", "2**62", "2**64-1"])
def test_a_shape_its_storage_does_not_hold_is_left_to_libhdf5(tmp_path, rows, capsys):
    """A contiguous dataset whose declared rows were altered no longer matches its storage size:
    the guard does not decode it, and a summary says what libhdf5 says. libhdf5 2.0 refuses to
    open such a dataset (the summary fails, naming the file); 1.14 opens it (the summary shows
    its shape, and reading it later fails in one line, or reads what is there)."""
    path = tmp_path / "m.h5"
    data = bytearray((FIXTURES / "k3/rnn_seq.h5").read_bytes())
    key = "model_weights/enc_gru/rnn_seq/enc_gru/gru_cell/kernel"
    with h5py.File(FIXTURES / "k3/rnn_seq.h5") as h5:
        address, shape = h5py.h5o.get_info(h5[key].id).addr, h5[key].shape
    at = data.index(struct.pack("<2Q", *shape), address)  # the dataspace message's dimensions
    data[at : at + 8] = struct.pack("<Q", rows)
    path.write_bytes(data)
    with _hdf5.open_h5(path) as h5:
        assert _hdf5.Tree(h5).dataset_facts(key) is None
        try:
            libhdf5_shape = h5[key].shape
        except (OSError, KeyError, ValueError):
            libhdf5_shape = None
    code = main(["summary", str(path), "--json"])
    out, err = capsys.readouterr()
    if libhdf5_shape is None:
        assert code == 3
        assert err.startswith(f"kerasweights: error: {path}: cannot read /{key} (")
    else:
        assert code == 0
        assert {"name": "kernel", "shape": list(libhdf5_shape), "dtype": "float32"} in [
            w for layer in json.loads(out)["layers"] if layer["name"] == "enc_gru" for w in layer["weights"]
        ]
