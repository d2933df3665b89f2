"""Run a recurrent layer's recurrence in numpy and record every gate at every time step.

The equations are Keras's own cells (keras/src/layers/rnn/{simple_rnn,gru,lstm,conv_lstm}.py),
written with the named matrices of :meth:`Layer.matrices` (``kernel_z``, ``recurrent_bias_h``...)
and evaluated in float64. Arrays come back as float32, shaped (batch, time, units) — ConvLSTM:
(batch, time, *spatial, filters) — in the order the layer processes the steps: for a
``go_backwards`` layer step 0 is the last input step, exactly as Keras returns its sequence.

Masks follow Keras: a masked step leaves the state (``h``, ``c``) as it was and repeats the
previous output (zeros if the layer has ``zero_output_for_mask``, as halves of a Bidirectional
returning sequences do); the gates of a masked step are recorded as NaN because Keras discards
them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ..errors import KerasWeightsError, TraceInputError, UnsupportedLayerError
from ..layouts import GATES, RECURRENT_CLASSES, family, runs_as
from ..layouts.keras import default_recurrent_activation
from ..layouts.recurrent import STATES
from ..model import Layer
from . import activations
from .activations import Activation

Array = np.ndarray

RECURRENT = RECURRENT_CLASSES
OUTPUTS = {
    "SimpleRNN": ("h",),
    "GRU": ("z", "r", "candidate", "h"),
    "LSTM": ("i", "f", "o", "candidate", "c", "h"),
}
MERGE_MODES = ("concat", "sum", "ave", "mul")


@dataclass
class _Cell:
    """One recurrent cell, ready to step: projections, activations and the gate matrices."""

    path: str
    family: str
    units: int
    act: Activation
    rec_act: Activation
    kernel: dict[str, Array]  # gate letter ("" for SimpleRNN) -> input weights
    recurrent_kernel: dict[str, Array]
    bias: dict[str, Array]  # input bias per gate (zeros without use_bias)
    recurrent_bias: dict[str, Array] | None  # GRU reset_after and CuDNN layers only
    reset_after: bool
    go_backwards: bool
    zero_output_for_mask: bool
    project: Callable[[Array, Array], Array]  # (inputs, kernel) -> input contribution
    recur: Callable[[Array, Array], Array]  # (h, recurrent_kernel) -> recurrent contribution
    in_rank: int  # axes of one time step of the input, batch excluded: 1, or spatial + channels
    channels_first: bool = False


def is_traceable(layer: Layer) -> bool:
    """True for the layers :func:`trace` runs: recurrent layers, ``RNN`` with built-in (or stacked
    built-in) cells, and Bidirectional wrappers of them."""
    if layer.class_name == "Bidirectional":
        return len(layer.children) == 2 and all(is_traceable(c) for c in layer.children)
    if _stacked(layer):
        return True
    return runs_as(layer.class_name, layer.config) is not None


def _stacked(layer: Layer) -> bool:
    """``RNN(StackedRNNCells([...]))`` of built-in cells: the cells are the layer's children."""
    return (
        layer.class_name == "RNN"
        and bool(layer.children)
        and all(runs_as(c.class_name, c.config) is not None for c in layer.children)
    )


def _view(layer: Layer) -> tuple[str, dict[str, Any]]:
    """The class and config Keras computes ``layer`` as (``RNN(LSTMCell)`` -> ``LSTM``)."""
    found = runs_as(layer.class_name, layer.config)
    if found is None:
        raise UnsupportedLayerError(
            f"layer {layer.path!r} ({layer.class_name}) is not a recurrent layer; trace runs "
            "SimpleRNN, GRU, LSTM, ConvLSTM1D/2D/3D, CuDNNGRU, CuDNNLSTM, RNN with Keras's cells "
            "(also stacked) and Bidirectional"
        )
    return found


def returns_sequences(layer: Layer) -> bool:
    """``return_sequences`` as Keras reads it (a Bidirectional: its forward layer's)."""
    if layer.class_name == "Bidirectional":
        return returns_sequences(_halves(layer)[0])
    return bool(layer.config.get("return_sequences", False))


