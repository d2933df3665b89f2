"""``kerasweights trace``: run a recurrent layer in numpy and record its gates per time step."""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path
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
from ..layouts import runs_as
from ..layouts.recurrent import cell_entry
from ..model import Layer
from ._common import add_input, open_model
from ._output import WIDTH, error, warn
from ._progress import Progress


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
    parser.add_argument("-o", "--output", metavar="OUT.npz", help="write the traced arrays to this .npz file")
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
    parser.add_argument(
        "--scale",
        choices=("full", "data"),
        default="full",
        help="plot colours: full (default) spans each activation's range, data each array's own values",
    )
    parser.add_argument(
        "--print",
        nargs="?",
        const="h",
        metavar="ARRAY,...",
        dest="print_arrays",
        help="print the values of these arrays (default h), one row per time step, one column per unit",
    )
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="which sample --print and --plot show")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..trace import recurrence as tracing

    if args.output and Path(args.output).suffix.lower() != ".npz":
        # numpy would silently add ".npz" and the report would name a file that does not exist.
        return error(
            f"trace writes an .npz archive: name the output {Path(args.output).stem}.npz, not {args.output}", 2
        )
    x = _load_array(args.input, "input")
    integers = x.dtype.kind in "iub" and not args.from_input
    hint = (
        "; the input holds integers: if they are token ids for the model's input, add --from-input" if integers else ""
    )
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
                with Progress(tracing.steps_of(layer, x), f"trace {layer.path}", delay=0.5) as bar:
                    arrays = trace_from_input(model, layer.path, x, states, mask, progress=bar.advance)
            else:
                with Progress(tracing.steps_of(layer, x), f"trace {layer.path}", delay=0.5) as bar:
                    arrays = tracing.trace(layer, x, states, mask, progress=bar.advance)
            ranges = tracing.gate_ranges(layer)
        except KerasWeightsError as exc:
            if hint and isinstance(exc, TraceInputError):
                raise TraceInputError(exc.problem + hint, exc.path or model.path) from None
            raise exc.with_path(model.path) from None
        if integers:
            warn(hint.removeprefix("; ").replace("the input", "the input of this layer"))
        chosen = _chosen(args.print_arrays, arrays) if args.print_arrays else []
        if isinstance(chosen, int):
            return chosen
        batch = next(iter(arrays.values())).shape[0]
        if not 0 <= args.sample < batch:
            return error(
                f"--sample {args.sample} is out of range: the input has {batch} sample(s), 0 to {batch - 1}", 2
            )
        if args.output:
            _save(args.output, arrays)
        if args.plot:
            from ..trace.plot import plot_trace

            xlabel = "time step (processing order)"
            if layer.class_name == "Bidirectional":
                xlabel = "time step (each half in its processing order; merged h in input order)"
            plot_trace(
                arrays,
                args.plot,
                title=f"{layer.path} ({_describe(layer)})",
                ranges=ranges if args.scale == "full" else {},
                sample=args.sample,
                xlabel=xlabel,
            )
        if chosen:
            print(_steps_report(layer, arrays, chosen, args.sample, args.output, args.plot))
        else:
            print(_report(layer, arrays, ranges, args.output, args.plot))
    return 0


def _chosen(spec: str, arrays: dict[str, np.ndarray]) -> list[str] | int:
    """The array names ``--print`` asks for, or the exit code of an error naming the valid ones."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in arrays]
    if unknown or not names:
        return error(
            f"--print: no array {', '.join(map(repr, unknown)) or 'named'}; this layer traces: {', '.join(arrays)}", 2
        )
    return names


def _width() -> int:
    """The terminal's width when printing to one, else 80 (files and pipes get stable output)."""
    if sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((WIDTH, 24)).columns)
    return WIDTH


