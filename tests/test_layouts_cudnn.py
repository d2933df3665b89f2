"""CuDNNGRU / CuDNNLSTM proved against tf_keras: the fixtures in fixtures/cudnn hold a CuDNN model
as tf_keras saves it and the GRU(reset_after=True) / LSTM model tf_keras's own loader converted
it into (``hdf5_format._convert_rnn_weights``); the truth is that equivalent's weights and outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch_reference
from conftest import CORPUS, FIXTURES, truth, truth_arrays

import kerasweights
from kerasweights.audit import audit_file
from kerasweights.compare import compare
from kerasweights.export.torch import to_torch
from kerasweights.trace import trace

CUDNN = FIXTURES / "cudnn"
FILES = [
    pytest.param(CUDNN / "cudnn.h5", None, id="cudnn.h5"),
    pytest.param(CUDNN / "cudnn_weights.h5", CUDNN / "cudnn.json", id="cudnn_weights.h5"),
]
GATES = {"GRU": "zrh", "LSTM": "ifco"}
LEAVES = ["cg", "cl", "bi/forward_bl", "bi/backward_bl", "cgb"]


def _equivalent(path: str) -> tuple[str, list[np.ndarray]]:
    entry = next(e for e in truth("cudnn", "cudnn")["equivalent_layers"] if e["path"] == path)
    arrays = truth_arrays("cudnn", "cudnn")
    return entry["class_name"], [arrays[f"_weights/{path}/{i}"] for i in range(len(entry["weights"]))]


@pytest.mark.parametrize(("path", "config"), FILES)
@pytest.mark.parametrize("leaf", LEAVES)
def test_matrices_are_what_tf_keras_converts_them_to(path, config, leaf):
    cls, (kernel, recurrent, bias) = _equivalent(leaf)
    with kerasweights.open(path, config=config) as model:
        layer = model.layer(leaf)
        assert layer.class_name == "Cu" + "DNN" + cls
        gates = GATES[cls]
        units = recurrent.shape[0]
        names = set()
        for k, g in enumerate(gates):
            cut = slice(k * units, (k + 1) * units)
            np.testing.assert_array_equal(layer.matrix(f"kernel_{g}").read(), kernel[:, cut])
            np.testing.assert_array_equal(layer.matrix(f"recurrent_kernel_{g}").read(), recurrent[:, cut])
            if cls == "GRU":  # reset_after=True: row 0 input bias, row 1 recurrent bias
                np.testing.assert_array_equal(layer.matrix(f"bias_{g}").read(), bias[0, cut])
                np.testing.assert_array_equal(layer.matrix(f"recurrent_bias_{g}").read(), bias[1, cut])
                names |= {f"bias_{g}", f"recurrent_bias_{g}"}
            else:  # LSTM has one bias: tf_keras sums cuDNN's two
                np.testing.assert_allclose(layer.matrix(f"bias_{g}").read(), bias[cut], rtol=0, atol=1e-7)
                names.add(f"bias_{g}")
            names |= {f"kernel_{g}", f"recurrent_kernel_{g}"}
        assert set(layer.matrices()) == names


@pytest.mark.parametrize(("path", "config"), FILES)
def test_names_and_counts_are_the_cudnn_layers(path, config):
    expected = {e["path"]: e for e in truth("cudnn", "cudnn")["layers"]}
    with kerasweights.open(path, config=config) as model:
        assert model.total_params == truth("cudnn", "cudnn")["count_params"] == 478
        for leaf in LEAVES:
            layer = model.layer(leaf)
            assert layer.params == expected[leaf]["count_params"]
            assert [w.name for w in layer.weights] == [w["name"] for w in expected[leaf]["weights"]]
            assert [list(w.shape) for w in layer.weights] == [w["shape"] for w in expected[leaf]["weights"]]


def test_source_says_how_each_matrix_was_derived():
    with kerasweights.open(CUDNN / "cudnn.h5") as model:
        gru, lstm = model.layer("cg"), model.layer("cl")
        assert gru.matrix("kernel_r").source == "kernel[:, 5:10].T.reshape((4, 5), order='F')"
        assert gru.matrix("recurrent_kernel_h").source == "recurrent_kernel[:, 10:15].T"
        assert gru.matrix("recurrent_bias_z").source == "bias[15:20]"
        assert lstm.matrix("bias_f").source == "bias[3:6] + bias[15:18]"
        assert lstm.matrix("bias_f").meaning == "forget gate, bias (cuDNN's input and recurrent biases, summed)"
        assert lstm.matrix("kernel_c").meaning == "cell candidate, input weights (converted from cuDNN's layout)"
        assert not lstm.matrix("kernel_c").read().flags.writeable


@pytest.mark.parametrize("other", ["cudnn_equiv.h5", "cudnn_equiv.keras"])
def test_diff_against_the_equivalent_model_says_identical(other):
    with kerasweights.open(CUDNN / "cudnn.h5") as a, kerasweights.open(CUDNN / other) as b:
        result = compare(a, b)
    assert result.same, result.as_dict()
    assert len(result.values) == 60


@pytest.mark.parametrize("entry", truth("cudnn", "cudnn")["recurrent"], ids=lambda e: e["path"])
def test_trace_reproduces_the_equivalent_layers_outputs(entry):
    arrays = truth_arrays("cudnn", "cudnn")
    with kerasweights.open(CUDNN / "cudnn.h5") as model:
        got = trace(model.layer(entry["path"]), arrays[entry["input"]])
    np.testing.assert_allclose(got["h"], arrays[entry["sequences"]], atol=1e-5, rtol=0)
    if entry["state_output"]:
        states = arrays[entry["state_output"]]
        np.testing.assert_allclose(got["h"][:, -1], states[0], atol=1e-5, rtol=0)
        if "c" in got:
            np.testing.assert_allclose(got["c"][:, -1], states[1], atol=1e-5, rtol=0)


def test_torch_modules_reproduce_the_equivalent_layers():
    arrays = truth_arrays("cudnn", "cudnn")
    with kerasweights.open(CUDNN / "cudnn.h5") as model:
        modules = {m.layer_path: m for m in to_torch(model, force=True)}
    assert [m.warnings for m in modules.values()][:3] == [[], [], []]
    assert "go_backwards=True" in modules["cgb"].warnings[0]
    for path, module in modules.items():
        x = arrays[f"{path}/input"]
        if path == "cgb":
            x = x[:, ::-1].copy()  # the forced export's warning: feed it the input reversed
        out, _, _ = torch_reference.run(module.module, module.kwargs, module.state_dict(), x)
        expected = arrays[f"{path}/sequences"]
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def test_audit_finds_nothing_wrong():
    for name in ("cudnn.h5", "cudnn_weights.h5"):
        report = audit_file(CUDNN / name)
        assert [f for f in report.findings if f.severity in ("error", "warning")] == [], name


needs_corpus = pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is absent")


@needs_corpus
def test_corpus_cudnn_lstm_recurrent_kernels_are_transposed_blocks():
    with kerasweights.open(CORPUS / "dot-res-lstm/dot_res_lstm-10-0.78.hdf5") as model:
        layer = model.layer("cu_dnnlstm_3")
        stored = layer.weight("recurrent_kernel").read()
        units = stored.shape[0]
        np.testing.assert_array_equal(layer.matrix("recurrent_kernel_f").read(), stored[:, units : 2 * units].T)
