"""HDF5 attributes in dense storage and in thousands of chunks (issue 13).

Files written with the 1.8+ format keep an object's attributes in a fractal heap indexed
by a B-tree once there are more than 8 (or from the first, with a phase change of 0):
``fixtures/dense/`` holds rnn_seq written so by Keras 3 and tf_keras. The declared-length
check must find ``model_config`` there too, and reading thousands of ``layer_names<i>``
chunks must stay linear.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, truth, truth_arrays

import kerasweights
from kerasweights import CorruptFileError
from kerasweights.cli import main
from kerasweights.formats import _hdf5

DENSE = [
    pytest.param(FIXTURES / "dense/rnn_seq.k3.h5", id="keras3"),
    pytest.param(FIXTURES / "dense/rnn_seq.tfk.h5", id="tf_keras"),
]
GiB = 1024**3


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, HDF5's metadata checksum (``H5_checksum_lookup3``)."""
    m = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & m
        a = ((a - c) & m) ^ rot(c, 4)
        c = (c + b) & m
        b = ((b - a) & m) ^ rot(a, 6)
        a = (a + c) & m
        c = ((c - b) & m) ^ rot(b, 8)
        b = (b + a) & m
        a = ((a - c) & m) ^ rot(c, 16)
        c = (c + b) & m
        b = ((b - a) & m) ^ rot(a, 19)
        a = (a + c) & m
        c = ((c - b) & m) ^ rot(b, 4)
        b = (b + a) & m
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c = ((c ^ b) - rot(b, 14)) & m
    a = ((a ^ c) - rot(c, 11)) & m
    b = ((b ^ a) - rot(a, 25)) & m
    c = ((c ^ b) - rot(b, 16)) & m
    a = ((a ^ c) - rot(c, 4)) & m
    b = ((b ^ a) - rot(a, 14)) & m
    c = ((c ^ b) - rot(b, 24)) & m
    return c


def root_attributes(path: Path) -> dict[bytes, object]:
    with _hdf5.open_h5(path) as h5:
        return dict(h5.guard.attributes(h5py.h5o.get_info(h5.id).addr, "/"))


@pytest.mark.parametrize("path", DENSE)
def test_keras_files_with_dense_attributes_read_like_keras_wrote_them(path):
    data = path.read_bytes()
    assert data.count(b"FRHP") == 1 and data.count(b"FHDB") >= 1  # the root's attributes are in a fractal heap
    assert {b"model_config", b"backend", b"keras_version"} <= set(root_attributes(path))
    arrays = truth_arrays("rnn_seq")
    with kerasweights.open(path) as model:
        assert (model.format, model.total_params) == ("h5-full", truth("rnn_seq")["count_params"])
        for layer in truth("rnn_seq")["layers"]:
            stored = model.layer(layer["name"]).weights
            assert [w.shape for w in stored] == [tuple(w["shape"]) for w in layer["weights"]]
            for i, weight in enumerate(stored):
                np.testing.assert_array_equal(weight.read(), arrays[f"_weights/{layer['name']}/{i}"])


def dense_config_declaring(path: Path, dest: Path, length: int) -> Path:
    """Make the densely stored ``model_config`` declare ``length`` bytes, checksum recomputed
    (as an attacker would: libhdf5 would otherwise refuse the block before the allocation)."""
    data = bytearray(path.read_bytes())
    name = data.find(b"model_config\x00")
    message = name - 9  # a version 3 attribute message: version, flags, 3 sizes, encoding, name
    assert data[message] == 3
    name_size, type_size, space_size = (
        int.from_bytes(data[message + 2 + 2 * i : message + 4 + 2 * i], "little") for i in range(3)
    )
    values = name + name_size + type_size + space_size
    data[values : values + 4] = length.to_bytes(4, "little")
    block = data.rfind(b"FHDB", 0, name)
    heap = data.find(b"FRHP")
    start_size = int.from_bytes(data[heap + 112 : heap + 120], "little")  # the heap's starting block size (III.G)
    assert start_size in (512, 1024, 2048, 4096), start_size
    header = 4 + 1 + 8 + 5  # signature, version, heap address, block offset (40-bit heap)
    data[block + header : block + header + 4] = bytes(4)
    checksum = lookup3(bytes(data[block : block + start_size]))
    data[block + header : block + header + 4] = checksum.to_bytes(4, "little")
    dest.write_bytes(data)
    return dest


