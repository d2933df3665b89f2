"""The list of subcommands; each module has ``add_parser(subparsers)`` setting ``run``."""

from __future__ import annotations

from . import summary

COMMANDS = [summary]
