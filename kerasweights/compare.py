"""Compare two models: layers added, removed or changed, weight shapes, and values per named matrix.

Layers are matched by path and weights by name, so one model saved as ``.keras``, legacy
``.h5`` or by tf_keras compares equal: configs are compared after removing what only the
serialization differs in (see :func:`normalize_config`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .errors import LayoutError
from .layouts import computes_as
from .model import Layer, Matrix, Model, Weight
from .stats import chunks

# Keys that hold sublayers; those are compared as layers of their own.
_STRUCTURE_KEYS = {"layer", "backward_layer", "layers", "input_layers", "output_layers", "name"}
# Keys whose spelling changed between Keras generations.
_ALIASES = {"batch_input_shape": "batch_shape"}
# Bookkeeping inside serialized objects that says nothing about the model.
_OBJECT_NOISE = {"module", "registered_name", "shared_object_id"}

_Part = TypeVar("_Part", bound="Matrix | Weight")


@dataclass(frozen=True)
class LayerChange:
    """A layer in both models whose class or config differs; ``config`` maps key -> (A, B)."""

    path: str
    class_a: str
    class_b: str
    config: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ShapeChange:
    """A stored weight in both models with a different shape or dtype."""

    key: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    dtype_a: str
    dtype_b: str


@dataclass(frozen=True)
class ValueDiff:
    """How one named matrix changed from A to B.

    ``max_abs_diff``: the largest ``|B - A|`` (``inf`` where NaN/Inf disagree);
    ``rel_change``: ``||B - A|| / ||A||`` (Frobenius norms; ``inf`` when A is all zeros and B
    is not); ``cosine``: the cosine similarity of A and B as flat vectors (``None`` when one is
    all zeros and the other is not). Norms and cosine cover the positions finite on both sides.
    ``key_b`` is B's name for the matrix when B names it differently.
    """

    key: str
    shape: tuple[int, ...]
    max_abs_diff: float
    equal: bool
    key_b: str | None = None
    rel_change: float = 0.0
    cosine: float | None = 1.0
    norm_a: float = 0.0  # ||A||, for per-layer summaries
    norm_diff: float = 0.0  # ||B - A||

    @property
    def max_abs(self) -> float:
        return self.max_abs_diff


@dataclass(frozen=True)
class Change:
    """What :func:`value_change` measures between two same-shape arrays."""

    max_abs: float
    rel_change: float
    cosine: float | None
    norm_a: float
    norm_diff: float


@dataclass(frozen=True)
class Comparison:
    """What differs between model A and model B."""

    a: str
    b: str
    atol: float
    layers_added: list[str]
    layers_removed: list[str]
    layers_changed: list[LayerChange]
    weights_added: list[str]
    weights_removed: list[str]
    weights_renamed: list[tuple[str, str]]
    shape_changes: list[ShapeChange]
    values: list[ValueDiff]
    ignored_config_keys: list[str]
    layers_in_common: int = -1  # layers with weights in both models; -1: not counted

    @property
    def value_changes(self) -> list[ValueDiff]:
        return [v for v in self.values if not v.equal]

    @property
    def nothing_in_common(self) -> bool:
        """True when neither model has a weighted layer the other has: nothing was compared."""
        return self.layers_in_common == 0

    def most_changed(self, n: int = 3) -> list[tuple[str, float]]:
        """Layers by relative change of all their matrices together (``||B - A|| / ||A||``),
        most changed first; only layers that changed."""
        sums: dict[str, list[float]] = {}
        for v in self.values:
            layer = v.key.rsplit("/", 1)[0]
            diff_sq, a_sq = sums.setdefault(layer, [0.0, 0.0])
            sums[layer] = [diff_sq + v.norm_diff**2, a_sq + v.norm_a**2]
        ranked = [(layer, _ratio(math.sqrt(d), math.sqrt(a))) for layer, (d, a) in sums.items() if d > 0]
        return sorted(ranked, key=lambda item: -item[1])[:n]

    @property
    def same(self) -> bool:
        """True when nothing but serialization details differs and values agree within ``atol``."""
        if self.nothing_in_common:
            return False
        return not (
            self.layers_added
            or self.layers_removed
            or self.layers_changed
            or self.weights_added
            or self.weights_removed
            or self.shape_changes
            or self.value_changes
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "same": self.same,
            "atol": self.atol,
            "layers_added": self.layers_added,
            "layers_removed": self.layers_removed,
            "layers_changed": [
                {
                    "path": c.path,
                    "class_a": c.class_a,
                    "class_b": c.class_b,
                    "config": {k: {"a": va, "b": vb} for k, (va, vb) in c.config.items()},
                }
                for c in self.layers_changed
            ],
            "weights_added": self.weights_added,
            "weights_removed": self.weights_removed,
            "weights_renamed": [list(pair) for pair in self.weights_renamed],
            "shape_changes": [
                {
                    "key": s.key,
                    "shape_a": list(s.shape_a),
                    "shape_b": list(s.shape_b),
                    "dtype_a": s.dtype_a,
                    "dtype_b": s.dtype_b,
                }
                for s in self.shape_changes
            ],
            "layers_in_common": self.layers_in_common,
            "max_abs_diff": _json_float(max((v.max_abs_diff for v in self.values), default=0.0)),
            "most_changed": [{"layer": layer, "rel_change": _json_float(r)} for layer, r in self.most_changed()],
            "values": [
                {
                    "key": v.key,
                    **({"key_b": v.key_b} if v.key_b else {}),
                    "shape": list(v.shape),
                    "max_abs": _json_float(v.max_abs_diff),
                    "rel_change": _json_float(v.rel_change),
                    "cosine": None if v.cosine is None else _json_float(v.cosine),
                    "equal": v.equal,
                }
                for v in self.values
            ],
            "ignored_config_keys": self.ignored_config_keys,
        }


def compare(a: Model, b: Model, atol: float = 0.0) -> Comparison:
    """Compare two open models; values of matching named matrices are equal when within ``atol``."""
    layers_a = {layer.path: layer for layer in a.walk()}
    layers_b = {layer.path: layer for layer in b.walk()}
    common = [path for path in layers_a if path in layers_b]
    changed, ignored = [], set()
    weights_added, weights_removed, renamed, shapes, values = [], [], [], [], []
    for path in common:
        la, lb = layers_a[path], layers_b[path]
        config, one_sided = config_changes(la, lb)
        ignored |= one_sided
        # CuDNNLSTM and LSTM (CuDNNGRU and GRU(reset_after=True)) compute alike: compare their
        # named matrices, which are in the layout Keras computes with, not their stored arrays.
        alike = la.class_name != lb.class_name and computes_as(la.class_name, la.config) == computes_as(
            lb.class_name, lb.config
        )
        if (la.class_name != lb.class_name and not alike) or config:
            changed.append(LayerChange(path, la.class_name, lb.class_name, config))
        pairs, removed, added = pair_by_name({w.name: w for w in la.weights}, {w.name: w for w in lb.weights})
        weights_removed += [f"{path}/{n}" for n in removed]
        weights_added += [f"{path}/{n}" for n in added]
        renamed += [(wa.key, wb.key) for wa, wb in pairs if wa.name != wb.name]
        shapes += [
            ShapeChange(wa.key, wa.shape, wb.shape, wa.dtype, wb.dtype)
            for wa, wb in pairs
            if (wa.shape != wb.shape and not alike) or wa.dtype != wb.dtype
        ]
        values += _layer_values(la, lb, atol)
    weighted = [p for p in common if layers_a[p].weights or layers_b[p].weights]
    return Comparison(
        a=a.path,
        b=b.path,
        atol=atol,
        layers_added=[p for p in layers_b if p not in layers_a],
        layers_removed=[p for p in layers_a if p not in layers_b],
        layers_changed=changed,
        weights_added=weights_added,
        weights_removed=weights_removed,
        weights_renamed=renamed,
        shape_changes=shapes,
        values=values,
        ignored_config_keys=sorted(ignored),
        layers_in_common=len(weighted) if any(l.weights for l in [*layers_a.values(), *layers_b.values()]) else -1,
    )


def _layer_values(la: Layer, lb: Layer, atol: float) -> list[ValueDiff]:
    """Per named matrix; per stored weight when either side's rule cannot split it."""
    parts_a: dict[str, Matrix | Weight]
    parts_b: dict[str, Matrix | Weight]
    try:
        parts_a, parts_b = dict(la.matrices()), dict(lb.matrices())
    except LayoutError:
        parts_a, parts_b = {w.name: w for w in la.weights}, {w.name: w for w in lb.weights}
    out = []
    for pa, pb in pair_by_name(parts_a, parts_b)[0]:
        if pa.shape != pb.shape:
            continue  # reported as a reshaped weight
        if _is_view(pa) and _is_view(pb):  # the same blocks of rows on both sides, read one at a time
            m = value_change_blocks(zip(_blocks(pa), _blocks(pb), strict=True))
        else:
            m = value_change(pa.read(), pb.read())
        key_b = pb.key if pb.key != pa.key else None
        out.append(
            ValueDiff(
                pa.key, pa.shape, m.max_abs, m.max_abs <= atol, key_b, m.rel_change, m.cosine, m.norm_a, m.norm_diff
            )
        )
    return out


