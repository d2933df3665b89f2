"""Activation formulas: values from their published definitions, Keras 2 vs Keras 3 hard_sigmoid, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kerasweights.errors import UnsupportedLayerError
from kerasweights.trace import activations

# (name, x, expected) straight from each definition (Keras docs / the papers' formulas).
KNOWN = [
    ("linear", 1.5, 1.5),
    ("tanh", 0.5, math.tanh(0.5)),
    ("sigmoid", 0.0, 0.5),
    ("sigmoid", -800.0, 0.0),
    ("relu", -2.0, 0.0),
    ("relu6", 7.0, 6.0),
    ("elu", -1.0, math.exp(-1.0) - 1.0),
    ("selu", -1.0, 1.0507009873554805 * 1.6732632423543772 * (math.exp(-1.0) - 1.0)),
    ("softplus", 0.0, math.log(2.0)),
    ("softsign", 1.0, 0.5),
    ("exponential", 1.0, math.e),
    ("swish", 1.0, 1.0 / (1.0 + math.exp(-1.0))),
    ("silu", 1.0, 1.0 / (1.0 + math.exp(-1.0))),
    ("gelu", 1.0, 0.5 * (1.0 + math.erf(1.0 / math.sqrt(2.0)))),
    ("mish", 1.0, math.tanh(math.log1p(math.e))),
    ("softmax", 0.0, 1.0),
]


@pytest.mark.parametrize("name, x, expected", KNOWN, ids=[f"{n}({x})" for n, x, _ in KNOWN])
def test_formula_values(name, x, expected):
    assert activations.get(name, 3)(np.array([x]))[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "major, at_1, at_3",
    [(1, 0.7, 1.0), (2, 0.7, 1.0), (3, 1 / 6 + 0.5, 1.0)],
    ids=["keras1", "keras2-tf.keras", "keras3"],
)
def test_hard_sigmoid_by_generation(major, at_1, at_3):
    hard = activations.get("hard_sigmoid", major)
    assert hard(np.array([1.0, 3.0, -3.0])).tolist() == pytest.approx([at_1, at_3, 0.0])


def test_keras3_serialized_function_is_understood():
    value = {"module": "keras.activations", "class_name": "function", "config": "tanh", "registered_name": "function"}
    assert activations.get(value, 3).name == "tanh"
    assert activations.get(None, 3).name == "linear"


def test_unknown_activation_names_layer_and_activation():
    with pytest.raises(
        UnsupportedLayerError,
        match=r"layer 'enc/rnn': recurrent_activation 'my_act' is not supported by trace; supported: elu, ",
    ):
        activations.get("my_act", 3, "enc/rnn", "recurrent_activation")


@pytest.mark.parametrize("name", activations.names())
@given(x=st.lists(st.floats(-60, 60), min_size=1, max_size=20))
def test_values_lie_in_the_declared_range(name, x):
    act = activations.get(name, 3)
    values = act(np.array(x, dtype=np.float64))
    assert np.all(values >= act.low) and np.all(values <= act.high)
