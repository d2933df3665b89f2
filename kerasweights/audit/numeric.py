"""Audit checks that read weight values: non-finite numbers and numeric health per named matrix.

Every stored array is read once (the model caches it) and every named matrix is a view
into it. Thresholds are module constants, documented in docs/audit.md.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from ..errors import KerasWeightsError, LayoutError
from ..layouts import GATE_MEANINGS, runs_as
from ..layouts import family as layers_family
from ..layouts.keras import KERAS1_NAME, KERAS1_VARIABLES
from ..layouts.recurrent import SIGMOID_GATES
from ..model import Layer, Matrix, Model
from ..stats import chunks
from .finding import Finding

EXTREME_MAGNITUDE = 1e3
"""``extreme-magnitude``: a trainable value with ``|w|`` above this (weights are typically below 10)."""
SATURATING_BIAS = 10.0
"""``saturating-gate-bias``: ``sigmoid(10) = 0.99995``; a gate bias beyond ±10 pins the gate open or shut."""
SPECTRAL_NORM_LIMIT = 10.0
"""``large-spectral-norm``: largest singular value of a square recurrent matrix above this."""
POWER_STEPS = 300
"""Most power-iteration steps for a spectral norm (it usually converges in far fewer)."""
POWER_TOLERANCE = 1e-9
"""Power iteration stops when the squared norm grows by less than this fraction."""
MAX_LISTED = 5
"""At most this many row/column indices are listed in a message."""

NUMERIC_CODES = frozenset(
    {
        "non-finite",
        "all-zero",
        "dead-units",
        "extreme-magnitude",
        "saturating-gate-bias",
        "large-spectral-norm",
    }
)

KERNELS = frozenset({"kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel"})
ADDITIVE = frozenset({"bias", "recurrent_bias", "beta"})
MULTIPLICATIVE = frozenset({"gamma", "scale", "alpha", "embeddings"})  # zeros here silence the layer
STATISTICS = frozenset(
    {
        "moving_mean",
        "moving_variance",
        "moving_stddev",
        "renorm_mean",
        "renorm_stddev",
        "mean",
        "variance",
        "count",
        "running_mean",
        "running_std",
    }
)


def role(matrix: Matrix) -> str:
    """What a matrix is, without its gate: ``kernel_z`` -> ``kernel``, ``query/bias`` -> ``bias``."""
    name = matrix.name
    if matrix.gate and name.endswith(f"_{matrix.gate}"):
        name = name[: -len(matrix.gate) - 1]
    name = name.rsplit("/", 1)[-1]
    keras1 = KERAS1_NAME.search(name)  # Keras 1 names: dense_1_W, timedistributeddense_1_b
    return KERAS1_VARIABLES[keras1.group(1)] if keras1 else name


def numeric_findings(model: Model, codes: Collection[str], skip_keys: Collection[str] = ()) -> list[Finding]:
    """Findings of the enabled numeric ``codes`` for every layer; ``skip_keys``: arrays not to read."""
    out: list[Finding] = []
    for layer in model.walk():
        if layer.weights:
            out += _layer(layer, codes, skip_keys)
    return out


@dataclass(frozen=True)
class _Summary:
    """One pass over a whole stored array, so clean matrices cost no further numpy calls."""

    finite: bool
    peak: float
    has_zero: bool

    @classmethod
    def of(cls, values: np.ndarray) -> _Summary:
        """In blocks (:func:`kerasweights.stats.chunks`): ``np.abs`` of a whole 64 MiB kernel
        would double what the audit holds."""
        peak, has_zero = 0.0, False
        for block in chunks(values):
            if not block.size:
                continue
            top = float(np.abs(block).max())  # NaN and Inf propagate into the maximum
            if not math.isfinite(top):
                return cls(False, top, False)
            peak = max(peak, top)
            has_zero = has_zero or bool(np.count_nonzero(block) < block.size)
        return cls(True, peak, has_zero)


def _layer(layer: Layer, codes: Collection[str], skip_keys: Collection[str]) -> list[Finding]:
    try:
        matrices = list(layer.matrices().values())
    except LayoutError:  # reported by shape-mismatch; still look at the stored arrays whole
        matrices = [Matrix(w.name, layer.path, w, ()) for w in layer.weights]
    by_weight: dict[int, list[Matrix]] = {}
    for matrix in matrices:
        by_weight.setdefault(id(matrix.weight), []).append(matrix)
    out: list[Finding] = []
    finite: list[tuple[Matrix, np.ndarray]] = []
    for group in by_weight.values():
        weight = group[0].weight
        if weight.array.key in skip_keys:
            continue
        try:
            whole = weight.array.read(cache=False)  # one array in memory at a time
        except KerasWeightsError as exc:
            out.append(
                Finding("unreadable", "error", f"weight {weight.name!r} cannot be read: {exc.problem}", layer.path)
            )
            continue
        if whole.dtype.kind != "f" or whole.size == 0:
            continue  # integer counters and quantized kernels have no NaN or magnitude to judge
        summary = _Summary.of(whole)
        for matrix in group:
            values = matrix.cut(whole)
            found, ok = _matrix(layer, matrix, values, codes, summary)
            out += found
            if ok:
                finite.append((matrix, values))
    if "saturating-gate-bias" in codes:
        out += _gate_biases(layer, finite)
    return out


def _label(matrix: Matrix) -> str:
    if matrix.name.isdigit():
        # Keras 3 stores a custom layer's variables by position only (vars/0, vars/1): say where it is
        return f"unnamed variable {matrix.name} (stored at {matrix.weight.array.key}, shape {matrix.shape})"
    return matrix.name if matrix.source == matrix.name else f"{matrix.name} ({matrix.source})"


def _matrix(
    layer: Layer, matrix: Matrix, values: np.ndarray, codes: Collection[str], whole: _Summary
) -> tuple[list[Finding], bool]:
    """Findings for one matrix, and whether all its values are finite."""
    label = _label(matrix)
    kind = role(matrix)
    if not whole.finite and not np.isfinite(values).all():
        if "non-finite" in codes:
            return [Finding("non-finite", "error", f"{label}: {_non_finite(values)}", layer.path)], False
        return [], False
    if kind in STATISTICS or not matrix.weight.trainable:
        return [], True  # running statistics and counters: their size and zeros mean nothing
    out: list[Finding] = []
    if whole.has_zero and not values.any():
        if "all-zero" in codes:
            additive = kind in ADDITIVE or (values.ndim == 1 and kind not in KERNELS | MULTIPLICATIVE)
            hint = "a bias that was never trained, or is unused" if additive else "its layer passes nothing on"
            out.append(
                Finding(
                    "all-zero",
                    "info" if additive else "warning",
                    f"{label} is all zeros ({_values(values.size)}): {hint}",
                    layer.path,
                )
            )
        return out, True
    if whole.has_zero and "dead-units" in codes and kind in KERNELS and values.ndim >= 2:
        dead = _dead_units(values)
        if dead:
            out.append(Finding("dead-units", "warning", f"{label}: {dead}", layer.path))
    if "extreme-magnitude" in codes and whole.peak > EXTREME_MAGNITUDE:
        magnitudes = np.abs(values)
        count = int(np.count_nonzero(magnitudes > EXTREME_MAGNITUDE))
        if count:
            out.append(
                Finding(
                    "extreme-magnitude",
                    "warning",
                    f"{label}: {count:,} of {values.size:,} values beyond ±{EXTREME_MAGNITUDE:,g} "
                    f"(largest |w| = {float(magnitudes.max()):.4g})",
                    layer.path,
                )
            )
    square = kind == "recurrent_kernel" and values.ndim == 2 and values.shape[0] == values.shape[1]
    # The Frobenius norm bounds the spectral norm from above: only matrices past it need an SVD.
    if "large-spectral-norm" in codes and square and np.linalg.norm(values) > SPECTRAL_NORM_LIMIT:
        norm = spectral_norm(values)
        if norm > SPECTRAL_NORM_LIMIT:
            out.append(
                Finding(
                    "large-spectral-norm",
                    "info",
                    f"{label}: spectral norm {norm:.4g} is above {SPECTRAL_NORM_LIMIT:g}; "
                    "the recurrence can make activations and gradients explode",
                    layer.path,
                )
            )
    return out, True


def _values(count: int) -> str:
    return f"{count:,} value{'' if count == 1 else 's'}"


def _non_finite(values: np.ndarray) -> str:
    counts = [
        (int(np.count_nonzero(np.isnan(values))), "NaN"),
        (int(np.count_nonzero(np.isposinf(values))), "+Inf"),
        (int(np.count_nonzero(np.isneginf(values))), "-Inf"),
    ]
    parts = [f"{n:,} {what}" for n, what in counts if n]
    total = sum(n for n, _ in counts)
    return f"{total:,} of {values.size:,} values are not finite ({', '.join(parts)})"


def _indices(mask: np.ndarray) -> str:
    found = [str(i) for i in np.flatnonzero(mask)[:MAX_LISTED]]
    more = ", ..." if int(mask.sum()) > MAX_LISTED else ""
    return ", ".join(found) + more


def _dead_units(values: np.ndarray) -> str:
    """Units (last axis) and inputs (second-to-last axis) whose weights are all zero."""
    columns = np.asarray(~values.reshape(-1, values.shape[-1]).any(axis=0))
    rows = np.asarray(~np.moveaxis(values, -2, 0).reshape(values.shape[-2], -1).any(axis=1))
    parts = []
    if columns.any():
        parts.append(f"{int(columns.sum())} of {columns.size} units (columns {_indices(columns)})")
    if rows.any():
        parts.append(f"{int(rows.sum())} of {rows.size} inputs (rows {_indices(rows)})")
    return " and ".join(parts) + " have all-zero weights" if parts else ""


def spectral_norm(matrix: np.ndarray) -> float:
    """Largest singular value, by power iteration on MᵀM: never above the true value.

    Only matrix-vector products: LAPACK's SVD runs multi-threaded in OpenBLAS and, with one
    audit worker per core, took seconds for a 128 x 128 matrix on a busy 2-core machine.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.size == 0:
        return 0.0
    start = np.random.default_rng(0).standard_normal(m.shape[1])
    v = np.asarray(start / np.linalg.norm(start))
    squared = previous = 0.0
    for _ in range(POWER_STEPS):
        w = m.T @ (m @ v)
        squared = float(np.linalg.norm(w))  # ||MᵀM v|| <= sigma_max² for a unit v
        if squared == 0.0:
            return 0.0
        v = np.asarray(w / squared)
        if squared - previous <= POWER_TOLERANCE * squared:
            break
        previous = squared
    return float(np.sqrt(squared))


