"""Heatmaps of traced arrays: one panel per array, colour scale from the activation's range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerasweights.trace import plot as trace_plot

pytest.importorskip("matplotlib")


@pytest.mark.parametrize(
    "bounds, values, expected",
    [
        ((0.0, 1.0), [0.2, 0.7], (0.0, 1.0, "viridis")),
        ((-1.0, 1.0), [-0.3, 0.1], (-1.0, 1.0, "RdBu_r")),
        ((-math.inf, math.inf), [-0.5, 2.0], (-2.0, 2.0, "RdBu_r")),
        ((0.0, math.inf), [0.5, 3.0], (0.0, 3.0, "viridis")),
        (None, [np.nan, 0.25, 0.5], (0.25, 0.5, "viridis")),
    ],
    ids=["gate", "tanh", "unbounded", "relu", "nan-ignored"],
)
def test_colour_limits(bounds, values, expected):
    assert trace_plot._limits(np.array(values), bounds) == expected


def test_one_panel_per_array_first_sample(tmp_path, monkeypatch):
    plt = trace_plot._optional.pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at it
    gates = np.full((2, 5, 3), 0.5, np.float32)
    gates[0, 3:] = np.nan  # masked steps
    arrays = {"z": gates, "h": np.zeros((2, 5, 3), np.float32), "conv": np.zeros((2, 5, 2, 2, 4), np.float32)}
    trace_plot.plot_trace(arrays, tmp_path / "p.png", title="t", ranges={"z": (0.0, 1.0)})
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    (figure,) = figures
    images = [ax.get_images()[0] for ax in figure.axes if ax.get_images()]
    assert [ax.get_title(loc="left") for ax in figure.axes if ax.get_images()] == ["z", "h", "conv"]
    assert [im.get_array().shape for im in images] == [(3, 5), (3, 5), (16, 5)]  # units x time
    assert images[0].get_array().mask[:, 3:].all() and images[0].get_clim() == (0.0, 1.0)
