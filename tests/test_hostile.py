"""Hostile and broken files (issue 6): one clean error, bounded resources, nothing followed or changed.

Every case asserts the user-visible contract: a :class:`KerasWeightsError` subclass whose
message is one line ``<file>: <problem>``; on the command line exit code 3 and
``kerasweights: error: <file>: <problem>`` with no traceback. An autouse fixture points
``tempfile`` at an empty folder and checks it is empty afterwards, and a watchdog turns a
hang into a failed run with a traceback instead of a stalled CI job.
"""

from __future__ import annotations

import base64
import contextlib
import faulthandler
import io
import itertools
import json
import marshal
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, truth

import kerasweights
from kerasweights import (
    ConfigError,
    CorruptFileError,
    KerasWeightsError,
    LayoutError,
    LimitExceededError,
    Limits,
    UnsafeContentError,
    UnsupportedFormatError,
)
from kerasweights.cli import _render as render
from kerasweights.cli import main

VARIANTS = FIXTURES / "variants"
LEGACY = FIXTURES / "k3" / "rnn_seq.h5"  # Keras 3 legacy writer, full model
LEGACY_KERNEL = "model_weights/head/rnn_seq/head/kernel"
VARS_KERNEL = "layers/dense/vars/0"  # the same Dense kernel in a Keras 3 weights file
GiB = 1024**3
MiB = 1024**2


# -- safety nets ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """kerasweights' temporary files go to an empty folder, which must be empty afterwards."""
    folder = tmp_path / "tempdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """A hang inside libhdf5 cannot be interrupted: dump every thread's stack and exit instead."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@contextmanager
def unchanged(path: Path) -> Iterator[None]:
    """Assert that no file under ``path`` changes (bytes and modification time)."""

    def snapshot() -> dict[Path, tuple[bytes, int]]:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}

    before = snapshot()
    yield
    assert snapshot() == before


def exercise(model: kerasweights.Model) -> None:
    """Everything a user may do with a model: the tree, the summary, every matrix and weight."""
    list(model.walk())
    render.summary_table(model)
    with contextlib.suppress(LayoutError):  # a layout problem is a KerasWeightsError with a message
        model.matrices()  # reading goes on per layer
    for layer in model.walk():
        try:
            for matrix in layer.matrices().values():
                matrix.read()
        except LayoutError:
            pass
    for weight in model.weights():
        weight.read()


def assert_clean(error: KerasWeightsError, path: Path, fragment: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message == f"{path}: {error.problem}"
    assert fragment in error.problem


# -- builders ---------------------------------------------------------------------------------------


def dir_members() -> dict[str, bytes]:
    """config.json, metadata.json and model.weights.h5 of the rnn_seq fixture, as Keras 3 wrote them."""
    folder = VARIANTS / "rnn_seq_dir"
    return {name: (folder / name).read_bytes() for name in ("metadata.json", "config.json", "model.weights.h5")}


def write_keras(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def keras_with(tmp_path: Path, **changes: bytes | None) -> Path:
    """The rnn_seq archive with members replaced (``config_json=b"..."``) or dropped (``None``)."""
    members = dir_members()
    for key, data in changes.items():
        name = key.replace("_json", ".json").replace("_h5", ".h5").replace("model_weights", "model.weights")
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    return write_keras(tmp_path / "model.keras", members)


def config_edit(edit: Callable[[dict[str, Any]], Any]) -> bytes:
    config = json.loads(dir_members()["config.json"])
    result = edit(config)
    return json.dumps(config if result is None else result).encode()


def layer_at(config: dict[str, Any], index: int) -> dict[str, Any]:
    return config["config"]["layers"][index]


@dataclass
class Entry:
    """One member for :func:`write_raw_zip`, with sizes and CRC given, not computed (they may lie)."""

    name: str
    method: int
    crc: int
    compressed: int
    size: int
    chunks: Any = ()  # iterable of bytes; or an int: a hole of that many bytes (a sparse file)


def write_raw_zip(path: Path, entries: list[Entry]) -> Path:
    """A zip archive written by hand, so declared sizes can differ from the data."""
    central = []
    with open(path, "wb") as f:
        for e in entries:
            offset, name = f.tell(), e.name.encode()
            f.write(
                struct.pack(
                    "<4s5H3L2H", b"PK\x03\x04", 20, 0, e.method, 0, 0x21, e.crc, e.compressed, e.size, len(name), 0
                )
            )
            f.write(name)
            if isinstance(e.chunks, int):
                f.seek(e.chunks, io.SEEK_CUR)
            else:
                for chunk in e.chunks:
                    f.write(chunk)
            central.append(
                struct.pack(
                    "<4s6H3L5H2L",
                    b"PK\x01\x02",
                    20,
                    20,
                    0,
                    e.method,
                    0,
                    0x21,
                    e.crc,
                    e.compressed,
                    e.size,
                    len(name),
                    0,
                    0,
                    0,
                    0,
                    0o100644 << 16,
                    offset,
                )
                + name
            )
        start = f.tell()
        for record in central:
            f.write(record)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), f.tell() - start, start, 0))
    return path


def stored(name: str, data: bytes) -> Entry:
    return Entry(name, zipfile.ZIP_STORED, zlib.crc32(data), len(data), len(data), [data])


