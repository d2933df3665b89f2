"""``kerasweights diff``: compare two model files: layers, configs, shapes and values."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from ..compare import Comparison, compare
from ._common import open_model, print_json
from ._output import Column, error, num, table
from ._render import shape_compact

MAX_VALUE_ROWS = 20  # text output lists the worst matrices; --json lists them all


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("diff", help="compare two model files: layers, configs, shapes and values")
    parser.add_argument("a", metavar="A", help="first model file (or - for stdin)")
    parser.add_argument("b", metavar="B", help="second model file (or - for stdin)")
    parser.add_argument(
        "--atol", type=float, default=0.0, metavar="X", help="values within X count as equal (default 0: identical)"
    )
    parser.add_argument("--config", metavar="JSON", help="model config for both files, if weights-only")
    parser.add_argument("--config-a", metavar="JSON", help="model config for A (overrides --config)")
    parser.add_argument("--config-b", metavar="JSON", help="model config for B (overrides --config)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.a == "-" and args.b == "-":
        return error("only one of A and B can be - (stdin)", 2)
    if args.atol < 0:
        return error(f"--atol must be 0 or more, not {args.atol}", 2)
    with open_model(args.a, args.config_a or args.config) as a, open_model(args.b, args.config_b or args.config) as b:
        result = compare(a, b, atol=args.atol)
    if args.json:
        print_json(result.as_dict())
    else:
        print(render(result))
    return 0 if result.same else 1


def render(c: Comparison) -> str:
    """Differences grouped by kind; the matrices that differ most; a one-line verdict."""
    lines: list[str] = []
    if c.layers_removed:
        lines.append(f"Layers only in A: {', '.join(c.layers_removed)}")
    if c.layers_added:
        lines.append(f"Layers only in B: {', '.join(c.layers_added)}")
    for change in c.layers_changed:
        lines.append(f"Layer {change.path} changed:")
        if change.class_a != change.class_b:
            lines.append(f"  class: {change.class_a} -> {change.class_b}")
        lines += [f"  {key}: {_short(va)} -> {_short(vb)}" for key, (va, vb) in change.config.items()]
    if c.weights_removed:
        lines.append(f"Weights only in A: {', '.join(c.weights_removed)}")
    if c.weights_added:
        lines.append(f"Weights only in B: {', '.join(c.weights_added)}")
    for s in c.shape_changes:
        lines.append(
            f"Weight {s.key}: {shape_compact(s.shape_a)} {s.dtype_a} -> {shape_compact(s.shape_b)} {s.dtype_b}"
        )
    worst = sorted(c.value_changes, key=lambda v: (-v.rel_change, -v.max_abs_diff))
    if worst:
        lines.append(f"Values differing by more than {c.atol:g}, most changed first:")
        rows = [
            [v.key, shape_compact(v.shape), num(v.max_abs_diff), num(v.rel_change), _cosine(v.cosine)]
            for v in worst[:MAX_VALUE_ROWS]
        ]
        columns = [
            Column("Matrix", wrap=20),
            Column("Shape", optional=True),
            Column("Max abs", "right"),
            Column("Rel change", "right"),
            Column("Cosine", "right"),
        ]
        lines.append(table(columns, rows))
        if len(worst) > MAX_VALUE_ROWS:
            lines.append(f"... and {len(worst) - MAX_VALUE_ROWS} more (see --json)")
        lines.append("Rel change: ||B-A|| / ||A|| (Frobenius norms); Cosine: of A and B as vectors")
        most = c.most_changed()
        if most:
            lines.append("Most changed layers: " + ", ".join(f"{layer} {num(r)}" for layer, r in most))
    renamed = [f"{ka} = {kb}" for ka, kb in c.weights_renamed]
    if renamed:
        lines.append(f"Same weight under another name: {', '.join(renamed)}")
    largest = max((v.max_abs_diff for v in c.values), default=0.0)
    equal = len(c.values) - len(c.value_changes)
    verdict = (
        f"Result: {'same' if c.same else 'different'} ({equal} of {len(c.values)} matrices within {c.atol:g};"
        f" max abs diff {num(largest)})"
    )
    if c.nothing_in_common:  # "max abs diff 0" after comparing nothing would read as "same"
        verdict = "Result: different (no layers in common: nothing was compared)"
    lines = [wrapped for line in lines for wrapped in (line.splitlines() if "\n" in line else _fill(line))]
    return "\n".join([f"A: {c.a}", f"B: {c.b}", "", *lines, *([""] if lines else []), *_fill(verdict)])


def _cosine(value: float | None) -> str:
    """Six decimals: a cosine of 0.999996 must not print as 1."""
    return "-" if value is None else f"{value:.6f}"


def _fill(line: str) -> list[str]:
    """Long lists of names wrap at 80 columns, continuation lines indented."""
    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return textwrap.wrap(line, 80, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False) or [""]


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
