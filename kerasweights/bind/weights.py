"""Stored arrays given to a layer under its Keras variable names (shared by both binders)."""

from __future__ import annotations

import re

from ..layouts import Context, Var
from ..model import Layer, Weight
from ..store import StoredArray

SUFFIX = re.compile(r":\d+$")  # TF's ":0" output index on legacy weight names


def assign(layer: Layer, arrays: list[StoredArray], major: int, trainable: list[bool] | None = None) -> None:
    shorts = short_names(arrays)
    layer.context = Context(keras_major=major, stored_names=tuple(shorts))
    variables: list[Var] | None = None
    if layer.rule is not None:
        variables = layer.rule.variables(layer.config, layer.context)
        if len(variables) != len(arrays):
            variables = [v for v in variables if not v.shared]  # stored once (legacy HDF5)
        if len(variables) != len(arrays):
            expected = ", ".join(v.name for v in variables) or "none"
            layer.problems.append(
                f"layer {layer.path!r} ({layer.class_name}): expected {len(variables)} weights ({expected}), "
                f"found {len(arrays)} ({', '.join(shorts) or 'none'})"
            )
            variables = None
    if variables is None:
        names, flags = shorts, [True] * len(arrays)
    else:
        names, flags = [v.name for v in variables], [v.trainable for v in variables]
    if trainable is not None:
        flags = trainable
    shared = {v.name for v in variables or [] if v.shared}  # already the wrapped layer's weight
    layer.weights = [Weight(n, layer.path, a, t) for n, a, t in zip(names, arrays, flags) if n not in shared]


def short_names(arrays: list[StoredArray]) -> list[str]:
    shorts = [SUFFIX.sub("", a.stored_name).split("/")[-1] for a in arrays]
    if len(set(shorts)) != len(shorts):  # e.g. Keras 3.0-3.2 legacy h5 of MHA: bare, repeated names
        shorts = [SUFFIX.sub("", a.stored_name) for a in arrays]
    if len(set(shorts)) != len(shorts):  # Keras 3 custom objects: vars/0 in several groups
        shorts = [a.key.replace("/vars/", "/") for a in arrays]
    return shorts


def inferred_container(path: str, name: str, class_name: str, kind: str) -> Layer:
    """A model or wrapper layer guessed from storage alone: children are added by the caller."""
    return Layer(path=path, name=name, class_name=class_name, config={"name": name}, kind=kind, inferred=True)
