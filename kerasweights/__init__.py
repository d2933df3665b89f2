"""kerasweights: read Keras model files without TensorFlow and name every weight.

>>> import kerasweights
>>> with kerasweights.open("fixtures/k3/rnn_seq.keras") as model:
...     model.layer("enc_gru").matrix("kernel_z").shape
(6, 5)
"""

from __future__ import annotations

from .api import open
from .errors import (
    ConfigError,
    CorruptFileError,
    KerasWeightsError,
    LayoutError,
    LimitExceededError,
    NotFoundError,
    UnsafeContentError,
    UnsupportedFormatError,
    UnsupportedLayerError,
)
from .limits import Limits
from .model import Layer, Matrix, Model, Weight

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorruptFileError",
    "KerasWeightsError",
    "Layer",
    "LayoutError",
    "Limits",
    "LimitExceededError",
    "Matrix",
    "Model",
    "NotFoundError",
    "UnsafeContentError",
    "UnsupportedFormatError",
    "UnsupportedLayerError",
    "Weight",
    "__version__",
    "open",
]
