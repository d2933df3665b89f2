"""``kerasweights summary FILE``: layers, classes, weight shapes and parameter counts."""

from __future__ import annotations

import argparse

from . import _render as render
from ._common import add_input, open_model, print_json


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("summary", help="overview: layers, classes, weight shapes, parameter counts")
    add_input(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with open_model(args.file, args.config) as model:
        if args.json:
            print_json(render.summary_dict(model))
        else:
            print(render.summary_table(model))
    return 0
