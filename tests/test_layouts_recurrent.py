"""Per-gate splits proved against Keras: a small numpy recurrence fed with the named matrices
reproduces the layer outputs Keras computed for the fixtures (Keras's own equations, written
out independently of kerasweights)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, all_model_files, truth, truth_arrays

import kerasweights
from kerasweights import LayoutError

ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0),
    "linear": lambda x: x,
}


def activation(name: str, keras_major: int):
    if name == "hard_sigmoid":  # Keras 1/2/tf.keras: clip(0.2x + 0.5); Keras 3: relu6(x + 3) / 6
        slope = 0.2 if keras_major < 3 else 1 / 6
        return lambda x: np.clip(slope * x + 0.5, 0, 1)
    return ACTIVATIONS[name]


def m(layer, name):
    return layer.matrix(name).read().astype(np.float64)


def reference_sequences(layer, x, keras_major, state=None, mask=None):
    """h_t for every step, in processing order, from the named matrices alone."""
    cfg = layer.config
    family = "GRU" if "GRU" in layer.class_name else "LSTM" if "LSTM" in layer.class_name else "SimpleRNN"
    act = activation(cfg.get("activation", "tanh"), keras_major)
    rec = activation(cfg.get("recurrent_activation", "sigmoid"), keras_major)
    bias = cfg.get("use_bias", True)
    batch, steps, _ = x.shape
    units = layer.matrix(
        "recurrent_kernel" if family == "SimpleRNN" else "recurrent_kernel_" + ("z" if family == "GRU" else "i")
    ).shape[0]
    h = np.zeros((batch, units)) if state is None else state[0].astype(np.float64)
    c = np.zeros((batch, units)) if state is None or len(state) < 2 else state[1].astype(np.float64)
    order = range(steps - 1, -1, -1) if cfg.get("go_backwards") else range(steps)
    out = []
    for t in order:
        xt = x[:, t].astype(np.float64)
        if family == "SimpleRNN":
            new_h = act(xt @ m(layer, "kernel") + h @ m(layer, "recurrent_kernel") + (m(layer, "bias") if bias else 0))
            new_c = c
        elif family == "GRU":
            b = {g: m(layer, f"bias_{g}") if bias else 0 for g in "zrh"}
            if cfg.get("reset_after"):
                rb = {g: m(layer, f"recurrent_bias_{g}") if bias else 0 for g in "zrh"}
                z = rec(xt @ m(layer, "kernel_z") + b["z"] + h @ m(layer, "recurrent_kernel_z") + rb["z"])
                r = rec(xt @ m(layer, "kernel_r") + b["r"] + h @ m(layer, "recurrent_kernel_r") + rb["r"])
                hh = act(xt @ m(layer, "kernel_h") + b["h"] + r * (h @ m(layer, "recurrent_kernel_h") + rb["h"]))
            else:
                z = rec(xt @ m(layer, "kernel_z") + b["z"] + h @ m(layer, "recurrent_kernel_z"))
                r = rec(xt @ m(layer, "kernel_r") + b["r"] + h @ m(layer, "recurrent_kernel_r"))
                hh = act(xt @ m(layer, "kernel_h") + b["h"] + (r * h) @ m(layer, "recurrent_kernel_h"))
            new_h, new_c = z * h + (1 - z) * hh, c
        else:
            pre = {
                g: xt @ m(layer, f"kernel_{g}")
                + h @ m(layer, f"recurrent_kernel_{g}")
                + (m(layer, f"bias_{g}") if bias else 0)
                for g in "ifco"
            }
            i, f, o = rec(pre["i"]), rec(pre["f"]), rec(pre["o"])
            new_c = f * c + i * act(pre["c"])
            new_h = o * act(new_c)
        if mask is not None:  # masked steps carry the state (and the output) forward
            keep = mask[:, t, None].astype(bool)
            new_h, new_c = np.where(keep, new_h, h), np.where(keep, new_c, c)
        h, c = new_h, new_c
        out.append(h)
    return np.stack(out, axis=1)


def recurrent_cases():
    params = []
    for param in all_model_files():
        path, config, model, runtime = param.values
        for entry in truth(model, runtime)["recurrent"]:
            if entry["class_name"] in ("SimpleRNN", "GRU", "LSTM"):
                params.append(
                    pytest.param(path, config, model, runtime, entry["path"], id=f"{param.id}:{entry['path']}")
                )
    return params


@pytest.mark.parametrize(("path", "config", "model", "runtime", "layer_path"), recurrent_cases())
def test_named_matrices_reproduce_keras_outputs(path, config, model, runtime, layer_path):
    entry = next(e for e in truth(model, runtime)["recurrent"] if e["path"] == layer_path)
    arrays = truth_arrays(model, runtime)
    tolerance = 2e-3 if model == "float16" else 1e-5
    with kerasweights.open(path, config=config) as kw:
        layer = kw.layer(layer_path)
        major = layer.context.keras_major
        x = arrays[entry["input"]]
        mask = arrays[entry["mask"]] if entry.get("mask") else None
        got = reference_sequences(layer, x, major, mask=mask)
        expected = arrays[entry["sequences"]] if mask is None else arrays[entry["output"]]
        if mask is not None and expected.ndim == 2:
            got = got[:, -1]
        np.testing.assert_allclose(got, expected, atol=tolerance, rtol=0)
        if entry.get("initial_state"):
            state = [arrays[k] for k in entry["initial_state"]]
            got = reference_sequences(layer, x, major, state=state)
            np.testing.assert_allclose(got, arrays[entry["output_with_state"]], atol=tolerance, rtol=0)


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_parts_concatenate_back_to_the_stored_array(path, config, model, runtime):
    with kerasweights.open(path, config=config) as kw:
        for layer in kw.walk():
            gated = [mat for mat in layer.matrices().values() if mat.gate]
            for weight in layer.weights:
                parts = [mat for mat in gated if mat.weight is weight]
                if not parts:
                    continue
                stored = weight.read()
                if stored.ndim == 2 and "GRU" in layer.class_name and weight.name == "bias":  # reset_after rows
                    rebuilt = np.stack(
                        [np.concatenate([p.read() for p in parts if p.index[0] == row]) for row in (0, 1)]
                    )
                else:
                    rebuilt = np.concatenate([p.read() for p in parts], axis=-1)
                np.testing.assert_array_equal(rebuilt, stored)


@pytest.mark.parametrize("model", ["rnn_seq", "functional", "bidir_lstm", "activations", "masked", "convlstm"])
def test_every_format_yields_identical_matrices(model):
    from conftest import model_files

    files = model_files(model, "k3") + model_files(model, "tfk")
    reference = None
    for path, config in files:
        with kerasweights.open(path, config=config) as kw:
            values = {k: mat.read().copy() for k, mat in kw.matrices().items()}
        if reference is None:
            reference = values
            continue
        assert values.keys() == reference.keys(), path
        for key in values:
            np.testing.assert_array_equal(values[key], reference[key], err_msg=f"{path}: {key}")


GRU_NAMES = [
    "kernel_z",
    "kernel_r",
    "kernel_h",
    "recurrent_kernel_z",
    "recurrent_kernel_r",
    "recurrent_kernel_h",
    "bias_z",
    "bias_r",
    "bias_h",
]


@pytest.mark.parametrize(
    ("layer", "names"),
    [
        pytest.param(
            "enc_gru", [*GRU_NAMES, "recurrent_bias_z", "recurrent_bias_r", "recurrent_bias_h"], id="gru-reset-after"
        ),
        pytest.param("gru_ra_false", GRU_NAMES, id="gru-reset-before"),
        pytest.param(
            "lstm_last", [f"{v}_{g}" for v in ("kernel", "recurrent_kernel", "bias") for g in "ifco"], id="lstm"
        ),
        pytest.param("my_rnn", ["kernel", "recurrent_kernel", "bias"], id="simple-rnn"),
    ],
)
def test_matrix_names(layer, names):
    with kerasweights.open("fixtures/k3/rnn_seq.keras") as kw:
        assert list(kw.layer(layer).matrices()) == names


def test_no_bias_matrices_without_use_bias():
    with kerasweights.open("fixtures/k3/activations.keras") as kw:
        assert list(kw.layer("rnn_nobias").matrices()) == ["kernel", "recurrent_kernel"]
        assert not [n for n in kw.layer("gru_nobias").matrices() if "bias" in n]


def test_matrices_say_what_they_are_and_where_they_come_from():
    with kerasweights.open("fixtures/k3/rnn_seq.keras") as kw:
        gru = kw.layer("enc_gru")
        assert gru.matrix("recurrent_kernel_r").meaning == "reset gate, recurrent weights"
        assert gru.matrix("recurrent_kernel_r").source == "recurrent_kernel[:, 5:10]"
        assert gru.matrix("bias_h").meaning == "candidate, input bias"
        assert gru.matrix("recurrent_bias_z").source == "bias[1, 0:5]"
        assert kw.layer("lstm_last").matrix("bias_f").meaning == "forget gate, bias"


def test_shape_that_does_not_fit_the_config_is_a_clear_error(tmp_path):
    import json

    config = json.loads((FIXTURES / "k3/rnn_seq.json").read_text())
    gru = next(l for l in config["config"]["layers"] if l["config"]["name"] == "enc_gru")
    gru["config"]["units"] = 4
    (tmp_path / "wrong.json").write_text(json.dumps(config))
    with kerasweights.open("fixtures/k3/rnn_seq.weights.h5", config=tmp_path / "wrong.json") as kw:
        with pytest.raises(LayoutError) as err:
            kw.layer("enc_gru").matrices()
        assert str(err.value) == (  # (layers know their file: the error names it)
            "fixtures/k3/rnn_seq.weights.h5: layer 'enc_gru': kernel has shape (6, 15), expected (?, 12) for units=4"
        )
        assert kw.layer("lstm_last").matrix("kernel_o").shape == (4, 3)  # other layers unaffected
