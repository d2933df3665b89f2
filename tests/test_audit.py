"""kerasweights.audit: every check on fixtures Keras wrote, on copies edited in tmp_path, and on the corpus."""

from __future__ import annotations

import doctest
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import CORPUS, FIXTURES, ROOT, all_model_files, truth, truth_arrays

import kerasweights
from kerasweights import audit
from kerasweights.audit import CHECKS, FileReport, Finding, audit_file, audit_paths, iter_model_files
from kerasweights.formats import _hdf5

STRUCTURE = [c for c, check in CHECKS.items() if not check.reads_values]
LAMBDA_CODE = json.loads((FIXTURES / "tfk" / "functional.json").read_text())
LAMBDA_B64 = next(l for l in LAMBDA_CODE["config"]["layers"] if l["class_name"] == "Lambda")["config"]["function"][0]


def found(report: FileReport, *codes: str) -> list[tuple[str, str, str | None, str]]:
    """(code, severity, layer, message) of the findings, optionally only some codes."""
    return [(f.code, f.severity, f.layer, f.message) for f in report.findings if not codes or f.code in codes]


def edited_h5(tmp_path: Path, edit: Callable[[h5py.File], None], source: str = "tfk/rnn_seq.h5") -> Path:
    """A copy of a fixture .h5 changed by ``edit`` (opened read-write with h5py)."""
    target = tmp_path / Path(source).name
    shutil.copy(FIXTURES / source, target)
    with h5py.File(target, "r+") as f:
        edit(f)
    return target


def dataset(layer: str, index: int, model: str = "rnn_seq") -> str:
    """Where tf_keras stored weight ``index`` of ``layer`` (model_weights/<layer>/<variable name>)."""
    entry = next(l for l in truth(model, "tfk")["layers"] if l["path"] == layer)
    return f"model_weights/{layer}/{entry['weights'][index]['path']}"