def state_names(layer: Layer) -> list[str]:
    """Names of the initial states :func:`trace` accepts, in Keras's order (``h``, ``c``...)."""
    if layer.class_name == "Bidirectional":
        return [
            f"{half}/{s}" for half, child in zip(("forward", "backward"), _halves(layer)) for s in state_names(child)
        ]
    if _stacked(layer):
        return [f"{child.name}/{s}" for child in layer.children for s in state_names(child)]
    return list(STATES[family(_view(layer)[0])])


def gate_ranges(layer: Layer) -> dict[str, tuple[float, float]]:
    """The closed range each traced array lies in, from the layer's activations."""
    out = _ranges(layer)
    out["output"] = out.get("h", out.get("forward/h", (-np.inf, np.inf)))
    return out


def _ranges(layer: Layer) -> dict[str, tuple[float, float]]:
    if layer.class_name == "Bidirectional":
        out = {
            f"{half}/{k}": v
            for half, child in zip(("forward", "backward"), _halves(layer))
            for k, v in _ranges(child).items()
        }
        (f_lo, f_hi), (b_lo, b_hi) = out["forward/h"], out["backward/h"]
        mode = layer.config.get("merge_mode", "concat")
        if mode in ("concat", "ave"):
            out["h"] = (min(f_lo, b_lo), max(f_hi, b_hi))
        elif mode == "sum":
            out["h"] = (f_lo + b_lo, f_hi + b_hi)
        elif mode == "mul":
            finite = all(np.isfinite(v) for v in (f_lo, f_hi, b_lo, b_hi))
            corners = [f_lo * b_lo, f_lo * b_hi, f_hi * b_lo, f_hi * b_hi] if finite else [-np.inf, np.inf]
            out["h"] = (min(corners), max(corners))
        return out
    if _stacked(layer):
        out = {f"{child.name}/{k}": v for child in layer.children for k, v in _ranges(child).items()}
        out["h"] = out[f"{layer.children[-1].name}/h"]
        return out
    cell = _cell(layer)
    gate = (cell.rec_act.low, cell.rec_act.high)
    act = (cell.act.low, cell.act.high)
    with_zero = (min(act[0], 0.0), max(act[1], 0.0))
    unbounded = (-np.inf, np.inf)
    if cell.family == "SimpleRNN":
        return {"h": act}
    if cell.family == "GRU":  # h mixes the previous h and the candidate (from h0 = 0)
        return {"z": gate, "r": gate, "candidate": act, "h": with_zero if act[0] > -np.inf else unbounded}
    gated = gate[0] >= 0.0 and gate[1] <= 1.0  # h = o * act(c) with o in [0, 1]
    return {"i": gate, "f": gate, "o": gate, "candidate": act, "c": unbounded, "h": with_zero if gated else unbounded}


Progress = Callable[[int], None]  # called with the number of time steps just computed


def trace(
    layer: Layer,
    x: Any,
    initial_state: Any = None,
    mask: Any = None,
    *,
    progress: Progress | None = None,
) -> dict[str, Array]:
    """Run ``layer`` on ``x`` in numpy; every gate and state per time step, float32.

    ``x`` is (batch, time, features), or (time, features) for a batch of 1 (ConvLSTM:
    (batch, time, *spatial, channels)). ``initial_state`` is ``h0`` or ``[h0, c0]`` (a
    Bidirectional takes the forward states then the backward ones, as Keras does),
    each (batch, units) or (units,) for all samples. ``mask`` is bool (batch, time).

    SimpleRNN gives ``h``; GRU ``z``, ``r``, ``candidate``, ``h``; LSTM and ConvLSTM ``i``,
    ``f``, ``o``, ``candidate``, ``c``, ``h``; ``RNN`` with a built-in cell the same as the layer
    its cell computes as. ``RNN(StackedRNNCells)`` gives each cell's arrays under its name
    (``cell_a/h``) and ``h``, the last cell's. A Bidirectional gives each half's arrays under
    ``forward/`` and ``backward/`` (each in its own processing order) plus ``h``, the merged
    output sequence in input order, as Keras returns it (not for ``merge_mode=None``).
    ``progress`` is called with 1 after each time step (twice as many for a Bidirectional).

    Every layer also gives ``output``: exactly what Keras returns as the layer's (first)
    output, for its ``return_sequences``, ``go_backwards`` and ``merge_mode`` (for
    ``merge_mode=None``, the forward layer's output; with ``return_state``, the output
    without the states).
    """
    try:
        if layer.class_name == "Bidirectional":
            return _trace_bidirectional(layer, x, initial_state, mask, progress)
        if _stacked(layer):
            out = _trace_stacked(layer, x, initial_state, mask, progress=progress)
        else:
            out = _run(_cell(layer), x, initial_state, mask, progress)
    except KerasWeightsError as exc:  # (layout errors of the layer's weights name the file)
        raise exc.with_path(layer.file) if layer.file is not None else exc from None
    out["output"] = out["h"] if returns_sequences(layer) else out["h"][:, -1]
    return out


