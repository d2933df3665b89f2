"""``kerasweights trace``: run a recurrent layer in numpy and record its gates per time step."""

from __future__ import annotations

import argparse
import zipfile
from typing import Any

import numpy as np

from ..errors import (
    CorruptFileError,
    KerasWeightsError,
    MissingFileError,
    OutputError,
    TraceInputError,
    UnsafeContentError,
)
from ..model import Layer
from ._common import add_input, open_model


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "trace",
        help="run a recurrent layer in numpy and record its gates per time step",
        description="Run a SimpleRNN, GRU, LSTM, ConvLSTM or Bidirectional layer on an input in numpy "
        "and save every gate and state per time step (batch, time, units) to an .npz file.",
    )
    add_input(parser)
    parser.add_argument("layer", metavar="LAYER", help="layer path, e.g. enc_gru or bi_g/backward_g")
    parser.add_argument(
        "--input",
        required=True,
        metavar="X.npy",
        help="input (batch, time, features); (time, features) is a batch of 1",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write the traced arrays")
    parser.add_argument(
        "--initial-state",
        metavar="S.npz",
        help="initial states: keys h (and c for LSTM), h0/c0, or positional arr_0, arr_1; "
        "Bidirectional: forward/h, forward/c, backward/h, backward/c",
    )
    parser.add_argument("--mask", metavar="M.npy", help="boolean mask (batch, time); False steps keep the state")
    parser.add_argument(
        "--from-input", action="store_true", help="X is the model's input: run the layers before LAYER in numpy first"
    )
    parser.add_argument("--plot", metavar="OUT.png", help="also draw the arrays as heatmaps (needs kerasweights[plot])")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..trace import recurrence as tracing

    x = _load_array(args.input, "input")
    mask = _load_array(args.mask, "mask") if args.mask else None
    with open_model(args.file, args.config) as model:
        layer = model.layer(args.layer)
        try:
            states = _load_states(args.initial_state, tracing.state_names(layer)) if args.initial_state else None
            if args.from_input:
                from ..trace.forward import model_input_ndim, trace_from_input

                ndim = model_input_ndim(model)
                if ndim is not None and x.ndim == ndim - 1:  # one sample without its batch axis
                    x = x[None]
                    mask = None if mask is None else mask[None]
                arrays = trace_from_input(model, layer.path, x, states, mask)
            else:
                arrays = tracing.trace(layer, x, states, mask)
            ranges = tracing.gate_ranges(layer)
        except KerasWeightsError as exc:
            raise exc.with_path(model.path) from None
        _save(args.output, arrays)
        if args.plot:
            from ..trace.plot import plot_trace

            xlabel = "time step (processing order)"
            if layer.class_name == "Bidirectional":
                xlabel = "time step (each half in its processing order; merged h in input order)"
            plot_trace(arrays, args.plot, title=f"{layer.path} ({_describe(layer)})", ranges=ranges, xlabel=xlabel)
        print(_report(layer, arrays, ranges, args.output, args.plot))
    return 0


def _load_array(path: str, what: str) -> np.ndarray:
    """A numeric array from .npy (or a single-array .npz); never unpickles."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MissingFileError(f"{what} file not found", path) from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise UnsafeContentError(
                f"{what} holds Python objects (a pickle); kerasweights never unpickles", path
            ) from None
        raise CorruptFileError(f"cannot read the {what} as a numpy array: {exc}", path) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"cannot read the {what} as a numpy array: {exc}", path) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if len(data.files) != 1:
                raise CorruptFileError(
                    f"expected one array in the {what} .npz, found {len(data.files)} ({', '.join(data.files)})", path
                )
            data = data[data.files[0]]
    return np.asarray(data)


def _load_states(path: str, names: list[str]) -> list[np.ndarray]:
    """Initial states by name (``h``, ``h0``, ``forward/c``...) or by position (``arr_0``...)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"cannot read the initial states as an .npz file: {exc}", path) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        if len(names) != 1:
            raise TraceInputError(
                f"the layer needs {len(names)} initial states ({', '.join(names)}): give an .npz with those keys", path
            )
        return [archive]
    with archive:
        keys = set(archive.files)
        out = []
        for i, name in enumerate(names):
            found = next((k for k in (name, f"{name}0", f"arr_{i}") if k in keys), None)
            if found is None:
                raise TraceInputError(
                    f"no initial state {name!r} (or {name}0, arr_{i}); the file has: {', '.join(sorted(keys)) or 'nothing'}",
                    path,
                )
            out.append(archive[found])
        return out


def _save(path: str, arrays: dict[str, np.ndarray]) -> None:
    try:
        np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", path) from None


def _describe(layer: Layer) -> str:
    if layer.class_name == "Bidirectional":
        inner = layer.children[0] if layer.children else None
        return (
            f"Bidirectional {inner.class_name if inner else '?'}, merge_mode={layer.config.get('merge_mode', 'concat')}"
        )
    c = layer.config
    units = c.get("units", c.get("filters"))
    bits = [layer.class_name, f"{units} {'filters' if 'filters' in c else 'units'}" if units is not None else ""]
    if c.get("reset_after") is not None and "GRU" in layer.class_name:
        bits.append(f"reset_after={bool(c['reset_after'])}")
    if c.get("go_backwards"):
        bits.append("go_backwards")
    return ", ".join(b for b in bits if b)


def _num(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.4g}"


def _bound(value: float) -> str:
    return "inf" if value == np.inf else "-inf" if value == -np.inf else f"{value:g}"


def _report(
    layer: Layer, arrays: dict[str, np.ndarray], ranges: dict[str, tuple[float, float]], out: str, plot: str | None
) -> str:
    from tabulate import tabulate

    from ._render import shape_compact

    rows: list[list[Any]] = []
    skipped = 0
    for name, a in arrays.items():
        finite = a[np.isfinite(a)]
        low, high = ranges.get(name, (-np.inf, np.inf))
        stats = [finite.min(), finite.mean(), finite.max()] if finite.size else [np.nan] * 3
        rows.append(
            [name, shape_compact(a.shape), *(_num(float(v)) for v in stats), f"[{_bound(low)}, {_bound(high)}]"]
        )
        if a.ndim >= 2:  # masked steps: NaN gates at (sample, step)
            skipped = max(skipped, int(np.isnan(a.reshape(*a.shape[:2], -1)).any(axis=-1).sum()))
    table = tabulate(
        rows,
        headers=["Array", "Shape", "Min", "Mean", "Max", "Range"],
        colalign=("left", "left", "right", "right", "right", "left"),
        disable_numparse=True,
    )
    lines = [f"{layer.path} ({_describe(layer)})", "", table, ""]
    if skipped:
        lines.append(f"Masked: {skipped:,} (sample, step) pairs; their gates are NaN, h and c carry over.")
    lines.append(f"Wrote {out}" + (f" and {plot}" if plot else ""))
    return "\n".join(lines)
