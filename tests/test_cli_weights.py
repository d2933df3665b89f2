"""``kerasweights weights``: stored arrays or named matrices, with statistics, through main(argv)."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from conftest import FIXTURES, all_model_files, corpus_files, truth, truth_arrays
from h5edit import edited_h5, layer_config

from kerasweights.cli import main

RNN = str(FIXTURES / "k3/rnn_seq.keras")


def _argv(path, config, *extra):
    return ["weights", str(path), *extra, *(["--config", str(config)] if config else [])]


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_json_rows_are_keras_weights(path, config, model, runtime, capsys):
    assert main(_argv(path, config, "--json")) == 0
    rows = json.loads(capsys.readouterr().out)
    layers = truth(model, runtime)["layers"]
    leaves = [l for l in layers if not any(o["path"].startswith(l["path"] + "/") for o in layers)]
    expected = [(l["path"], w["shape"], w["dtype"], w["trainable"]) for l in leaves for w in l["weights"]]
    assert [(r["layer"], r["shape"], r["dtype"], r["trainable"]) for r in rows] == expected
    assert all(r["key"] == f"{r['layer']}/{r['name']}" and r["size"] == int(np.prod(r["shape"])) for r in rows)


@pytest.mark.parametrize(
    "mode", [[], ["--split"], ["--stats"], ["--split", "--stats"]], ids=["arrays", "split", "stats", "split-stats"]
)
@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_text_fits_80_columns(path, config, model, runtime, mode, capsys):
    assert main(_argv(path, config, *mode)) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out


def test_split_layer_text(capsys):
    assert main(["weights", RNN, "--split", "--layer", "enc_gru"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Layer", "Matrix", "Shape", "Meaning"]
    assert lines[2].split(maxsplit=3) == ["enc_gru", "kernel_z", "6x5", "update gate, input weights"]
    assert lines[6].split(maxsplit=3) == ["enc_gru", "recurrent_kernel_r", "5x5", "reset gate, recurrent weights"]
    assert lines[13].split(maxsplit=3) == ["enc_gru", "recurrent_bias_h", "5", "candidate, recurrent bias"]
    assert lines[-2:] == ["", "dtype: float32"]


def test_split_json_says_where_each_matrix_comes_from(capsys):
    assert main(["weights", RNN, "--split", "--layer", "lstm_last", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == [f"{p}_{g}" for p in ("kernel", "recurrent_kernel", "bias") for g in "ifco"]
    assert {k: rows["kernel_f"][k] for k in ("shape", "meaning", "gate", "source", "weight")} == {
        "shape": [4, 3],
        "meaning": "forget gate, input weights",
        "gate": "f",
        "source": "kernel[:, 3:6]",
        "weight": "lstm_last/kernel",
    }


def test_stats_json_matches_numpy_on_keras_values(capsys):
    assert main(["weights", RNN, "--split", "--stats", "--layer", "enc_gru", "--json"]) == 0
    rows = {r["name"]: r["stats"] for r in json.loads(capsys.readouterr().out)}
    bias = truth_arrays("rnn_seq")["_weights/enc_gru/2"].astype(np.float64)  # (2, 15): input row, recurrent row
    for name, value in (("bias_r", bias[0, 5:10]), ("recurrent_bias_h", bias[1, 10:15])):
        assert rows[name] == pytest.approx(
            {
                "size": 5,
                "min": value.min(),
                "max": value.max(),
                "mean": value.mean(),
                "std": value.std(),
                "l2_norm": np.linalg.norm(value),
                "zero_fraction": 0.0,
                "nan_count": 0,
                "inf_count": 0,
            }
        )


def test_stats_text_groups_rows_under_layer_paths(capsys):
    assert main(["weights", str(FIXTURES / "k3/functional.keras"), "--stats", "--layer", "bi_g"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Weight", "Shape", "Min", "Max", "Mean", "Std", "L2", "Zeros"]
    assert lines[2] == "bi_g/forward_g" and lines[6] == "bi_g/backward_g"
    kernel = truth_arrays("functional")["_weights/bi_g/forward_g/0"].astype(np.float64)
    assert lines[3].split() == [
        "kernel",
        "5x9",
        *(f"{v:.3g}" for v in (kernel.min(), kernel.max(), kernel.mean(), kernel.std(), np.linalg.norm(kernel))),
        "0%",
    ]
    assert lines[-1] == "Min to L2: finite values only; Zeros: share of exact zeros; no NaN or Inf"


def test_layer_includes_its_children_and_unknown_layer_exits_2(capsys):
    assert main(["weights", str(FIXTURES / "k3/functional.keras"), "--layer", "encoder", "--json"]) == 0
    assert {r["layer"] for r in json.loads(capsys.readouterr().out)} == {"encoder/lstm_nb", "encoder/enc_bn"}
    assert main(["weights", RNN, "--layer", "enc"]) == 2
    assert capsys.readouterr().err == (
        f"kerasweights: error: {RNN}: no layer 'enc'; layers with weights: my_rnn, enc_gru, gru_ra_false, lstm_last, head\n"
    )


def test_layer_without_weights(capsys):
    assert main(["weights", str(FIXTURES / "k3/functional.keras"), "--layer", "double"]) == 0
    assert capsys.readouterr().out == "no stored weights in layer 'double'\n"


def test_split_shows_a_layer_that_does_not_fit_its_rule_unsplit(tmp_path, capsys):
    def wrong_units(document):
        layer_config(document, "enc_gru")["units"] = 6

    path = edited_h5(FIXTURES / "k3/rnn_seq.h5", tmp_path / "bad.h5", config=wrong_units)
    assert main(["weights", str(path), "--split"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if line.startswith("enc_gru")] == [
        ["enc_gru", "kernel"],
        ["enc_gru", "recurrent_kernel"],
        ["enc_gru", "bias"],
    ]
    assert any(line.startswith("gru_ra_false  kernel_z") for line in out)  # other layers still split
    [note] = [line for line in out if line.startswith("Note: ")]
    assert note.startswith("Note: layer 'enc_gru': kernel has shape (6, 15)")
    assert note.endswith("; its stored arrays are shown unsplit")
    assert main(["weights", str(path), "--split", "--json", "--layer", "enc_gru"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["kernel", "recurrent_kernel", "bias"] and all(r["note"] for r in rows)


def test_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((FIXTURES / "k3/rnn_seq.h5").read_bytes())))
    assert main(["weights", "-", "--layer", "head", "--json"]) == 0
    assert [(r["key"], r["shape"]) for r in json.loads(capsys.readouterr().out)] == [
        ("head/kernel", [3, 2]),
        ("head/bias", [2]),
    ]


def test_mixed_dtypes_get_a_dtype_column(tmp_path, capsys):
    kernel = truth_arrays("rnn_seq")["_weights/head/0"].astype(np.float64)
    path = edited_h5(
        FIXTURES / "k3/rnn_seq.h5", tmp_path / "f64.h5", arrays={"model_weights/head/rnn_seq/head/kernel": kernel}
    )
    assert main(["weights", str(path), "--layer", "head"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Layer", "Weight", "Shape", "Dtype", "Size"]
    assert lines[2].split() == ["head", "kernel", "3x2", "float64", "6"]
    assert lines[3].split() == ["head", "bias", "2", "float32", "2"]


def test_nan_and_inf_columns_appear_when_there_are_any(tmp_path, capsys):
    kernel = truth_arrays("rnn_seq")["_weights/head/0"].copy()
    kernel[0, 0], kernel[1, 1] = np.nan, np.inf
    path = edited_h5(
        FIXTURES / "k3/rnn_seq.h5", tmp_path / "nan.h5", arrays={"model_weights/head/rnn_seq/head/kernel": kernel}
    )
    assert main(["weights", str(path), "--layer", "head", "--stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-3:] == ["Zeros", "NaN", "Inf"]
    assert lines[3].split()[-3:] == ["0%", "1", "1"]


def test_debug_after_the_command_shows_the_traceback(capsys):
    assert main(["weights", RNN, "--layer", "nope"]) == 2
    with pytest.raises(Exception, match="no layer 'nope'"):
        main(["weights", RNN, "--layer", "nope", "--debug"])
    with pytest.raises(Exception, match="no layer 'nope'"):
        main(["--debug", "weights", RNN, "--layer", "nope"])


@pytest.mark.parametrize("path", corpus_files("h5-full", "h5-weights", "keras-zip"))
def test_real_files_list_split_with_statistics_within_80_columns(path, capsys):
    assert main(["weights", str(path), "--split", "--stats"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert main(["weights", str(path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) > 0
