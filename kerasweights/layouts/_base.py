"""The vocabulary of layout rules: stored variables and the named parts cut from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import LayoutError

Shape = tuple[int, ...]
Config = dict[str, Any]
Index = tuple[int | slice, ...]


@dataclass(frozen=True)
class Var:
    """A variable as Keras creates it, in storage order."""

    name: str
    trainable: bool = True
    meaning: str = ""
    shared: bool = False  # the wrapped layer's own variable, stored again here (.keras): not counted twice


@dataclass(frozen=True)
class Part:
    """A named matrix: ``var[index]`` (``index`` cuts leading axes, then ``axis``).

    ``plus`` adds a second cut of the same variable (CuDNNLSTM's input and recurrent
    biases, which Keras sums); ``convert`` names a :data:`CONVERSIONS` entry applied
    last, for variables stored in another library's memory layout (cuDNN).
    """

    name: str
    var: str
    index: Index = ()
    meaning: str = ""
    gate: str | None = None
    plus: Index | None = None
    convert: str = ""


def _cudnn_input(block: np.ndarray) -> np.ndarray:
    # cuDNN reads each gate's (in, units) block, flattened row-major, as a (units, in)
    # matrix: tf_keras hdf5_format._convert_rnn_weights, transpose_input(from_cudnn=True).
    return np.asarray(block.T.reshape(block.shape, order="F"))


def _transpose(block: np.ndarray) -> np.ndarray:
    return np.asarray(block.T)


CONVERSIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "cudnn_input": (_cudnn_input, ".T.reshape({shape}, order='F')"),
    "cudnn_recurrent": (_transpose, ".T"),
}
"""Named conversions from a stored layout to the one Keras computes with, and how ``source`` shows them."""


@dataclass(frozen=True)
class Context:
    """Facts about the file a rule may need (generation of Keras that wrote it)."""

    keras_major: int = 3
    keras_version: str | None = None
    stored_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """How one layer class stores its variables and how they split into named matrices.

    ``variables`` lists the stored variables for a config (flags like ``use_bias``
    drop some); ``parts`` cuts them into named matrices once shapes are known and
    raises :class:`LayoutError` when a shape does not fit the config.
    ``v3_groups`` are the sub-objects under the layer's Keras 3 storage group
    whose ``vars`` hold its variables, in order (``""`` is the layer itself).
    """

    class_names: tuple[str, ...]
    variables: Callable[[Config, Context], list[Var]]
    parts: Callable[[Config, dict[str, Shape], Context], list[Part]] | None = None
    v3_groups: tuple[str, ...] = ("",)
    description: str = ""
    aliases_v3: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def split(self, config: Config, shapes: dict[str, Shape], context: Context) -> list[Part]:
        if self.parts is None:
            return [Part(name, name) for name in shapes]
        return self.parts(config, shapes, context)


def whole(shapes: dict[str, Shape], meanings: dict[str, str] | None = None) -> list[Part]:
    meanings = meanings or {}
    return [Part(name, name, (), meanings.get(name, "")) for name in shapes]


def flag(config: Config, key: str, default: bool = True) -> bool:
    value = config.get(key, default)
    return bool(default if value is None else value)


def expect_shape(layer: str, var: str, actual: Shape, expected: Sequence[int | None], why: str) -> None:
    """Raise LayoutError unless ``actual`` matches ``expected`` (``None`` matches any size)."""
    ok = len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))
    if not ok:
        shown = (
            "(" + ", ".join("?" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        )
        raise LayoutError(f"layer {layer!r}: {var} has shape {tuple(actual)}, expected {shown} for {why}")
