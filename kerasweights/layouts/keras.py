"""Facts about Keras itself, not about one layer class: the one home every feature reads them from."""

from __future__ import annotations

import re
from typing import Final

WEIGHTLESS_CLASSES: Final = frozenset(
    {
        "InputLayer",
        "Dropout",
        "Activation",
        "Flatten",
        "Reshape",
        "Masking",
        "Lambda",
        "RepeatVector",
        "Permute",
        "Concatenate",
        "Add",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Subtract",
        "Dot",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "AveragePooling1D",
        "AveragePooling2D",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping1D",
        "Cropping2D",
        "UpSampling1D",
        "UpSampling2D",
        "Softmax",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "TFOpLambda",
        "SlicingOpLambda",
        "Merge",
        "AlphaDropout",
        "ActivityRegularization",
    }
)
"""Built-in layer classes that never store a weight."""

IDENTITY_AT_INFERENCE: Final = frozenset(
    {
        "InputLayer",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    }
)
"""Built-in classes that pass their input through unchanged when not training."""

KERAS1_VARIABLES: Final = {"W": "kernel", "U": "recurrent_kernel", "b": "bias"}
"""Keras 1 stored ``<layer>_W``, ``_U``, ``_b`` (per gate: ``_W_i``...) for Keras 2's names."""
KERAS1_NAME: Final = re.compile(r"(?:^|_)([WUb])(?:_([a-z]))?(?::\d+)?$")
"""A Keras 1 weight name: group 1 the letter (``W``/``U``/``b``), group 2 the gate, if any."""


def layer_path(parent: str, name: str) -> str:
    """The path kerasweights gives a layer: its name below its parent's path, ``/``-separated."""
    return f"{parent}/{name}" if parent else name


def default_recurrent_activation(keras_version: str | None, keras_major: int) -> str:
    """The ``recurrent_activation`` a recurrent layer had when its config did not say.

    Keras 1 and standalone Keras 2.0-2.3 defaulted to ``hard_sigmoid``; tf.keras (versions
    ending in ``-tf``, and every 2.4+ release, which is tf.keras) and Keras 3 to ``sigmoid``.
    A Keras 2 file of unknown version is taken as tf.keras, by far the commoner writer.
    """
    if keras_major <= 1:
        return "hard_sigmoid"
    if keras_major == 2 and keras_version and not keras_version.endswith("-tf"):
        numbers = re.match(r"2\.(\d+)", keras_version)
        if numbers and int(numbers.group(1)) <= 3:
            return "hard_sigmoid"
    return "sigmoid"
