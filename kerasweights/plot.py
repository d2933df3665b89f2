"""Heatmaps of one layer's named matrices (needs the ``plot`` extra: matplotlib).

Gated layers get one row of panels per gate, kernel and recurrent kernel side by side
(biases last); other layers one panel per matrix. Every panel shares one symmetric colour
scale, so colours compare across gates.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import _optional
from .errors import NotFoundError
from .model import Layer, Matrix
from .stats import array_stats

MAX_COLUMNS = 4  # panels per row for layers without gates (MultiHeadAttention has 8 matrices)
_ORDER = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")


def image_formats() -> list[str]:
    """File extensions matplotlib can write (``png``, ``svg``, ``pdf``, ...)."""
    _optional.pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def panel_grid(layer: Layer) -> list[list[Matrix]]:
    """The matrices of ``layer`` arranged in rows: one row per gate, in the rule's order."""
    matrices = list(layer.matrices().values())
    if not matrices:
        children = [l.path for l in layer.walk() if l.weights and l is not layer]
        raise NotFoundError(
            f"layer {layer.path!r} has no weights of its own; plot one of: {', '.join(children) or 'none'}"
        )
    gates = list(dict.fromkeys(m.gate for m in matrices if m.gate))
    if not gates:
        return [matrices[i : i + MAX_COLUMNS] for i in range(0, len(matrices), MAX_COLUMNS)]
    rows = [sorted((m for m in matrices if m.gate == g), key=_base_rank) for g in gates]
    rest = [m for m in matrices if not m.gate]
    return rows + ([rest] if rest else [])


def plot_layer(layer: Layer, out: str | os.PathLike[str], *, title: str | None = None) -> list[list[Matrix]]:
    """Draw ``layer``'s matrices into an image file (format from ``out``'s extension)."""
    plt = _optional.pyplot()
    grid = panel_grid(layer)
    values = {m.key: _as_2d(m.read()) for row in grid for m in row}
    limit = _shared_limit(values.values())
    ncols = max(len(row) for row in grid)
    fig, axes = plt.subplots(
        len(grid), ncols, figsize=(3.2 * ncols + 1.2, 2.6 * len(grid) + 0.8), squeeze=False, constrained_layout=True
    )
    image: Any = None
    for r, row in enumerate(grid):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(row):
                ax.axis("off")
                continue
            m = row[c]
            image = ax.imshow(
                values[m.key], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest"
            )
            ax.set_title(f"{m.name} {'x'.join(map(str, m.shape)) or '()'}", fontsize=9)
            if m.meaning:
                ax.set_xlabel(m.meaning, fontsize=8)
            ax.tick_params(labelsize=7)
            if values[m.key].shape[0] == 1:
                ax.set_yticks([])  # a vector: its one row index says nothing
    fig.colorbar(image, ax=axes, shrink=0.8, label="value")
    fig.suptitle(title or f"{layer.path} ({layer.class_name})")
    try:
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return grid


def _base_rank(m: Matrix) -> int:
    base = m.name[: -len(m.gate) - 1] if m.gate and m.name.endswith(f"_{m.gate}") else m.name
    return _ORDER.index(base) if base in _ORDER else len(_ORDER)


def _as_2d(value: np.ndarray) -> np.ndarray:
    """Vectors become one row; higher ranks fold all leading axes into rows (last axis = columns)."""
    if value.ndim == 0:
        return value.reshape(1, 1)
    if value.ndim == 1:
        return value.reshape(1, -1)
    return value.reshape(-1, value.shape[-1])


def _shared_limit(arrays: Any) -> float:
    """Largest finite |value| over every panel (1.0 if there is none or all are 0)."""
    limit = 0.0
    for value in arrays:
        stats = array_stats(value)
        if stats.min is not None and stats.max is not None:
            limit = max(limit, abs(stats.min), abs(stats.max))
    return limit if limit > 0 and math.isfinite(limit) else 1.0
