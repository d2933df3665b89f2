"""Real Keras files written by other people (../shared/corpus); skipped where that folder is absent."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CORPUS, corpus_files

import kerasweights
from kerasweights.cli import main

needs_corpus = pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(), reason="../shared/corpus is absent")


@pytest.mark.parametrize("path", corpus_files("h5-full", "h5-weights", "keras-zip"))
def test_summary_reads_every_corpus_model(path, capsys):
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Total params:" in out


@pytest.mark.parametrize("path", corpus_files("h5-full", "h5-weights", "keras-zip"))
def test_every_recognised_layer_splits(path):
    with kerasweights.open(path) as model:
        for layer in model.walk():
            if layer.rule is not None and layer.weights and not layer.problems:
                layer.matrices()  # raises LayoutError on a wrong split


@needs_corpus
@pytest.mark.parametrize(
    ("file", "layer", "names"),
    [
        pytest.param(
            "dl4j/lstm_theano_1.h5",
            "lstm_1",
            ["kernel_i", "recurrent_kernel_i", "bias_i", "kernel_c"],
            id="keras1-per-gate-lstm",
        ),
        pytest.param(
            "dot-res-lstm/dot_res_lstm-10-0.78.hdf5", "cu_dnnlstm_3", ["kernel_i", "kernel_f"], id="cudnn-lstm"
        ),
        pytest.param(
            "medaka/test_model.hdf5",
            "bidirectional_1/forward_gru1",
            ["kernel_z", "bias_h"],
            id="keras2-gru-no-reset-after-key",
        ),
        pytest.param("xauusd-gru/gru_model.keras", "gru", ["recurrent_bias_h"], id="keras3-zip-gru"),
        pytest.param("char-lm-hu/bilstm_model_64.h5", "lstm_backward", ["kernel_o"], id="tfkeras-lstm"),
    ],
)
def test_corpus_gate_names(file, layer, names):
    with kerasweights.open(CORPUS / file) as model:
        matrices = model.layer(layer).matrices()
        assert set(names) <= set(matrices)


@needs_corpus
def test_cudnn_lstm_biases_are_summed_as_keras_does():
    with kerasweights.open(CORPUS / "textgenrnn/textgenrnn_weights.hdf5") as model:
        rnn = model.layer("rnn_1")
        assert rnn.class_name == "CuDNNLSTM" and rnn.inferred
        bias = rnn.weight("bias").read()
        np.testing.assert_array_equal(rnn.matrix("bias_f").read(), bias[128:256] + bias[640:768])
        assert rnn.matrix("bias_f").source == "bias[128:256] + bias[640:768]"
        assert "recurrent_bias_i" not in rnn.matrices()


@needs_corpus
def test_keras1_per_gate_weights_keep_their_gate(tmp_path):
    with kerasweights.open(CORPUS / "dl4j/lstm_theano_1.h5") as model:
        lstm = model.layer("lstm_1")
        # Keras 1 stored W_i, U_i, b_i, W_c, ... (order i, c, f, o): each is one named matrix.
        assert lstm.matrix("kernel_f").source == "W_f"
        assert lstm.matrix("kernel_f").meaning == "forget gate, input weights"
        assert lstm.params == 192


@needs_corpus
def test_weights_only_corpus_file_with_its_config():
    with kerasweights.open(
        CORPUS / "hls4ml-example-models/KERAS_3layer_batch_norm_weights.h5",
        config=CORPUS / "hls4ml-example-models/KERAS_3layer_batch_norm.json",
    ) as model:
        assert not any(l.inferred for l in model.walk())
        assert model.layer("bn1").class_name == "BatchNormalization"
