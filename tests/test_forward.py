"""Feeding a layer from the model input: the numpy chain reproduces the whole-model outputs Keras computed."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from conftest import FIXTURES, model_files, truth_arrays

import kerasweights
from kerasweights.errors import UnsupportedLayerError
from kerasweights.trace import merge
from kerasweights.trace.forward import layer_input, model_input_ndim, run_layer, trace_from_input

# model -> (recurrent layer traced from the model input, layers after it up to the model output)
CHAINS = {
    "rnn_seq": ("lstm_last", ["head"]),  # SimpleRNN -> GRU -> GRU(go_backwards) -> LSTM -> Dense
    "masked": ("gru_masked", []),  # Masking makes the mask, LSTM passes it on
    "activations": ("gru_nobias", []),  # hard_sigmoid, relu, linear, no biases
    "gru_names": ("gru", ["dense_1", "dense"]),  # Functional graph
    "bidir_lstm": ("bi_s", ["y"]),  # Bidirectional (concat) into Bidirectional (sum)
    "float16": ("gru16", ["dense16"]),
}
TOLERANCE = {"float16": 2e-3}


def chain_params():
    return [
        pytest.param(path, config, model, runtime, id=f"{runtime}/{path.name}")
        for runtime in ("k3", "tfk")
        for model in CHAINS
        for path, config in model_files(model, runtime)
    ]


@pytest.mark.parametrize("path, config, model, runtime", chain_params())
def test_chain_reproduces_keras_model_output(path, config, model, runtime):
    arrays = truth_arrays(model, runtime)
    target, after = CHAINS[model]
    with kerasweights.open(path, config=config) as m:
        out = trace_from_input(m, target, arrays["_model/input"])
        layer = m.layer(target)
        if layer.class_name == "Bidirectional":  # return_sequences=False: last processed steps, merged
            y = merge(layer, out["forward/h"][:, -1], out["backward/h"][:, -1])
        else:
            y = out["h"][:, -1]
        for name in after:
            y, _ = run_layer(m.layer(name), (y, None), layer)
    np.testing.assert_allclose(y, arrays["_model/output"], rtol=0, atol=TOLERANCE.get(model, 1e-5))


@pytest.mark.parametrize("runtime", ["k3", "tfk"])
def test_masking_layer_makes_the_keras_mask(runtime):
    arrays = truth_arrays("masked", runtime)
    with kerasweights.open(FIXTURES / runtime / "masked.keras") as m:
        _, mask = layer_input(m, "lstm_masked", arrays["_model/input"])
    assert mask is not None and mask.tolist() == arrays["lstm_masked/mask"].tolist()


@pytest.mark.parametrize("runtime", ["k3", "tfk"])
def test_functional_model_with_embedding_nested_model_and_halves(runtime):
    tokens = truth_arrays("functional", runtime)["_model/input"]
    with kerasweights.open(FIXTURES / runtime / "functional.keras") as m:
        assert model_input_ndim(m) == 2
        shapes = {
            p: trace_from_input(m, p, tokens)["h"].shape
            for p in ("lstm_seq", "bi_g", "bi_g/backward_g", "encoder/lstm_nb")
        }
    assert shapes == {
        "lstm_seq": (2, 6, 5),
        "bi_g": (2, 6, 6),
        "bi_g/backward_g": (2, 6, 3),
        "encoder/lstm_nb": (2, 6, 4),
    }


@pytest.mark.parametrize(
    "path, message",
    [
        (
            "head",
            "cannot feed layer 'head' from the model input: layer 'encoder/enc_bn': BatchNormalization cannot run in numpy",
        ),
        ("td/proj", "cannot feed layer 'td/proj' from the model input: it sits inside TimeDistributed 'td'"),
        ("mha", "layer 'encoder/enc_bn': BatchNormalization cannot run in numpy"),
    ],
    ids=["batchnorm", "inside-timedistributed", "mha"],
)
def test_unrunnable_layer_is_named(path, message):
    tokens = truth_arrays("functional")["_model/input"]
    with kerasweights.open(FIXTURES / "k3" / "functional.keras") as m, pytest.raises(UnsupportedLayerError) as info:
        layer_input(m, path, tokens)
    assert message in str(info.value)


def test_weightless_unknown_layer_in_the_chain_is_named():
    config = json.loads((FIXTURES / "k3" / "rnn_seq.json").read_text())
    edited = copy.deepcopy(config)
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "shift", "function": "opaque"},
        "registered_name": None,
    }
    edited["config"]["layers"].insert(2, lam)  # after InputLayer and my_rnn
    with (
        kerasweights.open(FIXTURES / "k3" / "rnn_seq.weights.h5", config=edited) as m,
        pytest.raises(UnsupportedLayerError) as info,
    ):
        trace_from_input(m, "enc_gru", np.zeros((1, 7, 4)))
    assert "cannot feed layer 'enc_gru' from the model input: layer 'shift': Lambda cannot run in numpy" in str(
        info.value
    )


def test_file_without_config_is_refused():
    with (
        kerasweights.open(FIXTURES / "k3" / "rnn_seq.weights.h5") as m,
        pytest.raises(UnsupportedLayerError, match="the file has no model config"),
    ):
        layer_input(m, "enc_gru", np.zeros((1, 7, 4)))
