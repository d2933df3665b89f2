"""``kerasweights trace``: run a recurrent layer in numpy and record its gates per time step."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("trace", help="run a recurrent layer in numpy and record its gates per time step")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the trace command is not implemented yet")
