"""Helpers shared by the subcommands: opening inputs, printing JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import api
from ..model import Model


def add_input(
    parser: argparse.ArgumentParser,
    help_text: str = "model file (.h5, .keras, .weights.h5, ...), directory, or - for stdin",
) -> None:
    parser.add_argument("file", help=help_text)
    parser.add_argument("--config", metavar="JSON", help="model config from model.to_json(), for weights-only files")


def open_model(path: str, config: str | None) -> Model:
    """Open a path, or stdin when ``path`` is ``-`` (read into memory first: stdin cannot seek)."""
    if path == "-":
        import io

        data = io.BytesIO(sys.stdin.buffer.read())
        data.name = "<stdin>"
        return api.open(data, config=config)
    return api.open(path, config=config)


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
