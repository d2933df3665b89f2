"""Mutation fuzzing of the fixture files (issue 6): whatever the bytes, the contract holds.

Each case mutates a fixture (truncate, flip bits, zero a range, overwrite or insert bytes,
splice two files, re-zip a ``.keras`` with members dropped, duplicated, renamed or
recompressed, or put values of the wrong JSON type into its config); the fixtures include
files whose attributes live in HDF5 dense storage (``fixtures/dense``). Round 2 (issue 13)
adds: a file of a sample replaced by a named pipe, ``/dev/zero``, a socket or a link out of
its folder (never waited on); a member replaced by a deflate, bzip2, lzma or Deflate64
bomb declaring any size and CRC; and large-N structures (thousands of shard names, empty
groups, ``layer_names`` chunks, a cyclic graph) that only a linear walk gets through in time, and
bits flipped in dataset headers, whose shapes the guard decodes itself. Then either the model
opens and survives everything a user may do (walk, summary, every matrix, every weight read;
a :class:`LayoutError` is fine, it is a :class:`KerasWeightsError`), or opening or reading
raises a :class:`KerasWeightsError` whose message is one line naming the file. Any other
exception, a hang, a crash or a leftover temporary file fails the test.

CI runs a fixed set (``derandomize``): ``EXAMPLES`` cases per mutation kind, a few hundred
in all. A longer, random run for local use (failures are saved in ``.hypothesis/`` and
replayed first next time)::

    KERASWEIGHTS_FUZZ_EXAMPLES=20000 python3 -m pytest -q tests/test_fuzz.py

(20000 cases per mutation kind, about an hour on 2 CPUs).
"""

from __future__ import annotations

import copy
import faulthandler
import functools
import hashlib
import io
import itertools
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import pytest
import zipfile_deflate64  # noqa: F401  (the harness itself reads the Deflate64 sample with zipfile)
from conftest import FIXTURES, all_model_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kerasweights
from kerasweights import KerasWeightsError, LayoutError
from kerasweights.cli import _render as render
from kerasweights.formats import _hdf5

VARIANTS = FIXTURES / "variants"
LONG_RUN = int(os.environ.get("KERASWEIGHTS_FUZZ_EXAMPLES", "0"))
EXAMPLES = LONG_RUN or 100

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not LONG_RUN,  # CI: the same cases every run
    database=None if not LONG_RUN else settings.default.database,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


# -- what gets mutated --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A fixture as files in a folder: ``entry`` is what is opened (``.`` for the folder itself)."""

    id: str
    files: dict[str, bytes] = field(hash=False)
    entry: str
    config: Path | None = None
    model_config: str | None = None  # where its model config lives: a member/file name, or "attr"

    def __repr__(self) -> str:  # hypothesis prints falsifying examples with this
        return f"Sample({self.id!r})"


def _samples() -> list[Sample]:
    out = []
    for param in all_model_files():
        path, config = param.values[0], param.values[1]
        where = "config.json" if path.suffix == ".keras" else None if config else "attr"
        out.append(Sample(param.id, {path.name: path.read_bytes()}, path.name, config, where))
    for name in ("rnn_seq.deflate.keras", "rnn_seq.deflate64.keras", "compiled.keras"):
        out.append(Sample(f"variants/{name}", {name: (VARIANTS / name).read_bytes()}, name, None, "config.json"))
    out.append(
        Sample(
            "variants/compiled.h5",
            {"compiled.h5": (VARIANTS / "compiled.h5").read_bytes()},
            "compiled.h5",
            None,
            "attr",
        )
    )
    folder = VARIANTS / "rnn_seq_dir"
    out.append(
        Sample(
            "variants/rnn_seq_dir",
            {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()},
            ".",
            None,
            "config.json",
        )
    )
    for path in sorted((FIXTURES / "dense").glob("*.h5")):  # attributes in dense storage (fractal heap)
        out.append(Sample(f"dense/{path.name}", {path.name: path.read_bytes()}, path.name, None, "attr"))
    shards = {p.name: p.read_bytes() for p in VARIANTS.glob("rnn_seq*.weights.*")}
    out.append(Sample("variants/rnn_seq.weights.json", shards, "rnn_seq.weights.json", FIXTURES / "k3/rnn_seq.json"))
    return out


