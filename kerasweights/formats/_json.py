"""Bounded JSON parsing for configs taken from untrusted files."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from ..errors import ConfigError, LimitExceededError
from ..limits import Limits


def load_json(data: bytes | str, what: str, limits: Limits) -> Any:
    """Parse ``data`` as JSON, refusing documents that are too big or too deeply nested."""
    if len(data) > limits.max_json_bytes:
        raise LimitExceededError(f"{what} is {len(data):,} bytes, over the limit of {limits.max_json_bytes:,}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    items = data.count(",") + data.count("[") + data.count("{")  # (an upper bound: also counts inside strings)
    if items > limits.max_json_items:
        raise LimitExceededError(f"{what} holds about {items:,} values, over the limit of {limits.max_json_items:,}")
    _check_depth(data, what, limits.max_json_depth)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise LimitExceededError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's wording differs between 3.10 and 3.11+
            limit = sys.get_int_max_str_digits()
            raise ConfigError(f"{what} is not usable JSON (an integer of more than {limit} digits)") from None
        raise ConfigError(f"{what} is not usable JSON ({exc})") from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # (unrolled: twice as fast as one alternation per character)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"[\[{][\]}]")


def _check_depth(text: str, what: str, max_depth: int) -> None:
    # Cheap pre-scan so a nesting bomb never reaches the recursive parser. In C, not per
    # character in Python (a 4,000-layer config is 3 MB): drop strings, keep only brackets,
    # then strip the innermost pairs once per level.
    if text.count("[") + text.count("{") <= max_depth:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        brackets, stripped = _INNERMOST.subn("", brackets)
        if not brackets or not stripped:
            return  # all matched within the limit (or unbalanced: the parser says where)
    if _INNERMOST.search(brackets):
        raise LimitExceededError(f"{what} is nested more than {max_depth} levels deep")
