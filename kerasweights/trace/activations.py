"""Keras activation functions as data: a numpy formula and the range of its values.

Formulas follow keras/src/activations/activations.py (Keras 3) and tf_keras/activations.py
(Keras 2 / tf.keras). The one that differs between generations is ``hard_sigmoid``:
Keras 1, 2 and tf.keras compute ``clip(0.2 x + 0.5, 0, 1)``, Keras 3 ``relu6(x + 3) / 6``
= ``clip(x / 6 + 0.5, 0, 1)``. Everything is evaluated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnsupportedLayerError

Array = np.ndarray
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
_erf = np.frompyfunc(math.erf, 1, 1)


@dataclass(frozen=True)
class Activation:
    """One activation: Keras's name, its formula and the closed range its values lie in."""

    name: str
    fn: Callable[[Array], Array]
    low: float = -math.inf
    high: float = math.inf

    def __call__(self, x: Array) -> Array:
        return self.fn(x)


def _sigmoid(x: Array) -> Array:
    # exp of a non-positive argument only: no overflow warnings for large |x|.
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def _gelu(x: Array) -> Array:
    # Keras's default (approximate=False): x * Phi(x).
    return 0.5 * x * (1.0 + np.asarray(_erf(x / math.sqrt(2.0)), dtype=np.float64))


def _hard_sigmoid_k2(x: Array) -> Array:
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _hard_sigmoid_k3(x: Array) -> Array:
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


_COMMON = [
    Activation("linear", lambda x: x),
    Activation("tanh", np.tanh, -1.0, 1.0),
    Activation("sigmoid", _sigmoid, 0.0, 1.0),
    Activation("relu", lambda x: np.maximum(x, 0.0), 0.0),
    Activation("relu6", lambda x: np.clip(x, 0.0, 6.0), 0.0, 6.0),
    Activation("leaky_relu", lambda x: np.where(x >= 0, x, 0.2 * x)),
    Activation("elu", lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))), -1.0),
    Activation(
        "selu",
        lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
        -_SELU_SCALE * _SELU_ALPHA,
    ),
    Activation("softplus", lambda x: np.logaddexp(0.0, x), 0.0),
    Activation("softsign", lambda x: x / (1.0 + np.abs(x)), -1.0, 1.0),
    Activation("exponential", np.exp, 0.0),
    Activation("silu", lambda x: x * _sigmoid(x), -0.2784645427610738),
    Activation("gelu", _gelu, -0.1699712074800),
    Activation("mish", lambda x: x * np.tanh(np.logaddexp(0.0, x)), -0.3088434130201),
    Activation("hard_tanh", lambda x: np.clip(x, -1.0, 1.0), -1.0, 1.0),
    Activation("log_sigmoid", lambda x: -np.logaddexp(0.0, -x), high=0.0),
    Activation("softmax", _softmax, 0.0, 1.0),
]
_BY_NAME = {a.name: a for a in _COMMON}
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu", None: "linear"}
_HARD = {
    2: Activation("hard_sigmoid", _hard_sigmoid_k2, 0.0, 1.0),
    3: Activation("hard_sigmoid", _hard_sigmoid_k3, 0.0, 1.0),
}
# Keras 3 only (relu6(x + 3) / 6 inside): minimum -0.375 at x = -1.5.
_HARD_SILU = Activation("hard_silu", lambda x: x * _hard_sigmoid_k3(x), -0.375)


def names() -> list[str]:
    """Every activation name :func:`get` understands."""
    return sorted({*_BY_NAME, "hard_sigmoid", "hard_silu", *(a for a in _ALIASES if a)})


def config_name(value: Any) -> str | None:
    """The activation name a layer config holds (string, or a Keras 3 serialized function)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        if value.get("class_name") == "function" and isinstance(inner, str):
            return inner
        return f"<{value.get('class_name', 'object')}>"
    return f"<{type(value).__name__}>"


def get(value: Any, keras_major: int, layer: str = "?", what: str = "activation") -> Activation:
    """The :class:`Activation` for a config value, for files written by Keras ``keras_major``.

    Raises :class:`UnsupportedLayerError` naming the layer and the activation otherwise.
    """
    name = config_name(value)
    name = _ALIASES.get(name, name)
    if name == "hard_sigmoid":
        return _HARD[3 if keras_major >= 3 else 2]
    if name == "hard_silu" and keras_major >= 3:
        return _HARD_SILU
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise UnsupportedLayerError(
        f"layer {layer!r}: {what} {name!r} is not supported by trace; supported: {', '.join(names())}"
    )
