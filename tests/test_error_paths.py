"""Every error line names the file (issue 13): for every command and every error path.

The library names the file wherever it knows it (formats, layers, trace, export); the command
line names the file it was given under anything the library missed. Cases: layout errors of
hostile configs in every command (``units`` 0, negative, boolean, 2e9, 2**63, 4,000 digits),
weights of dtypes an export cannot hold (refused before any writer sees them), a null
dataspace, a functional graph with a cycle; and, for every command, an error raised without
a path anywhere under it.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import FIXTURES

import kerasweights
from kerasweights import KerasWeightsError
from kerasweights.cli import _commands, main

RNN = FIXTURES / "k3/rnn_seq.keras"
DIR = FIXTURES / "variants/rnn_seq_dir"


def keras_with_config(tmp: Path, edit: Any, source: Path = RNN) -> Path:
    with zipfile.ZipFile(source) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    path = tmp / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def layer_named(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == name)


def assert_one_line_naming(err: str, path: Path | str, fragment: str = "") -> None:
    assert err.startswith(f"kerasweights: error: {path}: "), err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err


def commands(tmp: Path, path: Path, layer: str = "enc_gru") -> list[list[str]]:
    x = tmp / "x.npy"
    np.save(x, np.ones((1, 7, 4), np.float32))
    return [
        ["summary", str(path)],
        ["weights", str(path), "--split"],
        ["weights", str(path), "--stats"],
        ["export", str(path), "-o", str(tmp / "out.npz")],
        ["export", str(path), "-o", str(tmp / "out.safetensors")],
        ["trace", str(path), layer, "--input", str(x), "-o", str(tmp / "t.npz")],
        ["trace", str(path), layer, "--input", str(x), "--from-input", "-o", str(tmp / "t.npz")],
        ["diff", str(path), str(path)],
    ]


UNITS = [
    pytest.param(0, id="units-0"),
    pytest.param(-3, id="units-negative"),
    pytest.param(True, id="units-boolean"),
    pytest.param(2_000_000_000, id="units-2e9"),
    pytest.param(2**63, id="units-2**63"),
    pytest.param(int("9" * 4000), id="units-4000-digits"),
    pytest.param("5", id="units-a-string"),
]


@pytest.mark.parametrize("units", UNITS)
def test_layout_errors_of_hostile_units_name_the_file_in_every_command(tmp_path, capsys, units):
    path = keras_with_config(tmp_path, lambda c: layer_named(c, "enc_gru")["config"].update(units=units))
    failed = 0
    for argv in commands(tmp_path, path):
        code = main(argv)
        err = capsys.readouterr().err
        if code == 0 or (code == 1 and argv[0] == "diff"):  # listing and exporting unsplit still work
            continue
        failed += 1
        assert code in (2, 3), (argv, err)
        assert_one_line_naming(err, path)
    assert failed  # trace needs the layout, at least


def replace_dense_kernel(tmp: Path, values: np.ndarray) -> Path:
    folder = tmp / "model_dir"
    shutil.copytree(DIR, folder)
    with h5py.File(folder / "model.weights.h5", "r+") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = values
    return folder


@pytest.mark.parametrize(
    ("values", "formats"),
    [
        pytest.param(np.zeros((3, 2), np.complex64), ("npz", "safetensors"), id="complex64"),
        pytest.param(np.zeros((3, 2), [("re", "f4"), ("im", "f4")]), ("npz", "safetensors"), id="compound"),
        pytest.param(np.zeros((3, 2), "V4"), ("npz", "safetensors"), id="opaque"),
        pytest.param(np.zeros((3, 2), np.longdouble), ("safetensors",), id="float128"),
    ],
)
def test_export_refuses_dtypes_before_any_writer_sees_them(tmp_path, capsys, values, formats):
    folder = replace_dense_kernel(tmp_path, values)
    for fmt in formats:
        out = tmp_path / f"out.{fmt}"
        assert main(["export", str(folder), "-o", str(out), "--raw"]) == 3
        err = capsys.readouterr().err
        assert_one_line_naming(err, folder, "head/kernel has dtype ")
        assert f"which .{fmt}" in err or "which .npz/.safetensors" in err
        assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["model_dir"]


def test_float128_goes_to_npz(tmp_path, capsys):
    folder = replace_dense_kernel(tmp_path, np.arange(6, dtype=np.longdouble).reshape(3, 2))
    assert main(["export", str(folder), "-o", str(tmp_path / "out.npz"), "--raw"]) == 0
    with np.load(tmp_path / "out.npz") as data:
        assert data["head/kernel"].dtype == np.longdouble


def test_null_dataspace_weight_says_what_is_wrong(tmp_path, capsys):
    folder = tmp_path / "model_dir"
    shutil.copytree(DIR, folder)
    with h5py.File(folder / "model.weights.h5", "r+") as f:
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=h5py.Empty("f4"))
    assert main(["summary", str(folder)]) == 3
    assert_one_line_naming(
        capsys.readouterr().err,
        folder,
        "dataset /layers/dense/vars/0 has a null dataspace (no shape, no values) where a weight belongs",
    )


@pytest.mark.parametrize(
    ("feeds", "cycle_at"),
    [
        pytest.param("embed", "embed", id="a-layer-feeds-itself"),
        pytest.param("lstm_seq", "lstm_seq", id="a-later-layer-feeds-an-earlier-one"),
    ],
)
def test_cyclic_functional_graph_is_a_config_error_naming_the_layer(tmp_path, capsys, feeds, cycle_at):
    def edit(config: dict[str, Any]) -> None:
        node = layer_named(config, "embed")["inbound_nodes"][0]["args"][0]
        node["config"]["keras_history"] = [feeds, 0, 0]

    path = keras_with_config(tmp_path, edit, FIXTURES / "k3/functional.keras")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 6), np.int32))
    argv = ["trace", str(path), "lstm_seq", "--input", str(x), "--from-input", "-o", str(tmp_path / "t.npz")]
    assert main(argv) == 3
    assert_one_line_naming(capsys.readouterr().err, path, f"has a cycle: layer {cycle_at!r} feeds itself")
    with kerasweights.open(path) as model:  # the other commands read the model as before
        assert model.total_params > 0


def argv_for(command: str, tmp: Path) -> list[str]:
    x = tmp / "x.npy"
    np.save(x, np.ones((1, 7, 4), np.float32))
    rnn = str(RNN)
    return {
        "summary": ["summary", rnn],
        "weights": ["weights", rnn],
        "show": ["show", rnn, "enc_gru/kernel_z"],
        "export": ["export", rnn, "-o", str(tmp / "o.npz")],
        "diff": ["diff", rnn, rnn],
        "plot": ["plot", rnn, "enc_gru", "-o", str(tmp / "p.png")],
        "trace": ["trace", rnn, "enc_gru", "--input", str(x), "-o", str(tmp / "t.npz")],
    }[command]


@pytest.mark.parametrize("command", [n for n in _commands.NAMES if n != "audit"])
@pytest.mark.parametrize("error", [KerasWeightsError, kerasweights.LayoutError, kerasweights.NotFoundError])
def test_every_error_reaching_the_cli_names_a_file(tmp_path, capsys, monkeypatch, command, error):
    """Whatever raises a KerasWeightsError without a path, anywhere under a command, the line names
    the file (audit reports file problems as findings: what it raises is about its set-up)."""
    module = _commands.load(command)
    argv = argv_for(command, tmp_path)

    def run(args: Any) -> int:  # (stands for any error escaping the real command, from anywhere)
        raise error("something deep down went wrong")

    parser_run = module.add_parser
    monkeypatch.setattr(module, "run", run)

    def add_parser(sub: Any) -> None:
        parser_run(sub)
        sub.choices[command].set_defaults(run=run)

    monkeypatch.setattr(module, "add_parser", add_parser)
    assert main(argv) in (2, 3)
    shown = f"{RNN} vs {RNN}" if command == "diff" else str(RNN)
    assert_one_line_naming(capsys.readouterr().err, shown, "something deep down went wrong")


def test_nested_model_whose_config_lists_no_layers_keeps_its_arrays(tmp_path):
    """Found by the long fuzz run: a nested Sequential whose config lost its layers, over stored
    weights, made binding index an empty list (an IndexError, not a KerasWeightsError)."""
    path = tmp_path / "model.h5"
    shutil.copy(FIXTURES / "k3/functional.h5", path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        layer_named(config, "encoder")["config"] = {}
        f.attrs["model_config"] = json.dumps(config)
    with kerasweights.open(path) as model:
        encoder = model.layer("encoder")
        assert len(encoder.weights) == 6 and encoder.problems == [
            "layer 'encoder' (Sequential): its config has no sublayers, yet 6 arrays are stored for it"
        ]
        for weight in model.weights():
            weight.read()
