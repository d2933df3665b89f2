"""``kerasweights plot``: draw heatmaps of a layer's named matrices (needs kerasweights[plot])."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plot", help="draw heatmaps of a layer's named matrices (needs kerasweights[plot])")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the plot command is not implemented yet")