def set_values(layer: str, index: int, change: Callable[[np.ndarray], None]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        values = f[dataset(layer, index)][()]
        change(values)
        f[dataset(layer, index)][...] = values

    return edit


def with_config(tmp_path: Path, change: Callable[[dict[str, Any]], None], version: str | None = None) -> Path:
    """tfk/rnn_seq.h5 with its model_config (and optionally keras_version) rewritten."""

    def edit(f: h5py.File) -> None:
        config = json.loads(f.attrs["model_config"])
        change(config)
        f.attrs["model_config"] = json.dumps(config)
        if version is not None:
            f.attrs["keras_version"] = version

    return edited_h5(tmp_path, edit)


def rezipped(tmp_path: Path, change: Callable[[dict[str, Any]], None], source: str = "k3/rnn_seq.keras") -> Path:
    """A copy of a fixture .keras whose config.json was rewritten."""
    target = tmp_path / Path(source).name
    with zipfile.ZipFile(FIXTURES / source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            new.writestr(info, data)
    return target


# -- what Keras wrote ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_fixture_findings_match_keras(path: Path, config: Path | None, model: str, runtime: str) -> None:
    report = audit_file(path)
    lambdas = [l["path"] for l in truth(model, runtime)["layers"] if l["class_name"] == "Lambda"]
    # weights-only files are audited with the config Keras wrote beside them (X.json)
    assert report.config == (str(config) if config is not None else None)
    assert [f.layer for f in report.findings if f.code == "lambda-layer"] == lambdas
    assert [f for f in report.findings if f.code != "lambda-layer"] == []
    assert report.path == str(path)


@pytest.mark.parametrize(
    "source", ["k3/functional.keras", "k3/functional.h5", "tfk/functional.keras", "tfk/functional.h5"]
)
def test_lambda_layer_double_carries_bytecode(source: str) -> None:
    report = audit_file(FIXTURES / source)
    assert found(report) == [
        (
            "lambda-layer",
            "error",
            "double",
            (
                "Lambda layer 'double': its function is base64-encoded marshalled Python bytecode, "
                "which Keras runs when loading the model (never decoded here)"
            ),
        )
    ]


def test_format_and_version_come_from_the_file() -> None:
    report = audit_file(FIXTURES / "tfk" / "functional.h5")
    assert (report.format, report.keras_version) == ("h5-full", truth("functional", "tfk")["runtime"]["tf_keras"])
    assert report.to_dict()["findings"][0] == {
        "code": "lambda-layer",
        "severity": "error",
        "message": report.findings[0].message,
        "layer": "double",
    }


def test_optimizer_state_size_is_what_keras_stored() -> None:
    arrays = truth_arrays("compiled", "variants")
    size = sum(a.nbytes for k, a in arrays.items() if k.startswith("_optimizer/"))
    for name in ("compiled.keras", "compiled.h5"):
        report = audit_file(FIXTURES / "variants" / name)
        assert found(report) == [
            ("optimizer-state", "info", None, f"the file carries optimizer state ({size:,} bytes)")
        ]


def test_pickled_weights_are_reported_not_unpickled() -> None:
    path = FIXTURES / "variants" / "rnn_seq.npz.keras"
    with pytest.raises(kerasweights.UnsafeContentError):
        kerasweights.open(path)
    report = audit_file(path)
    assert (report.format, report.keras_version) == ("keras-zip", truth("rnn_seq")["runtime"]["keras"])
    assert found(report) == [
        (
            "pickled-weights",
            "error",
            None,
            (
                "weights are stored as model.weights.npz, a pickle: Keras 3.0 to 3.8 load it with allow_pickle=True, "
                "which runs code (never unpickled here)"
            ),
        )
    ]


def test_pickled_weights_archive_still_has_its_config_checked(tmp_path: Path) -> None:
    def add_lambda(config: dict[str, Any]) -> None:
        config["config"]["layers"].append(
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {"name": "sneaky", "function": {"class_name": "__lambda__", "config": {"code": LAMBDA_B64}}},
            }
        )

    report = audit_file(rezipped(tmp_path, add_lambda, "variants/rnn_seq.npz.keras"))
    assert [(f.code, f.layer) for f in report.findings] == [("lambda-layer", "sneaky"), ("pickled-weights", None)]


# -- unreadable files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"", "file is empty", id="empty"),
        pytest.param(b"hello, not a model", "not a Keras model file (neither HDF5, zip archive nor JSON)", id="text"),
        pytest.param(None, "no such file or directory", id="missing"),
    ],
)
def test_unreadable_is_a_finding(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "model.h5"
    if content is not None:
        path.write_bytes(content)
    report = audit_file(path)
    assert found(report) == [("unreadable", "error", None, problem)]
    assert (report.format, report.keras_version) == (None, None)


@pytest.mark.parametrize("source", ["k3/rnn_seq.keras", "k3/rnn_seq.h5", "tfk/rnn_seq.h5"])
def test_truncated_file_is_unreadable(tmp_path: Path, source: str) -> None:
    data = (FIXTURES / source).read_bytes()
    path = tmp_path / Path(source).name
    path.write_bytes(data[: len(data) // 2])
    report = audit_file(path)
    assert [f.code for f in report.findings] == ["unreadable"]
    assert "\n" not in report.findings[0].message and report.findings[0].message
    assert "truncated" in report.findings[0].message


@pytest.mark.parametrize("keep", [0.01, 0.5, 0.99], ids=["1%", "50%", "99%"])
def test_truncated_keras_archive_says_so(tmp_path: Path, keep: float) -> None:
    data = (FIXTURES / "k3" / "rnn_seq.keras").read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[: int(len(data) * keep)])
    assert found(audit_file(path)) == [
        (
            "unreadable",
            "error",
            None,
            (
                "truncated or corrupt zip archive: it starts like one (a .keras file?) but its member directory "
                "at the end cannot be read"
            ),
        )
    ]


def test_unnamed_variables_of_custom_layers_are_described(tmp_path: Path) -> None:
    def custom_head(config: dict[str, Any]) -> None:  # Keras 3 then stores head's variables as vars/0, vars/1
        head = next(l for l in config["config"]["layers"] if l["config"]["name"] == "lstm_last")
        head.update(module="mypkg.layers", class_name="MyLSTM", registered_name="mypkg>MyLSTM")

    path = rezipped(tmp_path, custom_head)
    with zipfile.ZipFile(path) as z:
        weights = z.read("model.weights.h5")
    target = tmp_path / "zeroed.keras"
    scratch = tmp_path / "w.h5"
    scratch.write_bytes(weights)
    with kerasweights.open(path) as model:
        key = model.layer("lstm_last").weights[2].array.key
        assert model.layer("lstm_last").weights[2].name == "2"
    with h5py.File(scratch, "r+") as f:
        f[key][...] = 0
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, scratch.read_bytes() if info.filename == "model.weights.h5" else old.read(info))
    [message] = [f.message for f in audit_file(target).findings if f.code == "all-zero"]
    assert message.startswith(f"unnamed variable 2 (stored at {key}, shape (12,)) is all zeros (12 values)")


# -- numbers ---------------------------------------------------------------------------------------


def test_nan_and_inf_are_counted_per_matrix(tmp_path: Path) -> None:
    def poison(kernel: np.ndarray) -> None:  # enc_gru kernel (6, 15): gates z, r, h of 5 units
        kernel[0, 0] = np.nan
        kernel[2, 6] = np.inf
        kernel[3, 7] = -np.inf

    report = audit_file(edited_h5(tmp_path, set_values("enc_gru", 0, poison)))
    assert found(report) == [
        ("non-finite", "error", "enc_gru", "kernel_z (kernel[:, 0:5]): 1 of 30 values are not finite (1 NaN)"),
        (
            "non-finite",
            "error",
            "enc_gru",
            "kernel_r (kernel[:, 5:10]): 2 of 30 values are not finite (1 +Inf, 1 -Inf)",
        ),
    ]


def test_all_zero_kernel_warns_and_all_zero_bias_informs(tmp_path: Path) -> None:
    def zero(f: h5py.File) -> None:
        for index in (0, 1):
            f[dataset("head", index)][...] = 0

    report = audit_file(edited_h5(tmp_path, zero))
    assert found(report) == [
        ("all-zero", "warning", "head", "kernel is all zeros (6 values): its layer passes nothing on"),
        ("all-zero", "info", "head", "bias is all zeros (2 values): a bias that was never trained, or is unused"),
    ]


def test_dead_units_and_inputs(tmp_path: Path) -> None:
    def kill(kernel: np.ndarray) -> None:  # my_rnn kernel (4 inputs, 6 units)
        kernel[:, 2] = 0
        kernel[1, :] = 0

    report = audit_file(edited_h5(tmp_path, set_values("my_rnn", 0, kill)))
    assert found(report) == [
        (
            "dead-units",
            "warning",
            "my_rnn",
            "kernel: 1 of 6 units (columns 2) and 1 of 4 inputs (rows 1) have all-zero weights",
        ),
    ]


def test_extreme_magnitude(tmp_path: Path) -> None:
    def blow_up(kernel: np.ndarray) -> None:  # lstm_last kernel (4, 12): gates i, f, c, o of 3 units
        kernel[0, 0] = 5000.0

    report = audit_file(edited_h5(tmp_path, set_values("lstm_last", 0, blow_up)))
    assert found(report) == [
        (
            "extreme-magnitude",
            "warning",
            "lstm_last",
            "kernel_i (kernel[:, 0:3]): 1 of 12 values beyond ±1,000 (largest |w| = 5000)",
        ),
    ]


def test_saturating_forget_gate_bias(tmp_path: Path) -> None:
    def saturate(bias: np.ndarray) -> None:  # lstm_last bias (12,): i 0:3, f 3:6
        bias[3:6] = [15.0, -12.0, 0.1]

    report = audit_file(edited_h5(tmp_path, set_values("lstm_last", 2, saturate)))
    assert found(report) == [
        (
            "saturating-gate-bias",
            "warning",
            "lstm_last",
            (
                "forget gate (f) bias: 1 above +10 (always open) and 1 below -10 (always shut) of 3 "
                "units; largest |b| = 15"
            ),
        )
    ]


def test_gru_reset_after_gate_bias_is_input_plus_recurrent(tmp_path: Path) -> None:
    def split(bias: np.ndarray) -> None:  # enc_gru bias (2, 15): each row 6 on z, the sum 12
        bias[:, 0:5] = 6.0

    report = audit_file(edited_h5(tmp_path, set_values("enc_gru", 2, split)))
    assert found(report) == [
        (
            "saturating-gate-bias",
            "warning",
            "enc_gru",
            "update gate (z) bias (input + recurrent bias): 5 above +10 (always open) of 5 units; largest |b| = 12",
        )
    ]


def test_large_recurrent_spectral_norm(tmp_path: Path) -> None:
    def scale(recurrent: np.ndarray) -> None:  # my_rnn recurrent_kernel (6, 6)
        recurrent[...] = 20.0 * np.eye(6)

    report = audit_file(edited_h5(tmp_path, set_values("my_rnn", 1, scale)))
    assert found(report) == [
        (
            "large-spectral-norm",
            "info",
            "my_rnn",
            "recurrent_kernel: spectral norm 20 is above 10; the recurrence can make activations and gradients explode",
        )
    ]


@pytest.mark.parametrize("shape", [(5, 5), (64, 64), (128, 128), (40, 7)], ids=str)
def test_spectral_norm_by_power_iteration_matches_svd(shape: tuple[int, int]) -> None:
    matrix = np.random.default_rng(1).standard_normal(shape)
    exact = np.linalg.svd(matrix, compute_uv=False)[0]
    estimate = audit.numeric.spectral_norm(matrix)
    assert estimate <= exact * (1 + 1e-12)
    assert estimate == pytest.approx(exact, rel=1e-4)


def test_structure_checks_read_no_values_and_numeric_checks_read_each_array_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    original = _hdf5.read_dataset

    def counting(ds: h5py.Dataset, limits: Any, index: Any = ()) -> np.ndarray:
        reads.append(ds.name)
        return original(ds, limits, index)

    monkeypatch.setattr(_hdf5, "read_dataset", counting)
    path = FIXTURES / "k3" / "functional.keras"
    audit_file(path, select=STRUCTURE)
    assert reads == []
    audit_file(path)
    stored = sum(
        len(l["weights"])
        for l in truth("functional")["layers"]
        if not any(other["path"].startswith(l["path"] + "/") for other in truth("functional")["layers"])
    )
    assert len(reads) == len(set(reads)) == stored


# -- HDF5 links ----------------------------------------------------------------------------------------


def test_external_link_beside_the_weights(tmp_path: Path) -> None:
    def link(f: h5py.File) -> None:
        f["model_weights/elink"] = h5py.ExternalLink("elsewhere.h5", "/data")

    report = audit_file(edited_h5(tmp_path, link))
    assert found(report) == [
        (
            "external-link",
            "error",
            None,
            "/model_weights/elink is an external link to elsewhere.h5:/data (never followed)",
        ),
    ]


def test_external_link_in_place_of_a_weight_is_reported_not_unreadable(tmp_path: Path) -> None:
    def swap(f: h5py.File) -> None:
        del f[dataset("enc_gru", 0)]
        f[dataset("enc_gru", 0)] = h5py.ExternalLink("elsewhere.h5", "/kernel")

    report = audit_file(edited_h5(tmp_path, swap))
    assert found(report) == [
        (
            "external-link",
            "error",
            None,
            f"/{dataset('enc_gru', 0)} is an external link to elsewhere.h5:/kernel (never followed)",
        )
    ]
    assert (report.format, report.keras_version) == ("h5-full", truth("rnn_seq", "tfk")["runtime"]["tf_keras"])


def test_external_storage_virtual_dataset_and_soft_link(tmp_path: Path) -> None:
    def rewire(f: h5py.File) -> None:
        del f[dataset("enc_gru", 0)]
        f.create_dataset(dataset("enc_gru", 0), shape=(6, 15), dtype="f4", external=[("raw.bin", 0, 360)])
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource("other.h5", "data", shape=(4,))
        f.create_virtual_dataset("model_weights/vds", layout)
        f["model_weights/alias"] = h5py.SoftLink("/model_weights/head")

    report = audit_file(edited_h5(tmp_path, rewire))
    assert found(report) == [
        (
            "external-link",
            "error",
            "enc_gru",
            f"/{dataset('enc_gru', 0)} keeps its data in external files raw.bin (never followed)",
        ),
        (
            "external-link",
            "error",
            None,
            "/model_weights/vds is a virtual dataset mapping other files (never followed)",
        ),
        (
            "external-link",
            "warning",
            None,
            "/model_weights/alias is a soft link to /model_weights/head (never followed)",
        ),
    ]
    assert not (tmp_path / "raw.bin").exists() or (tmp_path / "raw.bin").stat().st_size == 0


# -- config checks --------------------------------------------------------------------------------------


def _tfk_lambda(name: str, function: Any, function_type: str = "lambda", module: str = "__main__") -> dict[str, Any]:
    return {
        "class_name": "Lambda",
        "config": {
            "name": name,
            "function": function,
            "function_type": function_type,
            "module": module,
            "output_shape": None,
            "arguments": {},
        },
    }


def test_lambda_layers_anywhere_in_the_tree(tmp_path: Path) -> None:
    marshal_text = "\u00e3\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0002\u0000\u0000\u0000S\u0000\u0000\u0000"

    def nest(config: dict[str, Any]) -> None:
        config["config"]["layers"] += [
            {
                "class_name": "Sequential",
                "config": {"name": "inner", "layers": [_tfk_lambda("deep", [marshal_text, None, None])]},
            },
            {
                "class_name": "TimeDistributed",
                "config": {"name": "td_lam", "layer": _tfk_lambda("wrapped", "my_fn", "function")},
            },
            {
                "class_name": "Bidirectional",
                "config": {"name": "bi", "layer": {"class_name": "GRU", "config": {"name": "g", "units": 2}}},
            },
            {
                "class_name": "MyBlock",
                "config": {"name": "block", "body": _tfk_lambda("hidden", [LAMBDA_B64, None, None])},
            },
        ]

    report = audit_file(with_config(tmp_path, nest))
    assert found(report, "lambda-layer", "unsafe-config") == [
        (
            "lambda-layer",
            "error",
            "inner/deep",
            (
                "Lambda layer 'deep': its function is marshalled Python bytecode, which Keras runs when "
                "loading the model (never decoded here)"
            ),
        ),
        (
            "lambda-layer",
            "error",
            "td_lam/wrapped",
            "Lambda layer 'wrapped' carries no bytecode; it calls the function __main__.my_fn by name",
        ),
        (
            "lambda-layer",
            "error",
            "block/hidden",
            (
                "Lambda layer 'hidden': its function is base64-encoded marshalled Python bytecode, which "
                "Keras runs when loading the model (never decoded here)"
            ),
        ),
        (
            "unsafe-config",
            "error",
            "td_lam/wrapped",
            "Lambda function 'my_fn' is looked up by name in module '__main__' and called when the model runs",
        ),
    ]


@pytest.mark.parametrize(
    ("version", "labels"),
    [
        pytest.param(
            "2.2.4-tf",
            ["Keras before 2.13 runs it on load, with no safe_mode to stop it (CVE-2024-3660)"],
            id="2.2.4-tf",
        ),
        pytest.param(
            "2.12.0", ["Keras before 2.13 runs it on load, with no safe_mode to stop it (CVE-2024-3660)"], id="2.12.0"
        ),
        pytest.param("2.13.1", [], id="2.13.1"),
        pytest.param(
            "3.10.0", ["Keras 3.0 to 3.11.2 ignore safe_mode for legacy .h5 files (CVE-2025-9905)"], id="3.10.0"
        ),
        pytest.param("3.11.3", [], id="3.11.3"),
    ],
)
def test_lambda_cve_labels_follow_the_file_version(tmp_path: Path, version: str, labels: list[str]) -> None:
    def add(config: dict[str, Any]) -> None:
        config["config"]["layers"].append(_tfk_lambda("lam", [LAMBDA_B64, None, None]))

    report = audit_file(with_config(tmp_path, add, version))
    base = (
        "Lambda layer 'lam': its function is base64-encoded marshalled Python bytecode, which Keras runs "
        "when loading the model (never decoded here)"
    )
    assert found(report, "lambda-layer") == [("lambda-layer", "error", "lam", "; ".join([base, *labels]))]


def test_cve_2025_9905_is_for_legacy_h5_only(tmp_path: Path) -> None:
    def add(config: dict[str, Any]) -> None:
        config["config"]["layers"].append(
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {"name": "lam", "function": {"class_name": "__lambda__", "config": {"code": LAMBDA_B64}}},
            }
        )

    path = rezipped(tmp_path, add)
    with zipfile.ZipFile(path) as old:
        members = {i.filename: old.read(i) for i in old.infolist()}
    members["metadata.json"] = json.dumps({"keras_version": "3.10.0"}).encode()
    with zipfile.ZipFile(path, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)
    report = audit_file(path)
    assert report.keras_version == "3.10.0"
    assert "CVE" not in report.findings[0].message