def _is_view(part: Matrix | Weight) -> bool:
    return not isinstance(part, Matrix) or part.is_view


def _blocks(part: Matrix | Weight) -> Iterator[np.ndarray]:
    """The values in blocks of rows, none kept: a diff holds a few MiB of each side, not the models."""
    matrix = part if isinstance(part, Matrix) else Matrix(part.name, part.layer_path, part, ())
    return matrix.blocks() if matrix.is_view else iter([matrix.read()])


def pair_by_name(a: dict[str, _Part], b: dict[str, _Part]) -> tuple[list[tuple[_Part, _Part]], list[str], list[str]]:
    """Pairs with the same name, then leftovers paired by position when both sides have as many
    of them with the same shapes (a renamed variable: DepthwiseConv2D's ``depthwise_kernel`` is
    ``kernel`` in Keras 3). Also returns the names left unpaired in A and in B."""
    pairs = [(a[n], b[n]) for n in a if n in b]
    left_a, left_b = [n for n in a if n not in b], [n for n in b if n not in a]
    if left_a and len(left_a) == len(left_b) and all(a[x].shape == b[y].shape for x, y in zip(left_a, left_b)):
        return pairs + [(a[x], b[y]) for x, y in zip(left_a, left_b)], [], []
    return pairs, left_a, left_b


