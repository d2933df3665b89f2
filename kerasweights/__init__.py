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
    MissingExtraError,
    MissingFileError,
    NotFoundError,
    OutputError,
    TraceInputError,
    UnsafeContentError,
    UnsupportedFormatError,
    UnsupportedLayerError,
    UsageError,
)
from .limits import Limits
from .model import Layer, Matrix, Model, Weight

__version__ = "0.1.0"

# Imported on first use (PEP 562), so `import kerasweights` stays as cheap as numpy + h5py.
# (No function named like its module: importing kerasweights.compare would shadow it.)
_LAZY = {
    "audit_file": "audit",
    "audit_paths": "audit",
    "FileReport": "audit",
    "Finding": "audit",
    "Comparison": "compare",
    "to_torch": "export.torch",
    "layer_to_torch": "export.torch",
    "TorchModule": "export.torch",
    "TorchPort": "export.torch",
    "torch_port": "export.torch",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kerasweights' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "Comparison",
    "ConfigError",
    "CorruptFileError",
    "FileReport",
    "Finding",
    "KerasWeightsError",
    "Layer",
    "LayoutError",
    "LimitExceededError",
    "Limits",
    "Matrix",
    "MissingExtraError",
    "MissingFileError",
    "Model",
    "NotFoundError",
    "OutputError",
    "TorchModule",
    "TorchPort",
    "TraceInputError",
    "UnsafeContentError",
    "UnsupportedFormatError",
    "UnsupportedLayerError",
    "UsageError",
    "Weight",
    "__version__",
    "audit_file",
    "audit_paths",
    "layer_to_torch",
    "open",
    "to_torch",
    "torch_port",
]
