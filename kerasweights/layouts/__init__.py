"""Layout rules: for each Keras layer class, its stored variables and their named matrices."""

from __future__ import annotations

from ._base import CONVERSIONS, Config, Context, Index, Part, Rule, Shape, Var
from .attention import RULES as _ATTENTION
from .core import RULES as _CORE
from .keras import WEIGHTLESS_CLASSES
from .recurrent import (
    CELL_CLASSES,
    COMPUTES_AS,
    GATE_MEANINGS,
    GATES,
    RECURRENT_CLASSES,
    computes_as,
    custom_cell,
    family,
    runs_as,
    stacked_cells,
)
from .recurrent import RULES as _RECURRENT

__all__ = [
    "CELL_CLASSES",
    "COMPUTES_AS",
    "CONVERSIONS",
    "GATES",
    "GATE_MEANINGS",
    "RECURRENT_CLASSES",
    "WEIGHTLESS_CLASSES",
    "Config",
    "Context",
    "Index",
    "Part",
    "Rule",
    "Shape",
    "Var",
    "computes_as",
    "custom_cell",
    "family",
    "known_classes",
    "register",
    "rule_for",
    "runs_as",
    "stacked_cells",
]

_REGISTRY: dict[str, Rule] = {}


def register(rule: Rule) -> None:
    """Add (or replace) the rule for each of ``rule.class_names``."""
    for name in rule.class_names:
        _REGISTRY[name] = rule


def rule_for(class_name: str) -> Rule | None:
    """The rule for a layer class, or ``None`` for classes Keras does not ship (custom layers)."""
    return _REGISTRY.get(class_name)


def known_classes() -> list[str]:
    return sorted(_REGISTRY)


for _rule in (*_RECURRENT, *_CORE, *_ATTENTION):
    register(_rule)