def test_unsafe_config_entries(tmp_path: Path) -> None:
    def inject(config: dict[str, Any]) -> None:
        layers = config["config"]["layers"]
        head = layers[-1]["config"]
        head["activation"] = {"class_name": "__lambda__", "config": {"value": [LAMBDA_B64, None, None]}}
        head["bias_constraint"] = {"module": "subprocess", "class_name": "Popen", "config": {"args": "true"}}
        layers += [
            {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "tfsm", "filepath": "/srv/saved"}},
            {
                "module": "keras.layers",
                "class_name": "TorchModuleWrapper",
                "config": {"name": "torchy", "module": "gASV"},
            },
            {
                "module": "keras.layers",
                "class_name": "StringLookup",
                "config": {"name": "lookup", "vocabulary": "/etc/passwd"},
            },
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "name": "gadget",
                    "function": {
                        "module": "keras.config",
                        "class_name": "function",
                        "config": "enable_unsafe_deserialization",
                        "registered_name": "function",
                    },
                },
            },
        ]
        config["compile_config"] = {
            "loss": {"module": "os", "class_name": "function", "config": "system", "registered_name": None},
            "metrics": [
                {
                    "module": "builtins",
                    "class_name": "function",
                    "config": "categorical_crossentropy",
                    "registered_name": "function",
                },
                {"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"},
            ],
        }

    report = audit_file(rezipped(tmp_path, inject))
    assert found(report, "unsafe-config") == [
        (
            "unsafe-config",
            "error",
            "head",
            (
                "'activation' is a Python lambda (base64-encoded marshalled Python bytecode), which "
                "Keras runs when loading the model"
            ),
        ),
        (
            "unsafe-config",
            "error",
            "head",
            "'bias_constraint' references the class subprocess.Popen; Keras imports 'subprocess' to rebuild it",
        ),
        ("unsafe-config", "error", "tfsm", "TFSMLayer loads and runs the TensorFlow SavedModel at '/srv/saved'"),
        (
            "unsafe-config",
            "error",
            "torchy",
            "TorchModuleWrapper stores a pickled PyTorch module; loading it unpickles (runs) code",
        ),
        (
            "unsafe-config",
            "error",
            "lookup",
            "StringLookup vocabulary is the file path '/etc/passwd'; Keras reads that file when loading",
        ),
        (
            "unsafe-config",
            "error",
            "gadget",
            (
                "'function' calls the Keras function keras.config.enable_unsafe_deserialization, which "
                "changes loading or touches files"
            ),
        ),
        (
            "unsafe-config",
            "error",
            None,
            "'compile_config.loss' references the function os.system; Keras imports 'os' and calls it",
        ),
        (
            "unsafe-config",
            "error",
            None,
            "'compile_config.metrics' names the Python builtin 'eval', which Keras before 3.9 resolves and calls",
        ),
    ]
    assert found(report, "lambda-layer") == [
        (
            "lambda-layer",
            "error",
            "gadget",
            (
                "Lambda layer 'gadget' carries no bytecode; it calls the function "
                "keras.config.enable_unsafe_deserialization by name"
            ),
        ),
    ]


