"""``kerasweights export``: write every named matrix (or stored array) to .npz or .safetensors."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import KerasWeightsError, OutputError
from ..export import arrays as exporting
from ..model import Model
from ._common import add_input, open_model
from ._output import WIDTH, error, warn
from ._progress import Progress


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("export", help="write every named matrix (or stored array) to .npz or .safetensors")
    add_input(parser)
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="OUT.npz or OUT.safetensors")
    formats = sorted(set(exporting.FORMATS.values()))
    parser.add_argument("--format", choices=formats, help="default: from OUT's extension")
    parser.add_argument("--raw", action="store_true", help="stored arrays unsplit, keyed <layer path>/<weight name>")
    parser.add_argument("--layer", metavar="PATH", help="only this layer and the layers inside it")
    parser.add_argument(
        "--to",
        choices=("keras", "pytorch"),
        default="keras",
        help="keras (default): Keras's names and orientation; pytorch: torch.nn module parameters "
        "(RNN/GRU/LSTM, Linear, Embedding, Conv1d/2d/3d, LayerNorm, BatchNorm)",
    )
    parser.add_argument(
        "--force", action="store_true", help="with --to pytorch: also what PyTorch computes differently (warned)"
    )
    parser.add_argument(
        "--skip-inexact",
        action="store_true",
        help="with --to pytorch: write every layer torch reproduces exactly and list the others with the reason",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        fmt = exporting.format_for(args.output, args.format)
    except ValueError as exc:
        return error(str(exc), 2)
    if args.raw and args.to == "pytorch":
        return error("--raw exports Keras's stored arrays; it cannot be combined with --to pytorch", 2)
    for flag, given in (("--force", args.force), ("--skip-inexact", args.skip_inexact)):
        if given and args.to != "pytorch":
            return error(f"{flag} only applies to --to pytorch (Keras exports write every layer)", 2)
    report: list[str] = []  # printed once the file is written: a failed export announces nothing
    with open_model(args.file, args.config) as model:
        if args.to == "pytorch":
            arrays: dict[str, Any] = _torch_tensors(model, args, report)
        else:
            selection = exporting.select(model, raw=args.raw, layer=args.layer)
            for message in selection.warnings:
                warn(message)
            arrays = dict(selection.arrays)
        if not arrays:
            where = f"layer {args.layer!r}" if args.layer else "the model"
            return error(f"{model.path}: nothing to export: {where} has no weights", 2)
        metadata = {
            "exported_by": f"kerasweights {__version__}",
            "source": Path(model.path).name,
            "layout": args.to if not args.raw else "keras-raw",
        }
        with Progress(len(arrays), f"export {Path(args.output).name}") as bar:
            try:
                values = exporting.write(
                    args.output,
                    arrays,
                    fmt,
                    metadata=metadata,
                    progress=lambda _key: bar.advance(),
                    source=model.path,
                )
            except OSError as exc:
                raise OutputError(f"cannot write: {exc.strerror or exc}", args.output) from None
    for line in report:
        if line.startswith("warning: "):
            warn(line.removeprefix("warning: "))
        else:
            print(line)
    print(f"wrote {len(arrays):,} arrays ({values:,} values) to {args.output}")
    return 0


def _constructor_lines(layer_path: str, constructor: str) -> str:
    """``path: torch.nn.X(a=1, ...)`` wrapped at 80 columns after commas: still valid Python to paste."""
    head, args = constructor.split("(", 1)
    prefix = f"{layer_path}: {head}("
    lines = textwrap.wrap(args, WIDTH - len(prefix), break_long_words=False, break_on_hyphens=False)
    if len(prefix) > WIDTH // 2 or not lines:
        return prefix + args
    return prefix + ("\n" + " " * len(prefix)).join(lines)


def _torch_tensors(model: Model, args: argparse.Namespace, report: list[str]) -> dict[str, np.ndarray]:
    """Tensors of every module the port converts; constructors, notes, skipped layers and
    warnings go to ``report``."""
    from ..export.torch import torch_port  # imported here: only --to pytorch needs it

    port = torch_port(model, layer=args.layer, force=args.force, skip_inexact=args.skip_inexact)
    tensors: dict[str, np.ndarray] = {}
    for module in port.modules:
        report.append(_constructor_lines(module.layer_path, module.constructor()))
        report += [
            textwrap.fill(f"note: {n}", WIDTH, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
            for n in module.notes
        ]
        report += [f"warning: {message}" for message in module.warnings]
        clash = sorted(set(tensors) & set(module.tensors))
        if clash:  # a silent overwrite would lose a layer's parameters
            raise KerasWeightsError(f"two layers export the same tensor names: {', '.join(clash)}", model.path)
        tensors.update(module.tensors)
    report += [
        textwrap.fill(f"skipped {path}: {reason}", WIDTH, subsequent_indent="  ", break_on_hyphens=False)
        for path, reason in port.skipped
    ]
    return tensors