def deflated_zeros(size_mib: int) -> tuple[list[bytes], int]:
    """A raw deflate stream of ``size_mib`` MiB of zeros, built from one compressed MiB.

    After a full flush a deflate block does not refer back, so the same block repeated is
    a valid stream: 2 GiB of zeros cost 2 MB and no 2 GiB buffer anywhere.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    return [block] * size_mib + [tail], len(block) * size_mib + len(tail)


ZEROS_2GIB_CRC32 = 0x4DBDF21C  # zlib.crc32(bytes(2 * GiB)): the bomb is a valid archive


def zip_bomb(tmp_path: Path, declared: int = 2 * GiB) -> Path:
    """A .keras whose model.weights.h5 inflates to 2 GiB of zeros (2 MB on disk)."""
    chunks, compressed = deflated_zeros(2048)
    members = dir_members()
    return write_raw_zip(
        tmp_path / "bomb.keras",
        [
            stored("config.json", members["config.json"]),
            Entry("model.weights.h5", zipfile.ZIP_DEFLATED, ZEROS_2GIB_CRC32, compressed, declared, chunks),
        ],
    )


def edit_h5(src: Path, dest: Path, edit: Callable[[h5py.File], None]) -> Path:
    shutil.copy(src, dest)
    with h5py.File(dest, "r+") as f:
        edit(f)
    return dest


def replace_dataset(key: str, make: Callable[[h5py.File, str, np.ndarray], None]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        values = f[key][()]
        del f[key]
        make(f, key, values)

    return edit


def other_h5(folder: Path) -> Path:
    """A second HDF5 file that links, virtual datasets and external storage point at."""
    path = folder / "elsewhere.h5"
    if not path.exists():
        with h5py.File(path, "w") as f:
            f["secret"] = np.full((3, 2), 42.0, "f4")
    return path


def external_link(f: h5py.File, key: str, values: np.ndarray) -> None:
    f[key] = h5py.ExternalLink(str(other_h5(Path(f.filename).parent)), "/secret")


def soft_link(f: h5py.File, key: str, values: np.ndarray) -> None:
    f[key] = h5py.SoftLink("/" + key.rsplit("/", 1)[0] + ("/bias" if key.startswith("model_weights") else "/1"))


def external_storage(f: h5py.File, key: str, values: np.ndarray) -> None:
    raw = Path(f.filename).parent / "raw.bin"
    raw.write_bytes(values.tobytes())
    f.create_dataset(key, shape=values.shape, dtype=values.dtype, external=[(str(raw), 0, values.nbytes)])


def virtual(f: h5py.File, key: str, values: np.ndarray) -> None:
    layout = h5py.VirtualLayout(shape=values.shape, dtype=values.dtype)
    layout[...] = h5py.VirtualSource(str(other_h5(Path(f.filename).parent)), "secret", shape=values.shape)
    f.create_virtual_dataset(key, layout)


def huge_shape(f: h5py.File, key: str, values: np.ndarray) -> None:
    # 4 TB declared, chunked, nothing written: the file stays small
    f.create_dataset(key, shape=(10**6, 10**6), dtype="f4", chunks=(1, 1000))


def unknown_filter(f: h5py.File, key: str, values: np.ndarray) -> None:
    """A chunk that claims filter 32015 (zstd, a plugin) was applied: reading it needs the plugin."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(values.shape)
    dcpl.set_filter(32015, h5py.h5z.FLAG_OPTIONAL, ())
    space = h5py.h5s.create_simple(values.shape)
    ds = h5py.h5d.create(f.id, key.encode(), h5py.h5t.py_create(values.dtype), space, dcpl=dcpl)
    ds.write_direct_chunk((0,) * values.ndim, values.tobytes(), filter_mask=0)


def strings(f: h5py.File, key: str, values: np.ndarray) -> None:
    f.create_dataset(
        key, data=np.array(["a"] * values.size, dtype=object).reshape(values.shape), dtype=h5py.string_dtype()
    )


def legacy_with(make: Callable[..., None]) -> Callable[[Path], tuple[Path, None]]:
    return lambda tmp: (edit_h5(LEGACY, tmp / "model.h5", replace_dataset(LEGACY_KERNEL, make)), None)


def keras_weights_with(make: Callable[..., None]) -> Callable[[Path], tuple[Path, None]]:
    def build(tmp: Path) -> tuple[Path, None]:
        weights = edit_h5(
            VARIANTS / "rnn_seq_dir" / "model.weights.h5", tmp / "model.weights.h5", replace_dataset(VARS_KERNEL, make)
        )
        return keras_with(tmp, model_weights_h5=weights.read_bytes()), None

    return build


def zeroed_global_heap(tmp: Path) -> tuple[Path, None]:
    """Zero the first object header of the global heap (attribute strings): libhdf5 would spin."""
    data = bytearray(LEGACY.read_bytes())
    heap = data.find(b"GCOL")
    data[heap + 16 : heap + 32] = bytes(16)
    (tmp / "model.h5").write_bytes(data)
    return tmp / "model.h5", None


def looping_local_heap(tmp: Path) -> tuple[Path, None]:
    """Point a local heap's free block (group link names) at itself: libhdf5 would loop, allocating."""
    data = bytearray(LEGACY.read_bytes())
    heap = data.find(b"HEAP")
    free = int.from_bytes(data[heap + 16 : heap + 24], "little")
    block = int.from_bytes(data[heap + 24 : heap + 32], "little")
    assert free != 1  # (1 ends the list)
    data[block + free : block + free + 8] = free.to_bytes(8, "little")
    (tmp / "model.h5").write_bytes(data)
    return tmp / "model.h5", None


def damaged_attribute_type(tmp: Path) -> tuple[Path, Path]:
    """One bit makes the vlen string type of a ``vars`` group's ``name`` attribute a vlen sequence:
    h5py 3.16 then reads it through a conversion that writes to the file, and segfaults."""
    data = bytearray((FIXTURES / "k3/rnn_seq.weights.h5").read_bytes())
    at = data.find(b"name\x00\x00\x00\x00\x19\x01")  # the attribute's name, then its datatype
    data[at + 9] = 0x03
    (tmp / "model.weights.h5").write_bytes(data)
    return tmp / "model.weights.h5", FIXTURES / "k3/rnn_seq.json"


