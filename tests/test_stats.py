"""kerasweights.stats: per-array statistics in float64 chunks, against numpy on Keras's own arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FIXTURES, truth_arrays

import kerasweights
from kerasweights.stats import array_stats, chunks


def _numpy_stats(value: np.ndarray) -> dict[str, float]:
    finite = value.astype(np.float64)
    finite = finite[np.isfinite(finite)]
    return {
        "min": float(finite.min()),
        "max": float(finite.max()),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "l2_norm": float(np.linalg.norm(finite)),
    }


def _weight_arrays() -> list:
    params = []
    for model, runtime in (("rnn_seq", "k3"), ("functional", "k3"), ("float16", "k3"), ("convlstm", "tfk")):
        for key, value in truth_arrays(model, runtime).items():
            if key.startswith("_weights/"):
                params.append(pytest.param(value, id=f"{runtime}/{model}/{key[len('_weights/') :]}"))
    return params


@pytest.mark.parametrize("value", _weight_arrays())
@pytest.mark.parametrize("chunk", [1 << 20, 7], ids=["one-chunk", "chunks-of-7"])
def test_stats_match_numpy_on_keras_weights(value, chunk):
    stats = array_stats(value, chunk=chunk)
    expected = _numpy_stats(value)
    assert stats.size == value.size
    for name, want in expected.items():
        assert getattr(stats, name) == pytest.approx(want, rel=1e-12, abs=1e-15), name
    # The fixtures' weights are never 0 and always finite (fixtures/README.md).
    assert (stats.zero_fraction, stats.nan_count, stats.inf_count) == (0.0, 0, 0)


def test_stats_of_a_split_matrix_read_through_the_model():
    kernel = truth_arrays("rnn_seq")["_weights/enc_gru/0"]  # (6, 15): z, r, h columns of 5
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as model:
        stats = array_stats(model.find("enc_gru/kernel_r").read(), chunk=4)
    expected = _numpy_stats(kernel[:, 5:10])
    assert stats.as_dict() == pytest.approx(
        {**expected, "size": 30, "zero_fraction": 0.0, "nan_count": 0, "inf_count": 0}
    )


@pytest.mark.parametrize("chunk", [1 << 20, 2], ids=["one-chunk", "chunks-of-2"])
def test_nan_and_inf_are_counted_apart_from_the_finite_statistics(chunk):
    value = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, 2.0, np.nan], dtype=np.float32)
    stats = array_stats(value, chunk=chunk)
    assert (stats.nan_count, stats.inf_count) == (2, 2)
    assert stats.zero_fraction == pytest.approx(1 / 7)
    assert (stats.min, stats.max, stats.mean) == (0.0, 2.0, 1.0)
    assert stats.std == pytest.approx(np.std([1.0, 0.0, 2.0]))
    assert stats.l2_norm == pytest.approx(math.sqrt(5))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(np.full(4, np.nan, dtype=np.float32), id="all-nan"),
        pytest.param(np.zeros((0, 3), dtype=np.float32), id="empty"),
    ],
)
def test_no_finite_values_gives_none(value):
    stats = array_stats(value)
    assert (stats.min, stats.max, stats.mean, stats.std, stats.l2_norm) == (None,) * 5
    assert stats.nan_count == (value.size if value.size else 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(np.array([0, 3, -4], dtype=np.int32), (-4.0, 3.0, 5.0, 1 / 3), id="int32"),
        pytest.param(np.array([True, False, True, True]), (0.0, 1.0, math.sqrt(3), 0.25), id="bool"),
    ],
)
def test_integer_and_bool_arrays(value, expected):
    stats = array_stats(value)
    assert (stats.min, stats.max, stats.l2_norm, stats.zero_fraction) == pytest.approx(expected)


def test_large_values_keep_precision_across_chunks():
    # Naive sum-of-squares variance would lose every digit here; the pairwise merge does not.
    value = np.float64(1e9) + np.arange(1000, dtype=np.float64) % 3
    stats = array_stats(value, chunk=10)
    assert stats.std == pytest.approx(np.std(value), rel=1e-9)
    assert stats.mean == pytest.approx(np.mean(value), rel=1e-15)


@pytest.mark.parametrize(
    ("shape", "index", "max_elements"),
    [
        pytest.param((300, 70), (slice(None), slice(5, 60)), 1000, id="column-slice"),
        pytest.param((2, 3000), (), 1000, id="rows-bigger-than-a-chunk"),
        pytest.param((4, 5, 6), (1,), 7, id="3d-row"),
        pytest.param((10,), (), 3, id="vector"),
        pytest.param((), (), 3, id="scalar"),  # a 0-d array is its own single chunk
    ],
)
def test_chunks_cover_every_element_in_order_without_exceeding_the_limit(shape, index, max_elements):
    value = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)[index]
    pieces = list(chunks(value, max_elements))
    assert np.array_equal(np.concatenate([np.ravel(p) for p in pieces]), np.ravel(value))
    assert all(p.size <= max_elements for p in pieces) or value.size <= max_elements
    assert all(p.base is value.base or p is value for p in pieces)  # views, never copies
