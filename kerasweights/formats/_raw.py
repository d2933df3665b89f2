"""What a format reader hands to the model layer: config, metadata and stored arrays."""

from __future__ import annotations

import contextlib
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


Storage = LegacyStorage | VarsStorage


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
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def close(self) -> None:
        self.resources.close()