def test_custom_layers_and_custom_objects(tmp_path: Path) -> None:
    def inject(config: dict[str, Any]) -> None:
        layers = config["config"]["layers"]
        layers[-1]["config"]["kernel_regularizer"] = {"module": "mypkg.regs", "class_name": "MyReg", "config": {}}
        layers += [
            {
                "module": "mypkg.layers",
                "class_name": "MyBlock",
                "config": {"name": "block"},
                "registered_name": "mypkg>MyBlock",
            },
            {
                "module": "mypkg.layers",
                "class_name": "Dense",
                "config": {"name": "fake_dense", "units": 1},
                "registered_name": "mypkg>Dense",
            },
            {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}},
        ]

    report = audit_file(rezipped(tmp_path, inject))
    assert found(report, "custom-layer") == [
        (
            "custom-layer",
            "warning",
            "block",
            (
                "layer 'block' is a MyBlock from module 'mypkg.layers' (registered as 'mypkg>MyBlock'), "
                "a class Keras does not ship; loading needs its code"
            ),
        ),
        (
            "custom-layer",
            "warning",
            "fake_dense",
            (
                "layer 'fake_dense' is a Dense from module 'mypkg.layers' (registered as 'mypkg>Dense'), "
                "a class Keras does not ship; loading needs its code"
            ),
        ),
        (
            "custom-layer",
            "warning",
            "head",
            "mypkg.regs.MyReg in 'kernel_regularizer' is a class Keras does not ship; loading needs its code",
        ),
    ]