def _gate_biases(layer: Layer, finite: list[tuple[Matrix, np.ndarray]]) -> list[Finding]:
    found = runs_as(layer.class_name, layer.config)  # RNN(LSTMCell) is an LSTM
    family = layers_family(found[0]) if found else None
    if family not in SIGMOID_GATES:
        return []
    out = []
    for gate in SIGMOID_GATES[family]:
        parts = [(m, v) for m, v in finite if m.gate == gate and role(m) in ("bias", "recurrent_bias")]
        if not parts or len({v.shape for _, v in parts}) != 1:
            continue
        # The gate sees input bias + recurrent bias (GRU reset_after, CuDNN): judge their sum.
        effective = np.sum([v.astype(np.float64) for _, v in parts], axis=0)
        high = effective > SATURATING_BIAS
        low = effective < -SATURATING_BIAS
        if not (high.any() or low.any()):
            continue
        states = []
        if high.any():
            states.append(f"{int(high.sum())} above +{SATURATING_BIAS:g} (always open)")
        if low.any():
            states.append(f"{int(low.sum())} below -{SATURATING_BIAS:g} (always shut)")
        summed = " (input + recurrent bias)" if len(parts) > 1 else ""
        out.append(
            Finding(
                "saturating-gate-bias",
                "warning",
                f"{GATE_MEANINGS[gate]} ({gate}) bias{summed}: {' and '.join(states)} of {effective.size} units; "
                f"largest |b| = {float(np.abs(effective).max()):.4g}",
                layer.path,
            )
        )
    return out
