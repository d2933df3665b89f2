"""trace(): numpy recurrences reproduce the sequences, outputs and final states Keras computed."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from conftest import K3_MODELS, TFK_MODELS, corpus_files, model_files, truth, truth_arrays

import kerasweights
from kerasweights.errors import UnsupportedLayerError
from kerasweights.layouts import Context
from kerasweights.trace import RECURRENT, TraceInputError, merge, trace

# Keras runs float16 layers in float16 (11 significant bits: a step of 4.9e-4 between 0.5 and 1);
# trace runs float64, so it differs by a few float16 steps. Everything else is float32.
TOLERANCE = {"float16": 2e-3}
DEFAULT_TOLERANCE = 1e-5
# Ranges of the activations the fixtures use, written out from their definitions.
RANGES = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "relu": (0.0, math.inf),
    "linear": (-math.inf, math.inf),
}


def recurrent_cases() -> list[Any]:
    """(file, config, model, runtime, truth entry) for every recurrent entry of every saved form."""
    params = []
    for runtime, models in (("k3", K3_MODELS), ("tfk", TFK_MODELS)):
        for model in models:
            for entry in truth(model, runtime)["recurrent"]:
                for path, config in model_files(model, runtime):
                    params.append(
                        pytest.param(path, config, model, runtime, entry, id=f"{runtime}/{path.name}:{entry['path']}")
                    )
    return params


CASES = recurrent_cases()


def traced(path, config, entry, arrays, with_state: bool = False) -> tuple[dict[str, np.ndarray], Any]:
    with kerasweights.open(path, config=config) as model:
        layer = model.layer(entry["path"])
        states = [arrays[k] for k in entry["initial_state"]] if with_state else None
        mask = arrays[entry["mask"]] if entry["mask"] else None
        return trace(layer, arrays[entry["input"]], states, mask), layer


def close(actual: np.ndarray, expected: np.ndarray, model: str) -> None:
    tol = TOLERANCE.get(model, DEFAULT_TOLERANCE)
    np.testing.assert_allclose(actual, expected.astype(np.float32), rtol=0, atol=tol)


def test_cases_cover_every_recurrent_fixture():
    classes = {e["class_name"] for p in CASES for e in [p.values[4]]}
    assert {"SimpleRNN", "GRU", "LSTM", "Bidirectional", "ConvLSTM2D"} <= classes
    assert len(CASES) > 100


@pytest.mark.parametrize("path, config, model, runtime, entry", CASES)
def test_h_equals_keras_sequences(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    out, _ = traced(path, config, entry, arrays)
    expected = arrays[entry["sequences"]]
    assert out["h"].shape == expected.shape and out["h"].dtype == np.float32
    close(out["h"], expected, model)


@pytest.mark.parametrize("path, config, model, runtime, entry", CASES)
def test_output_and_final_states_equal_keras(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    out, layer = traced(path, config, entry, arrays)
    output = arrays[entry["output"]]
    if entry["class_name"] == "Bidirectional":
        if output.ndim == out["h"].ndim:
            close(out["h"], output, model)
        else:  # return_sequences=False: each half's last processed step, merged
            close(merge(layer, out["forward/h"][:, -1], out["backward/h"][:, -1]), output, model)
        return
    close(out["h"] if output.ndim == out["h"].ndim else out["h"][:, -1], output, model)
    # Keras's final states (computed with the entry's initial state, if any) are the last step's.
    if entry["initial_state"]:
        out, _ = traced(path, config, entry, arrays, with_state=True)
    final = arrays[entry["state_output"]]
    close(np.stack([out[s][:, -1] for s in ("h", "c")[: len(final)]]), final, model)


STATE_CASES = [p for p in CASES if p.values[4]["initial_state"]]


@pytest.mark.parametrize("path, config, model, runtime, entry", STATE_CASES)
def test_initial_state_equals_keras_output_with_state(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    out, _ = traced(path, config, entry, arrays, with_state=True)
    close(out["h"], arrays[entry["output_with_state"]], model)


def test_state_cases_cover_each_cell():
    assert {p.values[4]["class_name"] for p in STATE_CASES} == {"SimpleRNN", "GRU", "LSTM"}


def expected_ranges(entry: dict[str, Any]) -> dict[str, tuple[float, float]]:
    c = entry["config"]
    act, rec = RANGES[c["activation"]], RANGES.get(c.get("recurrent_activation") or "linear")
    h = (min(act[0], 0.0), max(act[1], 0.0))
    if entry["class_name"] == "SimpleRNN":
        return {"h": act}
    if entry["class_name"] == "GRU":
        return {"z": rec, "r": rec, "candidate": act, "h": h}
    return {"i": rec, "f": rec, "o": rec, "candidate": act, "h": h}


LEAF_CASES = [p for p in CASES if p.values[4]["class_name"] != "Bidirectional" and p.values[1] is None]


@pytest.mark.parametrize("path, config, model, runtime, entry", LEAF_CASES)
def test_gates_lie_in_their_activation_range(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    out, _ = traced(path, config, entry, arrays)
    ranges = expected_ranges(entry)
    assert set(ranges) <= set(out)
    for name, (low, high) in ranges.items():
        values = out[name][np.isfinite(out[name])]
        assert values.size and low <= values.min() and values.max() <= high, (name, values.min(), values.max())


@pytest.mark.parametrize("runtime", ["k3", "tfk"])
def test_hard_sigmoid_follows_the_files_keras_generation(runtime):
    # gru_hard matches Keras only with the formula of the Keras that wrote the file.
    arrays = truth_arrays("activations", runtime)
    path, _ = model_files("activations", runtime)[0]
    with kerasweights.open(path) as model:
        layer = model.layer("gru_hard")
        x, expected = arrays["gru_hard/input"], arrays["gru_hard/sequences"]
        np.testing.assert_allclose(trace(layer, x)["h"], expected, atol=1e-5)
        other = 2 if layer.context.keras_major >= 3 else 3
        swapped = dataclasses.replace(layer, context=Context(keras_major=other), _matrices=None)
        assert np.abs(trace(swapped, x)["h"] - expected).max() > 1e-3


@pytest.mark.parametrize("runtime", ["k3", "tfk"])
def test_masked_steps_keep_state_and_have_no_gates(runtime):
    arrays = truth_arrays("masked", runtime)
    mask = arrays["lstm_masked/mask"]
    assert not mask[0, -2:].any() and mask[1].all()
    with kerasweights.open(model_files("masked", runtime)[0][0]) as model:
        out = trace(model.layer("lstm_masked"), arrays["lstm_masked/input"], mask=mask)
    np.testing.assert_allclose(out["h"], arrays["lstm_masked/sequences"], atol=1e-5)
    for name in ("h", "c"):
        assert np.array_equal(out[name][0, -1], out[name][0, -3])  # carried over
    for name in ("i", "f", "o", "candidate"):
        assert np.isnan(out[name][0, -2:]).all() and np.isfinite(out[name][1]).all()


def test_go_backwards_returns_processing_order():
    arrays = truth_arrays("rnn_seq")
    with kerasweights.open(model_files("rnn_seq")[0][0]) as model:
        layer = model.layer("gru_ra_false")
        out = trace(layer, arrays["gru_ra_false/input"])
        with_state = trace(layer, arrays["gru_ra_false/input"], arrays["gru_ra_false/h0"])
    # Keras's return_sequences output: step 0 is the last input step; the final state is the last step.
    np.testing.assert_allclose(out["h"], arrays["gru_ra_false/output"], atol=1e-5)
    np.testing.assert_allclose(with_state["h"][:, -1], arrays["gru_ra_false/state_output"][0], atol=1e-5)


def test_time_features_input_is_a_batch_of_one():
    arrays = truth_arrays("rnn_seq")
    with kerasweights.open(model_files("rnn_seq")[0][0]) as model:
        out = trace(model.layer("lstm_last"), arrays["lstm_last/input"][1])
    assert out["h"].shape == (1, 7, 3)
    np.testing.assert_allclose(out["h"][0], arrays["lstm_last/sequences"][1], atol=1e-5)


def test_bidirectional_gives_both_halves_and_the_merged_output():
    arrays = truth_arrays("functional")
    with kerasweights.open(model_files("functional")[0][0]) as model:
        out = trace(model.layer("bi_g"), arrays["bi_g/input"])
    assert list(out) == [f"{half}/{k}" for half in ("forward", "backward") for k in ("z", "r", "candidate", "h")] + [
        "h",
        "output",
    ]
    np.testing.assert_allclose(out["output"], arrays["bi_g/output"], atol=1e-5)
    np.testing.assert_allclose(out["forward/h"], arrays["bi_g/forward_g/sequences"], atol=1e-5)
    np.testing.assert_allclose(out["backward/h"], arrays["bi_g/backward_g/sequences"], atol=1e-5)
    np.testing.assert_allclose(out["h"], arrays["bi_g/sequences"], atol=1e-5)


@pytest.fixture
def rnn_seq():
    with kerasweights.open(model_files("rnn_seq")[0][0]) as model:
        yield model


def test_non_recurrent_layer_is_refused(rnn_seq):
    with pytest.raises(
        UnsupportedLayerError, match=r"layer 'head' \(Dense\) is not a recurrent layer; trace runs SimpleRNN, GRU, LSTM"
    ):
        trace(rnn_seq.layer("head"), np.zeros((1, 7, 3)))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("activation", "crelu", "layer 'enc_gru': activation 'crelu' is not supported by trace; supported: elu,"),
        (
            "recurrent_activation",
            {"class_name": "LeakyReLU", "config": {}},
            "layer 'enc_gru': recurrent_activation '<LeakyReLU>' is not supported",
        ),
        ("time_major", True, "layer 'enc_gru': time_major=True is not supported by trace"),
    ],
    ids=["activation", "layer-as-activation", "time-major"],
)
def test_unsupported_config_names_layer_and_setting(rnn_seq, key, value, message):
    layer = rnn_seq.layer("enc_gru")
    changed = dataclasses.replace(layer, config={**layer.config, key: value}, _matrices=None)
    with pytest.raises(UnsupportedLayerError) as info:
        trace(changed, np.zeros((1, 7, 6)))
    assert message in str(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": np.zeros((1, 7, 4))}, "layer 'enc_gru': input has 4 features, the layer's kernel expects 6"),
        (
            {"x": np.zeros(7)},
            "layer 'enc_gru': input has shape (7,), expected (batch, time, features) or (time, features)",
        ),
        (
            {"x": np.zeros((2, 7, 6)), "mask": np.ones((2, 6), bool)},
            "layer 'enc_gru': mask has shape (2, 6), expected (batch, time) = (2, 7)",
        ),
        (
            {"x": np.zeros((2, 7, 6)), "initial_state": [np.zeros((2, 5))] * 2},
            "layer 'enc_gru': expected 1 initial state(s) (h), got 2",
        ),
        (
            {"x": np.zeros((2, 7, 6)), "initial_state": np.zeros((3, 5))},
            "initial state h has shape (3, 5), expected (2, 5) or (5,)",
        ),
    ],
    ids=["features", "rank", "mask-shape", "state-count", "state-shape"],
)
def test_bad_arrays_are_reported(rnn_seq, kwargs, message):
    with pytest.raises(TraceInputError) as info:
        trace(rnn_seq.layer("enc_gru"), **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("path", corpus_files("h5-full", "keras-zip"))
def test_real_files_trace_every_recurrent_layer(path):
    """Third-party files (no Keras truth for them): every recurrent layer runs to finite arrays."""
    rng = np.random.default_rng(0)
    with kerasweights.open(path) as model:
        layers = [
            layer for layer in model.walk() if layer.class_name in RECURRENT or layer.class_name == "Bidirectional"
        ]
        for layer in layers:
            cell = layer.children[0] if layer.class_name == "Bidirectional" else layer
            kernel = next(m for name, m in cell.matrices().items() if name.startswith("kernel"))
            features, spatial = kernel.shape[-2], [12] * (len(kernel.shape) - 2)
            channels_first = cell.config.get("data_format") == "channels_first"
            shape = (2, 3, features, *spatial) if channels_first else (2, 3, *spatial, features)
            out = trace(layer, rng.normal(size=shape))
            output = out.pop("output")  # the layer's output: (2, 3, ...) or its last step (2, ...)
            assert all(np.isfinite(a).all() and a.shape[:2] == (2, 3) for a in out.values()), layer.path
            assert np.isfinite(output).all() and output.shape[0] == 2, layer.path