def test_inferred_layers_are_not_custom() -> None:
    report = audit_file(FIXTURES / "tfk" / "rnn_seq_weights.h5")
    with kerasweights.open(FIXTURES / "tfk" / "rnn_seq_weights.h5") as model:
        assert all(layer.inferred for layer in model.walk())
    assert report.findings == []


@pytest.mark.parametrize(
    ("layer", "key", "value", "problem"),
    [
        pytest.param(
            "lstm_last",
            "units",
            4,
            "layer 'lstm_last': kernel has shape (4, 12), expected (?, 16) for units=4",
            id="units",
        ),
        pytest.param(
            "head",
            "use_bias",
            False,
            "layer 'head' (Dense): expected 1 weights (kernel), found 2 (kernel, bias)",
            id="count",
        ),
    ],
)
def test_shape_mismatch(tmp_path: Path, layer: str, key: str, value: Any, problem: str) -> None:
    def change(config: dict[str, Any]) -> None:
        entry = next(l for l in config["config"]["layers"] if l["config"]["name"] == layer)
        entry["config"][key] = value

    report = audit_file(with_config(tmp_path, change), select=STRUCTURE)
    assert found(report) == [("shape-mismatch", "error", layer, problem)]


def test_stored_layer_missing_from_the_config(tmp_path: Path) -> None:
    def drop_head(config: dict[str, Any]) -> None:
        config["config"]["layers"] = [l for l in config["config"]["layers"] if l["config"]["name"] != "head"]

    report = audit_file(with_config(tmp_path, drop_head), select=STRUCTURE)
    assert found(report) == [
        ("shape-mismatch", "error", "head", "stored weights of 'head' belong to no layer of the model config")
    ]


