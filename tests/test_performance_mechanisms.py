"""The mechanisms that make kerasweights fast, asserted directly (never by wall-clock time).

- ``summary`` reads HDF5 metadata only: no dataset is read, in any format;
- a stored ``.keras`` member is read in place through a :class:`MemberWindow`, and
  ``summary`` touches a few kilobytes of it; a compressed member is inflated to a temp file;
- named matrices are views of the stored array;
- ``import kerasweights`` leaves heavy optional modules alone.

The timings these mechanisms buy are measured by ``bench/run.py`` (docs/performance.md).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, all_model_files

import kerasweights
from kerasweights.cli import _render as render
from kerasweights.cli import main
from kerasweights.formats import _hdf5, _zip
from kerasweights.store import StoredArray

VARIANTS = FIXTURES / "variants"
K3_CONFIG = FIXTURES / "k3" / "rnn_seq.json"


def every_file() -> list[Any]:
    """(file, config) over every fixture model in every format, plus the format variants."""
    params = [pytest.param(p.values[0], p.values[1], id=p.id) for p in all_model_files()]
    for name, config in (
        ("rnn_seq.deflate.keras", None),
        ("rnn_seq.deflate64.keras", None),
        ("rnn_seq_dir", None),
        ("rnn_seq.weights.json", K3_CONFIG),
        ("compiled.keras", None),
        ("compiled.h5", None),
    ):
        params.append(pytest.param(VARIANTS / name, config, id=f"variants/{name}"))
    return params


# -- 1. summary reads no dataset ------------------------------------------------------------------


@pytest.fixture
def data_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every attempt to read dataset values, through h5py or through kerasweights' readers."""
    calls: list[str] = []

    def spy(where: str, original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(f"{where} {getattr(self, 'name', getattr(self, 'key', ''))}")
            return original(self, *args, **kwargs)

        return wrapper

    for method in ("__getitem__", "read_direct", "__array__", "__iter__"):
        monkeypatch.setattr(h5py.Dataset, method, spy(f"h5py.Dataset.{method}", getattr(h5py.Dataset, method)))
    monkeypatch.setattr(StoredArray, "read", spy("StoredArray.read", StoredArray.read))
    monkeypatch.setattr(StoredArray, "read_part", spy("StoredArray.read_part", StoredArray.read_part))
    original_read_dataset = _hdf5.read_dataset

    def read_dataset(ds: h5py.Dataset, limits: Any, index: Any = ()) -> np.ndarray:
        calls.append(f"read_dataset {ds.name}")
        return original_read_dataset(ds, limits, index)

    monkeypatch.setattr(_hdf5, "read_dataset", read_dataset)
    return calls


@pytest.mark.parametrize(("path", "config"), every_file())
def test_summary_reads_no_dataset(path: Path, config: Path | None, data_reads: list[str]) -> None:
    with kerasweights.open(path, config=config) as model:
        list(model.walk())
        render.summary_dict(model)
        render.summary_table(model)
        assert model.total_params > 0
        assert not any(w.array.is_loaded for w in model.weights())
    assert data_reads == []


@pytest.mark.parametrize("as_json", [pytest.param(False, id="table"), pytest.param(True, id="json")])
@pytest.mark.parametrize(("path", "config"), every_file())
def test_summary_command_reads_no_dataset(
    path: Path, config: Path | None, as_json: bool, data_reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["summary", str(path), *(["--config", str(config)] if config else []), *(["--json"] if as_json else [])]
    assert main(argv) == 0
    assert "Total params" in capsys.readouterr().out or as_json
    assert data_reads == []


def test_the_spy_sees_a_read(data_reads: list[str]) -> None:
    """Guards the test above: reading a weight is noticed."""
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as model:
        model.layer("enc_gru").matrix("kernel_z").read()
    assert any(call.startswith("read_dataset /layers/gru/cell/vars/0") for call in data_reads)


@pytest.fixture
def dataset_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every dataset opened through libhdf5 (by path, as the readers open them)."""
    opened: list[str] = []
    original = h5py.h5d.open

    def spy(loc: Any, name: bytes, *args: Any, **kwargs: Any) -> Any:
        opened.append(name.decode("utf-8", "surrogateescape"))
        return original(loc, name, *args, **kwargs)

    monkeypatch.setattr(h5py.h5d, "open", spy)
    return opened


@pytest.mark.parametrize(("path", "config"), every_file())
def test_summary_opens_no_dataset(path: Path, config: Path | None, dataset_opens: list[str]) -> None:
    """Shapes and dtypes come from each dataset's object header (``tests/test_h5_headers.py``
    holds them to libhdf5's); a dataset is opened when it is read. Only bfloat16, an opaque
    HDF5 type, is left to libhdf5."""
    with kerasweights.open(path, config=config) as model:
        render.summary_dict(model)
        opaque = [w.array.key for w in model.weights() if w.dtype == "bfloat16"]
    assert [name for name in dataset_opens if not any(key.endswith(name) for key in opaque)] == []


def test_the_open_spy_sees_a_read(dataset_opens: list[str]) -> None:
    """Guards the test above: reading a weight opens its dataset, and that is noticed."""
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.h5") as model:
        assert dataset_opens == []
        model.layer("enc_gru").weight("kernel").read()
    assert len(dataset_opens) == 1


# -- 2. a stored .keras member is read in place ----------------------------------------------------


class CountingFile(io.RawIOBase):
    """A binary file that records every (offset, length) read from it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(pos, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        start = self._file.tell()
        n = self._file.readinto(buffer) or 0
        self.reads.append((start, n))
        return n

    def read(self, size: int = -1) -> bytes:
        start = self._file.tell()
        data = self._file.read(size)
        self.reads.append((start, len(data)))
        return data

    @property
    def bytes_read(self) -> int:
        return sum(n for _, n in self.reads)

    def bytes_read_in(self, start: int, length: int, since: int = 0) -> int:
        """Bytes read within ``[start, start + length)`` by the reads from number ``since`` on."""
        return sum(max(0, min(start + length, pos + n) - max(start, pos)) for pos, n in self.reads[since:])

    def close(self) -> None:
        self._file.close()
        super().close()


def build_archive(path: Path, layers: list[tuple[str, str, int, int]], compression: int = zipfile.ZIP_STORED) -> None:
    """A ``.keras`` archive laid out as Keras 3 saves it, for a Sequential of LSTM/Dense layers.

    ``layers`` are (class, name, input size, units); weights are random float32.
    """
    rng = np.random.default_rng(7)
    config_layers: list[dict[str, Any]] = [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 5, layers[0][2]]}}
    ]
    counters: dict[str, int] = {}
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        for class_name, name, n_in, units in layers:
            snake = class_name.lower()
            count = counters.get(snake, 0)
            counters[snake] = count + 1
            key = f"layers/{snake}" + (f"_{count}" if count else "")
            h5.create_group(f"{key}/vars").attrs["name"] = name
            if class_name == "LSTM":
                group = h5.create_group(f"{key}/cell/vars")
                group.attrs["name"] = "lstm_cell"
                shapes = [(n_in, 4 * units), (units, 4 * units), (4 * units,)]
            else:
                group = h5[f"{key}/vars"]
                shapes = [(n_in, units), (units,)]
            for i, shape in enumerate(shapes):
                group.create_dataset(str(i), data=rng.standard_normal(shape, dtype=np.float32))
            config_layers.append(
                {"module": "keras.layers", "class_name": class_name, "config": {"name": name, "units": units}}
            )
        h5.create_group("vars").attrs["name"] = "big"
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "big", "layers": config_layers}}
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())


