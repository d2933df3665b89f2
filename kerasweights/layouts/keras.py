"""Facts about Keras itself, not about one layer class: the one home every feature reads them from."""

from __future__ import annotations

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
