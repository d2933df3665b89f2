"""The list of subcommands; each module has ``add_parser(subparsers)`` that sets ``run``.

A command line runs one command, so only that module is imported (:func:`load`):
importing every command (audit's process pool, trace, compare...) would add ~50 ms to
each run of ``kerasweights summary``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

NAMES = ("summary", "weights", "show", "export", "diff", "plot", "audit", "trace")


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__package__}.{name}")


def chosen(argv: Sequence[str]) -> str | None:
    """The command an argument list names (its first non-option), or ``None`` (help, typos)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in NAMES else None


def __getattr__(name: str) -> list[ModuleType]:
    if name == "COMMANDS":  # every command module, imported on first use
        return [load(n) for n in NAMES]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