def test_a_failing_check_is_a_finding_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> list[Finding]:
        raise RuntimeError("bug\nin a check")

    monkeypatch.setattr(audit.config_checks, "custom_findings", broken)
    report = audit_file(FIXTURES / "k3" / "functional.keras")
    assert [(f.code, f.message) for f in report.findings] == [
        ("unreadable", "the custom-layer check could not finish (RuntimeError: bug in a check)"),
        ("lambda-layer", report.findings[1].message),
    ]


# -- select, ignore, files, parallel ------------------------------------------------------------------------


def test_select_and_ignore() -> None:
    path = FIXTURES / "variants" / "compiled.keras"
    assert [f.code for f in audit_file(path, select=["optimizer-state"]).findings] == ["optimizer-state"]
    assert audit_file(path, ignore=["optimizer-state"]).findings == []
    with pytest.raises(ValueError, match="unknown check code 'nope'; valid codes: unreadable, lambda-layer"):
        audit_file(path, select=["nope"])


def test_docs_and_docstring_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fsspec")
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs" / "audit.md"), module_relative=False)
    assert result.failed == 0 and result.attempted >= 10
    result = doctest.testmod(audit)
    assert result.failed == 0 and result.attempted >= 2


def test_checks_registry_is_stable() -> None:
    assert list(CHECKS) == [
        "unreadable",
        "lambda-layer",
        "unsafe-config",
        "graph-op",
        "pickled-weights",
        "pickle-member",
        "member-path",
        "executable-member",
        "nested-archive",
        "unexpected-member",
        "external-link",
        "non-finite",
        "custom-layer",
        "shape-mismatch",
        "all-zero",
        "dead-units",
        "extreme-magnitude",
        "saturating-gate-bias",
        "large-spectral-norm",
        "optimizer-state",
    ]
    assert {c.severity for c in CHECKS.values()} <= {"error", "warning", "info"}
    docs = (FIXTURES.parent / "docs" / "audit.md").read_text()
    assert all(f"`{code}`" in docs for code in CHECKS)


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(FIXTURES / "k3" / "rnn_seq.keras", root / "a.keras")
    shutil.copy(FIXTURES / "tfk" / "rnn_seq.h5", root / "sub" / "b.hdf5")
    shutil.copy(FIXTURES / "k3" / "rnn_seq.weights.h5", root / "sub" / "deeper" / "c.weights.h5")
    shutil.copy(FIXTURES / "tfk" / "functional.h5", root / "sub" / "renamed.bin")  # HDF5 by content
    shutil.copy(FIXTURES / "k3" / "functional.keras", root / "sub" / "archive.zip")  # zip with config.json
    shutil.copy(FIXTURES / "k3" / "rnn_seq.truth.npz", root / "arrays.npz")  # a zip, not a model
    (root / "notes.txt").write_text("not a model")
    for name in (
        "rnn_seq.weights.json",
        "rnn_seq_00000.weights.h5",
        "rnn_seq_00001.weights.h5",
        "rnn_seq_00002.weights.h5",
    ):
        shutil.copy(FIXTURES / "variants" / name, root / "sub" / name)
    shutil.copytree(FIXTURES / "variants" / "rnn_seq_dir", root / "saved_dir")
    (root / ".git").mkdir()
    shutil.copy(FIXTURES / "k3" / "rnn_seq.h5", root / ".git" / "lfs.h5")


