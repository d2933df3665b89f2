"""PyTorch's documented torch.nn.RNN / GRU / LSTM equations in numpy, written from the torch.nn
docs (not from kerasweights), so tests can run exported state dicts without torch installed.

    RNN:  h_t = tanh|relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    GRU:  r = σ(W_ir x + b_ir + W_hr h + b_hr);  z = σ(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 - z) ⊙ n + z ⊙ h
    LSTM: i, f, g, o = σ, σ, tanh, σ of (W_i* x + b_i* + W_h* h + b_h*)
          c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')

Weights stack gates along the first axis in torch's order (GRU r, z, n; LSTM i, f, g, o).
``bidirectional=True`` runs the ``_reverse`` parameters from the last step to the first and
concatenates both directions per step. ``lengths`` mimics a packed sequence: each sample runs
only over its first ``lengths[b]`` steps (the reverse direction starts at its last valid step),
padded outputs are 0, and ``h_n``/``c_n`` are the states after each sample's last valid step.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _cell(module: str, nonlinearity: str, p: dict[str, np.ndarray], x, h, c):
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    gh = h @ p["weight_hh"].T + p["bias_hh"]
    if module == "RNN":
        pre = gi + gh
        return (np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0)), c
    if module == "GRU":
        i_r, i_z, i_n = np.split(gi, 3, axis=-1)
        h_r, h_z, h_n = np.split(gh, 3, axis=-1)
        r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h, c
    i, f, g, o = np.split(gi + gh, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def run(
    module: str,
    kwargs: dict[str, Any],
    state_dict: dict[str, np.ndarray],
    x: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
):
    """(output, h_n, c_n) like ``torch.nn.<module>(**kwargs)`` with ``state_dict`` loaded.

    ``x`` is (batch, steps, input_size) when ``batch_first`` else (steps, batch, input_size);
    ``h0``/``c0`` are (num_directions, batch, hidden_size). Computes in float64.
    """
    assert kwargs.get("num_layers", 1) == 1
    x = np.asarray(x, np.float64)
    if not kwargs.get("batch_first", False):
        x = x.transpose(1, 0, 2)
    batch, steps, _ = x.shape
    hidden = kwargs["hidden_size"]
    directions = 2 if kwargs.get("bidirectional") else 1
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    output = np.zeros((batch, steps, directions * hidden))
    h_n = np.zeros((directions, batch, hidden))
    c_n = np.zeros((directions, batch, hidden))
    for d in range(directions):
        suffix = "_l0_reverse" if d else "_l0"
        p = {k: state_dict[k + suffix].astype(np.float64) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        for b in range(batch):
            h = np.zeros(hidden) if h0 is None else np.asarray(h0[d, b], np.float64)
            c = np.zeros(hidden) if c0 is None else np.asarray(c0[d, b], np.float64)
            order = range(lengths[b] - 1, -1, -1) if d else range(lengths[b])
            for t in order:
                h, c = _cell(module, kwargs.get("nonlinearity", "tanh"), p, x[b, t], h, c)
                output[b, t, d * hidden : (d + 1) * hidden] = h
            h_n[d, b], c_n[d, b] = h, c
    if not kwargs.get("batch_first", False):
        output = output.transpose(1, 0, 2)
    return output, h_n, c_n
