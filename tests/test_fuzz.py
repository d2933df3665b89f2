"""Mutation fuzzing of the fixture files (issue 6): whatever the bytes, the contract holds.

Each case mutates a fixture (truncate, flip bits, zero a range, overwrite or insert bytes,
splice two files, re-zip a ``.keras`` with members dropped, duplicated, renamed or
recompressed, or put values of the wrong JSON type into its config). Then either the model
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
from conftest import FIXTURES, all_model_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kerasweights
from kerasweights import KerasWeightsError, LayoutError
from kerasweights.cli import _render as render

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