def test_iter_model_files_walks_by_suffix_and_content(tmp_path: Path) -> None:
    _tree(tmp_path)
    files = iter_model_files([tmp_path, tmp_path / "a.keras", tmp_path / "notes.txt"])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == [
        "a.keras",
        "notes.txt",
        "saved_dir",
        "sub/archive.zip",
        "sub/b.hdf5",
        "sub/deeper/c.weights.h5",
        "sub/renamed.bin",
        "sub/rnn_seq.weights.json",
    ]
    named = ["memory://x/y.keras", str(tmp_path / "missing.h5")]
    assert iter_model_files(named) == sorted(named)


def test_audit_paths_in_parallel_matches_serial_and_is_sorted(tmp_path: Path) -> None:
    _tree(tmp_path)
    serial = audit_paths([tmp_path], jobs=1)
    parallel = audit_paths([tmp_path], jobs=2)
    assert [r.to_dict() for r in parallel] == [r.to_dict() for r in serial]
    assert [r.path for r in serial] == sorted(r.path for r in serial)
    by_name = {Path(r.path).name: [f.code for f in r.findings] for r in serial}
    assert by_name["renamed.bin"] == by_name["archive.zip"] == ["lambda-layer"]
    assert by_name["rnn_seq.weights.json"] == by_name["saved_dir"] == []


def crash_on_bad(path: str, **options: Any) -> FileReport:
    """audit_file, except that a file named bad* kills the worker process (as a crashing reader would)."""
    if Path(path).name.startswith("bad"):
        os._exit(1)
    return audit_file(path, **options)


def test_a_file_that_crashes_a_worker_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.keras", "bad.keras", "c.keras", "d.keras"):
        shutil.copy(FIXTURES / "k3" / "rnn_seq.keras", tmp_path / name)
    monkeypatch.setattr(audit.parallel, "audit_file", crash_on_bad)
    reports = audit_paths([tmp_path], jobs=2)
    assert [(Path(r.path).name, found(r)) for r in reports] == [
        ("a.keras", []),
        ("bad.keras", [("unreadable", "error", None, "reading the file crashed the audit worker process")]),
        ("c.keras", []),
        ("d.keras", []),
    ]


def test_sarif_report() -> None:
    reports = [audit_file(FIXTURES / "k3" / "functional.keras"), audit_file(FIXTURES / "variants" / "compiled.keras")]
    log = audit.sarif_report(reports, "9.9")
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert run["tool"]["driver"]["version"] == "9.9"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == list(CHECKS)
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("lambda-layer", "error"),
        ("optimizer-state", "note"),
    ]
    first = run["results"][0]
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == "lambda-layer"
    assert (
        first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == (FIXTURES / "k3" / "functional.keras").as_uri()
    )
    assert first["locations"][0]["logicalLocations"] == [
        {"name": "double", "fullyQualifiedName": "double", "kind": "member"}
    ]
    assert "logicalLocations" not in run["results"][1]["locations"][0]


def test_sarif_uris_of_relative_paths_and_urls() -> None:
    reports = [
        FileReport("models/my model.h5", findings=[Finding("unreadable", "error", "x")]),
        FileReport("s3://bucket/m.keras", findings=[Finding("unreadable", "error", "x")]),
    ]
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in audit.sarif_report(reports)["runs"][0]["results"]
    ]
    assert uris == ["models/my%20model.h5", "s3://bucket/m.keras"]


