"""``kerasweights export`` (Keras layout) and its progress bar, through main(argv).
``--to pytorch`` is tested in tests/test_cli_torch_export.py."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from conftest import FIXTURES, truth_arrays
from h5edit import edited_h5, layer_config

import kerasweights
from kerasweights.cli import main
from kerasweights.cli._progress import Progress

RNN = str(FIXTURES / "k3/rnn_seq.keras")


def _load(path):
    if str(path).endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(str(path))


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_export_named_matrices(tmp_path, capsys, suffix):
    out = tmp_path / f"rnn{suffix}"
    assert main(["export", RNN, "-o", str(out)]) == 0
    assert capsys.readouterr() == (f"wrote 38 arrays (485 values) to {out}\n", "")
    got = _load(out)
    w = truth_arrays("rnn_seq")
    np.testing.assert_array_equal(got["enc_gru/kernel_z"], w["_weights/enc_gru/0"][:, :5])  # z is the first gate
    np.testing.assert_array_equal(got["enc_gru/recurrent_bias_r"], w["_weights/enc_gru/2"][1, 5:10])
    np.testing.assert_array_equal(got["gru_ra_false/bias_h"], w["_weights/gru_ra_false/2"][8:12])
    np.testing.assert_array_equal(got["lstm_last/recurrent_kernel_o"], w["_weights/lstm_last/1"][:, 9:12])
    np.testing.assert_array_equal(got["my_rnn/kernel"], w["_weights/my_rnn/0"])


def test_raw_keys_are_layer_path_and_weight_name(tmp_path, capsys):
    out = tmp_path / "raw.npz"
    assert main(["export", str(FIXTURES / "tfk/functional.h5"), "-o", str(out), "--raw", "--layer", "encoder"]) == 0
    assert capsys.readouterr().out == f"wrote 6 arrays (144 values) to {out}\n"
    got = _load(out)
    w = truth_arrays("functional", "tfk")
    assert list(got) == [
        "encoder/lstm_nb/kernel",
        "encoder/lstm_nb/recurrent_kernel",
        "encoder/enc_bn/gamma",
        "encoder/enc_bn/beta",
        "encoder/enc_bn/moving_mean",
        "encoder/enc_bn/moving_variance",
    ]
    np.testing.assert_array_equal(got["encoder/lstm_nb/kernel"], w["_weights/encoder/lstm_nb/0"])
    np.testing.assert_array_equal(got["encoder/enc_bn/moving_variance"], w["_weights/encoder/enc_bn/3"])


def test_format_option_wins_over_the_extension(tmp_path, capsys):
    out = tmp_path / "weights.bin"
    assert main(["export", RNN, "-o", str(out), "--format", "safetensors", "--layer", "head"]) == 0
    assert sorted(_load(out)) == ["head/bias", "head/kernel"]


def test_safetensors_metadata_names_the_source(tmp_path, capsys):
    from safetensors import safe_open

    out = tmp_path / "m.safetensors"
    assert main(["export", str(FIXTURES / "k3/rnn_seq.h5"), "-o", str(out), "--raw"]) == 0
    with safe_open(str(out), framework="np") as f:
        meta = f.metadata()
    assert (meta["source"], meta["layout"]) == ("rnn_seq.h5", "keras-raw")
    assert meta["exported_by"].startswith("kerasweights ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            ["-o", "w.bin"],
            "cannot tell the export format from 'w.bin'; name it .npz or .safetensors, or pass --format",
            id="unknown-extension",
        ),
        pytest.param(
            ["-o", "w.npz", "--format", "safetensors"],
            "format safetensors does not match the name 'w.npz'; name it w.safetensors",
            id="format-against-name",
        ),
        pytest.param(
            ["-o", "w.npz", "--force"],
            "--force only applies to --to pytorch (Keras exports write every layer)",
            id="force-without-pytorch",
        ),
        pytest.param(
            ["-o", "w.npz", "--raw", "--to", "pytorch"],
            "--raw exports Keras's stored arrays; it cannot be combined with --to pytorch",
            id="raw-and-pytorch",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(["export", RNN, *extra]) == 2
    assert capsys.readouterr().err == f"kerasweights: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_output_is_required(capsys):
    assert main(["export", RNN]) == 2
    assert "the following arguments are required: -o/--output" in capsys.readouterr().err


def test_nothing_to_export(tmp_path, capsys):
    assert (
        main(["export", str(FIXTURES / "k3/functional.keras"), "-o", str(tmp_path / "x.npz"), "--layer", "pool"]) == 2
    )
    assert capsys.readouterr().err == (
        f"kerasweights: error: {FIXTURES / 'k3/functional.keras'}: nothing to export: layer 'pool' has no weights\n"
    )


def test_unknown_layer_exits_2(tmp_path, capsys):
    assert main(["export", RNN, "-o", str(tmp_path / "x.npz"), "--layer", "gru"]) == 2
    assert capsys.readouterr().err.startswith(
        f"kerasweights: error: {RNN}: no layer 'gru'; layers with weights: my_rnn, enc_gru"
    )


def test_safetensors_are_written_without_the_safetensors_package(tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.safetensors"
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "safetensors", None)  # import now raises ImportError
        patch.setitem(sys.modules, "safetensors.numpy", None)
        assert main(["export", RNN, "-o", str(out)]) == 0
    capsys.readouterr()
    from safetensors.numpy import load_file  # the reference reader checks what kerasweights wrote

    with kerasweights.open(RNN) as model:
        expected = {m.key: m.read() for m in model.matrices().values()}
    loaded = load_file(out)
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_torch_safetensors_need_no_safetensors_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # as if not installed
    out = tmp_path / "x.safetensors"
    argv = ["export", RNN, "-o", str(out), "--to", "pytorch", "--layer", "enc_gru"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "torch.nn.GRU(" in captured.out and out.stat().st_size > 0


def test_failed_torch_export_prints_no_constructor(tmp_path, capsys):
    out = tmp_path / "no" / "x.npz"
    assert main(["export", RNN, "-o", str(out), "--to", "pytorch", "--layer", "enc_gru"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.out == "" and captured.err == f"kerasweights: error: {out}: cannot write: No such file or directory\n"
    )


def test_unwritable_output(tmp_path, capsys):
    out = tmp_path / "no" / "x.npz"
    assert main(["export", RNN, "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"kerasweights: error: {out}: cannot write: No such file or directory\n"


def test_a_layer_that_does_not_fit_its_rule_is_warned_and_exported_unsplit(tmp_path, capsys):
    def wrong_units(document):
        layer_config(document, "lstm_last")["units"] = 4

    path = edited_h5(FIXTURES / "k3/rnn_seq.h5", tmp_path / "bad.h5", config=wrong_units)
    out = tmp_path / "x.npz"
    assert main(["export", str(path), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("kerasweights: warning: layer 'lstm_last': ")
    assert err.endswith("; exported its stored arrays unsplit\n")
    got = _load(out)
    np.testing.assert_array_equal(got["lstm_last/kernel"], truth_arrays("rnn_seq")["_weights/lstm_last/0"])
    assert "enc_gru/kernel_z" in got


def test_reads_stdin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO((FIXTURES / "variants/rnn_seq.deflate.keras").read_bytes()))
    )
    out = tmp_path / "s.npz"
    assert main(["export", "-", "-o", str(out), "--layer", "my_rnn"]) == 0
    np.testing.assert_array_equal(_load(out)["my_rnn/recurrent_kernel"], truth_arrays("rnn_seq")["_weights/my_rnn/1"])


def test_progress_bar_draws_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    assert main(["export", RNN, "-o", str(tmp_path / "quiet.npz")]) == 0
    assert capsys.readouterr().err == ""  # capsys is not a terminal
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["export", RNN, "-o", str(tmp_path / "loud.npz")]) == 0
    drawn = terminal.getvalue()
    assert "\rexport loud.npz [" in drawn and "] 38/38" in drawn
    assert drawn.endswith("\r" + " " * 79 + "\r")  # the line is cleared for what follows


def test_progress_widths_and_counts():
    terminal = FakeTerminal()
    with Progress(4, "export x.npz", stream=terminal) as bar:
        bar.advance()
        bar.advance(10)  # never past the total
    frames = terminal.getvalue().split("\r")[1:-2]
    assert [f[-4:] for f in frames] == [" 1/4", " 4/4"]
    assert all(len(f) == 79 for f in frames)
    assert frames[-1].count("#") == 79 - len("export x.npz [] 4/4")