def huge_string_length(tmp: Path) -> tuple[Path, None]:
    """The root's ``backend`` attribute (a variable-length string) declares 4 GiB - 1 bytes.

    libhdf5 allocates and zeroes a buffer that big before it finds the string is not there.
    """
    data = bytearray(LEGACY.read_bytes())
    name = data.find(b"backend\x00")  # in a version 1 attribute message (HDF5 spec, IV.A.2.m)
    sizes = struct.unpack_from("<3H", data, name - 6)  # name, datatype and dataspace sizes
    values = name + sum((n + 7) // 8 * 8 for n in sizes)  # each field padded to 8 bytes
    data[values : values + 4] = b"\xff\xff\xff\xff"  # the first element's length
    (tmp / "model.h5").write_bytes(data)
    return tmp / "model.h5", None


def polyglot(tmp: Path) -> tuple[Path, None]:
    """A real HDF5 model with a real .keras appended: h5py and zipfile each see a model."""
    path = tmp / "both.keras"
    path.write_bytes(LEGACY.read_bytes() + (FIXTURES / "k3/rnn_seq.keras").read_bytes())
    return path, None


def hdf5_hidden_in_zip(tmp: Path) -> tuple[Path, None]:
    """A .keras with an HDF5 file stored where libhdf5 looks for a superblock (byte 4096)."""
    members = dir_members()
    name = "assets/evil.h5"
    pad = 4096 - 2 * 30 - len("pad") - len(name)  # two local headers before the HDF5 bytes
    path = tmp / "model.keras"
    write_raw_zip(
        path,
        [
            stored("pad", bytes(pad)),
            stored(name, LEGACY.read_bytes()),
            stored("config.json", members["config.json"]),
            stored("model.weights.h5", members["model.weights.h5"]),
        ],
    )
    return path, None


def sharded_with(tmp: Path, shard_name: str) -> tuple[Path, None]:
    folder = tmp / "shards"
    folder.mkdir()
    for shard in VARIANTS.glob("rnn_seq_0000*.weights.h5"):
        shutil.copy(shard, folder / shard.name)
    index = json.loads((VARIANTS / "rnn_seq.weights.json").read_text())
    index["weight_map"]["/layers/dense/vars"] = [shard_name]
    (folder / "rnn_seq.weights.json").write_text(json.dumps(index))
    return folder / "rnn_seq.weights.json", None


def config_file(tmp: Path, text: bytes) -> tuple[Path, Path]:
    (tmp / "config.json").write_bytes(text)
    return FIXTURES / "k3/rnn_seq.weights.h5", tmp / "config.json"


def big_config_keras(tmp: Path) -> tuple[Path, None]:
    """A stored 100 MB config.json (a sparse hole on disk): refused from its declared size."""
    size = 100 * MiB
    return write_raw_zip(tmp / "model.keras", [Entry("config.json", zipfile.ZIP_STORED, 0, size, size, size)]), None


def big_config_dir(tmp: Path) -> tuple[Path, None]:
    folder = tmp / "model_dir"
    shutil.copytree(VARIANTS / "rnn_seq_dir", folder)
    with open(folder / "config.json", "r+b") as f:
        f.truncate(100 * MiB)  # sparse: refused from its size before any byte is read
    return folder, None


def member_size_lies(tmp: Path) -> tuple[Path, None]:
    """A member declaring 1,000 bytes whose data inflates to 2 GiB."""
    chunks, compressed = deflated_zeros(2048)
    members = dir_members()
    return write_raw_zip(
        tmp / "model.keras",
        [
            stored("config.json", members["config.json"]),
            Entry("model.weights.h5", zipfile.ZIP_DEFLATED, ZEROS_2GIB_CRC32, compressed, 1000, chunks),
        ],
    ), None


def stored_size_lies(tmp: Path) -> tuple[Path, None]:
    members = dir_members()
    weights = members["model.weights.h5"]
    lie = Entry(
        "model.weights.h5", zipfile.ZIP_STORED, zlib.crc32(weights), len(weights), 100 * len(weights), [weights]
    )
    return write_raw_zip(tmp / "model.keras", [stored("config.json", members["config.json"]), lie]), None


def config_size_lies(tmp: Path) -> tuple[Path, None]:
    """A config.json declaring 100 bytes whose data inflates to 100 MiB."""
    chunks, compressed = deflated_zeros(100)
    crc = 0
    for _ in range(100):
        crc = zlib.crc32(bytes(MiB), crc)
    return write_raw_zip(
        tmp / "model.keras", [Entry("config.json", zipfile.ZIP_DEFLATED, crc, compressed, 100, chunks)]
    ), None


def duplicate_member(tmp: Path) -> tuple[Path, None]:
    members = dir_members()
    entries = [stored(name, data) for name, data in members.items()] + [stored("config.json", b"{}")]
    return write_raw_zip(tmp / "model.keras", entries), None


def text_file(tmp: Path) -> tuple[Path, None]:
    (tmp / "model.h5").write_text("hello, I am not a model\n" * 20)
    return tmp / "model.h5", None


def empty_file(tmp: Path) -> tuple[Path, None]:
    (tmp / "model.keras").write_bytes(b"")
    return tmp / "model.keras", None


def dir_without_config(tmp: Path) -> tuple[Path, None]:
    folder = tmp / "model_dir"
    shutil.copytree(VARIANTS / "rnn_seq_dir", folder)
    (folder / "config.json").unlink()
    return folder, None


DEEP = b"[" * 100_000 + b"]" * 100_000


def deep_model_config(tmp: Path) -> tuple[Path, None]:
    def edit(f: h5py.File) -> None:
        f.attrs["model_config"] = DEEP.decode()

    return edit_h5(LEGACY, tmp / "model.h5", edit), None


# -- the named cases --------------------------------------------------------------------------------


def case(
    id: str, build: Callable[[Path], tuple[Path, Path | None]], error: type[KerasWeightsError], fragment: str
) -> Any:
    return pytest.param(build, error, fragment, id=id)


OPEN_FAILS = [
    # zip archives: sizes, ratios, members
    case(
        "zip-bomb-2GiB-of-zeros",
        lambda t: (zip_bomb(t), None),
        LimitExceededError,
        "to 2,147,483,648 bytes), over the limit of 200",
    ),
    case(
        "member-declares-1000-bytes-inflates-2GiB",
        member_size_lies,
        CorruptFileError,
        "zip member 'model.weights.h5' inflates past its declared size of 1,000 bytes",
    ),
    case(
        "config-declares-100-bytes-inflates-100MB",
        config_size_lies,
        CorruptFileError,
        "zip member 'config.json' inflates past its declared size of 100 bytes",
    ),
    case(
        "stored-member-declares-more-than-archive",
        stored_size_lies,
        CorruptFileError,
        "zip member 'model.weights.h5' runs past the end of the archive (truncated file?)",
    ),
    case("member-twice", duplicate_member, CorruptFileError, "zip archive holds 'config.json' twice"),
    case(
        "missing-config-json",
        lambda t: (keras_with(t, config_json=None), None),
        UnsupportedFormatError,
        "zip archive is not a Keras model: it has no config.json (members: metadata.json, model.weights.h5)",
    ),
    case(
        "missing-model-weights-h5",
        lambda t: (keras_with(t, model_weights_h5=None), None),
        CorruptFileError,
        "archive has no model.weights.h5 member",
    ),
    case(
        "weights-member-not-hdf5",
        lambda t: (keras_with(t, model_weights_h5=b"hello"), None),
        CorruptFileError,
        "cannot open as HDF5 (file signature not found)",
    ),
    # JSON: bombs, sizes, encodings
    case(
        "json-depth-100000-keras",
        lambda t: (keras_with(t, config_json=DEEP), None),
        LimitExceededError,
        "config.json is nested more than 200 levels deep",
    ),
    case(
        "json-depth-100000-h5-attribute",
        deep_model_config,
        LimitExceededError,
        "model_config attribute is nested more than 200 levels deep",
    ),
    case(
        "json-depth-100000-config-option",
        lambda t: config_file(t, DEEP),
        LimitExceededError,
        "is nested more than 200 levels deep",
    ),
    case(
        "json-100MB-keras",
        big_config_keras,
        LimitExceededError,
        "zip member 'config.json' declares 104,857,600 bytes, over the limit of 67,108,864",
    ),
    case(
        "json-100MB-directory",
        big_config_dir,
        LimitExceededError,
        "config.json is 104,857,600 bytes, over the limit of 67,108,864",
    ),
    case(
        "json-2.1-million-values",
        lambda t: (keras_with(t, config_json=b"[" + b"{}," * 2_100_000 + b"{}]"), None),
        LimitExceededError,
        "config.json holds about 4,200,002 values, over the limit of 2,000,000",
    ),
    case(
        "json-not-utf8",
        lambda t: (keras_with(t, config_json=b'{"name": "\xff"}'), None),
        ConfigError,
        "config.json is not UTF-8 text (byte 10)",
    ),
    case(
        "json-5000-digit-integer",
        lambda t: (keras_with(t, config_json=b'{"a": ' + b"9" * 5000 + b"}"), None),
        ConfigError,
        "config.json is not usable JSON (an integer of more than 4300 digits)",
    ),
    case(
        "json-invalid",
        lambda t: (keras_with(t, config_json=b'{"class_name": '), None),
        ConfigError,
        "config.json is not valid JSON (Expecting value at line 1, column 16)",
    ),
    # JSON of the wrong shape
    case(
        "config-is-a-list",
        lambda t: (keras_with(t, config_json=b"[1, 2]"), None),
        ConfigError,
        "config.json holds an array, not a model config object",
    ),
    case(
        "config-is-a-number",
        lambda t: (keras_with(t, config_json=b"3"), None),
        ConfigError,
        "config.json holds a number, not a model config object",
    ),
    case(
        "config-is-a-string",
        lambda t: (keras_with(t, config_json=b'"Sequential"'), None),
        ConfigError,
        "config.json holds a string, not a model config object",
    ),
    case(
        "config-is-null",
        lambda t: (keras_with(t, config_json=b"null"), None),
        ConfigError,
        "config.json holds null, not a model config object",
    ),
    case(
        "layers-is-a-dict",
        lambda t: (keras_with(t, config_json=config_edit(lambda c: c["config"].update(layers={"a": 1}))), None),
        ConfigError,
        "model config > rnn_seq: layers is a dict, expected a list",
    ),
    case(
        "layer-entry-is-a-string",
        lambda t: (keras_with(t, config_json=config_edit(lambda c: c["config"]["layers"].__setitem__(1, "GRU"))), None),
        ConfigError,
        "model config > rnn_seq > layer 1 is a str, expected an object with class_name and config",
    ),
    case(
        "layer-class-name-missing",
        lambda t: (keras_with(t, config_json=config_edit(lambda c: layer_at(c, 2).pop("class_name") and None)), None),
        ConfigError,
        "model config > rnn_seq > layer 2 has no class_name string",
    ),
    case(
        "model-class-name-missing",
        lambda t: (keras_with(t, config_json=config_edit(lambda c: c.pop("class_name") and None)), None),
        ConfigError,
        "model config is not a JSON object with a class_name",
    ),
    case(
        "layer-config-is-a-list",
        lambda t: (keras_with(t, config_json=config_edit(lambda c: layer_at(c, 2).update(config=[1]))), None),
        ConfigError,
        "model config > rnn_seq > layer 2 (GRU) has a config of type list",
    ),
    case(
        "metadata-is-a-list",
        lambda t: (keras_with(t, metadata_json=b"[]"), None),
        ConfigError,
        "metadata.json is not a JSON object",
    ),
    case(
        "config-option-is-a-list",
        lambda t: config_file(t, b"[1]"),
        ConfigError,
        "model config is not a JSON object with a class_name",
    ),
    # HDF5: links, damaged structures
    case(
        "external-link-to-another-file",
        legacy_with(external_link),
        UnsafeContentError,
        f"/{LEGACY_KERNEL} is an HDF5 external link to ",
    ),
    case(
        "soft-link",
        legacy_with(soft_link),
        UnsafeContentError,
        f"/{LEGACY_KERNEL} is an HDF5 soft link to '/model_weights/head/rnn_seq/head/bias'; links are never followed",
    ),
    case(
        "zeroed-global-heap",
        zeroed_global_heap,
        CorruptFileError,
        "HDF5 global heap at byte 2,048 is damaged (an object of size 0 that would make libhdf5 loop forever)",
    ),
    case(
        "local-heap-free-list-loops",
        looping_local_heap,
        CorruptFileError,
        "HDF5 local heap at byte 680 is damaged (its free list loops, which libhdf5 would follow forever)",
    ),
    case(
        "attribute-type-damaged",
        damaged_attribute_type,
        CorruptFileError,
        "attribute 'name' of '/vars' is not text (HDF5 type class 9)",
    ),
    case(
        "attribute-string-of-4GiB",
        huge_string_length,
        CorruptFileError,
        "attribute 'backend' of '/' declares a string of 4,294,967,295 bytes, over the limit of 268,435,456",
    ),
    # what the file is
    case(
        "zip-and-hdf5-polyglot",
        polyglot,
        UnsupportedFormatError,
        "file is both an HDF5 file and a zip archive; refusing an ambiguous file",
    ),
    case(
        "hdf5-superblock-inside-zip",
        hdf5_hidden_in_zip,
        UnsupportedFormatError,
        "file is both an HDF5 file and a zip archive",
    ),
    case(
        "text-file-named-h5",
        text_file,
        UnsupportedFormatError,
        "not a Keras model file (neither HDF5, zip archive nor JSON)",
    ),
    case("empty-file", empty_file, UnsupportedFormatError, "file is empty"),
    case(
        "directory-without-config-json",
        dir_without_config,
        UnsupportedFormatError,
        "directory is not a Keras model: it has no config.json",
    ),
    case(
        "shard-name-with-dotdot",
        lambda t: sharded_with(t, "../rnn_seq_00002.weights.h5"),
        UnsafeContentError,
        "shard name '../rnn_seq_00002.weights.h5' points outside the index's folder",
    ),
    case(
        "shard-name-absolute",
        lambda t: sharded_with(t, "/etc/passwd"),
        UnsafeContentError,
        "shard name '/etc/passwd' points outside the index's folder",
    ),
]

# Opened and summarised from metadata alone; reading the weight behind the problem fails.
READ_FAILS = [
    case(f"{name}-{where}", wrap(make), error, fragment)
    for name, make, error, fragment in [
        ("external-raw-storage", external_storage, UnsafeContentError, "keeps its data in external files"),
        (
            "virtual-dataset",
            virtual,
            UnsafeContentError,
            "is a virtual dataset mapping other files; refusing to read it",
        ),
        (
            "huge-declared-shape",
            huge_shape,
            LimitExceededError,
            "declares 4,000,000,000,000 bytes, over the limit of 4,294,967,296",
        ),
        (
            "unknown-filter",
            unknown_filter,
            UnsafeContentError,
            "needs unknown HDF5 filter(s) 32015 (plugins are never loaded)",
        ),
        ("strings-not-numbers", strings, CorruptFileError, "holds object values, not numbers"),
    ]
    for where, wrap in (("h5", legacy_with), ("keras", keras_weights_with))
]


@pytest.mark.parametrize(("build", "error", "fragment"), OPEN_FAILS)
def test_hostile_file_is_refused_with_one_clean_error(tmp_path, build, error, fragment):
    path, config = build(tmp_path)
    with unchanged(path), pytest.raises(error) as info:
        kerasweights.open(path, config=config)
    assert_clean(info.value, path, fragment)


@pytest.mark.parametrize(("build", "error", "fragment"), READ_FAILS)
def test_problem_weight_is_refused_when_read_and_summary_still_works(tmp_path, build, error, fragment):
    path, config = build(tmp_path)
    with unchanged(path), kerasweights.open(path, config=config) as model:
        assert "head" in render.summary_table(model)  # metadata only
        with pytest.raises(error) as info:
            exercise(model)
        model.layer("enc_gru").weight("kernel").read()  # the other weights are unaffected
    assert_clean(info.value, path, fragment)


@pytest.mark.parametrize(("build", "error", "fragment"), OPEN_FAILS + READ_FAILS)
def test_cli_exit_3_one_line_no_traceback(tmp_path, capsys, build, error, fragment):
    path, config = build(tmp_path)
    extra = ["--config", str(config)] if config else []
    reads = any(p.values[0] is build for p in READ_FAILS)
    with unchanged(path):
        if reads:
            assert main(["summary", str(path), *extra]) == 0
            capsys.readouterr()
        code = main(["weights", str(path), "--stats", *extra] if reads else ["summary", str(path), *extra])
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")
    assert err.startswith(f"kerasweights: error: {path}: ") and err.endswith("\n") and err.count("\n") == 1
    assert fragment in err and "Traceback" not in err


# -- bombs: refused before inflating, quickly, in little memory --------------------------------------


@pytest.mark.parametrize(
    ("build", "declared"),
    [pytest.param(zip_bomb, 2 * GiB, id="ratio"), pytest.param(lambda t: member_size_lies(t)[0], 1000, id="size-lie")],
)
def test_zip_bomb_is_refused_quickly_in_little_memory(tmp_path, build, declared):
    path = build(tmp_path)
    assert path.stat().st_size < 3 * MiB
    with zipfile.ZipFile(path) as archive:  # 2 MB of deflate data that inflate to 2 GiB of zeros
        info = archive.getinfo("model.weights.h5")
        assert (info.file_size, info.compress_size > 2 * 10**6) == (declared, True)
        if declared == 2 * GiB:
            with archive.open(info) as member:  # zipfile alone would inflate all of it
                assert member.read(MiB) == bytes(MiB)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KerasWeightsError):
            with kerasweights.open(path) as model:
                exercise(model)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 5  # a loose sanity bound: refusing takes milliseconds, inflating would take seconds
    assert peak < 32 * MiB, f"{peak:,} bytes allocated"


