"""Layout rules: for each Keras layer class, its stored variables and their named matrices."""

from __future__ import annotations

from ._base import Config, Context, Index, Part, Rule, Shape, Var
from .attention import RULES as _ATTENTION
from .core import RULES as _CORE
from .keras import WEIGHTLESS_CLASSES
from .recurrent import GATE_MEANINGS, GATES, RECURRENT_CLASSES, family
from .recurrent import RULES as _RECURRENT

__all__ = [
    "Config",
    "Context",
    "GATES",
    "GATE_MEANINGS",
    "Index",
    "RECURRENT_CLASSES",
    "Part",
    "Rule",
    "Shape",
    "Var",
    "WEIGHTLESS_CLASSES",
    "family",
    "rule_for",
    "register",
    "known_classes",
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
