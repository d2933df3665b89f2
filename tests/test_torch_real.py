"""The exported tensors in real torch.nn modules: built from ``.kwargs``, filled with a strict
``load_state_dict``, they reproduce Keras's outputs for every recurrent fixture torch can express."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from conftest import FIXTURES, ROOT, truth_arrays
from test_torch_export import MERGE, lengths_of, recurrent_cases, tolerance

import kerasweights
from kerasweights.torch_export import TorchModule, to_torch

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def build(module: TorchModule):
    net = getattr(torch.nn, module.module)(**module.kwargs)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in module.state_dict().items()}, strict=True)
    return net.eval()


def run(net, x, lengths=None, state=None):
    """(output, h_n, c_n) as numpy; ``lengths`` packs the batch like Keras's trailing mask."""
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if lengths is not None:
        inputs = torch.nn.utils.rnn.pack_padded_sequence(
            inputs, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False
        )
    if state is not None:
        state = tuple(torch.from_numpy(s) for s in state) if len(state) > 1 else torch.from_numpy(state[0])
    with torch.no_grad():
        out, final = net(inputs, state)
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    h_n, c_n = final if isinstance(final, tuple) else (final, None)
    return out.numpy(), h_n.numpy(), None if c_n is None else c_n.numpy()


@pytest.mark.parametrize(("path", "config", "model", "runtime", "entry"), recurrent_cases("exported"))
def test_torch_modules_reproduce_keras(path, config, model, runtime, entry):
    arrays = truth_arrays(model, runtime)
    x = arrays[entry["input"]]
    lengths = lengths_of(arrays[entry["mask"]]) if entry["mask"] else None
    with kerasweights.open(path, config=config) as kw:
        [module] = to_torch(kw, layer=entry["path"])
    net = build(module)
    out, h_n, c_n = run(net, x, lengths)
    atol = tolerance(model)
    expected = arrays[entry["sequences"]]
    if entry["class_name"] == "Bidirectional":
        merge = MERGE[entry["config"]["merge_mode"]]
        hidden = module.kwargs["hidden_size"]
        np.testing.assert_allclose(merge(out[..., :hidden], out[..., hidden:]), expected, atol=atol, rtol=0)
        if arrays[entry["output"]].ndim == 2:  # Keras's last output per direction is torch's h_n
            np.testing.assert_allclose(merge(h_n[0], h_n[1]), arrays[entry["output"]], atol=atol, rtol=0)
        return
    for b, n in enumerate(lengths if lengths is not None else [x.shape[1]] * len(x)):
        np.testing.assert_allclose(out[b, :n], expected[b, :n], atol=atol, rtol=0)
    state = [arrays[k][None] for k in entry["initial_state"] or []] or None
    if state:
        out, h_n, c_n = run(net, x, state=state)
        np.testing.assert_allclose(out, arrays[entry["output_with_state"]], atol=atol, rtol=0)
    states = arrays[entry["state_output"]]
    np.testing.assert_allclose(h_n[0], states[0], atol=atol, rtol=0)
    if c_n is not None:
        np.testing.assert_allclose(c_n[0], states[1], atol=atol, rtol=0)


def test_backward_half_forced_matches_keras_on_reversed_input():
    arrays = truth_arrays("functional")
    with kerasweights.open(FIXTURES / "k3/functional.keras") as kw:
        [module] = to_torch(kw, layer="bi_g/backward_g", force=True)
    out, _, _ = run(build(module), arrays["bi_g/backward_g/input"][:, ::-1])
    np.testing.assert_allclose(out, arrays["bi_g/backward_g/sequences"], atol=1e-5, rtol=0)


def test_docs_examples(monkeypatch):
    """docs/pytorch.md runs as written."""
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs" / "pytorch.md"), module_relative=False)
    assert result.failed == 0 and result.attempted >= 10