def test_json_bomb_is_refused_before_parsing(tmp_path):
    path = keras_with(tmp_path, config_json=DEEP)
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceededError):
            kerasweights.open(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB


RSS_PROBE = """
import sys, kerasweights
try:
    kerasweights.open(sys.argv[1])
except kerasweights.KerasWeightsError as exc:
    print(type(exc).__name__)
status = open("/proc/self/status").read()  # VmHWM: this process's peak resident set, in kB
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_declared_string_length_allocates_nothing(tmp_path):
    """libhdf5's own allocations are invisible to tracemalloc: measure the peak resident set."""
    path, _ = huge_string_length(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    error, peak_mib = result.stdout.split()
    assert error == "CorruptFileError"
    assert int(peak_mib) < 512  # 4 GB without the check


def test_huge_declared_shape_is_summarised_without_reading(tmp_path, capsys):
    path, _ = legacy_with(huge_shape)(tmp_path)
    assert path.stat().st_size < MiB
    with kerasweights.open(path) as model:
        kernel = model.layer("head").weight("kernel")
        assert kernel.shape == (10**6, 10**6) and not kernel.array.is_loaded
    assert main(["summary", str(path)]) == 0
    assert "1000000x1000000" in capsys.readouterr().out


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((2**62, 15), id="2**62-rows"),
        pytest.param((2**40, 2**40), id="2**80-values"),
        pytest.param((2**31, 2**31), id="2**64-bytes"),
    ],
)
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["weights", "{path}", "--stats"], id="stats"),
        pytest.param(["export", "{path}", "-o", "{tmp}/o.npz"], id="npz"),
        pytest.param(["export", "{path}", "-o", "{tmp}/o.safetensors"], id="safetensors"),
    ],
)
def test_declared_sizes_past_int64_are_refused_by_the_limit(tmp_path, capsys, shape, argv):
    """Sizes are exact integers: a product of declared dimensions that wraps around in int64
    must not slip under the array limit (it used to reach numpy, which said "array is too big")."""

    def make(f: h5py.File, key: str, values: np.ndarray) -> None:
        f.create_dataset(key, shape=shape, dtype="f4", chunks=(1, 1))  # nothing written: the file stays small

    path, _ = legacy_with(make)(tmp_path)
    assert main([a.format(path=path, tmp=tmp_path) for a in argv]) == 3
    err = capsys.readouterr().err
    assert f"{path}: dataset /{LEGACY_KERNEL} declares {4 * shape[0] * shape[1]:,} bytes, over the limit of" in err