def max_abs_diff(x: np.ndarray, y: np.ndarray) -> float:
    """Largest |x - y| over two same-shape arrays, in float64 chunks. NaN matches NaN and
    Inf matches the same Inf; any other disagreement involving them counts as ``inf``."""
    return value_change(x, y).max_abs


def value_change(x: np.ndarray, y: np.ndarray) -> Change:
    """Max abs difference, relative change and cosine similarity of two same-shape arrays,
    accumulated over float64 chunks (:func:`kerasweights.stats.chunks`), so scratch memory
    stays bounded whatever the size. NaN/Inf as in :func:`max_abs_diff`; the norms and the
    cosine cover the positions finite on both sides."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    return value_change_blocks([(x, y)])


def value_change_blocks(blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> Change:
    """:func:`value_change` over pairs of same-shape blocks of two arrays, read as they come."""
    worst = 0.0
    diff_sq = a_sq = b_sq = dot = 0.0
    odd = False
    pairs = ((cx, cy) for bx, by in blocks for cx, cy in zip(chunks(bx), chunks(by), strict=True))
    for cx, cy in pairs:
        fx, fy = np.asarray(cx, np.float64).ravel(), np.asarray(cy, np.float64).ravel()
        finite = np.isfinite(fx) & np.isfinite(fy)
        if finite.any():
            a, b = fx[finite], fy[finite]
            d = b - a
            worst = max(worst, float(np.abs(d).max()))
            diff_sq += float(np.dot(d, d))
            a_sq += float(np.dot(a, a))
            b_sq += float(np.dot(b, b))
            dot += float(np.dot(a, b))
        odd_x, odd_y = fx[~finite], fy[~finite]
        if odd_x.size and not np.all((odd_x == odd_y) | (np.isnan(odd_x) & np.isnan(odd_y))):
            odd = True
    norm_a, norm_b, norm_diff = math.sqrt(a_sq), math.sqrt(b_sq), math.sqrt(diff_sq)
    if diff_sq == 0:
        cosine: float | None = 1.0 if norm_a else (1.0 if a_sq == b_sq else None)  # equal: exactly 1
    elif norm_a and norm_b:
        cosine = max(-1.0, min(1.0, dot / (norm_a * norm_b)))
    else:
        cosine = None  # one side is all zeros: no direction to compare
    if odd:
        return Change(math.inf, math.inf, cosine, norm_a, math.inf)
    return Change(worst, _ratio(norm_diff, norm_a), cosine, norm_a, norm_diff)


def _ratio(diff: float, base: float) -> float:
    """``diff / base``; 0 when both are 0, ``inf`` when only ``base`` is."""
    if base:
        return diff / base
    return 0.0 if diff == 0 else math.inf


# -- configs --------------------------------------------------------------------------------------


def config_changes(la: Layer, lb: Layer) -> tuple[dict[str, tuple[Any, Any]], set[str]]:
    """Config keys whose normalized values differ, and the keys only one side has (ignored:
    each Keras generation writes its own extra keys, such as ``time_major`` or ``seed``)."""
    ca, cb = normalize_config(la.config), normalize_config(lb.config)
    if la.kind != "layer" or lb.kind != "layer":
        ca = {k: v for k, v in ca.items() if k not in _STRUCTURE_KEYS}
        cb = {k: v for k, v in cb.items() if k not in _STRUCTURE_KEYS}
    changes = {k: (ca[k], cb[k]) for k in ca if k in cb and k != "name" and not _same(k, ca[k], cb[k])}
    return changes, set(ca) ^ set(cb)


def normalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """A layer config without serialization details: old key spellings renamed, dtype policies
    as their name, serialized objects without module paths or object ids, lambdas as
    ``[code, defaults, closure]`` like Keras 2 wrote them."""
    return {_ALIASES.get(k, k): _normalize(v) for k, v in config.items()}


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        if "class_name" in value and "config" in value and isinstance(value["config"], dict):
            inner = value["config"]
            if value["class_name"] in ("DTypePolicy", "Policy", "FloatDTypePolicy") and "name" in inner:
                return inner["name"]
            if value["class_name"] == "__lambda__":
                return [inner.get("code"), inner.get("defaults"), inner.get("closure")]
        return {k: _normalize(v) for k, v in value.items() if k not in _OBJECT_NOISE}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    return value


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "axis" and _same_axes(a, b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        # Nested objects (initializers): like layer configs, keys one side lacks are not compared.
        return all(_same(k, a[k], b[k]) for k in a if k in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same("", x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not in a config
        return a is b
    return bool(a == b)


def _same_axes(a: Any, b: Any) -> bool:
    """``-1`` and ``[2]`` name the same axis of a rank-3 input: Keras 3 keeps negative axes
    where tf_keras stored them resolved, so accept lists equal after wrapping for one rank."""
    xs = a if isinstance(a, list) else [a]
    ys = b if isinstance(b, list) else [b]
    if len(xs) != len(ys) or not all(isinstance(v, int) and not isinstance(v, bool) for v in [*xs, *ys]):
        return False
    ranks = {abs(x - y) for x, y in zip(xs, ys) if (x < 0) != (y < 0)}
    if len(ranks) > 1:
        return False
    rank = ranks.pop() if ranks else 0
    return [x % rank if rank and x < 0 else x for x in xs] == [y % rank if rank and y < 0 else y for y in ys]


def _json_float(value: float) -> float | str:
    """JSON has no Infinity; say it as a string."""
    return value if math.isfinite(value) else "inf"
