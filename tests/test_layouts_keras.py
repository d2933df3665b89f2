"""Facts about Keras itself (kerasweights.layouts.keras), read by every feature from one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import FIXTURES
from h5edit import edited_h5, layer_config

import kerasweights
from kerasweights.export.torch import refusal_reasons
from kerasweights.layouts.keras import (
    KERAS1_NAME,
    KERAS1_VARIABLES,
    WEIGHTLESS_CLASSES,
    default_recurrent_activation,
    layer_path,
)
from kerasweights.trace import activations, trace


@pytest.mark.parametrize(
    ("version", "major", "expected"),
    [
        (None, 1, "hard_sigmoid"),
        ("1.2.2", 1, "hard_sigmoid"),
        ("2.0.8", 2, "hard_sigmoid"),  # standalone Keras 2
        ("2.2.4", 2, "hard_sigmoid"),
        ("2.3.1", 2, "hard_sigmoid"),
        ("2.2.4-tf", 2, "sigmoid"),  # tf.keras in TensorFlow 1.x/2.0-2.5
        ("2.4.0", 2, "sigmoid"),  # 2.4 and later are tf.keras
        ("2.12.0", 2, "sigmoid"),
        (None, 2, "sigmoid"),  # unknown Keras 2 writer: tf.keras, by far the commoner
        ("3.15.1", 3, "sigmoid"),
    ],
    ids=str,
)
def test_default_recurrent_activation_by_generation(version: str | None, major: int, expected: str) -> None:
    assert default_recurrent_activation(version, major) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lstm_1_W_i", ("W", "i")),
        ("gru_2_U_z:0", ("U", "z")),
        ("dense_1_b", ("b", None)),
        ("kernel", None),
        ("bias", None),
    ],
    ids=str,
)
def test_keras1_names(name: str, expected: tuple[str, str | None] | None) -> None:
    match = KERAS1_NAME.search(name)
    assert (match.group(1), match.group(2)) == expected if match else expected is None
    if match:
        assert KERAS1_VARIABLES[match.group(1)] in ("kernel", "recurrent_kernel", "bias")


def test_layer_path_and_weightless_classes() -> None:
    assert layer_path("", "gru") == "gru"
    assert layer_path("encoder/bi", "forward_gru") == "encoder/bi/forward_gru"
    assert {"Dropout", "Flatten", "InputLayer"} <= WEIGHTLESS_CLASSES
    assert not {"Dense", "GRU", "LSTM"} & WEIGHTLESS_CLASSES


@pytest.mark.parametrize(
    ("version", "gates"), [("2.2.4", "hard_sigmoid"), ("2.2.4-tf", "sigmoid")], ids=["standalone", "tf.keras"]
)
def test_trace_and_the_torch_port_take_the_same_default(tmp_path: Path, version: str, gates: str) -> None:
    """A Keras 2 GRU whose config lacks recurrent_activation: both features follow the writer's generation."""

    def drop(document: dict[str, Any]) -> None:
        del layer_config(document, "enc_gru")["recurrent_activation"]

    path = edited_h5(FIXTURES / "tfk/rnn_seq.h5", tmp_path / "m.h5", config=drop)
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = version
    with kerasweights.open(path) as model:
        layer = model.layer("enc_gru")
        x = np.random.default_rng(0).standard_normal((1, 3, 6)).astype(np.float32)
        z = trace(layer, x)["z"]
        matrices = layer.matrices()
        pre = x[:, 0] @ matrices["kernel_z"].read() + matrices["bias_z"].read()  # first step, h0 = 0
        if "recurrent_bias_z" in matrices:  # reset_after: the recurrent bias is added to h0 @ U = 0
            pre = pre + matrices["recurrent_bias_z"].read()
        assert np.allclose(z[:, 0], activations.get(gates, 2)(pre.astype(np.float64)), atol=1e-6)
        reasons = refusal_reasons(layer)
        assert any("hard_sigmoid" in r for r in reasons) == (gates == "hard_sigmoid")
