"""Dense, Embedding, Conv1D/2D, LayerNormalization and BatchNormalization ported to real
torch.nn modules reproduce what Keras computed (``fixtures/layers``: each layer's input and
output, written by Keras 3), in both saved forms; the inexact ones are refused or skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES

import kerasweights
from kerasweights.errors import UnsupportedLayerError
from kerasweights.export.torch import to_torch, torch_port

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

LAYERS = FIXTURES / "layers"
TRUTH = json.loads((LAYERS / "torch_layers.truth.json").read_text())
ARRAYS = dict(np.load(LAYERS / "torch_layers.truth.npz"))
FILES = [pytest.param(LAYERS / f"torch_layers{ext}", id=ext) for ext in (".keras", ".h5")]
INEXACT = {
    "c1_causal": "padding='causal'",
    "c1_same_s2": "padding='same' with strides=(2,)",
    "ln_rms": "rms_scaling=True",
}
# Keras's output path -> the layer whose module produces it (wrappers hold the exported layer).
EXPORTED = {"td": "td/proj", "block": "block/fc"}
ACTIVATIONS = {"d_relu": torch.relu, "c2_valid": torch.tanh}
CASES = [entry["path"] for entry in TRUTH["layers"] if entry["path"] not in INEXACT]


def build(module, rank=None):
    name = module.module
    if name.startswith("BatchNorm") and rank:  # Keras 3 .h5 has no rank: same tensors, the input's rank
        name = {3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}[rank]
    net = getattr(torch.nn, name)(**module.kwargs)
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in module.state_dict().items()}
    net.load_state_dict(tensors, strict=True)  # every parameter and buffer, no more
    return net.eval()


def channels_first(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, -1, 1)


@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("name", CASES)
def test_module_reproduces_keras(path, name):
    with kerasweights.open(path) as model:
        [module] = to_torch(model, layer=EXPORTED.get(name, name))
    x, expected = ARRAYS[f"{name}/input"], ARRAYS[f"{name}/output"]
    if module.module.startswith("BatchNorm") and path.suffix == ".keras":  # the rank is in the config
        assert module.module == {3: "BatchNorm1d", 4: "BatchNorm2d"}[x.ndim]
    net = build(module, x.ndim)
    conv_or_bn = module.module.startswith(("Conv", "BatchNorm"))
    inputs = torch.from_numpy(channels_first(x) if conv_or_bn else x)
    with torch.no_grad():
        out = net(inputs.long() if module.module == "Embedding" else inputs)
        out = ACTIVATIONS.get(name, lambda t: t)(out).numpy()
    if conv_or_bn:
        out = np.moveaxis(out, 1, -1)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=2e-6, rtol=0)
    # Keys: the layer path with dots, then torch's parameter names.
    prefix = EXPORTED.get(name, name).replace("/", ".") + "."
    assert all(k.startswith(prefix) for k in module.tensors)


def test_notes_say_what_to_do_around_the_module():
    with kerasweights.open(LAYERS / "torch_layers.keras") as model:
        modules = {m.layer_path: m for m in to_torch(model, skip_inexact=True)}
    assert modules["c2_valid"].notes == [
        "torch takes channels first: feed x.permute(0, 3, 1, 2) of Keras's channels-last input",
        "apply Keras's activation 'tanh' after the module (torch.nn.functional.tanh)",
    ]
    assert modules["d_nobias"].kwargs == {"in_features": 6, "out_features": 4, "bias": False}
    assert modules["bn_seq"].kwargs == {"num_features": 6, "eps": 0.01, "momentum": 0.1}  # Keras 0.9
    assert modules["c1_same"].kwargs["padding"] == "same" and modules["c1_same"].kwargs["groups"] == 2


def test_batch_norm_running_stats_are_keras_moving_stats():
    with kerasweights.open(LAYERS / "torch_layers.h5") as model:
        [bn] = to_torch(model, layer="bn_img")
    state = bn.state_dict()
    np.testing.assert_array_equal(state["running_mean"], ARRAYS["_weights/bn_img/1"])
    np.testing.assert_array_equal(state["running_var"], ARRAYS["_weights/bn_img/2"])
    np.testing.assert_array_equal(state["bias"], 0)  # center=False
    assert state["num_batches_tracked"].dtype == np.int64


def test_inexact_layers_refuse_the_whole_export_naming_each():
    with kerasweights.open(LAYERS / "torch_layers.keras") as model, pytest.raises(UnsupportedLayerError) as info:
        to_torch(model)
    message = str(info.value)
    for layer, reason in INEXACT.items():
        assert f"layer {layer!r}: {reason}" in message
    assert message.endswith(
        "(pass force=True to write them anyway, skip_inexact=True to leave them out, or layer= to pick one)"
    )


def test_skip_inexact_writes_every_exact_layer_and_lists_the_others():
    with kerasweights.open(LAYERS / "torch_layers.keras") as model:
        port = torch_port(model, skip_inexact=True)
    assert [path for path, _ in port.skipped] == list(INEXACT)
    assert all(reason.startswith(INEXACT[path]) for path, reason in port.skipped)
    assert [m.layer_path for m in port.modules] == [EXPORTED.get(n, n) for n in CASES]


def test_a_layer_without_counterpart_is_skipped_or_refused_even_when_forced():
    with kerasweights.open(FIXTURES / "k3/functional.keras") as model:
        with pytest.raises(
            UnsupportedLayerError, match=r"layer 'mha': MultiHeadAttention has no torch\.nn counterpart"
        ):
            to_torch(model, force=True)
        port = torch_port(model, skip_inexact=True)
    assert port.skipped == [("mha", "MultiHeadAttention has no torch.nn counterpart here")]
    assert [m.module for m in port.modules] == [
        "Embedding",
        "LSTM",
        "GRU",
        "Linear",
        "LSTM",
        "BatchNorm1d",
        "Conv1d",
        "LayerNorm",
        "Linear",
    ]
