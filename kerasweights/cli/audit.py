"""``kerasweights audit``: scan files or folders for unsafe, broken or numerically bad models."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="scan files or folders for unsafe, broken or numerically bad models")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the audit command is not implemented yet")
