"""Text output for the commands: tables that fit 80 columns, readable numbers, messages on stderr."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 80
GAP = 2  # tabulate's "simple" format puts two spaces between columns


@dataclass(frozen=True)
class Column:
    """A table column. ``wrap`` > 0: may be wrapped down to that width (``/`` paths break at
    slashes, prose at spaces); ``optional``: dropped (in order) when wrapping is not enough;
    columns wrap in ascending ``order`` (ties: left to right)."""

    header: str
    align: str = "left"
    wrap: int = 0
    optional: bool = False
    order: int = 0


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int = WIDTH,
    headings: dict[int, str] | None = None,
) -> str:
    """A table in tabulate's "simple" look, no wider than ``width`` when the wrap limits allow.

    Drawn here rather than by tabulate, which pads every header by two spaces (its
    ``MIN_PADDING``): that costs a ten-column statistics table a quarter of the line.
    ``headings`` maps a row index to a line printed above that row (a layer path).
    """
    natural = [max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    optional = [i for i, c in enumerate(columns) if c.optional]
    for dropped in range(len(optional) + 1):  # wrap first; drop optional columns only if that is not enough
        keep = [i for i in range(len(columns)) if i not in optional[:dropped]]
        widths = list(natural)
        for i in sorted((i for i in keep if columns[i].wrap), key=lambda i: columns[i].order):
            excess = sum(widths[j] for j in keep) + GAP * (len(keep) - 1) - width
            if excess <= 0:
                break
            widths[i] = max(columns[i].wrap, len(columns[i].header), widths[i] - excess)
        if sum(widths[j] for j in keep) + GAP * (len(keep) - 1) <= width:
            break
    cells = [[(wrap(r[i], widths[i]) if columns[i].wrap else r[i]).split("\n") for i in keep] for r in rows]
    widths = [max([len(columns[i].header), *(len(line) for r in cells for line in r[k])]) for k, i in enumerate(keep)]

    def line(texts: Sequence[str]) -> str:
        padded = [t.rjust(w) if columns[i].align == "right" else t.ljust(w) for t, w, i in zip(texts, widths, keep)]
        return (" " * GAP).join(padded).rstrip()

    out = [line([columns[i].header for i in keep]), line(["-" * w for w in widths])]
    for n, row in enumerate(cells):
        if headings and n in headings:
            out.append(headings[n])
        for k in range(max(len(c) for c in row)):
            out.append(line([c[k] if k < len(c) else "" for c in row]))
    return "\n".join(out)


def wrap(text: str, width: int) -> str:
    """Prose breaks at spaces; a path (no spaces) after its slashes, or inside a name too long."""
    if len(text) <= width:
        return text
    if " " in text:
        return "\n".join(textwrap.wrap(text, width))
    parts = text.split("/")
    tokens = [p + "/" for p in parts[:-1]] + [parts[-1]]  # a path breaks after its slashes
    lines, line = [], ""
    for token in tokens:
        if line and len(line) + len(token) > width:
            lines.append(line)
            line = ""
        line += token
    lines.append(line)
    return "\n".join(chunk for l in lines for chunk in textwrap.wrap(l, width, break_on_hyphens=False) or [""])


def num(value: float | None) -> str:
    """A statistic with three significant digits; ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:.3g}"


def percent(fraction: float) -> str:
    if fraction == 0:
        return "0%"
    if fraction < 0.01:
        return "<1%"
    return f"{fraction * 100:.0f}%"


def count(n: int) -> str:
    return f"{n:,}"


# The library's messages name its keyword arguments (``config=``); on the command line the
# same advice is an option. Only these exact spellings are rewritten.
_OPTIONS = {
    "config=": "--config",
    "fmt=": "--format",
    "force=True": "--force",
    "layer=": "--layer",
    "skip_inexact=True": "--skip-inexact",
}
_OPTION_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in _OPTIONS) + r")(?=[\s),;]|$)")


def cli_words(message: str) -> str:
    """A library message as the command line says it: ``pass config=`` -> ``pass --config``."""
    return _OPTION_RE.sub(lambda m: _OPTIONS[m.group(1)], message)


def warn(message: str) -> None:
    print(f"kerasweights: warning: {cli_words(message)}", file=sys.stderr)


def error(message: str, code: int) -> int:
    """Print the one-line error the CLI uses everywhere and return ``code`` as the exit code."""
    print(f"kerasweights: error: {cli_words(message)}", file=sys.stderr)
    return code
