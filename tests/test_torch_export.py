"""torch_export proved against Keras without torch: PyTorch's documented equations (numpy, in
tests/torch_reference.py) fed with the exported tensors reproduce the outputs Keras computed
for every recurrent fixture torch can express; the rest are refused by name and reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch_reference
from conftest import FIXTURES, all_model_files, truth, truth_arrays

import kerasweights
from kerasweights import NotFoundError, UnsupportedLayerError
from kerasweights.torch_export import TorchModule, layer_to_torch, to_torch

# What torch cannot express, as Keras's configs say it (checked against truth.json below).
REFUSED = {
    "gru_ra_false": {"reset_after": False, "go_backwards": True},
    "gru": {"reset_after": False},
    "gru_hard": {"recurrent_activation": "hard_sigmoid"},
    "lstm_relu": {"activation": "relu"},
    "rnn_nobias": {"activation": "linear"},
    "bi_g/backward_g": {"go_backwards": True},
    "bi_l/backward_l": {"go_backwards": True},
    "bi_s/backward_s": {"go_backwards": True},
}
NO_TORCH_MODULE = {"clstm"}  # ConvLSTM2D
MERGE = {
    "concat": lambda a, b: np.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


def tolerance(model: str) -> float:
    return 2e-3 if model == "float16" else 1e-5  # Keras computed the float16 model in float16


def recurrent_cases(kind):
    params = []
    for param in all_model_files():
        path, config, model, runtime = param.values
        for entry in truth(model, runtime)["recurrent"]:
            refused = entry["path"] in REFUSED or entry["path"] in NO_TORCH_MODULE
            if refused == (kind == "refused"):
                params.append(pytest.param(path, config, model, runtime, entry, id=f"{param.id}:{entry['path']}"))
    return params


def lengths_of(mask):
    """Keras's mask as torch sequence lengths (the fixtures mask trailing steps only)."""
    lengths = mask.sum(axis=1)
    assert all(mask[b, :n].all() and not mask[b, n:].any() for b, n in enumerate(lengths))
    return lengths


def torch_run(module: TorchModule, x, **kw):
    return torch_reference.run(module.module, module.kwargs, module.state_dict(), x, **kw)


