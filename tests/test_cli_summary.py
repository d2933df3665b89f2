"""``kerasweights summary`` and the command line's common behaviour, through main(argv)."""

from __future__ import annotations

import io
import json
import sys

import pytest
from conftest import FIXTURES, all_model_files, truth

from kerasweights import __version__
from kerasweights.cli import main


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_json_summary_matches_keras(path, config, model, runtime, capsys):
    argv = ["summary", str(path), "--json"] + (["--config", str(config)] if config else [])
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    expected = truth(model, runtime)
    assert report["total_params"] == expected["count_params"]
    assert {"format", "keras_version", "backend", "total_params", "layers"} <= set(report)
    layers = {layer["path"]: layer for layer in report["layers"]}
    for want in expected["layers"]:
        got = layers[want["path"]]
        assert (got["class_name"], got["params"]) == (want["class_name"], want["count_params"])
        if got["kind"] == "layer":
            assert [w["shape"] for w in got["weights"]] == [w["shape"] for w in want["weights"]]
            assert [w["dtype"] for w in got["weights"]] == [w["dtype"] for w in want["weights"]]


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_text_summary_fits_80_columns(path, config, model, runtime, capsys):
    argv = ["summary", str(path)] + (["--config", str(config)] if config else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert f"Total params: {truth(model, runtime)['count_params']:,}" in out


def test_text_summary_example(capsys):
    assert main(["summary", str(FIXTURES / "k3/rnn_seq.keras")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["Layer", "Class", "Weight", "shapes", "Params"]
    assert out[3].split() == ["enc_gru", "GRU", "6x15", "5x15", "2x15", "195"]
    assert out[-2:] == ["Format: keras-zip   Keras: 3.15.1", "Total params: 485"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"", "file is empty", id="empty"),
        pytest.param(b"not a model", "not a Keras model file (neither HDF5, zip archive nor JSON)", id="text"),
        pytest.param(
            b"PK\x03\x04garbage",
            "truncated or corrupt zip archive: it starts like one (a .keras file?) but its member directory at the "
            "end cannot be read",
            id="broken-zip-header",
        ),
    ],
)
def test_unreadable_file_exit_3_one_line(tmp_path, capsys, content, problem):
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    assert main(["summary", str(path)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"kerasweights: error: {path}: {problem}\n"


def test_missing_file(capsys):
    assert main(["summary", "no/such/file.keras"]) == 3
    assert capsys.readouterr().err == "kerasweights: error: no/such/file.keras: no such file or directory\n"


def test_stdin(monkeypatch, capsys):
    data = (FIXTURES / "k3/rnn_seq.h5").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["summary", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 485


def test_usage_errors_exit_2(capsys):
    assert main(["summary"]) == 2
    assert "the following arguments are required: file" in capsys.readouterr().err
    assert main([]) == 2


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"kerasweights {__version__}\n"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("summary", "weights", "show", "export", "diff", "plot", "audit", "trace"):
        assert f"    {command} " in out


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "bad.keras"
    path.write_bytes(b"junk")
    from kerasweights import KerasWeightsError

    with pytest.raises(KerasWeightsError):
        main(["--debug", "summary", str(path)])


def _model_with_long_paths():
    from types import SimpleNamespace

    from kerasweights.model import Layer, Model

    names = [
        "transformer_encoder_block_0",
        "multi_head_self_attention_rotary",
        "query_projection_dense_layer",
    ]
    deep = Layer("/".join(names), names[-1], "EinsumDense", {})
    middle = Layer("/".join(names[:2]), names[1], "MultiHeadAttention", {}, kind="wrapper", children=[deep])
    top = Layer(names[0], names[0], "Functional", {}, kind="model", children=[middle])
    root = Layer("", "m", "Functional", {}, kind="model", children=[top])
    raw = SimpleNamespace(format="keras-zip", keras_version="3.15.1", backend=None, path="m.keras", close=lambda: None)
    note = (
        "layer 'transformer_encoder_block_0/multi_head_self_attention_rotary' has a custom class "
        "registered as 'my_package>RotaryAttention'; its weights are listed as stored"
    )
    return Model(raw, root, [note]), names


def test_long_paths_and_notes_wrap_within_80_columns_between_names():
    from kerasweights.cli import _render as render

    model, names = _model_with_long_paths()
    text = render.summary_table(model)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in names:  # every name whole on one line: paths break after their slashes
        assert any(name in line for line in lines), name
    notes = lines[lines.index(next(l for l in lines if l.startswith("Note: "))) :]
    assert len(notes) == 3 and all(line.startswith("      ") for line in notes[1:])
    assert " ".join(line.strip() for line in notes) == "Note: " + model.notes[0]
    assert "Backend" not in text  # a .keras archive does not record it


def test_backend_is_shown_when_the_file_records_it(capsys):
    assert main(["summary", str(FIXTURES / "k3/rnn_seq.h5")]) == 0
    assert "Format: h5-full   Keras: 3.15.1   Backend: tensorflow\n" in capsys.readouterr().out
