"""kerasweights.layouts.builtins: the layer classes Keras ships, checked against what Keras and the corpus say."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS, FIXTURES

from kerasweights.layouts.builtins import BUILTIN_LAYERS, is_builtin_layer, is_keras_module

# MANIFEST.tsv notes name these as custom classes (QKeras, HGQ, Keras's own test subclasses).
CORPUS_CUSTOM = {"QDense", "QActivation", "FixedPointQuantizer", "NestedDenseModel", "TestModel"}


def test_every_class_keras_wrote_in_the_fixtures_is_builtin() -> None:
    classes = {
        layer["class_name"]
        for path in FIXTURES.glob("*/*.truth.json")
        for layer in json.loads(path.read_text())["layers"]
    }
    assert {"Lambda", "MultiHeadAttention", "Bidirectional", "TimeDistributed", "InputLayer"} <= classes
    assert classes <= BUILTIN_LAYERS


def test_corpus_classes() -> None:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.skip("../shared/corpus is absent")
    classes = {c for line in manifest.read_text().splitlines()[1:] for c in line.split("\t")[8].split(",") if c}
    assert {"TimeDistributedDense", "Convolution2D", "CuDNNLSTM"} <= classes  # Keras 1 and 2 spellings
    assert {c for c in classes if not is_builtin_layer(c)} == CORPUS_CUSTOM


@pytest.mark.parametrize(
    ("class_name", "module", "builtin"),
    [
        pytest.param("Dense", None, True, id="no-module"),
        pytest.param("Dense", "keras.layers", True, id="keras"),
        pytest.param("Dense", "keras.src.layers.core.dense", True, id="keras.src"),
        pytest.param("Dense", "tf_keras.src.layers", True, id="tf_keras"),
        pytest.param("Dense", "tensorflow.python.keras.layers.core", True, id="tensorflow"),
        pytest.param("Dense", "mypkg.layers", False, id="shadowed"),
        pytest.param("QDense", "qkeras.qlayers", False, id="qkeras"),
        pytest.param("BatchNormalizationV1", None, True, id="tf-1.13-alias"),
        pytest.param("Unknown", None, False, id="not-a-class"),
    ],
)
def test_is_builtin_layer(class_name: str, module: str | None, builtin: bool) -> None:
    assert is_builtin_layer(class_name, module) is builtin


def test_is_keras_module() -> None:
    assert is_keras_module(None) and is_keras_module("keras.layers") and is_keras_module("tf_keras")
    assert not is_keras_module("__main__") and not is_keras_module("kerasx.layers")
