"""``kerasweights show``: print one named matrix or stored array, or save it as .npy/.csv/.txt."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("show", help="print one named matrix or stored array, or save it as .npy/.csv/.txt")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the show command is not implemented yet")