def test_dask_cluster_and_bag_recipe(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    dask_bag = pytest.importorskip("dask.bag")
    _tree(tmp_path)
    files = iter_model_files([tmp_path])
    local = [r.to_dict() for r in audit_paths([tmp_path])]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        on_cluster = audit_paths([tmp_path], scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            with_client = list(audit.iter_audit(files, scheduler=client))
            bag = dask_bag.from_sequence(files, npartitions=3).map(audit_file).compute()  # docs/audit.md recipe
    assert [r.to_dict() for r in on_cluster] == [r.to_dict() for r in with_client] == local
    assert [r.to_dict() for r in bag] == local


# -- the corpus: real files other people wrote -----------------------------------------------------------

_CUSTOM_IN_CORPUS = {  # MANIFEST: custom classes these files use
    "hls4ml-example-models/qkeras-v3_3layer.keras": {"QDense", "QActivation"},
    "hls4ml-example-models/hgq_jet_classifier.h5": {"FixedPointQuantizer"},
    "keras-team-keras/pre_pr22362_nested_container.keras": {"NestedDenseModel"},
    "keras-team-keras/subclassed_fixed_model_pr22359.keras": {"TestModel"},
}


@pytest.mark.corpus
def test_corpus_audits_without_crashing() -> None:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.skip("../shared/corpus is absent")
    rows = [line.split("\t") for line in manifest.read_text().splitlines()[1:]]
    reports = {Path(r.path).relative_to(CORPUS).as_posix(): r for r in audit_paths([CORPUS], jobs=2)}
    models = {row[0]: row for row in rows if row[5] != "other"}  # "other": JSON configs, not model files
    assert set(reports) == set(models)
    for name, report in reports.items():
        codes = {f.code for f in report.findings}
        assert report.format == models[name][5] or (name.endswith(".weights.h5") and report.format == "weights-h5"), (
            name
        )
        assert "unreadable" not in codes, (name, report.findings)
        if "Lambda" not in models[name][8]:
            assert "lambda-layer" not in codes, name
        classes = {
            f.message.split(" is a ", 1)[1].split()[0].rstrip(",")
            for f in report.findings
            if f.code == "custom-layer" and f.message.startswith(("layer ", "model "))
        }
        assert classes == _CUSTOM_IN_CORPUS.get(name, set()), name


def test_a_model_behind_a_4096_byte_user_block_is_found_in_a_folder_walk(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "renamed.bin"  # no model suffix: found by content, as kerasweights.open finds it
    with h5py.File(FIXTURES / "k3" / "rnn_seq.h5", "r") as source, h5py.File(path, "w", userblock_size=4096) as out:
        out.attrs.update(source.attrs)
        for name in source:
            source.copy(source[name], out, name)
    with open(path, "rb") as f:
        assert f.read(8) != b"\x89HDF\r\n\x1a\n"  # the signature is at 4096, not at 0
    assert iter_model_files([tmp_path]) == [str(path)]
    assert [f.code for f in audit_paths([tmp_path])[0].findings] == []


# Files written by Keras that truly hold a risk, and the error codes they must get; every
# other fixture and corpus file must get no error-level finding at all.
RISKY_FIXTURES = {
    "k3/functional.h5": {"lambda-layer"},
    "k3/functional.keras": {"lambda-layer"},
    "k3/functional.weights.h5": {"lambda-layer"},  # audited with k3/functional.json beside it
    "tfk/functional.h5": {"lambda-layer"},
    "tfk/functional.keras": {"lambda-layer"},
    "tfk/functional_weights.h5": {"lambda-layer"},
    "variants/rnn_seq.npz.keras": {"pickled-weights"},
    "tf/functional.h5": {"lambda-layer"},
    "tf/functional.json": {"lambda-layer"},  # the model config on its own (a full .h5 beside it)
    "tf/functional_savedmodel": {"lambda-layer"},
    "tf/functional_tfjs": {"lambda-layer"},
    "tf/functional_tfjs_uint8": {"lambda-layer"},
}
RISKY_CORPUS: dict[str, set[str]] = {}


def _errors(root: Path) -> dict[str, set[str]]:
    reports = audit_paths([root], jobs=2)
    assert reports
    return {
        Path(r.path).relative_to(root).as_posix(): {f.code for f in r.findings if f.severity == "error"}
        for r in reports
        if r.worst == "error"
    }


def test_no_error_on_any_fixture_keras_wrote_except_true_risks() -> None:
    assert _errors(FIXTURES) == RISKY_FIXTURES


@pytest.mark.corpus
def test_no_error_on_any_corpus_file_except_true_risks() -> None:
    if not (CORPUS / "MANIFEST.tsv").exists():
        pytest.skip("../shared/corpus is absent")
    assert _errors(CORPUS) == RISKY_CORPUS


def test_dask_workers_get_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    shutil.copy(FIXTURES / "k3" / "functional.keras", tmp_path / "f.keras")
    shutil.copy(FIXTURES / "k3" / "rnn_seq.h5", tmp_path / "r.h5")
    monkeypatch.chdir(tmp_path)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(os.chdir, "/")  # the worker runs elsewhere: relative paths would name other files
        reports = audit_paths(["."], scheduler=client)
    assert [(r.path, [f.code for f in r.findings]) for r in reports] == [
        (os.path.join(".", "f.keras"), ["lambda-layer"]),
        (os.path.join(".", "r.h5"), []),
    ]


def test_docs_dask_bag_recipe_runs_as_a_script(tmp_path: Path) -> None:
    pytest.importorskip("dask.bag")
    docs = (ROOT / "docs" / "audit.md").read_text()
    blocks = [part.split("```")[0] for part in docs.split("```python\n")[1:]]
    [recipe] = [block for block in blocks if "import dask.bag" in block]
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(FIXTURES / "k3" / "functional.keras", models / "f.keras")
    shutil.copy(FIXTURES / "k3" / "rnn_seq.keras", models / "r.keras")
    script = tmp_path / "audit_bag.py"
    script.write_text(recipe.replace('"/shared/models"', repr(str(models))))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"2 files, 1 with errors: [{str(models / 'f.keras')!r}]\n"
