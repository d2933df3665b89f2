"""Turn models into text tables and JSON-ready dicts. Pure functions: no I/O."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from ..model import Layer, Model

WIDTH = 80


def shape_compact(shape: Sequence[int]) -> str:
    """``4x15`` for (4, 15); ``()`` for a scalar."""
    return "x".join(str(n) for n in shape) if shape else "()"


def layer_dict(layer: Layer) -> dict[str, Any]:
    return {
        "path": layer.path,
        "name": layer.name,
        "class_name": layer.class_name,
        "kind": layer.kind,
        "params": layer.params,
        "inferred": layer.inferred,
        "weights": [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype} for w in layer.weights],
    }


def summary_dict(model: Model) -> dict[str, Any]:
    return {
        "path": model.path,
        "format": model.format,
        "keras_version": model.keras_version,
        "backend": model.backend,
        "model_name": model.name,
        "total_params": model.total_params,
        "layers": [layer_dict(layer) for layer in model.walk()],
        "notes": model.notes,
    }


def summary_table(model: Model) -> str:
    """Layers, classes, shapes, params within 80 columns: shapes wrap first, then paths at their
    slashes (inside a name only when one name alone is wider than what is left); notes wrap
    under themselves."""
    from ._output import Column, table

    rows = []
    for layer in model.walk():
        shapes = " ".join(shape_compact(w.shape) for w in layer.weights)
        rows.append([layer.path, layer.class_name + (" ?" if layer.inferred else ""), shapes, f"{layer.params:,}"])
    longest_name = max([5, *(len(part) for r in rows for part in r[0].split("/"))])
    # What the other columns need at least (class names never split): the rest is the paths'.
    others = max([5, *(len(r[1]) for r in rows)]) + len("Weight shapes") + max([6, *(len(r[3]) for r in rows)])
    columns = [
        Column("Layer", wrap=max(12, min(longest_name + 1, WIDTH - others - 6)), order=1),  # + 1: the slash
        Column("Class"),  # class names never split
        Column("Weight shapes", wrap=12),
        Column("Params", "right"),
    ]
    facts = [
        f"Format: {model.format}   Keras: {model.keras_version or 'unknown'}"
        + (f"   Backend: {model.backend}" if model.backend else ""),  # .keras archives do not record it
        f"Total params: {model.total_params:,}",
    ]
    if any(l.inferred for l in model.walk()):
        facts.append("? = class inferred from stored weights (no config in the file)")
    for note in model.notes:
        facts += textwrap.wrap(f"Note: {note}", WIDTH, subsequent_indent="      ", break_on_hyphens=False)
    return "\n".join([table(columns, rows, WIDTH), "", *facts])