@pytest.mark.parametrize(
    "shape", [pytest.param("diamonds", id="2**40-paths"), pytest.param("cycle", id="group-inside-itself")]
)
def test_hard_link_graphs_are_walked_once(tmp_path, shape):
    """Hard links can make a group its own child, or give 40 nested groups 2**40 paths."""

    def edit(f: h5py.File) -> None:
        groups = [f.create_group("layers/zz_graph")] + [f.create_group(f"graph/g{i}") for i in range(40)]
        for upper, lower in itertools.pairwise(groups):
            upper["a"] = upper["b"] = lower
        groups[-1].create_group("vars")["0"] = np.zeros(3, "f4")
        if shape == "cycle":
            groups[1]["again"] = groups[0]

    path = edit_h5(VARIANTS / "rnn_seq_dir" / "model.weights.h5", tmp_path / "model.weights.h5", edit)
    with kerasweights.open(path, config=FIXTURES / "k3/rnn_seq.json") as model:
        exercise(model)
        assert model.total_params == truth("rnn_seq")["count_params"]


def test_stored_array_of_the_wrong_rank_is_a_layout_error(tmp_path):
    def edit(f: h5py.File) -> None:
        del f["layers/gru/cell/vars/1"]
        f["layers/gru/cell/vars/1"] = np.float32(1.0)  # recurrent_kernel as a scalar

    path = edit_h5(VARIANTS / "rnn_seq_dir" / "model.weights.h5", tmp_path / "model.weights.h5", edit)
    with kerasweights.open(path) as model:  # no config: the layers are inferred from the arrays
        with pytest.raises(LayoutError) as info:
            model.matrices()
    assert_clean(
        info.value, path, "layer 'enc_gru' (GRU): stored shapes (6, 15), (), (2, 15) do not fit its layout (IndexError"
    )


