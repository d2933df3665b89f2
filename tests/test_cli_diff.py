"""``kerasweights diff``: exit 0 when two files hold the same model, 1 when they differ."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from conftest import FIXTURES, corpus_files, truth, truth_arrays

from kerasweights.cli import main

K3, TFK = FIXTURES / "k3", FIXTURES / "tfk"


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        # matrices: SimpleRNN 3 + GRU 12 + GRU(reset_after=False) 9 + LSTM 12 + Dense 2
        pytest.param(K3 / "rnn_seq.keras", K3 / "rnn_seq.h5", 38, id="keras-vs-h5"),
        # embed 1, lstm_seq 12, bi_g 2x12, td/proj 2, lstm_nb 8 (no bias), enc_bn 4, conv 2, ln 2, mha 8, head 2
        pytest.param(K3 / "functional.keras", TFK / "functional.h5", 65, id="k3-vs-tf_keras"),
        # bi_l 2x12, bi_s 2x3, y 2
        pytest.param(TFK / "bidir_lstm.keras", K3 / "bidir_lstm.h5", 32, id="tf_keras-keras-vs-k3-h5"),
    ],
)
def test_same_model_exit_0(capsys, a, b, n):
    assert main(["diff", str(a), str(b)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"A: {a}",
        f"B: {b}",
        "",
        f"Result: same ({n} of {n} matrices within 0; max abs diff 0)",
    ]


def test_weights_only_files_with_their_configs(capsys):
    argv = [
        "diff",
        str(K3 / "rnn_seq.weights.h5"),
        str(TFK / "rnn_seq_weights.h5"),
        "--config-a",
        str(K3 / "rnn_seq.json"),
        "--config-b",
        str(TFK / "rnn_seq.json"),
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same"] is True and len(report["values"]) == 38


def test_config_difference_exit_1(capsys):
    k3, tfk = (truth("convlstm", rt)["recurrent"][0]["config"]["recurrent_activation"] for rt in ("k3", "tfk"))
    assert main(["diff", str(K3 / "convlstm.keras"), str(TFK / "convlstm.h5")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:5] == ["Layer clstm changed:", f'  recurrent_activation: "{k3}" -> "{tfk}"']
    assert lines[-1] == "Result: different (19 of 19 matrices within 0; max abs diff 0)"


def test_trained_weights_exit_1_and_atol_accepts_them(capsys):
    before, after = truth_arrays("rnn_seq"), truth_arrays("compiled", "variants")
    moved = max(
        float(np.abs(after[k].astype(np.float64) - before[k]).max()) for k in before if k.startswith("_weights/")
    )
    argv = ["diff", str(K3 / "rnn_seq.keras"), str(FIXTURES / "variants/compiled.keras")]
    assert main([*argv, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["same"] is False and report["max_abs_diff"] == pytest.approx(moved, rel=1e-6)
    assert main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[3] == "Values differing by more than 0, most changed first:"
    assert out[4].split() == ["Matrix", "Shape", "Max", "abs", "Rel", "change", "Cosine"]
    assert out[-5] == "... and 18 more (see --json)"
    assert out[-3].startswith("Most changed layers: head 0.00325, ")
    assert main([*argv, "--atol", str(moved * 1.0001)]) == 0
    verdict = capsys.readouterr().out.split("\n\n")[-1]
    assert verdict == f"Result: same (38 of 38 matrices within {moved * 1.0001:g}; max abs diff 0.001)\n"


def test_different_models_list_their_layers_within_80_columns(capsys):
    assert main(["diff", str(K3 / "rnn_seq.keras"), str(K3 / "functional.keras")]) == 1
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "Layers only in A: my_rnn, enc_gru, gru_ra_false, lstm_last\n" in out
    assert "Layers only in B: tokens, embed, lstm_seq, bi_g, bi_g/forward_g,\n  bi_g/backward_g," in out


def test_json_lists_every_matrix(capsys):
    assert main(["diff", str(K3 / "misc.keras"), str(TFK / "misc.keras"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights_renamed"] == [["dw/kernel", "dw/depthwise_kernel"]]
    assert {
        "key": "dw/kernel",
        "key_b": "dw/depthwise_kernel",
        "shape": [2, 2, 3, 2],
        "max_abs": 0.0,
        "rel_change": 0.0,
        "cosine": 1.0,
        "equal": True,
    } in report["values"]
    assert "seed" in report["ignored_config_keys"]


def test_relative_change_and_cosine_match_the_stored_values(capsys):
    """Against numpy on the values Keras wrote (truth files), not on what kerasweights read."""
    before, after = truth_arrays("rnn_seq"), truth_arrays("compiled", "variants")
    argv = ["diff", str(K3 / "rnn_seq.keras"), str(FIXTURES / "variants/compiled.keras"), "--json"]
    assert main(argv) == 1
    values = {v["key"]: v for v in json.loads(capsys.readouterr().out)["values"]}
    for key, index in [("my_rnn/kernel", 0), ("head/bias", 1), ("lstm_last/recurrent_kernel", None)]:
        if index is None:  # a split matrix: the recurrent kernel's candidate gate (columns 6:9)
            a = before["_weights/lstm_last/1"][:, 6:9].astype(np.float64)
            b = after["_weights/lstm_last/1"][:, 6:9].astype(np.float64)
            key = "lstm_last/recurrent_kernel_c"
        else:
            layer = key.split("/")[0]
            a = before[f"_weights/{layer}/{index}"].astype(np.float64)
            b = after[f"_weights/{layer}/{index}"].astype(np.float64)
        got = values[key]
        assert got["max_abs"] == pytest.approx(np.abs(b - a).max(), rel=1e-12)
        assert got["rel_change"] == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-9)
        cosine = float(a.ravel() @ b.ravel() / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert got["cosine"] == pytest.approx(cosine, abs=1e-12)


def test_no_layers_in_common_exit_1(capsys):
    assert main(["diff", str(K3 / "rnn_seq.keras"), str(K3 / "misc.keras")]) == 1
    out = capsys.readouterr().out
    assert out.endswith("\nResult: different (no layers in common: nothing was compared)\n")
    assert "max abs diff" not in out
    assert main(["diff", str(K3 / "rnn_seq.keras"), str(K3 / "misc.keras"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["same"], report["layers_in_common"], report["values"]) == (False, 0, [])


def test_one_file_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((K3 / "gru_names.h5").read_bytes())))
    assert main(["diff", "-", str(TFK / "gru_names.keras"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["a"] == "<stdin>"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["-", "-"], "only one of A and B can be - (stdin)", id="both-stdin"),
        pytest.param(
            [str(K3 / "rnn_seq.h5"), str(K3 / "rnn_seq.h5"), "--atol", "-1"],
            "--atol must be 0 or more, not -1.0",
            id="negative-atol",
        ),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    assert main(["diff", *argv]) == 2
    assert capsys.readouterr().err == f"kerasweights: error: {message}\n"


def test_unreadable_file_exit_3(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not a model")
    assert main(["diff", str(K3 / "rnn_seq.h5"), str(bad)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"kerasweights: error: {bad}: ") and err.count("\n") == 1


@pytest.mark.parametrize("path", corpus_files("h5-full", "h5-weights", "keras-zip"))
def test_real_files_equal_themselves(path, capsys):
    assert main(["diff", str(path), str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same"] is True and report["max_abs_diff"] == 0.0
