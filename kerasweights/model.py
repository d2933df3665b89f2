"""The model tree users see: layers with stored weights and named matrices, read lazily."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LayoutError, NotFoundError, printable
from .formats import RawModel
from .layouts import CONVERSIONS, Context, Index, Part, Rule
from .layouts.shapes import check as check_shapes
from .store import StoredArray


@dataclass(eq=False)
class Weight:
    """A stored array with the Keras variable name its layer's rule gives it."""

    name: str
    layer_path: str
    array: StoredArray
    trainable: bool = True

    def __post_init__(self) -> None:  # names from hostile files must not carry terminal escapes
        self.name, self.layer_path = printable(self.name), printable(self.layer_path)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> str:
        return self.array.dtype

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def key(self) -> str:
        """``<layer path>/<name>``, unique within a model."""
        return f"{self.layer_path}/{self.name}"

    @property
    def meaning(self) -> str:
        """``"stored array"``: what :attr:`Matrix.meaning` says of a named matrix, so
        ``model.find(key).meaning`` works for both."""
        return "stored array"

    def read(self, cache: bool = True) -> np.ndarray:
        """The stored values, kept for later reads unless ``cache=False`` (a pass over every
        weight then holds one at a time)."""
        return self.array.read(cache)

    def _repr_html_(self) -> str:  # Jupyter: facts, statistics and a small heatmap
        from .notebook import matrix_html

        return matrix_html(self)


