"""``kerasweights show``: one matrix or stored array, printed or saved, through main(argv)."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from conftest import FIXTURES, corpus_files, truth_arrays
from h5edit import edited_h5, layer_config

from kerasweights.cli import main

RNN = str(FIXTURES / "k3/rnn_seq.keras")


def _printed(value: np.ndarray, full: bool = False) -> str:
    with np.printoptions(threshold=sys.maxsize if full else 1000, linewidth=80):
        return str(value)


def test_matrix_header_and_values(capsys):
    assert main(["show", RNN, "enc_gru/kernel_z"]) == 0
    out = capsys.readouterr().out
    head, values = out.split("\n\n", 1)
    assert head.splitlines() == [
        "key:     enc_gru/kernel_z",
        "shape:   (6, 5)",
        "dtype:   float32",
        "meaning: update gate, input weights",
        "source:  kernel[:, 0:5] of layers/gru/cell/vars/0",
    ]
    assert values == _printed(truth_arrays("rnn_seq")["_weights/enc_gru/0"][:, :5]) + "\n"


def test_stored_weight_lists_its_matrices(capsys):
    assert main(["show", str(FIXTURES / "tfk/rnn_seq.h5"), "lstm_last/bias"]) == 0
    head, values = capsys.readouterr().out.split("\n\n", 1)
    assert head.splitlines()[2:] == [
        "dtype:   float32",
        "meaning: stored array, split into bias_i, bias_f, bias_c, bias_o",
        "source:  model_weights/lstm_last/lstm_last/lstm_cell/bias:0",
    ]
    assert values == _printed(truth_arrays("rnn_seq", "tfk")["_weights/lstm_last/2"]) + "\n"


def test_big_arrays_are_summarised_unless_full(tmp_path, capsys):
    kernel = np.linspace(-1, 1, 3 * 500, dtype=np.float32).reshape(3, 500)

    def wide_head(document):
        layer_config(document, "head")["units"] = 500

    path = edited_h5(
        FIXTURES / "k3/rnn_seq.h5",
        tmp_path / "wide.h5",
        config=wide_head,
        arrays={
            "model_weights/head/rnn_seq/head/kernel": kernel,
            "model_weights/head/rnn_seq/head/bias": np.zeros(500, np.float32),
        },
    )
    assert main(["show", str(path), "head/kernel"]) == 0
    summarised = capsys.readouterr().out.split("\n\n", 1)[1]
    assert "..." in summarised and summarised == _printed(kernel) + "\n"
    assert main(["show", str(path), "head/kernel", "--full"]) == 0
    full = capsys.readouterr().out.split("\n\n", 1)[1]
    assert "..." not in full and full == _printed(kernel, full=True) + "\n"


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".txt"])
def test_output_file_reads_back_to_keras_values(tmp_path, capsys, suffix):
    out = tmp_path / f"r{suffix}"
    assert main(["show", RNN, "gru_ra_false/recurrent_kernel_h", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote gru_ra_false/recurrent_kernel_h (4x4 float32) to {out}\n"
    want = truth_arrays("rnn_seq")["_weights/gru_ra_false/1"][:, 8:12]
    if suffix == ".npy":
        got = np.load(out, allow_pickle=False)
        assert got.dtype == want.dtype
    else:
        got = np.loadtxt(out, delimiter="," if suffix == ".csv" else None, dtype=np.float32)
    np.testing.assert_array_equal(got, want)  # enough digits to round-trip float32


def test_csv_refuses_more_than_two_dimensions(tmp_path, capsys):
    out = tmp_path / "q.csv"
    assert main(["show", str(FIXTURES / "k3/functional.keras"), "mha/query/kernel", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        "kerasweights: error: mha/query/kernel has 3 dimensions (3, 2, 2); .csv holds at most 2: use .npy\n"
    )
    assert not out.exists()


def test_unknown_output_extension(capsys):
    assert main(["show", RNN, "head/kernel", "-o", "head.bin"]) == 2
    assert capsys.readouterr().err == (
        "kerasweights: error: cannot tell the format of 'head.bin'; name it OUT.npy, OUT.csv, OUT.txt\n"
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            "enc_gru/kernel_q",
            "layer 'enc_gru' has no matrix or weight 'kernel_q'; valid names: bias, bias_h, bias_r, bias_z, kernel, "
            "kernel_h, kernel_r, kernel_z, recurrent_bias_h, recurrent_bias_r, recurrent_bias_z, recurrent_kernel, "
            "recurrent_kernel_h, recurrent_kernel_r, recurrent_kernel_z",
            id="unknown-matrix",
        ),
        pytest.param(
            "decoder/kernel",
            "no layer in 'decoder/kernel'; layers with weights: my_rnn, enc_gru, gru_ra_false, lstm_last, head",
            id="unknown-layer",
        ),
    ],
)
def test_unknown_names_exit_2_listing_valid_ones(capsys, key, message):
    assert main(["show", RNN, key]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"kerasweights: error: {RNN}: {message}\n")


@pytest.mark.parametrize(
    ("layer", "first", "count"),
    [
        pytest.param("enc_gru", "enc_gru/kernel_z        ", 12, id="gru"),
        pytest.param("bi_g", "bi_g/forward_g/kernel_z ", 24, id="wrapper-lists-its-halves"),
    ],
)
def test_a_layer_lists_its_matrices(capsys, layer, first, count):
    path = str(FIXTURES / "k3/functional.keras") if layer == "bi_g" else RNN
    assert main(["show", path, layer]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f": {count} matrices")
    assert out[2].split() == ["Matrix", "Shape", "Meaning"]
    assert out[4].startswith(first.strip()) and len(out) == count + 6
    assert out[-1] == f"Show one by its key, e.g. {first.strip()}"
    assert "update gate, input weights" in out[4]


def test_a_layer_without_weights_says_so(capsys):
    assert main(["show", str(FIXTURES / "k3/functional.keras"), "double"]) == 0
    assert capsys.readouterr().out == "double (Lambda): no weights to show\n"


def test_unwritable_output(capsys, tmp_path):
    out = tmp_path / "missing" / "k.npy"
    assert main(["show", RNN, "head/kernel", "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"kerasweights: error: {out}: cannot write: No such file or directory\n"


def test_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((FIXTURES / "k3/functional.keras").read_bytes())))
    assert main(["show", "-", "bi_g/backward_g/recurrent_bias_z"]) == 0
    values = capsys.readouterr().out.split("\n\n", 1)[1]
    assert values == _printed(truth_arrays("functional")["_weights/bi_g/backward_g/2"][1, 0:3]) + "\n"


def test_weights_only_file_needs_its_config_for_names(capsys):
    path, config = str(FIXTURES / "k3/rnn_seq.weights.h5"), str(FIXTURES / "k3/rnn_seq.json")
    assert main(["show", path, "enc_gru/kernel_h", "--config", config]) == 0
    values = capsys.readouterr().out.split("\n\n", 1)[1]
    assert values == _printed(truth_arrays("rnn_seq")["_weights/enc_gru/0"][:, 10:15]) + "\n"


@pytest.mark.parametrize("path", corpus_files("h5-full", "h5-weights", "keras-zip"))
def test_real_files_show_their_first_weight_with_a_header_within_80_columns(path, capsys):
    assert main(["weights", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert main(["show", str(path), first["key"]]) == 0
    head = capsys.readouterr().out.split("\n\n", 1)[0]
    assert head.startswith(f"key:     {first['key'][:60]}")
    assert max(len(line) for line in head.splitlines()) <= 80