LAYERS = [("LSTM", "lstm_a", 64, 256), ("LSTM", "lstm_b", 256, 256), ("Dense", "head", 256, 512)]


@pytest.fixture
def stored_archive(tmp_path: Path) -> Path:
    path = tmp_path / "big.keras"
    build_archive(path, LAYERS)  # about 4 MB of weights
    return path


@pytest.fixture
def opened_on(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each HDF5 file is opened on (a path, a MemberWindow, a temp file...)."""
    sources: list[Any] = []
    original = _hdf5.open_h5

    def open_h5(source: Any) -> h5py.File:
        sources.append(source)
        return original(source)

    monkeypatch.setattr(_hdf5, "open_h5", open_h5)
    return sources


def dataset_extents(path: Path) -> dict[str, tuple[int, int]]:
    """Where each dataset's values lie in the archive: name -> (offset, length)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
        member = archive.read(info)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
    start = info.header_offset + 30 + int(name_len) + int(extra_len)
    extents: dict[str, tuple[int, int]] = {}
    with h5py.File(io.BytesIO(member), "r") as h5:
        h5.visititems(
            lambda name, node: (
                extents.__setitem__(name, (start + node.id.get_offset(), node.id.get_storage_size()))
                if isinstance(node, h5py.Dataset)
                else None
            )
        )
    return extents


def test_stored_member_is_opened_in_place(
    stored_archive: Path, opened_on: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_copy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a stored member must not be copied to a temporary file")

    monkeypatch.setattr(_zip.tempfile, "TemporaryFile", no_copy)
    with kerasweights.open(stored_archive) as model:
        assert model.format == "keras-zip"
        assert model.find("head/kernel").read().shape == (256, 512)
    assert len(opened_on) == 1
    assert isinstance(opened_on[0], _zip.MemberWindow)


def test_summary_reads_a_few_kilobytes_of_a_stored_member(stored_archive: Path) -> None:
    extents = dataset_extents(stored_archive)
    data_bytes = sum(length for _, length in extents.values())
    assert data_bytes > 3_000_000
    archive = CountingFile(stored_archive)
    with kerasweights.open(archive) as model:
        render.summary_dict(model)
        render.summary_table(model)
        assert model.total_params == data_bytes // 4
        summary_bytes = archive.bytes_read
        # HDF5 reads object headers speculatively (a few hundred bytes), which may
        # spill into the values stored next to them; no more than that is touched.
        spilled = {name: archive.bytes_read_in(*extent) for name, extent in extents.items()}
        assert summary_bytes < data_bytes / 50, f"{summary_bytes:,} bytes read for a summary"
        assert all(n <= 1024 for n in spilled.values()), spilled

        # Reading one weight reads that weight's bytes, not the archive.
        before, reads_before = archive.bytes_read, len(archive.reads)
        kernel = model.find("lstm_b/kernel").read()
        offset, length = extents["layers/lstm_1/cell/vars/0"]
        assert kernel.nbytes == length
        assert archive.bytes_read_in(offset, length, since=reads_before) == length
        assert archive.bytes_read - before < length + 64 * 1024
    archive.close()


def test_compressed_member_is_inflated_to_a_temporary_file(opened_on: list[Any]) -> None:
    with kerasweights.open(VARIANTS / "rnn_seq.deflate.keras") as model:
        assert model.total_params > 0
        (source,) = opened_on
        assert not isinstance(source, (io.BytesIO, _zip.MemberWindow))
        assert source.fileno() >= 0  # a real (anonymous) file on disk, not memory
    assert source.closed


# -- 3. matrices are views once the stored array is loaded; partial reads before -------------------


@pytest.mark.parametrize(("path", "config"), every_file())
def test_matrices_are_read_only_views_of_the_stored_array(path: Path, config: Path | None) -> None:
    with kerasweights.open(path, config=config) as model:
        matrices = model.matrices()
        assert matrices
        for key, matrix in matrices.items():
            stored = matrix.weight.read()
            values = matrix.read()
            assert np.shares_memory(values, stored), key
            assert not values.flags.writeable, key
            assert matrix.weight.read() is stored, f"{key}: the stored array was read twice"


@pytest.mark.parametrize(("path", "config"), every_file())
def test_one_matrix_reads_only_its_part(path: Path, config: Path | None) -> None:
    with kerasweights.open(path, config=config) as model:
        for key, matrix in model.matrices().items():
            if not matrix.index:
                continue  # the whole stored array: loading it is reading just this matrix
            values = matrix.read()
            assert not matrix.weight.array.is_loaded, f"{key}: the whole stored array was loaded"
            assert values.shape == matrix.shape and not values.flags.writeable, key
            np.testing.assert_array_equal(values, matrix.weight.read()[(*matrix.index, Ellipsis)])
            matrix.weight.array._value = None


# -- 4. import cost --------------------------------------------------------------------------------

HEAVY = (
    "tabulate",
    "zipfile_deflate64",
    "matplotlib",
    "safetensors",
    "fsspec",
    "dask",
    "distributed",
    "aiohttp",
    "torch",
    "google",  # google.protobuf
    "google_crc32c",
)


def imported_after(code: str, top_level: bool = True) -> set[str]:
    """Module names (top-level ones by default) imported by a fresh interpreter running ``code``."""
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=FIXTURES.parent
    )
    names = json.loads(out.stdout.splitlines()[-1])
    return {name.split(".")[0] for name in names} if top_level else set(names)


def test_import_leaves_optional_modules_alone() -> None:
    assert imported_after("import kerasweights").isdisjoint(HEAVY)


def test_cli_import_leaves_optional_modules_alone() -> None:
    assert imported_after("import kerasweights.cli").isdisjoint(HEAVY)


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        pytest.param(["summary", "fixtures/k3/rnn_seq.keras"], set(), id="summary-table"),
        pytest.param(["summary", "--json", "fixtures/k3/rnn_seq.keras"], set(), id="summary-json"),
        pytest.param(["summary", "--json", "fixtures/k3/rnn_seq.h5"], set(), id="summary-json-h5"),
        pytest.param(
            ["summary", "--json", "fixtures/variants/rnn_seq.deflate64.keras"], {"zipfile_deflate64"}, id="deflate64"
        ),
        # the small messages of a SavedModel are decoded in Python: no protobuf runtime, and no
        # CRC32C until a tensor (the object graph) is read
        pytest.param(["summary", "--json", "fixtures/tf/rnn_seq_savedmodel"], {"google_crc32c"}, id="savedmodel"),
        pytest.param(["summary", "--json", "fixtures/tf/rnn_seq_tfjs"], set(), id="tfjs"),
    ],
)
def test_summary_imports_only_what_it_uses(argv: list[str], allowed: set[str]) -> None:
    code = f"import contextlib, io\nfrom kerasweights.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n    assert main({argv!r}) == 0"
    assert imported_after(code) & set(HEAVY) == allowed