@dataclass(eq=False)
class Matrix:
    """A named matrix (``kernel_z``) cut from a stored weight, with where it came from.

    ``meaning`` says what it is (``"update gate, input weights"``); ``gate`` is the gate's
    letter for gated layers (``z``, ``r``, ``h`` for GRU; ``i``, ``f``, ``c``, ``o`` for LSTM),
    ``None`` otherwise; ``index`` is the slice of ``weight`` it reads (``source`` as text).
    """

    name: str
    layer_path: str
    weight: Weight
    index: Index
    meaning: str = ""
    gate: str | None = None
    plus: Index | None = None  # a second cut added to the first (CuDNNLSTM's two biases)
    convert: str = ""  # a layouts.CONVERSIONS entry (cuDNN's memory layout)

    @property
    def key(self) -> str:
        return f"{self.layer_path}/{self.name}"

    @property
    def shape(self) -> tuple[int, ...]:
        return _index_shape(self.weight.shape, self.index)  # conversions keep the shape

    @property
    def dtype(self) -> str:
        return self.weight.dtype

    @property
    def source(self) -> str:
        """How the matrix comes from the stored weight, e.g. ``kernel[:, 5:10]``, ``bias[1, 0:5]``,
        ``bias[0:3] + bias[12:15]`` or ``kernel[:, 0:5].T.reshape((4, 5), order='F')``."""
        text = _fmt_cut(self.weight.name, self.index)
        if self.plus is not None:
            text += " + " + _fmt_cut(self.weight.name, self.plus)
        if self.convert:
            text += CONVERSIONS[self.convert][1].format(shape=self.shape)
        return text

    @property
    def is_view(self) -> bool:
        """True when the values are a plain cut of the stored weight (no sum, no conversion)."""
        return self.plus is None and not self.convert

    def read(self) -> np.ndarray:
        """The values, read-only: a view into the stored array once that is loaded
        (``weight.read()``), otherwise only this part is read from the file."""
        array = self.weight.array
        return self._finish(array.read_part(self.index), lambda index: array.read_part(index))

    def blocks(self, max_elements: int = 1 << 20) -> Iterator[np.ndarray]:
        """The values in blocks of rows (first axis) of at most ``max_elements`` each, each read
        from the file on its own while the stored array is not loaded: a pass over a 1 GB matrix
        holds a few MiB. Matrices that are sums or conversions come whole."""
        array = self.weight.array
        shape = self.shape
        if not self.is_view or not shape or math.prod(shape) <= max_elements:
            yield self.read()
            return
        rows = max(1, max_elements // max(1, math.prod(shape[1:])))
        if array.is_loaded:
            whole = self.read()
            yield from (whole[begin : begin + rows] for begin in range(0, shape[0], rows))
            return
        axis = next((i for i, part in enumerate(self.index) if isinstance(part, slice)), len(self.index))
        full = _expand(self.index, axis)
        first = full[axis]
        start0, _, step0 = first.indices(self.weight.shape[axis]) if isinstance(first, slice) else (0, 0, 1)
        for begin in range(0, shape[0], rows):
            stop = min(shape[0], begin + rows)
            part = slice(start0 + begin * step0, start0 + stop * step0, step0)
            yield array.read_part((*full[:axis], part, *full[axis + 1 :]))

    def cut(self, whole: np.ndarray) -> np.ndarray:
        """The values from the whole stored weight already in memory."""
        return self._finish(whole[(*self.index, Ellipsis)], lambda index: whole[(*index, Ellipsis)])

    def _finish(self, values: np.ndarray, part: Any) -> np.ndarray:
        if self.is_view:
            return values
        if self.plus is not None:
            values = values + part(self.plus)
        if self.convert:
            values = CONVERSIONS[self.convert][0](values)
        values = np.array(values)
        values.flags.writeable = False
        return values

    def _repr_html_(self) -> str:  # Jupyter: facts, statistics and a small heatmap
        from .notebook import matrix_html

        return matrix_html(self)


def _expand(index: Index, axis: int) -> Index:
    """``index`` with a full slice for ``axis`` when it stops before it."""
    return (*index, *([slice(None)] * (axis + 1 - len(index))))


def _fmt_cut(name: str, index: Index) -> str:
    return f"{name}[{', '.join(_fmt_index(i) for i in index)}]" if index else name


def _parts(layer: Layer) -> list[Matrix | Weight]:
    """A layer's named matrices, or its stored weights when they do not fit its layout."""
    try:
        return list(layer.matrices().values())
    except LayoutError:
        return list(layer.weights)


def _fmt_index(i: int | slice) -> str:
    if isinstance(i, int):
        return str(i)
    if i.start is None and i.stop is None:
        return ":"
    return f"{i.start or 0}:{'' if i.stop is None else i.stop}"


def _index_shape(shape: tuple[int, ...], index: Index) -> tuple[int, ...]:
    out: list[int] = []
    for axis, i in enumerate(index):
        if isinstance(i, slice):
            out.append(len(range(*i.indices(shape[axis]))))
    return (*out, *shape[len(index) :])


@dataclass(eq=False)
class Layer:
    """One layer: class, name, config, children (wrapped or nested layers), stored weights."""

    path: str
    name: str
    class_name: str
    config: dict[str, Any]
    kind: str = "layer"  # "layer", "wrapper" or "model"
    children: list[Layer] = field(default_factory=list)
    weights: list[Weight] = field(default_factory=list)
    rule: Rule | None = field(default=None, repr=False)
    module: str | None = None
    registered_name: str | None = None
    inferred: bool = False
    problems: list[str] = field(default_factory=list)
    context: Context = field(default_factory=Context, repr=False)
    file: str | None = field(default=None, repr=False)
    """The model file the layer was read from (set by :class:`Model`): errors name it."""
    _matrices: dict[str, Matrix] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:  # names from hostile files must not carry terminal escapes
        self.path, self.name, self.class_name = printable(self.path), printable(self.name), printable(self.class_name)

    def _repr_html_(self) -> str:  # Jupyter: the layer's matrices with shapes and meanings
        from .notebook import layer_html

        return layer_html(self)

    @property
    def is_custom(self) -> bool:
        """True when kerasweights has no rule for this weighted layer class."""
        return self.rule is None and self.kind == "layer" and bool(self.weights)

    def walk(self) -> Iterator[Layer]:
        """This layer and every layer below it, depth first, in model order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def all_weights(self) -> list[Weight]:
        return [w for layer in self.walk() for w in layer.weights]

    @property
    def params(self) -> int:
        """Number of scalars in all stored weights (Keras's ``count_params()``)."""
        return sum(w.size for w in self.all_weights())

    def weight(self, name: str) -> Weight:
        for w in self.weights:
            if w.name == name:
                return w
        raise NotFoundError(
            f"layer {self.path!r} has no stored weight {name!r}; it has: {', '.join(w.name for w in self.weights) or 'none'}"
        )

    def matrices(self) -> dict[str, Matrix]:
        """Named matrices of this layer (not its children), keyed by name.

        Raises :class:`LayoutError` (naming the file) when the stored shapes do not fit the config.
        """
        if self._matrices is None:
            try:
                self._matrices = self._split()
            except LayoutError as exc:
                raise exc.with_path(self.file) if self.file is not None else exc from None
        return self._matrices

    def matrix(self, name: str) -> Matrix:
        matrices = self.matrices()
        if name not in matrices:
            raise NotFoundError(f"layer {self.path!r} has no matrix {name!r}; it has: {', '.join(matrices) or 'none'}")
        return matrices[name]

    def _split(self) -> dict[str, Matrix]:
        by_name = {w.name: w for w in self.weights}
        if self.rule is None or len(by_name) != len(self.weights):
            return {w.name: Matrix(w.name, self.path, w, ()) for w in self.weights}
        shapes = {w.name: w.shape for w in self.weights}
        config = {**self.config, "name": self.path}
        try:
            check_shapes(self.class_name, self.path, self.config, shapes, self.context)
            parts: list[Part] = self.rule.split(config, shapes, self.context)
            var_meanings = {v.name: v.meaning for v in self.rule.variables(self.config, self.context)}
            return {
                p.name: Matrix(
                    p.name,
                    self.path,
                    by_name[p.var],
                    p.index,
                    p.meaning or var_meanings.get(p.var, ""),
                    p.gate,
                    p.plus,
                    p.convert,
                )
                for p in parts
            }
        except LayoutError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            # A damaged file can give a stored array any rank and a config any value.
            raise LayoutError(
                f"layer {self.path!r} ({self.class_name}): stored shapes {', '.join(map(str, shapes.values()))} "
                f"do not fit its layout ({type(exc).__name__}: {exc})"
            ) from None


class Model:
    """An open Keras model file. Use as a context manager; weights are read on demand."""

    def __init__(self, raw: RawModel, root: Layer, notes: list[str]) -> None:
        self._raw = raw
        self.root = root
        self.notes = notes
        for layer in root.walk():
            layer.file = raw.path

    # -- file facts -------------------------------------------------------
    @property
    def path(self) -> str:
        return self._raw.path

    @property
    def format(self) -> str:
        return self._raw.format

    @property
    def keras_version(self) -> str | None:
        return self._raw.keras_version

    @property
    def backend(self) -> str | None:
        return self._raw.backend

    @property
    def config(self) -> dict[str, Any] | None:
        return self._raw.config

    @property
    def training_config(self) -> dict[str, Any] | None:
        return self._raw.training_config

    @property
    def optimizer_bytes(self) -> int:
        return self._raw.optimizer_bytes

    @property
    def members(self) -> list[str]:
        return list(self._raw.members)

    @property
    def external_links(self) -> list[str]:
        return list(self._raw.links())

    @property
    def has_config(self) -> bool:
        return self._raw.config is not None

    @property
    def name(self) -> str:
        return self.root.name

    # -- tree ---------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """Top-level layers."""
        return self.root.children

    def walk(self) -> Iterator[Layer]:
        """Every layer below the model, depth first, in model order."""
        for child in self.root.children:
            yield from child.walk()

    def layer(self, path: str) -> Layer:
        for layer in self.walk():
            if layer.path == path:
                return layer
        raise NotFoundError(
            f"no layer {path!r}; layers with weights: {', '.join(l.path for l in self.walk() if l.weights) or 'none'}"
        )

    @property
    def total_params(self) -> int:
        return self.root.params

    def weights(self) -> list[Weight]:
        return self.root.all_weights()

    def matrices(self) -> dict[str, Matrix]:
        """Every named matrix of every layer, keyed ``<layer path>/<matrix name>``.

        Raises :class:`LayoutError` (naming the file) for the first layer whose weights do not fit its config.
        """
        try:
            return {m.key: m for layer in self.walk() for m in layer.matrices().values()}
        except LayoutError as exc:
            raise exc.with_path(self.path) from None

    def matrix(self, key: str) -> Matrix:
        """A named matrix by ``<layer path>/<matrix name>``, e.g. ``enc_gru/kernel_z``."""
        item = self.find(key)
        if isinstance(item, Matrix):
            return item
        layer = self.layer(item.layer_path)
        raise NotFoundError(
            f"{key!r} is a stored weight, not a named matrix; layer {layer.path!r} has: {', '.join(layer.matrices())}"
        )

    def find(self, key: str) -> Matrix | Weight:
        """A named matrix or stored weight by ``<layer path>/<name>``."""
        whole = next((l for l in self.walk() if l.path == key.rstrip("/")), None)
        if whole is not None:
            names = [m.key for l in whole.walk() for m in _parts(l)]
            raise NotFoundError(
                f"{key!r} is a layer; name one of its matrices or weights: {', '.join(names) or 'it has none'}"
            )
        for layer in sorted(self.walk(), key=lambda l: -len(l.path)):
            prefix = f"{layer.path}/"
            if key.startswith(prefix):
                name = key[len(prefix) :]
                try:
                    matrices = layer.matrices()
                except LayoutError:
                    matrices = {}
                if name in matrices:
                    return matrices[name]
                if any(w.name == name for w in layer.weights):
                    return layer.weight(name)
                valid = sorted({*matrices, *(w.name for w in layer.weights)})
                raise NotFoundError(
                    f"layer {layer.path!r} has no matrix or weight {name!r}; valid names: {', '.join(valid) or 'none'}"
                )
        raise NotFoundError(
            f"no layer in {key!r}; layers with weights: {', '.join(l.path for l in self.walk() if l.weights) or 'none'}"
        )

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kerasweights.Model {self.path!r} format={self.format} layers={len(self.layers)}>"

    def _repr_html_(self) -> str:  # Jupyter: the summary table
        from .notebook import model_html

        return model_html(self)
