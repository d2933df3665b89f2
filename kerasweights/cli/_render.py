"""Turn models into text tables and JSON-ready dicts. Pure functions: no I/O."""

from __future__ import annotations

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
    from tabulate import tabulate  # imported here: only text output needs it

    rows = []
    for layer in model.walk():
        shapes = " ".join(shape_compact(w.shape) for w in layer.weights)
        rows.append([layer.path, layer.class_name + (" ?" if layer.inferred else ""), shapes, f"{layer.params:,}"])
    # Give the path column what it needs (up to 34) and wrap the shapes into what is left of 80.
    path_width = min(34, max([5, *(len(r[0]) for r in rows)]))
    class_width = min(24, max([5, *(len(r[1]) for r in rows)]))
    params_width = max([6, *(len(r[3]) for r in rows)])
    shapes_width = max(12, WIDTH - path_width - class_width - params_width - 6)
    table = tabulate(
        rows,
        headers=["Layer", "Class", "Weight shapes", "Params"],
        colalign=("left", "left", "left", "right"),
        maxcolwidths=[path_width, class_width, shapes_width, None],
    )
    facts = [
        f"Format: {model.format}   Keras: {model.keras_version or 'unknown'}   Backend: {model.backend or 'unknown'}",
        f"Total params: {model.total_params:,}",
    ]
    if any(l.inferred for l in model.walk()):
        facts.append("? = class inferred from stored weights (no config in the file)")
    facts += [f"Note: {n}" for n in model.notes]
    return "\n".join([table, "", *facts])
