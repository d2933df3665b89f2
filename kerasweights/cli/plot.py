"""``kerasweights plot``: draw heatmaps of a layer's named matrices (needs kerasweights[plot])."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import _optional
from ..errors import OutputError
from ._common import add_input, open_model
from ._output import error


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("plot", help="draw heatmaps of a layer's named matrices (needs kerasweights[plot])")
    add_input(parser)
    parser.add_argument("layer", metavar="LAYER", help="layer path, e.g. enc_gru or bi_g/forward_g")
    parser.add_argument("-o", "--output", metavar="OUT.png", help="image file (default: layer path, / as _, .png)")
    parser.set_defaults(run=run)


def default_output(layer: str) -> str:
    return layer.replace("/", "_") + ".png"


def run(args: argparse.Namespace) -> int:
    _optional.pyplot()  # without matplotlib, say how to install it before reading anything
    from ..plot import image_formats, plot_layer

    out = args.output or default_output(args.layer)
    formats = image_formats()
    if Path(out).suffix.lower().lstrip(".") not in formats:
        endings = ", ".join("." + f for f in formats)
        return error(f"cannot tell the image format of {out!r}; end it with one of: {endings}", 2)
    with open_model(args.file, args.config) as model:
        layer = model.layer(args.layer)
        try:
            grid = plot_layer(layer, out, title=f"{layer.path} ({layer.class_name}) in {Path(model.path).name}")
        except OSError as exc:
            raise OutputError(f"cannot write: {exc.strerror or exc}", out) from None
    panels = sum(len(row) for row in grid)
    print(f"wrote {out} ({panels} panels: {len(grid)} rows of up to {max(len(r) for r in grid)})")
    return 0
