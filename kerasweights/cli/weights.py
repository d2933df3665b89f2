"""``kerasweights weights``: list stored arrays or named matrices, with optional statistics."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("weights", help="list stored arrays or named matrices, with optional statistics")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the weights command is not implemented yet")
