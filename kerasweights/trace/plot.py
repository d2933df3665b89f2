"""Heatmaps of traced gate activations: one panel per array, units down, time steps across."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

from .. import _optional


def _limits(values: np.ndarray, bounds: tuple[float, float] | None) -> tuple[float, float, str]:
    """Colour limits and colormap: the activation's range when finite, else the data's."""
    finite = values[np.isfinite(values)]
    lo_data = float(finite.min()) if finite.size else 0.0
    hi_data = float(finite.max()) if finite.size else 1.0
    lo, hi = bounds if bounds is not None else (-math.inf, math.inf)
    lo = lo if math.isfinite(lo) else lo_data
    hi = hi if math.isfinite(hi) else hi_data
    if lo < 0 < hi:  # signed values: a diverging map centred on 0
        m = max(-lo, hi)
        return -m, m, "RdBu_r"
    return lo, (hi if hi > lo else lo + 1.0), "viridis"


def plot_trace(
    arrays: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    title: str = "",
    ranges: Mapping[str, tuple[float, float]] | None = None,
    sample: int = 0,
    xlabel: str = "time step (processing order)",
) -> None:
    """Write a PNG with one heatmap per traced array (units x time) for batch item ``sample``.

    Masked steps (NaN gates) are drawn grey. ConvLSTM arrays are flattened to
    (spatial positions x filters) rows.
    """
    plt = _optional.pyplot()
    names = list(arrays)
    panels = [np.asarray(arrays[n][sample], dtype=np.float64) for n in names]
    panels = [p.reshape(p.shape[0], -1).T for p in panels]  # rows = units, columns = time
    heights = [max(1.0, min(4.0, 0.25 * p.shape[0])) for p in panels]
    steps = max(p.shape[1] for p in panels)
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(min(12.0, 3.0 + 0.35 * steps), 0.8 + sum(heights) + 0.55 * len(panels)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, name, values in zip(axes[:, 0], names, panels):
        lo, hi, cmap_name = _limits(values, (ranges or {}).get(name))
        cmap = plt.get_cmap(cmap_name).with_extremes(bad="0.85")  # masked steps: grey
        image = ax.imshow(
            np.ma.masked_invalid(values),
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            origin="lower",
        )
        ax.set_title(name, loc="left", fontsize=9)
        ax.set_ylabel("unit")
        ax.set_yticks(range(values.shape[0]) if values.shape[0] <= 8 else [0, values.shape[0] - 1])
        ax.set_xticks(
            range(values.shape[1]) if values.shape[1] <= 24 else np.linspace(0, values.shape[1] - 1, 6, dtype=int)
        )
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    axes[-1, 0].set_xlabel(xlabel)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