def step_table(values: np.ndarray, width: int = WIDTH) -> str:
    """(time, units...) values as rows of time steps and columns of units, in blocks of as many
    units as fit ``width``; masked steps (NaN) print as ``masked``."""
    steps = values.shape[0]
    flat = values.reshape(steps, -1).astype(np.float64)
    labels = (
        [str(i) for i in range(flat.shape[1])]
        if values.ndim == 2
        else [",".join(map(str, ix)) for ix in np.ndindex(*values.shape[1:])]
    )
    finite = flat[np.isfinite(flat)]
    big = finite.size and float(np.abs(finite).max()) >= 1000
    cells = [["masked" if np.isnan(v) else f"{v:.4g}" if big else f"{v:.4f}" for v in row] for row in flat]
    col = max([6, *(len(c) for row in cells for c in row), *(len(l) for l in labels)])
    step_col = max(4, len(str(steps - 1)))
    per_block = max(1, (width - step_col) // (col + 2))
    blocks = []
    for start in range(0, flat.shape[1], per_block):
        cols = range(start, min(start + per_block, flat.shape[1]))
        head = "step".rjust(step_col) + "".join(labels[j].rjust(col + 2) for j in cols)
        rows = [str(t).rjust(step_col) + "".join(cells[t][j].rjust(col + 2) for j in cols) for t in range(steps)]
        blocks.append("\n".join([head, *rows]))
    return "\n\n".join(blocks)


def _steps_report(
    layer: Layer, arrays: dict[str, np.ndarray], names: list[str], sample: int, out: str | None, plot: str | None
) -> str:
    width = _width()
    lines = [f"{layer.path} ({_describe(layer)}), sample {sample}"]
    for name in names:
        values = arrays[name][sample]
        what = (
            f"{values.shape[1]} units"
            if values.ndim == 2
            else f"{int(np.prod(values.shape[1:-1]))} positions x {values.shape[-1]} filters"
        )
        lines += ["", f"{name}: {values.shape[0]} steps x {what}", ""]
        lines.append(step_table(values, width))
    written = [p for p in (out, plot) if p]
    if written:
        lines += ["", f"Wrote {' and '.join(written)}"]
    return "\n".join(lines)


def _load_array(path: str, what: str) -> np.ndarray:
    """A numeric array from .npy (or a single-array .npz); never unpickles."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise MissingFileError(f"{what} file not found", path) from None
    except OSError as exc:
        raise CorruptFileError(f"cannot read the {what}: {exc.strerror or exc}", path) from None
    if not magic.startswith((b"\x93NUMPY", b"PK")):
        # numpy calls anything that is not .npy/.npz "pickled data"; only a real pickle is one.
        if magic[:1] == b"\x80":
            raise UnsafeContentError(f"{what} is a Python pickle; kerasweights never unpickles", path)
        raise CorruptFileError(
            f"the {what} is not a .npy or .npz file (a text or CSV file?); save it with numpy.save", path
        )
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
    found = runs_as(layer.class_name, layer.config)  # RNN(LSTMCell): the cell's units
    name, c = (layer.class_name, layer.config) if found is None else found
    entry = cell_entry(layer.config) if layer.class_name == "RNN" else None
    units = c.get("units", c.get("filters"))
    what = f"RNN({entry[0]})" if entry else layer.class_name
    bits = [what, f"{units} {'filters' if 'filters' in c else 'units'}" if units is not None else ""]
    if c.get("reset_after") is not None and "GRU" in name:
        bits.append(f"reset_after={bool(c['reset_after'])}")
    if c.get("go_backwards"):
        bits.append("go_backwards")
    return ", ".join(b for b in bits if b)


def _num(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.4g}"


def _bound(value: float) -> str:
    return "inf" if value == np.inf else "-inf" if value == -np.inf else f"{value:g}"


def _report(
    layer: Layer,
    arrays: dict[str, np.ndarray],
    ranges: dict[str, tuple[float, float]],
    out: str | None,
    plot: str | None,
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
    written = [p for p in (out, plot) if p]
    if written:
        lines.append(f"Wrote {' and '.join(written)}")
    else:
        lines.pop()  # no blank line at the end
    return "\n".join(lines)
