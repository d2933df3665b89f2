"""Per-array statistics, computed in float64 chunks so a big array never doubles in memory."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CHUNK = 1 << 20  # elements per float64 chunk: 8 MiB of scratch at most


@dataclass(frozen=True)
class ArrayStats:
    """Statistics of one array. ``min`` ... ``l2_norm`` cover its finite values only
    (``None`` when it has none); NaN and Inf are counted apart."""

    size: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    l2_norm: float | None
    zero_fraction: float
    nan_count: int
    inf_count: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunks(array: np.ndarray, max_elements: int = CHUNK) -> Iterator[np.ndarray]:
    """Blocks of ``array`` along its leading axes, each at most ``max_elements`` (one row may be more
    only if it cannot be cut), without copying: views work on non-contiguous slices too."""
    if array.ndim == 0 or array.size <= max_elements:
        yield array
        return
    row = array[0].size or 1
    if row > max_elements and array.ndim > 1:
        for i in range(array.shape[0]):
            yield from chunks(array[i], max_elements)
        return
    step = max(1, max_elements // row)
    for start in range(0, array.shape[0], step):
        yield array[start : start + step]


def array_stats(array: np.ndarray, chunk: int = CHUNK) -> ArrayStats:
    """min, max, mean, std (population), L2 norm, fraction of zeros, NaN and Inf counts."""
    size = int(array.size)
    if array.dtype.kind not in "biuf":  # strings, objects: nothing numeric to say
        return ArrayStats(size, None, None, None, None, None, 0.0, 0, 0)
    count, mean, m2, sum_sq = 0, 0.0, 0.0, 0.0
    low, high = math.inf, -math.inf
    zeros = nans = infs = 0
    shift: float | None = None  # the first finite value: deviations from it keep their digits
    for block in chunks(array, chunk):
        values = np.asarray(block, dtype=np.float64).ravel()
        finite = np.isfinite(values)
        block_nans = int(np.count_nonzero(np.isnan(values)))
        nans += block_nans
        infs += int(values.size - np.count_nonzero(finite)) - block_nans
        zeros += int(np.count_nonzero(values == 0))
        values = values[finite]
        if not values.size:
            continue
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        sum_sq += float(np.dot(values, values))
        if shift is None:
            shift = float(values[0])
        values = values - shift
        # Chan et al.'s pairwise update: merging chunk means and squared deviations stays exact
        # enough in float64 where a naive sum of squares minus squared mean would cancel.
        n_b = values.size
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        delta = mean_b - mean
        total = count + n_b
        mean += delta * n_b / total
        m2 += m2_b + delta * delta * count * n_b / total
        count = total
    if count == 0:
        return ArrayStats(size, None, None, None, None, None, zeros / size if size else 0.0, nans, infs)
    return ArrayStats(
        size=size,
        min=low,
        max=high,
        mean=mean + (shift or 0.0),
        std=math.sqrt(m2 / count),
        l2_norm=math.sqrt(sum_sq),
        zero_fraction=zeros / size,
        nan_count=nans,
        inf_count=infs,
    )
