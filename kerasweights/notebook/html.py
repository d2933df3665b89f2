"""HTML for notebooks: a model's summary table, a layer's matrices, a matrix's facts, statistics
and (with matplotlib) a small heatmap as an inline PNG. Every name is escaped: names come from
the file, and a hostile file must not inject markup into a notebook."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import numpy as np

from ..errors import LayoutError
from ..model import Layer, Matrix, Model, Weight
from ..stats import array_stats

HEATMAP_MAX = 64  # rows and columns drawn at most; larger matrices are subsampled evenly
_STYLE = "border-collapse:collapse;font-size:12px"
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"


def model_html(model: Model) -> str:
    """The summary: one row per layer (path, class, weight shapes, parameters), then the file facts."""
    rows = [
        [
            layer.path,
            layer.class_name + (" (inferred)" if layer.inferred else ""),
            " ".join(_shape(w.shape) for w in layer.weights),
            f"{layer.params:,}",
        ]
        for layer in model.walk()
    ]
    facts = [f"format {model.format}", f"Keras {model.keras_version or 'unknown'}"]
    if model.backend:
        facts.append(f"backend {model.backend}")
    facts.append(f"{model.total_params:,} parameters")
    notes = "".join(f"<li>{escape(n)}</li>" for n in model.notes)
    return (
        f"<div><b>{escape(model.name)}</b> <code>{escape(model.path)}</code><br>"
        f"<small>{escape(' · '.join(facts))}</small>"
        + _table(["Layer", "Class", "Weight shapes", "Params"], rows, right={3})
        + (f"<ul style='font-size:12px'>{notes}</ul>" if notes else "")
        + "</div>"
    )


def layer_html(layer: Layer) -> str:
    """A layer's class and its named matrices (those of the layers inside it too), with meanings."""
    rows = []
    problems = []
    for each in layer.walk():
        try:
            parts: list[Matrix | Weight] = list(each.matrices().values())
        except LayoutError as exc:
            problems.append(exc.problem)
            parts = list(each.weights)
        for p in parts:
            name = p.key.removeprefix(layer.path + "/")
            rows.append([name, _shape(p.shape), p.dtype, p.meaning, getattr(p, "gate", None) or ""])
    head = (
        f"<div><b>{escape(layer.path)}</b> ({escape(layer.class_name)}"
        f"{', inferred' if layer.inferred else ''}), {layer.params:,} parameters"
    )
    if not rows:
        return head + "<br><small>no weights</small></div>"
    warnings = "".join(f"<br><small>⚠ {escape(p)}</small>" for p in problems)
    return head + _table(["Matrix", "Shape", "Dtype", "Meaning", "Gate"], rows) + warnings + "</div>"


def matrix_html(matrix: Matrix | Weight) -> str:
    """Shape, dtype, meaning, where it is stored, statistics, and a heatmap when matplotlib is there."""
    values = matrix.read()
    stats = array_stats(values)
    facts = [
        ["shape", _shape(matrix.shape)],
        ["dtype", matrix.dtype],
        ["meaning", matrix.meaning],
    ]
    if isinstance(matrix, Matrix):
        facts.append(["source", f"{matrix.source} of {matrix.weight.array.key}"])
        if matrix.gate:
            facts.append(["gate", matrix.gate])
    else:
        facts.append(["source", matrix.array.key])
    numbers = [
        ["min", _num(stats.min)],
        ["max", _num(stats.max)],
        ["mean", _num(stats.mean)],
        ["std", _num(stats.std)],
        ["L2 norm", _num(stats.l2_norm)],
        ["zeros", f"{stats.zero_fraction:.1%}"],
    ]
    if stats.nan_count or stats.inf_count:
        numbers.append(["NaN / Inf", f"{stats.nan_count:,} / {stats.inf_count:,}"])
    image = heatmap_png(values)
    picture = (
        f"<img alt='heatmap of {escape(matrix.key)}' src='data:image/png;base64,{image}' style='margin-left:12px'>"
        if image
        else ""
    )
    return (
        f"<div><b>{escape(matrix.key)}</b>"
        "<div style='display:flex;align-items:flex-start'>"
        + _table(["", ""], facts + numbers, header=False)
        + picture
        + "</div></div>"
    )


def heatmap_png(values: np.ndarray, max_side: int = HEATMAP_MAX) -> str | None:
    """A small heatmap (rows x columns, diverging around 0) as base64 PNG; ``None`` without
    matplotlib or numbers. Vectors are one row; higher ranks are flattened to (rows, last axis)."""
    try:  # a Figure without pyplot: the notebook's own matplotlib backend stays as it is
        from matplotlib.figure import Figure
    except ImportError:
        return None
    if values.dtype.kind not in "biuf" or values.size == 0:
        return None
    grid = np.asarray(values, dtype=np.float64)
    grid = grid.reshape(1, -1) if grid.ndim < 2 else grid.reshape(-1, grid.shape[-1])
    rows = np.unique(np.linspace(0, grid.shape[0] - 1, min(grid.shape[0], max_side)).astype(int))
    cols = np.unique(np.linspace(0, grid.shape[1] - 1, min(grid.shape[1], max_side)).astype(int))
    grid = grid[np.ix_(rows, cols)]
    finite = grid[np.isfinite(grid)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    width = max(2.0, min(3.4, 1.0 + 0.1 * grid.shape[1]))
    height = max(1.6, min(2.6, 0.6 + 0.1 * grid.shape[0]))
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        cmap="RdBu_r",
        vmin=-(limit or 1.0),
        vmax=limit or 1.0,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(image, ax=ax, fraction=0.1, pad=0.04).ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(headers: list[str], rows: list[list[Any]], right: set[int] | None = None, header: bool = True) -> str:
    def cell(tag: str, i: int, text: Any) -> str:
        align = ";text-align:right" if right and i in right else ""
        return f"<{tag} style='{_CELL}{align}'>{escape(str(text))}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(headers)) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table style='{_STYLE}'>{head}{body}</table>"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "()"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