@pytest.mark.parametrize(("path", "config", "model", "runtime", "entry"), recurrent_cases("exported"))
def test_torch_equations_reproduce_keras_sequences(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    x = arrays[entry["input"]]
    lengths = lengths_of(arrays[entry["mask"]]) if entry["mask"] else None
    with kerasweights.open(path, config=config) as kw:
        [module] = to_torch(kw, layer=entry["path"])
    out, h_n, c_n = torch_run(module, x, lengths=lengths)
    expected = arrays[entry["sequences"]]
    atol = tolerance(model)
    if entry["class_name"] == "Bidirectional":
        merge = MERGE[entry["config"]["merge_mode"]]
        hidden = module.kwargs["hidden_size"]
        np.testing.assert_allclose(merge(out[..., :hidden], out[..., hidden:]), expected, atol=atol, rtol=0)
        if arrays[entry["output"]].ndim == 2:  # return_sequences=False: each direction's final state
            np.testing.assert_allclose(merge(h_n[0], h_n[1]), arrays[entry["output"]], atol=atol, rtol=0)
        return
    for b, n in enumerate(lengths if lengths is not None else [x.shape[1]] * len(x)):
        np.testing.assert_allclose(out[b, :n], expected[b, :n], atol=atol, rtol=0)  # masked steps: Keras carries h
    if entry["initial_state"]:  # Keras's state_output used the initial state
        state = [arrays[k][None] for k in entry["initial_state"]]
        _, h_n, c_n = torch_run(module, x, h0=state[0], c0=state[1] if len(state) > 1 else None)
    states = arrays[entry["state_output"]]
    np.testing.assert_allclose(h_n[0], states[0], atol=atol, rtol=0)
    if module.module == "LSTM":
        np.testing.assert_allclose(c_n[0], states[1], atol=atol, rtol=0)


@pytest.mark.parametrize(
    ("path", "config", "model", "runtime", "entry"),
    [p for p in recurrent_cases("exported") if p.values[4]["initial_state"]],
)
def test_torch_equations_reproduce_keras_with_initial_state(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    state = [arrays[k][None] for k in entry["initial_state"]]  # torch: (num_directions, batch, hidden)
    with kerasweights.open(path, config=config) as kw:
        [module] = to_torch(kw, layer=entry["path"])
    out, _, _ = torch_run(module, arrays[entry["input"]], h0=state[0], c0=state[1] if len(state) > 1 else None)
    np.testing.assert_allclose(out, arrays[entry["output_with_state"]], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("path", "config", "model", "runtime", "entry"), recurrent_cases("refused"))
def test_refusals_name_the_layer_and_the_reason(path, config, model, runtime, entry):
    with kerasweights.open(path, config=config) as kw, pytest.raises(UnsupportedLayerError) as err:
        to_torch(kw, layer=entry["path"])
    message = str(err.value)
    assert message.startswith(f"{path}: layer {entry['path']!r} ")
    if entry["path"] in NO_TORCH_MODULE:
        assert f"is a {entry['class_name']}, which has no torch.nn counterpart" in message
        return
    for key, value in REFUSED[entry["path"]].items():
        assert entry["config"][key] == value, "the REFUSED table must say what Keras's config says"
        assert f"{key}={value!r}" in message
    assert "(pass force=True to write it anyway)" in message


@pytest.mark.parametrize(
    ("path", "config", "model", "runtime", "entry"),
    [p for p in recurrent_cases("refused") if p.values[4]["path"] in REFUSED],
)
def test_forced_export_warns_once_and_really_differs_from_keras(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    with kerasweights.open(path, config=config) as kw:
        [module] = to_torch(kw, layer=entry["path"], force=True)
    forced = [w for w in module.warnings if "forced export" in w]
    assert len(forced) == 1 and forced[0].startswith(f"layer {entry['path']!r}: forced export although ")
    x = arrays[entry["input"]]
    backwards_only = REFUSED[entry["path"]] == {"go_backwards": True}
    out, _, _ = torch_run(module, x[:, ::-1] if entry["config"]["go_backwards"] else x)
    gap = np.abs(out - arrays[entry["sequences"]]).max()
    if backwards_only:  # exact weights: fed the reversed input, torch gives Keras's go_backwards outputs
        assert forced[0].endswith("feed it the input reversed in time (x.flip(1)) to get Keras's outputs")
        assert gap < tolerance(model)
    else:  # the refusal is not pedantry: these outputs are visibly not Keras's
        assert gap > 1e-3


def test_every_recurrent_layer_with_force_and_refusal_names_them_all():
    with kerasweights.open(FIXTURES / "k3/activations.keras") as kw:
        with pytest.raises(UnsupportedLayerError) as err:
            to_torch(kw)
        assert str(err.value) == (
            f"{FIXTURES / 'k3/activations.keras'}: cannot export to PyTorch exactly: "
            "layer 'gru_hard': recurrent_activation='hard_sigmoid' (torch.nn.GRU gates use sigmoid); "
            "layer 'lstm_relu': activation='relu' (torch.nn.LSTM supports only tanh); "
            "layer 'rnn_nobias': activation='linear' (torch.nn.RNN supports only tanh or relu) "
            "(pass force=True to write them anyway, skip_inexact=True to leave them out, or layer= to pick one)"
        )
        modules = to_torch(kw, force=True)
    assert [m.layer_path for m in modules] == ["gru_hard", "lstm_relu", "rnn_nobias", "gru_nobias"]
    assert [sum("forced export" in w for w in m.warnings) for m in modules] == [1, 1, 1, 0]


def test_all_layers_of_a_functional_model_nested_and_bidirectional():
    with kerasweights.open(FIXTURES / "k3/functional.keras") as kw:
        modules = [m for m in to_torch(kw, skip_inexact=True) if m.module in ("LSTM", "GRU")]
    assert [(m.layer_path, m.module) for m in modules] == [
        ("lstm_seq", "LSTM"),
        ("bi_g", "GRU"),
        ("encoder/lstm_nb", "LSTM"),
    ]
    bi = modules[1]
    assert bi.kwargs == {"input_size": 5, "hidden_size": 3, "bias": True, "batch_first": True, "bidirectional": True}
    assert list(bi.tensors) == [
        f"bi_g.{p}_l0{s}" for s in ("", "_reverse") for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]
    assert bi.tensors["bi_g.weight_hh_l0_reverse"].shape == (9, 3)
    assert list(modules[2].tensors)[2] == "encoder.lstm_nb.bias_ih_l0"
    assert bi.warnings == [] and modules[0].warnings == []
    assert modules[2].warnings == [
        "layer 'encoder/lstm_nb': use_bias=False, so bias_ih and bias_hh are zeros (keep them at zero if you train)"
    ]
    np.testing.assert_array_equal(modules[2].tensors["encoder.lstm_nb.bias_hh_l0"], np.zeros(16, np.float32))


def test_keras_single_lstm_bias_goes_to_bias_ih_and_bias_hh_is_zero():
    arrays = truth_arrays("rnn_seq")
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as kw:
        [lstm] = to_torch(kw, layer="lstm_last")
    keras_bias = arrays["_weights/lstm_last/2"]  # i, f, c, o == torch's i, f, g, o
    np.testing.assert_array_equal(lstm.tensors["lstm_last.bias_ih_l0"], keras_bias)
    np.testing.assert_array_equal(lstm.tensors["lstm_last.bias_hh_l0"], np.zeros_like(keras_bias))


def test_merge_mode_other_than_concat_is_explained():
    with kerasweights.open(FIXTURES / "k3/bidir_lstm.keras") as kw:
        modules = to_torch(kw)
    assert [m.layer_path for m in modules] == ["bi_l", "bi_s", "y"]
    assert modules[1].kwargs == {
        "input_size": 8,
        "hidden_size": 3,
        "nonlinearity": "relu",
        "bias": True,
        "batch_first": True,
        "bidirectional": True,
    }
    assert modules[1].warnings == [
        "layer 'bi_s': merge_mode='sum'; torch concatenates the directions, so add its two halves "
        "(output[..., :3] and output[..., 3:])"
    ]


def test_bidirectional_halves_that_no_single_torch_module_fits(tmp_path):
    config = json.loads((FIXTURES / "k3/bidir_lstm.json").read_text())
    bi_s = next(l for l in config["config"]["layers"] if l["config"]["name"] == "bi_s")
    bi_s["config"]["backward_layer"]["config"]["activation"] = "tanh"  # forward half stays relu
    (tmp_path / "mixed.json").write_text(json.dumps(config))
    with kerasweights.open(FIXTURES / "k3/bidir_lstm.weights.h5", config=tmp_path / "mixed.json") as kw:
        with pytest.raises(UnsupportedLayerError) as err:
            to_torch(kw, layer="bi_s", force=True)
    assert str(err.value).endswith(
        "layer 'bi_s': forward and backward layers are different modules (RNN 8->3, relu vs RNN 8->3, tanh); "
        "a bidirectional torch module needs one"
    )


def test_one_half_of_a_bidirectional_exports_as_a_unidirectional_module():
    with kerasweights.open(FIXTURES / "k3/functional.keras") as kw:
        [half] = to_torch(kw, layer="bi_g/forward_g")
    assert half.layer_path == "bi_g/forward_g" and half.kwargs["bidirectional"] is False
    assert next(iter(half.tensors)) == "bi_g.forward_g.weight_ih_l0"


@pytest.mark.parametrize(
    ("file", "layer", "error", "message"),
    [
        pytest.param(
            "k3/functional.keras",
            "mha",
            UnsupportedLayerError,
            "layer 'mha' is a MultiHeadAttention, which has no torch.nn counterpart here (kerasweights ports "
            "SimpleRNN, GRU, LSTM, CuDNNGRU, CuDNNLSTM, Bidirectional wrappers of them, Dense, Embedding, "
            "Conv1D/2D/3D, LayerNormalization and BatchNormalization); exportable layers here: embed, lstm_seq, "
            "bi_g, td/proj, encoder/lstm_nb, encoder/enc_bn, conv, ln, head",
            id="attention",
        ),
        pytest.param(
            "k3/rnn_seq.keras",
            "nope",
            NotFoundError,
            "no layer 'nope'; layers with weights: my_rnn, enc_gru, gru_ra_false, lstm_last, head",
            id="unknown",
        ),
        pytest.param(
            "k3/convlstm.keras",
            None,
            UnsupportedLayerError,
            "cannot export to PyTorch exactly: layer 'clstm': ConvLSTM2D has no torch.nn counterpart here "
            "(pass skip_inexact=True to leave it out, or layer= to pick one)",
            id="convlstm",
        ),
    ],
)
def test_layers_torch_has_no_module_for(file, layer, error, message):
    with kerasweights.open(FIXTURES / file) as kw, pytest.raises(error) as err:
        to_torch(kw, layer=layer)
    assert str(err.value) == f"{FIXTURES / file}: {message}"


def test_weights_only_file_without_config_needs_force_then_assumes_keras_defaults():
    arrays = truth_arrays("rnn_seq")
    with kerasweights.open(FIXTURES / "k3/rnn_seq.weights.h5") as kw:
        with pytest.raises(UnsupportedLayerError) as err:
            to_torch(kw, layer="enc_gru")
        assert "layer 'enc_gru' cannot be exported to PyTorch exactly: no layer config in the file" in str(err.value)
        [gru] = to_torch(kw, layer="enc_gru", force=True)
    assert gru.warnings == [
        "layer 'enc_gru': forced export although no layer config in the file (activations and go_backwards "
        "unknown: pass config=); assumed Keras's defaults (tanh, sigmoid gates, go_backwards=False)"
    ]
    out, _, _ = torch_run(gru, arrays["enc_gru/input"])  # enc_gru does use the defaults
    np.testing.assert_allclose(out, arrays["enc_gru/sequences"], atol=1e-5, rtol=0)


def test_layer_to_torch_and_module_helpers():
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as kw:
        module = layer_to_torch(kw.layer("enc_gru"))
        again = layer_to_torch(kw.layer("enc_gru"))
        with pytest.raises(UnsupportedLayerError) as err:
            layer_to_torch(kw.layer("gru_ra_false"))
    assert str(err.value).startswith("layer 'gru_ra_false' cannot be exported to PyTorch exactly: reset_after=False")
    assert (
        module.constructor()
        == "torch.nn.GRU(input_size=6, hidden_size=5, bias=True, batch_first=True, bidirectional=False)"
    )
    assert list(module.state_dict()) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    module.tensors["enc_gru.weight_ih_l0"][:] = 0  # tensors are the caller's own copies
    assert again.tensors["enc_gru.weight_ih_l0"].any()
    assert all(t.flags.c_contiguous for t in again.tensors.values())


@pytest.mark.parametrize(
    ("file", "layer", "module"),
    [
        pytest.param("k3/convlstm.keras", "bn_nocenter", "BatchNorm3d", id="build-config"),
        pytest.param("tfk/convlstm.h5", "bn_nocenter", "BatchNorm3d", id="tf-keras-resolved-axis"),
        pytest.param("layers/torch_layers.keras", "bn_img", "BatchNorm2d", id="image"),
        pytest.param("layers/torch_layers.keras", "bn_seq", "BatchNorm1d", id="sequence"),
        pytest.param("layers/torch_layers.h5", "bn_img", "BatchNorm1d", id="rank-unknown"),
    ],
)
def test_batch_norm_module_follows_the_input_rank(file, layer, module):
    """Keras's own record of the input shape (truth: the ConvLSTM2D returns 5-D sequences)."""
    with kerasweights.open(FIXTURES / file) as kw:
        [bn] = to_torch(kw, layer=layer)
    assert bn.module == module
    if module == "BatchNorm1d" and file.endswith(".h5"):
        assert "BatchNorm2d/3d load the same tensors" in bn.notes[0]


def test_a_backwards_stack_of_cells_is_refused_not_exported_forwards(tmp_path: Path) -> None:
    """Each cell of RNN(StackedRNNCells, go_backwards=True) would run forwards as its own torch module."""
    import h5py

    from kerasweights.export.torch import torch_port

    path = tmp_path / "cells.h5"
    shutil.copy(FIXTURES / "classes/cells.h5", path)
    with h5py.File(path, "r+") as f:
        document = json.loads(f.attrs["model_config"])
        for layer in document["config"]["layers"]:
            if layer["config"]["name"] == "rnn_stacked":
                layer["config"]["go_backwards"] = True
        f.attrs["model_config"] = json.dumps(document)
    with kerasweights.open(path) as model:
        with pytest.raises(UnsupportedLayerError, match=r"layer 'rnn_stacked': go_backwards=True"):
            torch_port(model)
        with pytest.raises(UnsupportedLayerError, match=r"is a cell of 'rnn_stacked', which runs go_backwards=True"):
            torch_port(model, layer="rnn_stacked/lstm_cell_1")
        port = torch_port(model, skip_inexact=True)
        assert "rnn_stacked" in [path for path, _ in port.skipped]  # (rnn_gru is a lone go_backwards layer)
        assert not [m for m in port.modules if m.layer_path.startswith("rnn_stacked")]