# -- limits are configurable ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "limits", "fragment"),
    [
        pytest.param(
            "k3/rnn_seq.keras", Limits(max_json_bytes=1000), "zip member 'config.json' declares", id="json-bytes"
        ),
        pytest.param(
            "k3/rnn_seq.h5",
            Limits(max_json_depth=3),
            "model_config attribute is nested more than 3 levels deep",
            id="json-depth",
        ),
        pytest.param(
            "k3/rnn_seq.keras", Limits(max_members=2), "zip archive has 3 members, over the limit of 2", id="members"
        ),
        pytest.param(
            "k3/rnn_seq.keras",
            Limits(max_member_bytes=1000),
            "zip member 'model.weights.h5' declares",
            id="member-bytes",
        ),
    ],
)
def test_limits_can_be_tightened_at_open(source, limits, fragment):
    with pytest.raises(LimitExceededError) as info:
        kerasweights.open(FIXTURES / source, limits=limits)
    assert_clean(info.value, FIXTURES / source, fragment)


def test_array_limit_applies_when_reading():
    path = FIXTURES / "k3/rnn_seq.keras"
    with kerasweights.open(path, limits=Limits(max_array_bytes=100)) as model:
        assert model.layer("head").weight("bias").read().shape == (2,)  # 8 bytes
        with pytest.raises(LimitExceededError) as info:
            model.layer("enc_gru").weight("kernel").read()
    assert_clean(info.value, path, "dataset /layers/gru/cell/vars/0 declares 360 bytes, over the limit of 100")


def test_compression_ratio_limit(tmp_path):
    members = dir_members()
    # 2 MiB of 2-bit noise after the HDF5 data (libhdf5 ignores what follows its end of file)
    members["model.weights.h5"] += np.random.default_rng(0).integers(0, 4, 2 * MiB, dtype=np.uint8).tobytes()
    path = write_keras(tmp_path / "model.keras", members, zipfile.ZIP_DEFLATED)
    with kerasweights.open(path) as model:  # deflates about 4 times: well within the default of 200
        assert model.total_params == truth("rnn_seq")["count_params"]
    with pytest.raises(LimitExceededError) as info:
        kerasweights.open(path, limits=Limits(max_compression_ratio=2))
    assert_clean(info.value, path, "over the limit of 2")


