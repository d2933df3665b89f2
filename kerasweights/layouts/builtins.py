"""Layer classes that Keras itself ships, in every spelling Keras 1, Keras 2, tf.keras and Keras 3 used.

A class outside this list (``QDense``, ``AttentionWeightedAverage``) needs its author's
code to load; ``kerasweights audit`` reports it as ``custom-layer``.
"""

from __future__ import annotations

from ..config import CLASS_ALIASES
from . import known_classes

__all__ = ["BUILTIN_LAYERS", "KERAS_PACKAGES", "is_builtin_layer", "is_keras_module"]

KERAS_PACKAGES = frozenset({"keras", "tf_keras"})
"""Top-level Python packages whose classes count as shipped by Keras (``module`` in configs)."""

# tensorflow: tf.keras lived inside it (tensorflow.python.keras, tensorflow.keras).
_LAYER_PACKAGES = KERAS_PACKAGES | {"tensorflow"}

_MODELS = {"Model", "Sequential", "Functional", "Graph"}  # Graph: Keras 0.x/1.x legacy container
_CORE = {
    "InputLayer",
    "Input",
    "Dense",
    "EinsumDense",
    "Embedding",
    "Masking",
    "Lambda",
    "Identity",
    "Activation",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "ActivityRegularization",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "Layer",
    "Wrapper",
    "InputSpec",
}
_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "Merge"}
_CONV = {
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "SeparableConv1D",
    "SeparableConv2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "LocallyConnected1D",
    "LocallyConnected2D",
    # aliases Keras exports under a second name
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
    "DepthwiseConvolution2D",
    # Keras 1
    "AtrousConvolution1D",
    "AtrousConvolution2D",
    "Deconvolution2D",
    "Deconvolution3D",
    "AtrousConv1D",
    "AtrousConv2D",
}
_POOL = {
    f"{kind}{dims}D"
    for kind in (
        "MaxPooling",
        "AveragePooling",
        "GlobalMaxPooling",
        "GlobalAveragePooling",
        "MaxPool",
        "AvgPool",
        "GlobalMaxPool",
        "GlobalAvgPool",
        "AdaptiveAveragePooling",
        "AdaptiveMaxPooling",
    )
    for dims in (1, 2, 3)
}
_NORM = {
    "BatchNormalization",
    "BatchNormalizationV1",
    "BatchNormalizationV2",
    "SyncBatchNormalization",
    "LayerNormalization",
    "LayerNormalizationV1",
    "GroupNormalization",
    "UnitNormalization",
    "SpectralNormalization",
    "RMSNormalization",
}
_RECURRENT = {
    "RNN",
    "SimpleRNN",
    "GRU",
    "LSTM",
    "SimpleRNNCell",
    "GRUCell",
    "LSTMCell",
    "StackedRNNCells",
    "PeepholeLSTMCell",
    "AbstractRNNCell",
    "Bidirectional",
    "TimeDistributed",
    "CuDNNGRU",
    "CuDNNLSTM",
    "GRUV1",
    "GRUV2",
    "LSTMV1",
    "LSTMV2",
    "UnifiedGRU",
    "UnifiedLSTM",
    "GRUCellV1",
    "GRUCellV2",
    "LSTMCellV1",
    "LSTMCellV2",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "ConvLSTM1DCell",
    "ConvLSTM2DCell",
    "ConvLSTM3DCell",
    "ConvRNN1D",
    "ConvRNN2D",
    "ConvRNN3D",
    "ConvRecurrent2D",
    # Keras 1
    "TimeDistributedDense",
    "Highway",
    "MaxoutDense",
    "Recurrent",
}
_ATTENTION = {"Attention", "AdditiveAttention", "MultiHeadAttention", "GroupQueryAttention", "GroupedQueryAttention"}
_ACTIVATIONS = {
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "Softmax",
    "ParametricSoftplus",
    "ThresholdedLinear",
    "SReLU",  # Keras 1 advanced activations
}
_PREPROCESSING = {
    "Normalization",
    "Discretization",
    "CategoryEncoding",
    "Hashing",
    "HashedCrossing",
    "StringLookup",
    "IntegerLookup",
    "TextVectorization",
    "Rescaling",
    "Resizing",
    "CenterCrop",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
    "RandomHeight",
    "RandomWidth",
    "RandomGrayscale",
    "RandomHue",
    "RandomSaturation",
    "RandomSharpness",
    "RandomShear",
    "RandomColorJitter",
    "RandomColorDegeneration",
    "RandomPosterization",
    "RandomInvert",
    "RandomErasing",
    "RandomGaussianBlur",
    "RandomElasticTransform",
    "RandomPerspective",
    "RandomApply",
    "AutoContrast",
    "Equalization",
    "Solarization",
    "MixUp",
    "CutMix",
    "AugMix",
    "RandAugment",
    "MelSpectrogram",
    "STFTSpectrogram",
    "Pipeline",
    "PreprocessingLayer",
}
# Shipped by Keras, even though some of them run foreign code (the unsafe-config check says so).
_INTEROP = {
    "TFSMLayer",
    "TorchModuleWrapper",
    "JaxLayer",
    "FlaxLayer",
    "TFOpLambda",
    "SlicingOpLambda",
    "TensorFlowOpLayer",
    "DenseFeatures",
    "SequenceFeatures",
    "RandomFourierFeatures",
}

BUILTIN_LAYERS: frozenset[str] = frozenset(
    _MODELS
    | _CORE
    | _MERGE
    | _CONV
    | _POOL
    | _NORM
    | _RECURRENT
    | _ATTENTION
    | _ACTIVATIONS
    | _PREPROCESSING
    | _INTEROP
    | set(CLASS_ALIASES)
    | set(known_classes())
)
"""Every layer (and model) class name Keras 1, Keras 2, tf.keras or Keras 3 ships."""


def is_keras_module(module: str | None, packages: frozenset[str] = KERAS_PACKAGES) -> bool:
    """True when ``module`` (``keras.layers``, ``tf_keras.src.engine``) belongs to Keras, or is absent."""
    if not module:
        return True
    return module.split(".")[0] in packages


def is_builtin_layer(class_name: str, module: str | None = None) -> bool:
    """True when Keras ships ``class_name`` and the config does not point at another package.

    ``module`` is the config's ``module`` entry (Keras 3, tf.keras 2.13+): a built-in name
    from another package (``mypkg.layers.Dense``) is that package's class, not Keras's.
    """
    return class_name in BUILTIN_LAYERS and is_keras_module(module, _LAYER_PACKAGES)
