"""``kerasweights show``: print one named matrix or stored array, or save it as .npy/.csv/.txt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import LayoutError, OutputError
from ..model import Layer, Matrix, Model, Weight
from ._common import add_input, open_model
from ._output import Column, error, table, wrap
from ._render import shape_compact

SUMMARY_THRESHOLD = 1000  # numpy's default: larger arrays print their corners only
OUTPUTS = (".npy", ".csv", ".txt")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("show", help="print one named matrix or stored array, or save it as .npy/.csv/.txt")
    add_input(parser)
    parser.add_argument("key", metavar="LAYER/MATRIX", help="e.g. enc_gru/kernel_z, or a stored weight: enc_gru/kernel")
    parser.add_argument(
        "--full", action="store_true", help=f"print every value (default: corners only above {SUMMARY_THRESHOLD:,})"
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="write the values to OUT.npy, OUT.csv or OUT.txt instead")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower() if args.output else ""
    if args.output and suffix not in OUTPUTS:
        return error(f"cannot tell the format of {args.output!r}; name it {', '.join('OUT' + s for s in OUTPUTS)}", 2)
    with open_model(args.file, args.config) as model:
        layer = next((l for l in model.walk() if l.path == args.key.rstrip("/")), None)
        if layer is not None:  # a layer, not one of its matrices: say what there is to show
            print(listing(layer))
            return 0
        item = model.find(args.key)
        value = item.read()
        if args.output:
            if suffix != ".npy" and value.ndim > 2:
                problem = f"{item.key} has {value.ndim} dimensions {tuple(value.shape)}; {suffix} holds at most 2"
                return error(f"{problem}: use .npy", 2)
            try:
                save(args.output, value)
            except OSError as exc:
                raise OutputError(f"cannot write: {exc.strerror or exc}", args.output) from None
            print(f"wrote {item.key} ({'x'.join(map(str, value.shape)) or 'scalar'} {value.dtype}) to {args.output}")
            return 0
        print(header(model, item))
        print()
        threshold = sys.maxsize if args.full else SUMMARY_THRESHOLD
        with np.printoptions(threshold=threshold, linewidth=80):
            print(value)
    return 0


def listing(layer: Layer) -> str:
    """The named matrices of a layer (and the layers inside it), for ``show FILE LAYER``."""
    rows = []
    for each in layer.walk():
        try:
            parts: list[Matrix | Weight] = list(each.matrices().values())
        except LayoutError:
            parts = list(each.weights)
        rows += [[p.key, shape_compact(p.shape), getattr(p, "meaning", "") or "stored array"] for p in parts]
    title = f"{layer.path} ({layer.class_name}): "
    if not rows:
        return title + "no weights to show"
    title += f"{len(rows)} matrices"
    columns = [Column("Matrix", wrap=20), Column("Shape"), Column("Meaning", wrap=16)]
    hint = wrap(f"Show one by its key, e.g. {rows[0][0]}", 80)
    return "\n".join([wrap(title, 80), "", table(columns, rows), "", hint])


def header(model: Model, item: Matrix | Weight) -> str:
    """key, shape, dtype, meaning and source, one per line."""
    if isinstance(item, Matrix):
        meaning = item.meaning or "-"
        source = f"{item.source} of {item.weight.array.key}"
    else:
        layer = model.layer(item.layer_path)
        try:
            parts = [m.name for m in layer.matrices().values() if m.weight is item]
        except LayoutError:  # a layout problem only loses this hint
            parts = []
        meaning = f"stored array, split into {', '.join(parts)}" if parts else "stored array"
        source = item.array.key
    fields = {"key": item.key, "shape": _shape(item.shape), "dtype": item.dtype, "meaning": meaning, "source": source}
    # Long values wrap under themselves: prose at spaces, HDF5 paths after a slash.
    return "\n".join(
        f"{name + ':':<9}" + wrap(text, 80 - 9).replace("\n", "\n" + " " * 9) for name, text in fields.items()
    )


def save(path: str, value: np.ndarray) -> None:
    """By extension: ``.npy`` keeps dtype and shape; ``.csv``/``.txt`` write rows of text that
    read back to the same numbers (enough significant digits for the dtype)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        np.save(path, value, allow_pickle=False)
        return
    digits = {2: 5, 4: 9}.get(value.dtype.itemsize, 17) if value.dtype.kind == "f" else 0
    fmt = f"%.{digits}g" if digits else "%d"
    np.savetxt(path, np.atleast_1d(value), fmt=fmt, delimiter="," if suffix == ".csv" else " ")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