# -- links inside a .keras: reported, never followed ------------------------------------------------


@pytest.mark.parametrize(
    ("make", "described"),
    [
        pytest.param(external_link, "/layers/dense/vars/0 is an external link to ", id="external-link"),
        pytest.param(soft_link, "/layers/dense/vars/0 is a soft link to /layers/dense/vars/1", id="soft-link"),
    ],
)
def test_links_in_keras_weights_are_reported_not_followed(tmp_path, make, described):
    path, _ = keras_weights_with(make)(tmp_path)
    with unchanged(path), kerasweights.open(path) as model:
        (link,) = model.external_links
        assert link.startswith(described)
        head = model.layer("head")
        assert [w.name for w in head.weights] == ["1"]  # only the bias: the link is not a weight
        assert head.problems == ["layer 'head' (Dense): expected 2 weights (kernel, bias), found 1 (1)"]
        exercise(model)
        assert not any((w.read() == 42.0).any() for w in model.weights())  # elsewhere.h5 holds 42s


def test_link_beside_the_weights_of_a_legacy_file_is_reported(tmp_path):
    path = edit_h5(
        LEGACY,
        tmp_path / "model.h5",
        lambda f: f.__setitem__("evil", h5py.ExternalLink(str(other_h5(tmp_path)), "/secret")),
    )
    with kerasweights.open(path) as model:
        assert model.external_links == [f"/evil is an external link to {tmp_path / 'elsewhere.h5'}:/secret"]
        exercise(model)


# -- bytes that are not what their name says --------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        pytest.param("k3/rnn_seq.h5", "model.keras", "h5-full", id="hdf5-named-keras"),
        pytest.param("k3/rnn_seq.keras", "model.h5", "keras-zip", id="keras-named-h5"),
        pytest.param("k3/rnn_seq.keras", "model.weights.h5", "keras-zip", id="keras-named-weights-h5"),
        pytest.param("tfk/rnn_seq.h5", "model.bin", "h5-full", id="hdf5-named-bin"),
    ],
)
def test_extension_lying_files_read_by_content(tmp_path, source, name, expected):
    path = tmp_path / name
    shutil.copy(FIXTURES / source, path)
    with kerasweights.open(path) as model:
        assert model.format == expected
        assert model.total_params == truth("rnn_seq")["count_params"]
        exercise(model)


@pytest.mark.parametrize("offset", [8192, 16384])
def test_keras_weights_at_a_superblock_offset_are_not_a_polyglot(tmp_path, offset):
    """Keras stores model.weights.h5 uncompressed: it may start at 8192 by chance, where libhdf5 looks too."""
    members = dir_members()
    before = (
        2 * 30
        + len("metadata.json")
        + len(members["metadata.json"])
        + len("config.json")
        + 30
        + len("model.weights.h5")
    )
    members["config.json"] += b" " * (offset - before - len(members["config.json"]))
    path = write_keras(tmp_path / "model.keras", members)
    assert path.read_bytes()[offset : offset + 4] == b"\x89HDF"
    with kerasweights.open(path) as model:
        assert (model.format, model.total_params) == ("keras-zip", 485)


# -- nothing in a file is ever imported or executed -------------------------------------------------


