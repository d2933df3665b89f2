"""The list of subcommands; each module has ``add_parser(subparsers)`` that sets ``run``."""

from __future__ import annotations

from . import audit, diff, export, plot, show, summary, trace, weights

COMMANDS = [summary, weights, show, export, diff, plot, audit, trace]