RSS_PROBE = """
import sys, kerasweights
try:
    kerasweights.open(sys.argv[1]).close()
    print("opened")
except kerasweights.KerasWeightsError as exc:
    print(type(exc).__name__)
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_dense_model_config_declaring_1_5_gib_is_refused_unallocated(tmp_path, capsys):
    path = dense_config_declaring(FIXTURES / "dense/rnn_seq.k3.h5", tmp_path / "model.h5", 3 * GiB // 2)
    with pytest.raises(CorruptFileError) as info:
        kerasweights.open(path)
    assert str(info.value) == (
        f"{path}: attribute 'model_config' of '/' declares a string of 1,610,612,736 bytes, over the limit of 268,435,456"
    )
    assert main(["summary", str(path)]) == 3
    assert capsys.readouterr().err.startswith(f"kerasweights: error: {path}: attribute 'model_config'")
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    error, peak_mib = result.stdout.split()
    assert error == "CorruptFileError" and int(peak_mib) < 512  # 1.6 GB without the check


def test_dense_storage_with_indirect_blocks_deep_b_trees_and_huge_messages(tmp_path):
    """3,000 attributes (the heap's root becomes an indirect block, the name index two levels
    deep) and one message too big for the heap's blocks (a "huge" object, in its own B-tree)."""
    path = tmp_path / "many.h5"
    with h5py.File(path, "w", libver="latest") as f:
        for i in range(3000):
            f.attrs[f"a{i:05d}"] = "x" * (i % 50)
        f.attrs["big"] = np.array(["y" * 100] * 2000, dtype=h5py.string_dtype())
    data = path.read_bytes()
    assert data.count(b"FHIB") and data.count(b"BTIN") and data.count(b"BTHD") == 2
    found = root_attributes(path)
    assert len(found) == 3001
    assert [found[f"a{i:05d}".encode()].longest for i in range(3000)] == [i % 50 for i in range(3000)]
    assert found[b"big"].longest == 100


def test_dense_huge_message_declaring_4_gib_is_refused(tmp_path):
    """A huge object is stored raw (no checksum): one field makes a string declare 4 GiB."""
    path = tmp_path / "model.h5"
    with h5py.File(path, "w", libver="latest") as f:
        for i in range(10):  # more than 8 attributes: dense storage
            f.attrs[f"extra{i}"] = "x"
        f.attrs["notes"] = np.array(["n"] * 2000, dtype=h5py.string_dtype())  # too big for a heap block
    data = bytearray(path.read_bytes())
    name = data.find(b"notes\x00")
    message = name - 9
    sizes = [int.from_bytes(data[message + 2 + 2 * i : message + 4 + 2 * i], "little") for i in range(3)]
    values = name + sum(sizes)
    data[values + 16 * 1500 : values + 16 * 1500 + 4] = b"\xff\xff\xff\xff"  # element 1,500's length
    path.write_bytes(data)
    assert root_attributes(path)[b"notes"].longest == 2**32 - 1
    with _hdf5.open_h5(path) as h5, pytest.raises(CorruptFileError) as info:
        _hdf5.attr_str(h5, "notes")
    assert info.value.problem == (
        "attribute 'notes' of '/' declares a string of 4,294,967,295 bytes, over the limit of 268,435,456"
    )


def chunked_layer_names(tmp: Path, chunks: int) -> Path:
    path = tmp / f"chunks{chunks}.h5"
    shutil.copy(FIXTURES / "k3/rnn_seq.h5", path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["layer_names"]]
        del group.attrs["layer_names"]
        for i in range(chunks):  # the layer names, then thousands of empty chunks (Keras writes [] as floats)
            group.attrs[f"layer_names{i}"] = np.array([names[i].encode()]) if i < len(names) else np.zeros(0, "f4")
    return path


def test_layer_names_in_thousands_of_chunks_read_in_linear_time(tmp_path):
    """libhdf5 finds an attribute by name by walking every other one: 3,000 chunks took 14 s."""
    times = {}
    for chunks in (1000, 8000):
        path = chunked_layer_names(tmp_path, chunks)
        start = time.perf_counter()
        with kerasweights.open(path) as model:
            assert model.total_params == truth("rnn_seq")["count_params"]
        times[chunks] = time.perf_counter() - start
    assert times[8000] < 3 + 16 * times[1000], times  # 8 times the chunks: linear, with room for noise