def steps_of(layer: Layer, x: Any) -> int:
    """How many time steps :func:`trace` computes for ``x`` (for a progress bar)."""
    shape = np.shape(x)
    steps = shape[1] if len(shape) >= 3 else shape[0] if shape else 0
    if layer.class_name == "Bidirectional":
        return sum(steps_of(child, x) for child in layer.children)
    return int(steps) * (len(layer.children) if _stacked(layer) else 1)


# -- building a cell from a layer ---------------------------------------------------------------


def _halves(layer: Layer) -> list[Layer]:
    if len(layer.children) != 2:
        raise UnsupportedLayerError(f"layer {layer.path!r}: Bidirectional without a forward and a backward layer")
    return layer.children


def _cell(layer: Layer) -> _Cell:
    class_name, config = _view(layer)
    fam = family(class_name)
    major = layer.context.keras_major
    if config.get("time_major"):
        raise UnsupportedLayerError(f"layer {layer.path!r}: time_major=True is not supported by trace")
    if class_name.startswith("CuDNN"):  # fixed activations, reset_after GRU
        act, rec_act = activations.get("tanh", 3), activations.get("sigmoid", 3)
    else:
        act = activations.get(config.get("activation", "tanh"), major, layer.path)
        default = default_recurrent_activation(layer.context.keras_version, major)
        rec = config.get("recurrent_activation", config.get("inner_activation", default))
        rec_act = activations.get(rec, major, layer.path, "recurrent_activation")
    matrices = {name: m.read().astype(np.float64) for name, m in layer.matrices().items()}
    gates = GATES[fam] or ("",)  # SimpleRNN: one unnamed "gate" (kernel, recurrent_kernel, bias)

    def pick(var: str, gate: str) -> Array | None:
        return matrices.get(f"{var}_{gate}" if gate else var)

    kernel, recurrent_kernel, bias = {}, {}, {}
    recurrent_bias: dict[str, Array] | None = {} if any(n.startswith("recurrent_bias") for n in matrices) else None
    for gate in gates:
        k, rk = pick("kernel", gate), pick("recurrent_kernel", gate)
        if k is None or rk is None:
            raise UnsupportedLayerError(
                f"layer {layer.path!r}: no {'kernel' + ('_' + gate if gate else '')} / recurrent kernel among its matrices "
                f"({', '.join(matrices) or 'none'}); is the file missing this layer's weights?"
            )
        kernel[gate], recurrent_kernel[gate] = k, rk
        units = rk.shape[-1]
        b = pick("bias", gate)
        bias[gate] = b if b is not None else np.zeros(units)
        if recurrent_bias is not None:
            rb = pick("recurrent_bias", gate)
            recurrent_bias[gate] = rb if rb is not None else np.zeros(units)
    reset_after = fam == "GRU" and (class_name == "CuDNNGRU" or bool(config.get("reset_after", False)))
    zero_output = bool(config.get("zero_output_for_mask", False))
    common: dict[str, Any] = {
        "path": layer.path,
        "family": fam,
        "units": units,
        "act": act,
        "rec_act": rec_act,
        "kernel": kernel,
        "recurrent_kernel": recurrent_kernel,
        "bias": bias,
        "recurrent_bias": recurrent_bias,
        "reset_after": reset_after,
        "go_backwards": bool(config.get("go_backwards", False)),
        "zero_output_for_mask": zero_output,
    }
    if class_name.startswith("ConvLSTM"):
        return _conv_cell(layer, common)
    return _Cell(**common, project=_dot, recur=_dot, in_rank=1)


