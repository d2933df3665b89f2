"""``kerasweights trace``: npz written from the CLI matches Keras's truth; exit codes; docs/trace.md is real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, ROOT, model_files, truth_arrays

from kerasweights.cli import main

DOC = (ROOT / "docs" / "trace.md").read_text()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["trace", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def save(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def files(model: str) -> list:
    return [
        pytest.param(path, config, runtime, id=f"{runtime}/{path.name}")
        for runtime in ("k3", "tfk")
        for path, config in model_files(model, runtime)
    ]


@pytest.mark.parametrize("path, config, runtime", files("rnn_seq"))
@pytest.mark.parametrize("layer", ["my_rnn", "enc_gru", "gru_ra_false", "lstm_last"])
def test_trace_writes_keras_sequences(capsys, tmp_path, path, config, runtime, layer):
    arrays = truth_arrays("rnn_seq", runtime)
    x = save(tmp_path, "x.npy", arrays[f"{layer}/input"])
    extra = ["--config", config] if config else []
    code, out, err = run(capsys, path, layer, "--input", x, "-o", tmp_path / "t.npz", *extra)
    assert code == 0, err
    with np.load(tmp_path / "t.npz") as traced:
        np.testing.assert_allclose(traced["h"], arrays[f"{layer}/sequences"], atol=1e-5)
        gates = {"my_rnn": ["h"], "lstm_last": ["i", "f", "o", "candidate", "c", "h"]}.get(
            layer, ["z", "r", "candidate", "h"]
        )
        expected = [*gates, "output"]
        assert traced.files == expected
        np.testing.assert_allclose(traced["output"], arrays[f"{layer}/output"], atol=1e-5)
    assert out.startswith(f"{layer} (") and f"Wrote {tmp_path / 't.npz'}" in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize("keys", [("h0", "c0"), ("h", "c"), ("arr_0", "arr_1")], ids=["h0", "h", "positional"])
def test_initial_state_file(capsys, tmp_path, keys):
    arrays = truth_arrays("rnn_seq", "tfk")
    x = save(tmp_path, "x.npy", arrays["lstm_last/input"])
    np.savez(tmp_path / "s.npz", **dict(zip(keys, (arrays["lstm_last/h0"], arrays["lstm_last/c0"]))))
    code, _, err = run(
        capsys,
        FIXTURES / "tfk" / "rnn_seq.h5",
        "lstm_last",
        "--input",
        x,
        "-o",
        tmp_path / "t.npz",
        "--initial-state",
        tmp_path / "s.npz",
    )
    assert code == 0, err
    with np.load(tmp_path / "t.npz") as traced:
        np.testing.assert_allclose(traced["h"], arrays["lstm_last/output_with_state"], atol=1e-5)


def test_missing_initial_state_is_a_usage_error(capsys, tmp_path):
    x = save(tmp_path, "x.npy", truth_arrays("rnn_seq")["lstm_last/input"])
    np.savez(tmp_path / "s.npz", h0=np.zeros((2, 3)))
    code, _, err = run(
        capsys,
        FIXTURES / "k3" / "rnn_seq.keras",
        "lstm_last",
        "--input",
        x,
        "-o",
        tmp_path / "t.npz",
        "--initial-state",
        tmp_path / "s.npz",
    )
    assert code == 2
    assert err == f"kerasweights: error: {tmp_path / 's.npz'}: no initial state 'c' (or c0, arr_1); the file has: h0\n"


@pytest.mark.parametrize("runtime", ["k3", "tfk"])
def test_mask_file_matches_keras(capsys, tmp_path, runtime):
    arrays = truth_arrays("masked", runtime)
    x = save(tmp_path, "x.npy", arrays["lstm_masked/input"])
    m = save(tmp_path, "m.npy", arrays["lstm_masked/mask"])
    code, out, _ = run(
        capsys, FIXTURES / runtime / "masked.keras", "lstm_masked", "--input", x, "--mask", m, "-o", tmp_path / "t.npz"
    )
    assert code == 0
    with np.load(tmp_path / "t.npz") as traced:
        np.testing.assert_allclose(traced["h"], arrays["lstm_masked/sequences"], atol=1e-5)
    assert "Masked: 2 (sample, step) pairs; their gates are NaN, h and c carry over." in out


@pytest.mark.parametrize("path, config, runtime", files("masked"))
def test_from_input_reproduces_the_model_output(capsys, tmp_path, path, config, runtime):
    arrays = truth_arrays("masked", runtime)
    x = save(tmp_path, "x.npy", arrays["_model/input"])
    extra = ["--config", config] if config else []
    code, _, err = run(capsys, path, "gru_masked", "--input", x, "--from-input", "-o", tmp_path / "t.npz", *extra)
    assert code == 0, err
    with np.load(tmp_path / "t.npz") as traced:
        np.testing.assert_allclose(traced["h"][:, -1], arrays["_model/output"], atol=1e-5)


def test_from_input_one_sample_without_batch_axis(capsys, tmp_path):
    arrays = truth_arrays("rnn_seq")
    x = save(tmp_path, "x.npy", arrays["_model/input"][1])
    code, _, _ = run(
        capsys, FIXTURES / "k3" / "rnn_seq.keras", "lstm_last", "--input", x, "--from-input", "-o", tmp_path / "t.npz"
    )
    assert code == 0
    with np.load(tmp_path / "t.npz") as traced:
        assert traced["h"].shape == (1, 7, 3)
        head = truth_arrays("rnn_seq")["_weights/head/0"], truth_arrays("rnn_seq")["_weights/head/1"]
        np.testing.assert_allclose(traced["h"][0, -1] @ head[0] + head[1], arrays["_model/output"][1], atol=1e-5)


def test_bidirectional_wrapper_and_half(capsys, tmp_path):
    arrays = truth_arrays("bidir_lstm", "tfk")
    x = save(tmp_path, "x.npy", arrays["bi_l/input"])
    path = FIXTURES / "tfk" / "bidir_lstm.keras"
    assert run(capsys, path, "bi_l", "--input", x, "-o", tmp_path / "w.npz")[0] == 0
    assert run(capsys, path, "bi_l/backward_l", "--input", x, "-o", tmp_path / "b.npz")[0] == 0
    with np.load(tmp_path / "w.npz") as wrapper, np.load(tmp_path / "b.npz") as half:
        np.testing.assert_allclose(wrapper["h"], arrays["bi_l/sequences"], atol=1e-5)
        np.testing.assert_allclose(half["h"], arrays["bi_l/backward_l/sequences"], atol=1e-5)
        assert "forward/f" in wrapper.files and "backward/c" in wrapper.files


@pytest.mark.parametrize(
    "layer, x_shape, extra, code, message",
    [
        ("head", (7, 6), [], 2, "layer 'head' (Dense) is not a recurrent layer"),
        ("nope", (7, 6), [], 2, "no layer 'nope'; layers with weights: my_rnn, enc_gru"),
        ("enc_gru", (7, 4), [], 2, "layer 'enc_gru': input has 4 features, the layer's kernel expects 6"),
        ("enc_gru", (7, 6), ["--from-input"], 2, "layer 'my_rnn': input has 6 features, the layer's kernel expects 4"),
    ],
    ids=["not-recurrent", "unknown-layer", "features", "from-input-features"],
)
def test_usage_errors(capsys, tmp_path, layer, x_shape, extra, code, message):
    x = save(tmp_path, "x.npy", np.zeros(x_shape, np.float32))
    got, out, err = run(
        capsys, FIXTURES / "k3" / "rnn_seq.keras", layer, "--input", x, "-o", tmp_path / "t.npz", *extra
    )
    assert got == code and out == ""
    assert err.startswith("kerasweights: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "t.npz").exists()


def test_unrunnable_layer_before_target(capsys, tmp_path):
    x = save(tmp_path, "x.npy", truth_arrays("functional")["_model/input"])
    code, _, err = run(
        capsys, FIXTURES / "k3" / "functional.keras", "mha", "--input", x, "--from-input", "-o", tmp_path / "t.npz"
    )
    assert code == 2
    assert (
        "cannot feed layer 'mha' from the model input: layer 'encoder/enc_bn': BatchNormalization cannot run in numpy"
        in err
    )


def test_unreadable_inputs_exit_3(capsys, tmp_path):
    model = FIXTURES / "k3" / "rnn_seq.keras"
    code, _, err = run(capsys, model, "enc_gru", "--input", tmp_path / "absent.npy", "-o", tmp_path / "t.npz")
    assert (code, err) == (3, f"kerasweights: error: {tmp_path / 'absent.npy'}: input file not found\n")
    objects = tmp_path / "obj.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = run(capsys, model, "enc_gru", "--input", objects, "-o", tmp_path / "t.npz")
    assert (code, err) == (
        3,
        f"kerasweights: error: {objects}: input holds Python objects (a pickle); kerasweights never unpickles\n",
    )


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    arrays = truth_arrays("masked")
    x = save(tmp_path, "x.npy", arrays["lstm_masked/input"])
    m = save(tmp_path, "m.npy", arrays["lstm_masked/mask"])
    code, out, _ = run(
        capsys,
        FIXTURES / "k3" / "masked.h5",
        "lstm_masked",
        "--input",
        x,
        "--mask",
        m,
        "-o",
        tmp_path / "t.npz",
        "--plot",
        tmp_path / "p.png",
    )
    assert code == 0 and f"and {tmp_path / 'p.png'}" in out
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- docs/trace.md: its commands produce its output ------------------------------------------------

DOC_CASES = [
    # (truth npz, key, sample, file name the doc saves it as, the doc's kerasweights command)
    ("fixtures/k3/rnn_seq.truth.npz", "enc_gru/input", "x.npy"),
    ("fixtures/k3/rnn_seq.truth.npz", "enc_gru/input", "x.npy"),
    ("fixtures/k3/masked.truth.npz", "_model/input", "tokens.npy"),
]


def doc_blocks() -> list[tuple[str, str]]:
    """(kerasweights command, the text block after it) pairs from docs/trace.md."""
    pairs = re.findall(r"```sh\n(.*?)```\s*```text\n(.*?)```", DOC, re.DOTALL)
    return [(line, text) for sh, text in pairs for line in sh.splitlines() if line.startswith("kerasweights trace")]


def test_doc_has_the_worked_examples():
    assert len(doc_blocks()) == 3
    assert (ROOT / "docs" / "img" / "trace_enc_gru.png").stat().st_size < 150_000
    for source, key, name in DOC_CASES:
        assert f"np.save('{name}', np.load('{source}')['{key}'][0])" in DOC


@pytest.mark.parametrize("index", [0, 1, 2], ids=["enc_gru", "print", "from-input"])
def test_doc_commands_print_what_the_doc_shows(capsys, tmp_path, monkeypatch, index):
    source, key, name = DOC_CASES[index]
    command, text = doc_blocks()[index]
    (tmp_path / "fixtures").symlink_to(FIXTURES)
    monkeypatch.chdir(tmp_path)
    with np.load(ROOT / source) as data:
        np.save(name, data[key][0])
    argv = shlex.split(command)[1:]
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    assert main(argv) == 0
    assert capsys.readouterr().out == text


def test_doc_comparison_number_is_real(tmp_path):
    arrays = truth_arrays("rnn_seq")
    from kerasweights import open as kw_open
    from kerasweights.trace import trace

    with kw_open(FIXTURES / "k3" / "rnn_seq.keras") as model:
        h = trace(model.layer("enc_gru"), arrays["enc_gru/input"][0])["h"][0]
    assert f"```text\n{np.abs(h - arrays['enc_gru/sequences'][0]).max():.1e}\n```" in DOC


# -- --print, --sample, --scale, progress, and the slips around them ---------------------------------


def test_print_shows_keras_values_per_step_and_unit(capsys, tmp_path):
    arrays = truth_arrays("rnn_seq")
    x = save(tmp_path, "x.npy", arrays["enc_gru/input"])
    code, out, err = run(
        capsys, FIXTURES / "k3" / "rnn_seq.keras", "enc_gru", "--input", x, "--print", "z,h", "--sample", "1"
    )
    assert code == 0, err
    assert out.startswith("enc_gru (GRU, 5 units, reset_after=True), sample 1\n\nz: 7 steps x 5 units\n")
    h_block = out.split("h: 7 steps x 5 units\n\n")[1].splitlines()
    assert h_block[0].split() == ["step", "0", "1", "2", "3", "4"]
    keras = arrays["enc_gru/sequences"][1]  # what Keras computed, sample 1
    for t, line in enumerate(h_block[1:8]):
        step, *values = line.split()
        assert int(step) == t
        np.testing.assert_allclose([float(v) for v in values], keras[t], atol=1e-4)
    assert not (tmp_path / "t.npz").exists() and "Wrote" not in out


def test_print_defaults_to_h_and_wraps_to_80_columns(capsys, tmp_path):
    arrays = truth_arrays("convlstm")
    x = save(tmp_path, "x.npy", arrays["clstm/input"])
    code, out, err = run(capsys, FIXTURES / "k3" / "convlstm.keras", "clstm", "--input", x, "--print")
    assert code == 0, err
    assert "\nh: 3 steps x 16 positions x 3 filters\n" in out and "\nc:" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert out.count("step ") == 6  # 48 columns in blocks of 8


def test_step_table_fits_the_width_and_marks_masked_steps():
    from kerasweights.cli.trace import step_table

    values = np.arange(40, dtype=np.float32).reshape(2, 20) / 7
    values[1, 3] = np.nan
    text = step_table(values, width=40)
    assert max(len(line) for line in text.splitlines()) <= 40
    assert "masked" in text and text.count("step") == 5  # 4 units of 8 columns per block


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--print", "z,q"], "--print: no array 'q'; this layer traces: z, r, candidate, h, output"),
        (["--print", "h", "--sample", "2"], "--sample 2 is out of range: the input has 2 sample(s), 0 to 1"),
    ],
    ids=["unknown-array", "sample-out-of-range"],
)
def test_print_usage_errors(capsys, tmp_path, extra, message):
    x = save(tmp_path, "x.npy", truth_arrays("rnn_seq")["enc_gru/input"])
    code, out, err = run(capsys, FIXTURES / "k3" / "rnn_seq.keras", "enc_gru", "--input", x, *extra)
    assert (code, out, err) == (2, "", f"kerasweights: error: {message}\n")


def test_output_must_be_named_npz(capsys, tmp_path):
    x = save(tmp_path, "x.npy", truth_arrays("rnn_seq")["enc_gru/input"])
    code, out, err = run(capsys, FIXTURES / "k3" / "rnn_seq.keras", "enc_gru", "--input", x, "-o", tmp_path / "t.csv")
    assert (code, out) == (2, "")
    assert (
        err == f"kerasweights: error: trace writes an .npz archive: name the output t.npz, not {tmp_path / 't.csv'}\n"
    )
    assert list(tmp_path.iterdir()) == [x]


def test_text_and_pickle_inputs_are_named_for_what_they_are(capsys, tmp_path):
    import pickle

    model = FIXTURES / "k3" / "rnn_seq.keras"
    csv = tmp_path / "x.csv"
    np.savetxt(csv, truth_arrays("rnn_seq")["enc_gru/input"][0], delimiter=",")
    code, _, err = run(capsys, model, "enc_gru", "--input", csv)
    assert (code, err) == (
        3,
        f"kerasweights: error: {csv}: the input is not a .npy or .npz file (a text or CSV file?); save it with numpy.save\n",
    )
    assert "pickle" not in err.replace(str(csv), "")
    pickled = tmp_path / "x.pkl"
    pickled.write_bytes(pickle.dumps([1.0, 2.0]))
    code, _, err = run(capsys, model, "enc_gru", "--input", pickled)
    assert (code, err) == (
        3,
        f"kerasweights: error: {pickled}: input is a Python pickle; kerasweights never unpickles\n",
    )


def test_token_ids_without_from_input_get_a_hint(capsys, tmp_path):
    tokens = save(tmp_path, "tokens.npy", truth_arrays("functional")["_model/input"])
    code, _, err = run(capsys, FIXTURES / "k3" / "functional.keras", "lstm_seq", "--input", tokens)
    assert code == 2
    assert err.endswith(
        "input has 6 features, the layer's kernel expects 4; the input holds integers: "
        "if they are token ids for the model's input, add --from-input\n"
    )
    code, _, err = run(capsys, FIXTURES / "k3" / "functional.keras", "lstm_seq", "--input", tokens, "--from-input")
    assert (code, err) == (0, "")


def test_integer_input_that_fits_is_traced_with_a_warning(capsys, tmp_path):
    x = save(tmp_path, "x.npy", np.ones((7, 6), np.int64))
    code, _, err = run(capsys, FIXTURES / "k3" / "rnn_seq.keras", "enc_gru", "--input", x)
    assert code == 0
    assert err == (
        "kerasweights: warning: the input of this layer holds integers: "
        "if they are token ids for the model's input, add --from-input\n"
    )


@pytest.mark.parametrize("scale, expected", [("full", {"z": (0.0, 1.0)}), ("data", {})], ids=["full", "data"])
def test_plot_scale(capsys, tmp_path, monkeypatch, scale, expected):
    import kerasweights.trace.plot as trace_plot

    seen = {}
    monkeypatch.setattr(trace_plot, "plot_trace", lambda arrays, path, **kw: seen.update(kw))
    x = save(tmp_path, "x.npy", truth_arrays("rnn_seq")["enc_gru/input"])
    argv = ["enc_gru", "--input", x, "--plot", tmp_path / "p.png", "--scale", scale, "--sample", "1"]
    code, _, err = run(capsys, FIXTURES / "k3" / "rnn_seq.keras", *argv)
    assert code == 0, err
    assert seen["sample"] == 1
    assert {k: v for k, v in seen["ranges"].items() if k == "z"} == expected


def test_data_scale_colours_span_the_values():
    from kerasweights.trace.plot import _limits

    gates = np.array([[0.2, 0.87]])
    assert _limits(gates, (0.0, 1.0)) == (0.0, 1.0, "viridis")
    assert _limits(gates, None) == (0.2, 0.87, "viridis")


def test_progress_bar_on_a_terminal(capsys, tmp_path, monkeypatch):
    import io

    import kerasweights.cli.trace as cli_trace

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    real = cli_trace.Progress
    monkeypatch.setattr(cli_trace, "Progress", lambda total, label, delay: real(total, label, screen, delay=0.0))
    x = save(tmp_path, "x.npy", truth_arrays("bidir_lstm")["bi_l/input"])
    code, _, err = run(capsys, FIXTURES / "k3" / "bidir_lstm.keras", "bi_l", "--input", x)
    assert code == 0, err
    drawn = screen.getvalue()
    assert "\rtrace bi_l [" in drawn and "] 14/14" in drawn  # 7 steps, each half
    assert drawn.endswith("\r" + " " * 79 + "\r")  # cleared before the report


def test_trace_reports_each_step_to_progress():
    from kerasweights import open as kw_open
    from kerasweights.trace import trace

    steps = []
    with kw_open(FIXTURES / "k3" / "bidir_lstm.keras") as model:
        trace(model.layer("bi_l"), truth_arrays("bidir_lstm")["bi_l/input"], progress=steps.append)
    assert steps == [1] * 14
