"""``kerasweights diff``: compare two model files: layers, configs, shapes and values."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("diff", help="compare two model files: layers, configs, shapes and values")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the diff command is not implemented yet")