def _dot(x: Array, w: Array) -> Array:
    return np.asarray(x @ w)


# -- ConvLSTM: the same LSTM equations with convolutions ----------------------------------------


def _tuple(value: Any, rank: int, name: str, path: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    if isinstance(value, (list, tuple)) and len(value) == rank and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise UnsupportedLayerError(f"layer {path!r}: cannot read {name}={value!r}")


def _conv_cell(layer: Layer, common: dict[str, Any]) -> _Cell:
    config, path = layer.config, layer.path
    rank = int(layer.class_name[-2])
    strides = _tuple(config.get("strides", 1), rank, "strides", path)
    dilation = _tuple(config.get("dilation_rate", 1), rank, "dilation_rate", path)
    padding = str(config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise UnsupportedLayerError(f"layer {path!r}: padding {padding!r} is not supported by trace")
    channels_first = config.get("data_format") == "channels_first"

    def project(x: Array, w: Array) -> Array:
        return conv(x, w, strides, padding, dilation)

    def recur(h: Array, w: Array) -> Array:
        # Keras: the recurrent convolution always has stride 1 and "same" padding.
        return conv(h, w, (1,) * rank, "same", (1,) * rank)

    return _Cell(**common, project=project, recur=recur, in_rank=rank + 1, channels_first=channels_first)


def conv(x: Array, w: Array, strides: Sequence[int], padding: str, dilation: Sequence[int]) -> Array:
    """N-d convolution, channels last: x (n, *spatial, in), w (*kernel, in, out), TF padding rules."""
    rank = w.ndim - 2
    span = [(k - 1) * d + 1 for k, d in zip(w.shape[:rank], dilation)]
    if padding == "same":
        pads = []
        for n, e, s in zip(x.shape[1 : 1 + rank], span, strides):
            total = max((-(-n // s) - 1) * s + e - n, 0)
            pads.append((total // 2, total - total // 2))  # TF puts the odd pixel after
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    spatial = tuple(range(1, 1 + rank))
    if any(x.shape[a] < e for a, e in zip(spatial, span)):
        raise TraceInputError(
            f"input spatial shape {x.shape[1 : 1 + rank]} is smaller than the kernel span {tuple(span)}"
        )
    windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=spatial)  # (n, *out, in, *span)
    cut = (
        slice(None),
        *(slice(None, None, s) for s in strides),
        slice(None),
        *(slice(None, None, d) for d in dilation),
    )
    windows = windows[cut]
    return np.tensordot(windows, w, axes=([1 + rank, *range(2 + rank, 2 + 2 * rank)], [rank, *range(rank)]))


# -- the recurrence ------------------------------------------------------------------------------


def _as_batch(x: Any, cell: _Cell) -> Array:
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TraceInputError(f"layer {cell.path!r}: input must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if x.ndim == cell.in_rank + 1:
        x = x[None]
    if x.ndim != cell.in_rank + 2:
        want = (
            "(batch, time, features) or (time, features)"
            if cell.in_rank == 1
            else f"(batch, time, {cell.in_rank} more axes)"
        )
        raise TraceInputError(f"layer {cell.path!r}: input has shape {x.shape}, expected {want}")
    if cell.channels_first:
        x = np.moveaxis(x, 2, -1)
    features = next(iter(cell.kernel.values())).shape[-2]
    if x.shape[-1] != features:
        raise TraceInputError(
            f"layer {cell.path!r}: input has {x.shape[-1]} features, the layer's kernel expects {features}"
        )
    if x.shape[1] == 0:
        raise TraceInputError(f"layer {cell.path!r}: input has no time steps")
    return np.asarray(x)


def _as_mask(mask: Any, x: Array, path: str) -> Array | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.ndim == 1:
        m = m[None]
    if m.shape != x.shape[:2]:
        raise TraceInputError(
            f"layer {path!r}: mask has shape {np.shape(mask)}, expected (batch, time) = {x.shape[:2]}"
        )
    if m.dtype.kind not in "biuf":
        raise TraceInputError(f"layer {path!r}: mask must be boolean, got dtype {m.dtype}")
    return m.astype(bool)


def _as_states(initial_state: Any, names: Sequence[str], shape: tuple[int, ...], path: str) -> list[Array]:
    if initial_state is None:
        return [np.zeros(shape) for _ in names]
    states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    if len(states) != len(names):
        raise TraceInputError(
            f"layer {path!r}: expected {len(names)} initial state(s) ({', '.join(names)}), got {len(states)}"
        )
    out = []
    for name, s in zip(names, states):
        a = np.asarray(s, dtype=np.float64)
        if a.shape == shape[1:]:
            a = np.broadcast_to(a, shape)
        if a.shape != shape:
            raise TraceInputError(
                f"layer {path!r}: initial state {name} has shape {a.shape}, expected {shape} or {shape[1:]}"
            )
        out.append(a)
    return out


def _run(cell: _Cell, x: Any, initial_state: Any, mask: Any, progress: Progress | None = None) -> dict[str, Array]:
    x = _as_batch(x, cell)
    m = _as_mask(mask, x, cell.path)
    if cell.go_backwards:  # Keras reverses the input (and mask) and runs forward
        x = x[:, ::-1]
        m = None if m is None else m[:, ::-1]
    batch, steps = x.shape[:2]
    # Input contributions of every step at once: (batch * time, ...) through the kernel.
    flat = x.reshape(batch * steps, *x.shape[2:])
    xs = {g: (cell.project(flat, k) + cell.bias[g]) for g, k in cell.kernel.items()}
    xs = {g: v.reshape(batch, steps, *v.shape[1:]) for g, v in xs.items()}
    state_shape = (batch, *next(iter(xs.values())).shape[2:])
    states = _as_states(initial_state, STATES[cell.family], state_shape, cell.path)
    names = OUTPUTS[cell.family]
    out = {n: np.empty((batch, steps, *state_shape[1:])) for n in names}
    h = states[0]
    c = states[1] if cell.family == "LSTM" else None
    prev_out = h
    for t in range(steps):
        x_t = {g: v[:, t] for g, v in xs.items()}
        values = _step(cell, x_t, h, c)
        if m is None:
            h = values["h"]
            c = values.get("c")
            y = h
        else:
            keep = m[:, t].reshape(batch, *([1] * (len(state_shape) - 1)))
            h = np.where(keep, values["h"], h)
            if c is not None:
                c = np.where(keep, values["c"], c)
            fill = np.zeros_like(h) if cell.zero_output_for_mask else prev_out
            y = np.where(keep, values["h"], fill)
            for n in names:
                if n not in STATES[cell.family]:
                    values[n] = np.where(keep, values[n], np.nan)
            if c is not None:
                values["c"] = c
        prev_out = y
        values["h"] = y
        for n in names:
            out[n][:, t] = values[n]
        if progress is not None:
            progress(1)
    if cell.channels_first:
        out = {n: np.moveaxis(v, -1, 2) for n, v in out.items()}
    return {n: v.astype(np.float32) for n, v in out.items()}


def _step(cell: _Cell, x: dict[str, Array], h: Array, c: Array | None) -> dict[str, Array]:
    """One time step of Keras's cell equations; gate letters as in the layout rules."""
    u, rec_act, act = cell.recurrent_kernel, cell.rec_act, cell.act

    def rec(g: str, state: Array) -> Array:
        r = cell.recur(state, u[g])
        return r + cell.recurrent_bias[g] if cell.recurrent_bias is not None else r

    if cell.family == "SimpleRNN":
        return {"h": act(x[""] + rec("", h))}
    if cell.family == "GRU":
        z = rec_act(x["z"] + rec("z", h))
        r = rec_act(x["r"] + rec("r", h))
        if cell.reset_after:
            candidate = act(x["h"] + r * rec("h", h))
        else:
            candidate = act(x["h"] + rec("h", r * h))
        return {"z": z, "r": r, "candidate": candidate, "h": z * h + (1.0 - z) * candidate}
    assert c is not None
    i = rec_act(x["i"] + rec("i", h))
    f = rec_act(x["f"] + rec("f", h))
    candidate = act(x["c"] + rec("c", h))
    o = rec_act(x["o"] + rec("o", h))
    c = f * c + i * candidate
    return {"i": i, "f": f, "o": o, "candidate": candidate, "c": c, "h": o * act(c)}


# -- Bidirectional ------------------------------------------------------------------------------


def _trace_bidirectional(
    layer: Layer, x: Any, initial_state: Any, mask: Any, progress: Progress | None = None
) -> dict[str, Array]:
    forward, backward = _halves(layer)
    n_f, n_b = len(state_names(forward)), len(state_names(backward))
    if initial_state is None:
        s_f = s_b = None
    else:
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != n_f + n_b:
            raise TraceInputError(
                f"layer {layer.path!r}: expected {n_f + n_b} initial states ({', '.join(state_names(layer))}), got {len(states)}"
            )
        s_f, s_b = states[:n_f], states[n_f:]
    out: dict[str, Array] = {}
    halves = []
    for half, child, s in (("forward", forward, s_f), ("backward", backward, s_b)):
        # Keras's Bidirectional forces zero_output_for_mask = return_sequences on both halves.
        if _stacked(child):
            arrays = _trace_stacked(child, x, s, mask, progress, zero_output=returns_sequences(child))
        else:
            cell = _cell(child)
            cell.zero_output_for_mask = returns_sequences(child)
            arrays = _run(cell, x, s, mask, progress)
        halves.append(arrays["h"])
        out.update({f"{half}/{k}": v for k, v in arrays.items()})
    merged = merge(layer, halves[0], halves[1][:, ::-1])
    if merged is not None:
        out["h"] = merged
    if returns_sequences(layer):  # Keras reverses the backward sequence back into input order
        first = merged if merged is not None else halves[0]
    else:  # each half's last output: the backward one has seen the input from its end
        last = merge(layer, halves[0][:, -1], halves[1][:, -1])
        first = last if last is not None else halves[0][:, -1]
    out["output"] = first
    return out


# -- RNN(StackedRNNCells) -----------------------------------------------------------------------


def _trace_stacked(
    layer: Layer,
    x: Any,
    initial_state: Any,
    mask: Any,
    progress: Progress | None = None,
    zero_output: bool | None = None,
) -> dict[str, Array]:
    """Keras steps every cell at each time step, cell k feeding cell k+1; cells see no future
    steps, so running each cell over the whole sequence in turn computes the same values."""
    cells = layer.children
    counts = [len(state_names(c)) for c in cells]
    if initial_state is None:
        per_cell: list[Any] = [None] * len(cells)
    else:
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != sum(counts):
            raise TraceInputError(
                f"layer {layer.path!r}: expected {sum(counts)} initial states ({', '.join(state_names(layer))}), got {len(states)}"
            )
        bounds = np.cumsum([0, *counts])
        per_cell = [states[a:b] for a, b in pairwise(bounds)]
    flow = np.asarray(x)
    m = None if mask is None else np.asarray(mask)
    if layer.config.get("go_backwards", False):  # the RNN reverses its input once, for all cells
        flow = flow[:, ::-1] if flow.ndim >= 3 else flow[::-1]
        m = None if m is None else (m[:, ::-1] if m.ndim == 2 else m[::-1])
    if zero_output is None:
        zero_output = bool(layer.config.get("zero_output_for_mask", False))
    out: dict[str, Array] = {}
    for k, (child, states) in enumerate(zip(cells, per_cell)):
        cell = _cell(child)
        cell.go_backwards = False
        cell.zero_output_for_mask = zero_output and k == len(cells) - 1
        arrays = _run(cell, flow, states, m, progress)
        out.update({f"{child.name}/{n}": v for n, v in arrays.items()})
        flow = arrays["h"]
    out["h"] = flow
    return out


def merge(layer: Layer, forward: Array, backward: Array) -> Array | None:
    """Combine the halves' outputs per ``merge_mode`` (``None`` for merge_mode=None)."""
    mode = layer.config.get("merge_mode", "concat")
    if mode is None:
        return None
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return np.asarray(forward + backward)
    if mode == "ave":
        return np.asarray((forward + backward) / 2)
    if mode == "mul":
        return np.asarray(forward * backward)
    raise UnsupportedLayerError(
        f"layer {layer.path!r}: merge_mode {mode!r} is not supported; Keras has {', '.join(MERGE_MODES)}, None"
    )