SAMPLES = _samples()
ZIPS = [s for s in SAMPLES if s.entry.endswith(".keras")]
WITH_CONFIG = [s for s in SAMPLES if s.model_config or s.config]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(autouse=True)
def guarded(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Temporary files go to a folder checked empty after each case; a hang ends the run with a traceback."""
    tempdir = workdir / "tempdir"
    tempdir.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tempdir))
    faulthandler.dump_traceback_later(max(300, EXAMPLES), exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# -- the contract ---------------------------------------------------------------------------------------

_cases = itertools.count()


def assert_contract(
    workdir: Path, sample: Sample, files: dict[str, bytes], in_memory: bool = False, config: Path | None = None
) -> None:
    """Open the mutated files; the model works or the error is one clean line naming the file."""
    folder = workdir / f"case{next(_cases)}"
    folder.mkdir()
    try:
        for name, data in files.items():
            (folder / name).write_bytes(data)
        source: Any = folder / sample.entry if sample.entry != "." else folder
        shown = str(source)
        if in_memory and len(files) == 1:
            source = io.BytesIO(files[sample.entry])
            source.name = shown = f"<fuzz {sample.entry}>"
        try:
            with kerasweights.open(source, config=config or sample.config) as model:
                exercise(model)
        except KerasWeightsError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert message == f"{shown}: {exc.problem}", message
        assert list((workdir / "tempdir").iterdir()) == []
    finally:
        shutil.rmtree(folder)


def exercise(model: kerasweights.Model) -> None:
    """Everything a user may do with an open model."""
    layers = list(model.walk())
    render.summary_table(model)
    json.dumps(render.summary_dict(model))
    for layer in layers:  # (a hostile config may repeat a name: the first layer of that path is found)
        assert model.layer(layer.path).path == layer.path
    try:
        for key in model.matrices():
            assert model.find(key).key == key
    except LayoutError:
        pass
    for layer in layers:
        try:
            matrices = layer.matrices()
        except LayoutError:
            continue
        for matrix in matrices.values():
            matrix.read()
    for weight in model.weights():
        assert weight.read().shape == weight.shape


# -- byte mutations -------------------------------------------------------------------------------------

Mutator = Callable[[st.DrawFn, bytes], bytes]


class Files(dict):  # type: ignore[type-arg]
    """Mutated files by name; shown by size and digest, not by their bytes, in failure reports."""

    def __repr__(self) -> str:
        return (
            "Files("
            + ", ".join(f"{k}: {len(v):,} bytes sha1 {hashlib.sha1(v).hexdigest()[:12]}" for k, v in self.items())
            + ")"
        )


def mutated(
    mutate: Mutator, samples: list[Sample] = SAMPLES
) -> st.SearchStrategy[tuple[Sample, dict[str, bytes], bool]]:
    @st.composite
    def build(draw: st.DrawFn) -> tuple[Sample, dict[str, bytes], bool]:
        sample = draw(st.sampled_from(samples))
        target = draw(st.sampled_from(sorted(sample.files)))
        files = Files({**sample.files, target: mutate(draw, sample.files[target])})
        return sample, files, draw(st.booleans())

    return build()


def truncate(draw: st.DrawFn, data: bytes) -> bytes:
    return data[: draw(st.integers(0, len(data) - 1))]


def flip_bits(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for pos, bit in draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 7)), min_size=1, max_size=16)
    ):
        out[pos] ^= 1 << bit
    return bytes(out)


def zero_range(draw: st.DrawFn, data: bytes) -> bytes:
    start = draw(st.integers(0, len(data) - 1))
    length = draw(st.integers(1, 8192))
    return data[:start] + bytes(len(data[start : start + length])) + data[start + length :]


def overwrite_or_insert(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for pos, chunk, insert in draw(
        st.lists(
            st.tuples(st.integers(0, len(data)), st.binary(min_size=1, max_size=16), st.booleans()),
            min_size=1,
            max_size=8,
        )
    ):
        out[pos : pos if insert else pos + len(chunk)] = chunk
    return bytes(out)


def splice(draw: st.DrawFn, data: bytes) -> bytes:
    other = draw(st.sampled_from(SAMPLES))
    donor = other.files[draw(st.sampled_from(sorted(other.files)))]
    return data[: draw(st.integers(0, len(data)))] + donor[draw(st.integers(0, len(donor))) :]


@FUZZ
@given(case=mutated(truncate))
def test_truncated(workdir, case):
    assert_contract(workdir, *case)


@FUZZ
@given(case=mutated(flip_bits))
def test_bit_flipped(workdir, case):
    assert_contract(workdir, *case)


@FUZZ
@given(case=mutated(zero_range))
def test_zeroed_range(workdir, case):
    assert_contract(workdir, *case)


@FUZZ
@given(case=mutated(overwrite_or_insert))
def test_overwritten_or_inserted_bytes(workdir, case):
    assert_contract(workdir, *case)


@FUZZ
@given(case=mutated(splice))
def test_spliced_with_another_file(workdir, case):
    assert_contract(workdir, *case)


# -- re-zipped archives ---------------------------------------------------------------------------------

NAMES = [
    "config.json",
    "metadata.json",
    "model.weights.h5",
    "variables.h5",
    "model.weights.npz",
    "assets/x",
    "../x",
    "/abs",
    "CONFIG.JSON",
    "",
]
METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


def _writable(method: int) -> int:
    return method if method in METHODS else zipfile.ZIP_DEFLATED  # zipfile cannot write Deflate64


@st.composite
def rezipped(draw: st.DrawFn) -> tuple[Sample, dict[str, bytes], bool]:
    sample = draw(st.sampled_from(ZIPS))
    with zipfile.ZipFile(io.BytesIO(sample.files[sample.entry])) as archive:
        members = [[info.filename, archive.read(info), _writable(info.compress_type)] for info in archive.infolist()]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "duplicate", "rename", "recompress", "swap", "junk", "reorder"]))
        i = draw(st.integers(0, max(len(members) - 1, 0)))
        if not members and op != "junk":
            continue
        if op == "drop":
            members.pop(i)
        elif op == "duplicate":
            members.insert(draw(st.integers(0, len(members))), list(members[i]))
        elif op == "rename":
            members[i][0] = draw(st.sampled_from(NAMES))
        elif op == "recompress":
            members[i][2] = draw(st.sampled_from(METHODS))
        elif op == "swap":  # the same member from another model: config and weights disagree
            donor = draw(st.sampled_from(ZIPS))
            with zipfile.ZipFile(io.BytesIO(donor.files[donor.entry])) as other:
                if members[i][0] in other.namelist():
                    members[i][1] = other.read(members[i][0])
        elif op == "junk":
            members.append([draw(st.sampled_from(NAMES)), draw(st.binary(max_size=64)), zipfile.ZIP_STORED])
        else:
            members = draw(st.permutations(members))
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": intended
        for name, data, method in members:
            archive.writestr(zipfile.ZipInfo(name or "_"), data, compress_type=method)
    return sample, Files({sample.entry: out.getvalue()}), draw(st.booleans())


@FUZZ
@given(case=rezipped())
def test_rezipped_archive(workdir, case):
    assert_contract(workdir, *case)


# -- configs with values of the wrong JSON type ------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(
        ["GRU", "LSTM", "Dense", "Bidirectional", "TimeDistributed", "Sequential", "Functional", "Model", "a/b"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["class_name", "config", "layers", "name", "units", "layer"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@st.composite
def wrong_typed_config(draw: st.DrawFn) -> tuple[Sample, dict[str, bytes], bool, Path | None]:
    sample = draw(st.sampled_from(WITH_CONFIG))
    files = Files(sample.files)
    if sample.model_config == "attr":
        with h5py.File(io.BytesIO(files[sample.entry]), "r") as f:
            document = json.loads(f.attrs["model_config"])
    elif sample.entry.endswith(".keras"):
        with zipfile.ZipFile(io.BytesIO(files[sample.entry])) as archive:
            document = json.loads(archive.read("config.json"))
    elif sample.model_config:
        document = json.loads(files[sample.model_config])
    else:
        document = json.loads(sample.config.read_text())  # type: ignore[union-attr]
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        if not paths:
            break
        *parent_path, key = draw(st.sampled_from(paths))
        parent = document
        for part in parent_path:
            parent = parent[part]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(key)
        else:
            parent[key] = draw(JSON_VALUES)
    text = json.dumps(document)
    config = None
    if sample.model_config == "attr":
        buffer = io.BytesIO(files[sample.entry])
        with h5py.File(buffer, "r+") as f:
            f.attrs["model_config"] = text
        files[sample.entry] = buffer.getvalue()
    elif sample.model_config == "config.json" and sample.entry.endswith(".keras"):
        with zipfile.ZipFile(io.BytesIO(files[sample.entry])) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for info, data in members:
                info.compress_type = _writable(info.compress_type)
                archive.writestr(
                    info, text.encode("utf-8", "surrogatepass") if info.filename == "config.json" else data
                )
        files[sample.entry] = out.getvalue()
    elif sample.model_config:
        files[sample.model_config] = text.encode("utf-8", "surrogatepass")
    else:
        files["mutated_config.json"] = text.encode("utf-8", "surrogatepass")
        config = Path("mutated_config.json")
    return sample, files, False, config


@FUZZ
@given(case=wrong_typed_config())
def test_config_with_wrong_json_types(workdir, case):
    sample, files, _, config = case
    if config is not None:  # the mutated --config file lies next to the weights
        folder_config = workdir / "configs" / f"{next(_cases)}.json"
        folder_config.parent.mkdir(exist_ok=True)
        folder_config.write_bytes(files.pop(str(config)))
        try:
            assert_contract(workdir, sample, files, config=folder_config)
        finally:
            folder_config.unlink()
        return
    assert_contract(workdir, sample, files)


# -- round 2 (issue 13): what is not a file, links out, bombs of every method, large N ------------------

SPECIAL = ["fifo", "dev-zero", "link-out", "link-to-folder", "socket"]


@st.composite
def special_files(draw: st.DrawFn) -> tuple[Sample, str, str]:
    """A sample with one of its files (or the entry itself) replaced by something that is not a file."""
    sample = draw(st.sampled_from(SAMPLES))
    return sample, draw(st.sampled_from(sorted(sample.files))), draw(st.sampled_from(SPECIAL))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
@settings(FUZZ, max_examples=min(EXAMPLES, 60) if not LONG_RUN else EXAMPLES)
@given(case=special_files())
def test_special_files_never_block(workdir, case):
    """Pipes, /dev/zero, sockets and links out of the folder: refused or read, never waited on."""
    import socket

    sample, target, kind = case
    folder = workdir / f"case{next(_cases)}"
    folder.mkdir()
    outside = workdir / f"outside{next(_cases)}"
    outside.mkdir()
    try:
        for name, data in sample.files.items():
            (folder / name).write_bytes(data)
            (outside / name).write_bytes(data)
        victim = folder / target
        victim.unlink()
        if kind == "fifo":
            os.mkfifo(victim)
        elif kind == "dev-zero":
            victim.symlink_to("/dev/zero")
        elif kind == "link-out":
            victim.symlink_to(outside / target)
        elif kind == "link-to-folder":
            victim.symlink_to(outside)
        else:
            server = socket.socket(socket.AF_UNIX)
            server.bind(str(victim))
            server.close()
        source = folder / sample.entry if sample.entry != "." else folder
        try:
            with kerasweights.open(source, config=sample.config) as model:
                exercise(model)
            if target != sample.entry:  # a file beside the entry that it never reads: fine
                assert kind == "link-out" or target not in (sample.model_config, "model.weights.h5")
        except KerasWeightsError as exc:
            assert "\n" not in str(exc) and str(exc) == f"{source}: {exc.problem}", str(exc)
    finally:
        shutil.rmtree(folder)
        shutil.rmtree(outside)


BOMB_METHODS = [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 9]


@functools.cache
def _bomb(method: int, size: int) -> bytes:
    """``size`` zeros compressed with ``method`` (built once per run: bzip2 of 64 MiB takes a while)."""
    import bz2
    import zlib

    from test_hostile_inflate import deflate64_bomb, lzma_member

    if method == zipfile.ZIP_DEFLATED:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(bytes(size)) + compressor.flush()
    if method == zipfile.ZIP_BZIP2:
        return bz2.compress(bytes(size))
    if method == zipfile.ZIP_LZMA:
        return lzma_member(bytes(min(size, 8 * 1024**2)))
    return deflate64_bomb(size)


@st.composite
def bombed_archive(draw: st.DrawFn) -> tuple[Sample, dict[str, bytes], bool]:
    """A .keras whose member (any) is replaced by a bomb of any method that declares any size and CRC."""
    import zlib

    from test_hostile import Entry, write_raw_zip

    sample = draw(st.sampled_from(ZIPS))
    with zipfile.ZipFile(io.BytesIO(sample.files[sample.entry])) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    victim = draw(st.integers(0, len(members) - 1))
    method = draw(st.sampled_from(BOMB_METHODS))
    size = draw(st.sampled_from([64 * 1024**2, 8 * 1024**2, 2 * 1024**2]))
    data = _bomb(method, size)
    declared = draw(st.sampled_from([0, 1000, len(data) * 150, size, size * 2]))
    crc = draw(st.sampled_from([0, zlib.crc32(bytes(size))]))
    entries = []
    for i, (name, body) in enumerate(members):
        if i == victim:
            entries.append(Entry(name, method, crc, len(data), declared, [data]))
        else:
            entries.append(Entry(name, zipfile.ZIP_STORED, zlib.crc32(body), len(body), len(body), [body]))
    path = io.BytesIO()
    folder = Path(tempfile.mkdtemp())
    try:
        write_raw_zip(folder / "x.keras", entries)
        out = (folder / "x.keras").read_bytes()
    finally:
        shutil.rmtree(folder)
    del path
    return sample, Files({sample.entry: out}), draw(st.booleans())


@settings(FUZZ, max_examples=min(EXAMPLES, 40) if not LONG_RUN else EXAMPLES)
@given(case=bombed_archive())
def test_bombs_of_every_method(workdir, case):
    assert_contract(workdir, *case)


@st.composite
def large_structure(draw: st.DrawFn) -> tuple[str, int]:
    return draw(st.sampled_from(["shard-names", "empty-groups", "layer-name-chunks", "graph-cycle"])), draw(
        st.sampled_from([10, 1000, 5000])
    )


@settings(FUZZ, max_examples=12 if not LONG_RUN else max(12, EXAMPLES // 100))
@given(case=large_structure())
def test_large_n_structures_stay_linear(workdir, case):
    """Thousands of shard names, empty groups, layer_names chunks, or a graph with a cycle: the
    contract holds within a time that only a linear walk meets."""
    import time

    import numpy as np

    kind, n = case
    folder = workdir / f"case{next(_cases)}"
    folder.mkdir()
    config = None
    try:
        if kind == "shard-names":
            for shard in VARIANTS.glob("rnn_seq_0000*.weights.h5"):
                shutil.copy(shard, folder / shard.name)
            index = json.loads((VARIANTS / "rnn_seq.weights.json").read_text())
            index["weight_map"].update({f"/extra/{i}": [f"s{i}.h5"] for i in range(n)})
            (folder / "rnn_seq.weights.json").write_text(json.dumps(index))
            source, config = folder / "rnn_seq.weights.json", FIXTURES / "k3/rnn_seq.json"
        elif kind == "empty-groups":
            source = folder / "groups.weights.h5"
            with h5py.File(source, "w") as f:
                for i in range(n):
                    f.create_group(f"layers/dense_{i}/vars")
        elif kind == "layer-name-chunks":
            source = folder / "chunks.h5"
            shutil.copy(FIXTURES / "k3/rnn_seq.h5", source)
            with h5py.File(source, "r+") as f:
                group = f["model_weights"]
                names = [v.decode() if isinstance(v, bytes) else str(v) for v in group.attrs["layer_names"]]
                del group.attrs["layer_names"]
                for i in range(n):
                    value = np.array([names[i].encode()]) if i < len(names) else np.zeros(0, "f4")
                    group.attrs[f"layer_names{i}"] = value
        else:
            with zipfile.ZipFile(FIXTURES / "k3/functional.keras") as archive:
                members = {info.filename: archive.read(info) for info in archive.infolist()}
            document = json.loads(members["config.json"])
            layers = document["config"]["layers"]
            embed = next(layer for layer in layers if layer["config"]["name"] == "embed")
            embed["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["lstm_seq", 0, 0]
            members["config.json"] = json.dumps(document).encode()
            source = folder / "cyclic.keras"
            with zipfile.ZipFile(source, "w") as archive:
                for name, data in members.items():
                    archive.writestr(name, data)
        start = time.perf_counter()
        try:
            with kerasweights.open(source, config=config) as model:
                exercise(model)
                if kind == "graph-cycle":
                    from kerasweights.trace.forward import trace_from_input

                    trace_from_input(model, "lstm_seq", np.zeros((1, 6), np.int32))
        except KerasWeightsError as exc:
            assert "\n" not in str(exc) and str(exc) == f"{source}: {exc.problem}", str(exc)
        assert time.perf_counter() - start < 30 + n / 100  # seconds: a quadratic walk of 5,000 takes minutes
    finally:
        shutil.rmtree(folder)


# -- round 3 (issue 13): dataset headers the guard decodes instead of libhdf5 ---------------------------

H5_SAMPLES = [s for s in SAMPLES if len(s.files) == 1 and s.entry.endswith(".h5")]


@functools.cache
def _dataset_headers(sample: Sample) -> list[int]:
    """Where each dataset's object header starts in ``sample``'s file."""
    addresses: list[int] = []
    with h5py.File(io.BytesIO(sample.files[sample.entry]), "r") as h5:
        h5.visititems(
            lambda _, node: (
                addresses.append(h5py.h5o.get_info(node.id).addr) if isinstance(node, h5py.Dataset) else None
            )
        )
    return addresses


@st.composite
def header_flipped(draw: st.DrawFn) -> tuple[Sample, dict[str, bytes]]:
    """Bits flipped in the first 256 bytes of a dataset's object header: its dataspace, datatype,
    fill value and layout messages, which a summary decodes without libhdf5."""
    sample = draw(st.sampled_from(H5_SAMPLES))
    data = bytearray(sample.files[sample.entry])
    start = draw(st.sampled_from(_dataset_headers(sample)))
    for offset, bit in draw(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 7)), min_size=1, max_size=4)):
        if start + offset < len(data):
            data[start + offset] ^= 1 << bit
    return sample, Files({sample.entry: bytes(data)})


@FUZZ
@given(case=header_flipped())
def test_damaged_dataset_headers_decode_as_libhdf5_reads_them(workdir, case):
    """The contract holds, and a shape or dtype the guard decodes is the one libhdf5 opens (when it
    opens the dataset at all: when it does not, reading says so, in one line)."""
    sample, files = case
    assert_contract(workdir, sample, files)
    try:
        with _hdf5.open_h5(io.BytesIO(files[sample.entry]), owned=True) as h5:
            tree = _hdf5.Tree(h5)
            for where, kind in tree.kinds.items():
                facts = tree.dataset_facts(where) if kind == h5py.h5o.TYPE_DATASET else None
                if facts is None:
                    continue
                try:
                    dsid = h5py.h5d.open(h5.id, where.encode("utf-8", "surrogateescape"))
                except (OSError, KeyError, ValueError, TypeError):
                    continue
                assert (facts.shape, facts.dtype) == (dsid.shape, str(dsid.dtype)), where
    except KerasWeightsError:
        pass  # (the file as a whole is refused: assert_contract checked how)