# The TensorFlow-family readers and SavedModel binding: a .keras or .h5 loads none of them.
TF_FAMILY = {
    "kerasweights.formats.savedmodel",
    "kerasweights.formats.tensor_bundle",
    "kerasweights.formats.tf_objects",
    "kerasweights.formats._protobuf",
    "kerasweights.formats._crc32c",
    "kerasweights.formats.tfjs",
    "kerasweights.formats.remote",
    "kerasweights.bind.objects",
}


@pytest.mark.parametrize(
    "argv",
    [
        ["summary", "--json", "fixtures/k3/rnn_seq.keras"],
        ["summary", "fixtures/k3/rnn_seq.keras"],
        ["summary", "--json", "fixtures/k3/rnn_seq.h5"],
        ["summary", "fixtures/tfk/rnn_seq.h5"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_summary_of_keras_and_h5_leaves_the_tf_readers_alone(argv: list[str]) -> None:
    code = f"import contextlib, io\nfrom kerasweights.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n    assert main({argv!r}) == 0"
    imported = imported_after(code, top_level=False)
    assert imported.isdisjoint(TF_FAMILY), sorted(imported & TF_FAMILY)
    assert "kerasweights.bind.inferred" not in imported  # a file with its config infers nothing


def test_lazy_names_still_resolve() -> None:
    """What ``formats`` loads on first use is still reachable by its old names."""
    code = (
        "import kerasweights\n"
        "from kerasweights.formats import TABLE_MAGIC, savedmodel\n"
        "from kerasweights.formats.tensor_bundle import TABLE_MAGIC as magic\n"
        "assert TABLE_MAGIC == magic and kerasweights.formats.tfjs.is_tfjs and kerasweights.formats.remote.is_url"
    )
    imported_after(code)


def test_a_command_imports_only_its_own_module() -> None:
    code = "import contextlib, io\nfrom kerasweights.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n    assert main(['summary', 'fixtures/k3/rnn_seq.keras']) == 0"
    commands = {
        m
        for m in imported_after(code, top_level=False)
        if m.startswith("kerasweights.cli.") and not m.startswith("kerasweights.cli._")
    }
    assert commands == {"kerasweights.cli.summary"}
