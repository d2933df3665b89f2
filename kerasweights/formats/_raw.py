"""What a format reader hands to the model layer: config, metadata and stored arrays."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..store import StoredArray


@dataclass
class LegacyStorage:
    """Legacy HDF5 layout: one group per top-level layer, arrays in ``weight_names`` order."""

    layer_names: list[str]
    layers: dict[str, list[StoredArray]]


@dataclass
class VarsStorage:
    """Keras 3 layout: ``<object path>/vars/<i>`` groups keyed by object path (root is ``""``)."""

    groups: dict[str, list[StoredArray]]
    names: dict[str, str] = field(default_factory=dict)  # object path -> ``vars@name`` (Keras >= 3.6)
    layers_key: str = "layers"  # tf.keras 2.12-2.14 used ``_layer_checkpoint_dependencies``


@dataclass(eq=False)
class TrackedObject:
    """One node of a TensorFlow object graph (SavedModel, TF checkpoint).

    ``children`` are ``(local name, node)`` pairs in the file's order; one node can appear
    under several names (``layer-1`` and ``layer_with_weights-0``). A variable holds its
    value in ``array``. ``name``/``class_name`` come from ``keras_metadata.pb`` when present.
    """

    node_id: int
    children: list[tuple[str, TrackedObject]] = field(default_factory=list)
    array: StoredArray | None = None
    name: str | None = None
    class_name: str | None = None

    def child(self, local_name: str) -> TrackedObject | None:
        return next((node for name, node in self.children if name == local_name), None)


@dataclass
class ObjectStorage:
    """TensorFlow object-graph layout: layers are nodes reached from ``root`` by attribute names
    (``layer-3``, ``forward_layer``, ``cell``, ``kernel``), not by layer names."""

    root: TrackedObject
    arrays: list[StoredArray] = field(default_factory=list)  # every model variable (not optimizer state)


Storage = LegacyStorage | VarsStorage | ObjectStorage


@dataclass
class RawModel:
    """A model file as read, before layer semantics are applied."""

    path: str
    format: str
    storage: Storage
    config: dict[str, Any] | None = None
    keras_version: str | None = None
    backend: str | None = None
    training_config: dict[str, Any] | None = None
    optimizer_bytes: int = 0
    members: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    external_links: list[str] = field(default_factory=list)
    link_finders: list[Callable[[], list[str]]] = field(default_factory=list, repr=False)
    """Walks that add to :attr:`external_links` when it is first asked for (``summary`` never asks)."""
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def links(self) -> list[str]:
        """:attr:`external_links`, after running (once) the walks that find them."""
        while self.link_finders:
            self.external_links += self.link_finders.pop(0)()
        return self.external_links

    def close(self) -> None:
        self.resources.close()