def test_config_modules_and_lambda_bytecode_are_never_run(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "ran"
    (tmp_path / "kw_evil_module.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Evil: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = compile(f"open({str(marker)!r}, 'w').close()", "<lambda>", "exec")
    function = {
        "class_name": "__lambda__",
        "config": {"code": base64.b64encode(marshal.dumps(code)).decode(), "defaults": None, "closure": None},
    }

    def edit(config: dict[str, Any]) -> None:
        layer_at(config, 1).update(module="kw_evil_module", registered_name="kw_evil_module>Evil")
        layer_at(config, 1)["config"]["activation"] = {"module": "kw_evil_module", "class_name": "Evil", "config": {}}
        config["config"]["layers"].insert(
            2,
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {"name": "double", "function": function, "arguments": {}},
            },
        )
        config["config"]["layers"].insert(
            3,
            {
                "class_name": "Lambda",
                "config": {  # tf.keras spelling
                    "name": "double_tfk",
                    "function": [function["config"]["code"], None, None],
                    "function_type": "lambda",
                    "module": "kw_evil_module",
                    "output_shape": None,
                    "arguments": {},
                },
            },
        )

    path = keras_with(tmp_path, config_json=config_edit(edit))
    with kerasweights.open(path) as model:
        exercise(model)
    for argv in (["summary"], ["weights", "--stats"], ["audit"]):
        main([argv[0], str(path), *argv[1:]])
    capsys.readouterr()
    assert not marker.exists()
    assert "kw_evil_module" not in sys.modules


def test_names_with_terminal_escapes_are_printed_escaped(tmp_path, capsys):
    name = "\x1b]0;pwned\x07\x1b[31mred\udcbe"
    path = keras_with(tmp_path, config_json=config_edit(lambda c: layer_at(c, 2)["config"].update(name=name)))
    for argv in (["summary"], ["summary", "--json"], ["weights"], ["weights", "--split"]):
        assert main([argv[0], str(path), *argv[1:]]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out
    with kerasweights.open(path) as model:
        assert model.layers[1].name == "\\x1b]0;pwned\\x07\\x1b[31mred\\udcbe"


# -- truncated and zeroed files -------------------------------------------------------------------

EVERY_FORMAT = [
    pytest.param(FIXTURES / "k3/rnn_seq.keras", None, id="k3-keras"),
    pytest.param(FIXTURES / "k3/rnn_seq.h5", None, id="k3-h5"),
    pytest.param(FIXTURES / "k3/rnn_seq.weights.h5", FIXTURES / "k3/rnn_seq.json", id="k3-weights-h5"),
    pytest.param(FIXTURES / "tfk/rnn_seq.keras", None, id="tfk-keras"),
    pytest.param(FIXTURES / "tfk/rnn_seq.h5", None, id="tfk-h5"),
    pytest.param(FIXTURES / "tfk/rnn_seq_weights.h5", FIXTURES / "tfk/rnn_seq.json", id="tfk-weights-h5"),
    pytest.param(VARIANTS / "rnn_seq.deflate.keras", None, id="deflate-keras"),
    pytest.param(VARIANTS / "rnn_seq.deflate64.keras", None, id="deflate64-keras"),
    pytest.param(VARIANTS / "compiled.h5", None, id="compiled-h5"),
    pytest.param(VARIANTS / "rnn_seq.weights.json", FIXTURES / "k3/rnn_seq.json", id="sharded-index"),
    pytest.param(VARIANTS / "rnn_seq_00001.weights.h5", FIXTURES / "k3/rnn_seq.json", id="one-shard"),
]
CUTS = [1, 8, 100, 512, 0.25, 0.5, 0.75, -22, -1]


@pytest.mark.parametrize("cut", CUTS, ids=[f"cut{c}" for c in CUTS])
@pytest.mark.parametrize(("source", "config"), EVERY_FORMAT)
def test_truncated_file_is_refused_cleanly(tmp_path, source, config, cut):
    data = source.read_bytes()
    end = int(len(data) * cut) if isinstance(cut, float) else cut % len(data)
    path = tmp_path / source.name
    path.write_bytes(data[:end])
    with pytest.raises(KerasWeightsError) as info:
        with kerasweights.open(path, config=config) as model:
            exercise(model)
    assert_clean(info.value, path, "")


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize(("source", "config"), EVERY_FORMAT)
def test_zeroed_region_is_read_or_refused_cleanly(tmp_path, source, config, where):
    data = bytearray(source.read_bytes())
    start = int(len(data) * where)
    data[start : start + 4096] = bytes(len(data[start : start + 4096]))
    path = tmp_path / source.name
    path.write_bytes(data)
    try:
        with kerasweights.open(path, config=config) as model:
            exercise(model)
    except KerasWeightsError as exc:
        assert_clean(exc, path, "")


# -- plugins, lifetime ------------------------------------------------------------------------------

PLUGIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void loaded(void) {
    FILE *f = fopen(getenv("KW_PLUGIN_MARKER"), "w");
    if (f) fclose(f);
}
int H5PLget_plugin_type(void) { return 0; }
const void *H5PLget_plugin_info(void) { return 0; }
"""

PLUGIN_PROBE = """
import os, sys, h5py, kerasweights
path, marker = sys.argv[1], os.environ["KW_PLUGIN_MARKER"]
with kerasweights.open(path) as model:
    try:
        model.layer("head").weight("kernel").read()
    except kerasweights.UnsafeContentError as exc:
        print("refused:", exc.problem)
print("loaded by kerasweights:", os.path.exists(marker))
with h5py.File(path, "r") as f:  # the control: plain h5py does go looking for the plugin
    try:
        f[sys.argv[2]][()]
    except OSError:
        pass
print("loaded by h5py:", os.path.exists(marker))
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build a fake HDF5 plugin")
def test_unknown_filter_never_loads_a_plugin(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (tmp_path / "plugin.c").write_text(PLUGIN_C)
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-o", str(plugins / "libh5evil.so"), str(tmp_path / "plugin.c")], check=True
    )
    path, _ = legacy_with(unknown_filter)(tmp_path)
    env = {**os.environ, "HDF5_PLUGIN_PATH": str(plugins), "KW_PLUGIN_MARKER": str(tmp_path / "loaded")}
    result = subprocess.run(
        [sys.executable, "-c", PLUGIN_PROBE, str(path), LEGACY_KERNEL],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.splitlines() == [
        f"refused: dataset /{LEGACY_KERNEL} needs unknown HDF5 filter(s) 32015 (plugins are never loaded); refusing to read it",
        "loaded by kerasweights: False",
        "loaded by h5py: True",
    ]


LIFETIME_PROBE = """
import gc, io, sys, kerasweights
fixtures, keep = sys.argv[1], []
for name, config in [("k3/rnn_seq.h5", None), ("k3/rnn_seq.keras", None), ("variants/rnn_seq.deflate.keras", None),
                     ("variants/rnn_seq_dir", None), ("variants/rnn_seq.weights.json", "k3/rnn_seq.json")]:
    config = config and f"{fixtures}/{config}"
    model = kerasweights.open(f"{fixtures}/{name}", config=config)
    model.find("enc_gru/kernel_z").read()
    keep.append(model)                                    # still open at interpreter exit
    dropped = kerasweights.open(f"{fixtures}/{name}", config=config)
    dropped.weights()[0].read()
    del dropped                                           # garbage without close()
keep.append(kerasweights.open(io.BytesIO(open(f"{fixtures}/k3/rnn_seq.h5", "rb").read())))
keep.append(kerasweights.open(f"{fixtures}/k3/rnn_seq.keras").weights()[0])   # only a Weight survives
gc.collect()
print("exiting")
"""


def test_models_never_closed_do_not_crash_the_interpreter():
    """h5py must close a file before the file object under it, also when nobody calls close()."""
    result = subprocess.run(
        [sys.executable, "-c", LIFETIME_PROBE, str(FIXTURES)], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout) == (0, "exiting\n"), result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_reading_after_close_says_so():
    path = FIXTURES / "k3/rnn_seq.keras"
    with kerasweights.open(path) as model:
        weight = model.layer("enc_gru").weight("kernel")
    with pytest.raises(KerasWeightsError) as info:
        weight.read()
    assert_clean(info.value, path, "the model is closed; read weights before closing it")


def test_compressed_member_leaves_no_temporary_file(private_tempdir):
    with kerasweights.open(VARIANTS / "rnn_seq.deflate.keras") as model:
        exercise(model)
    assert list(private_tempdir.iterdir()) == []
