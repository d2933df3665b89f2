"""``kerasweights export``: write every named matrix (or stored array) to .npz or .safetensors."""

from __future__ import annotations

import argparse

from ..errors import KerasWeightsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="write every named matrix (or stored array) to .npz or .safetensors")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise KerasWeightsError("the export command is not implemented yet")
