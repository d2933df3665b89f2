"""The join of config tree and stored arrays: the middle of the read pipeline.

``formats`` turns a file into a :class:`~kerasweights.formats.RawModel` (config + storage);
:func:`build_model` turns that into a :class:`~kerasweights.model.Model`: with a config it binds
each layer of the config to its stored arrays (:mod:`.configured`); without one it infers layers
from the storage (:mod:`.inferred`).
"""

from __future__ import annotations

from dataclasses import replace

from ..config import LayerSpec, parse_model
from ..formats import LegacyStorage, ObjectStorage, RawModel
from ..model import Layer, Model
from .configured import bind_legacy, bind_vars, custom_cell_notes, from_spec, storage_keys

# .objects (TensorFlow object graphs) and .inferred (files without a config) are imported where
# used: a .keras or .h5 with its config needs neither.

__all__ = ["build_model"]


def build_model(raw: RawModel) -> Model:
    notes = list(raw.notes)
    major = keras_major(raw)
    if raw.config is not None:
        spec = parse_model(raw.config)
        whole_root = not spec.is_model
        if not spec.is_model:
            # A subclassed (custom) model or a bare layer: one layer holding everything stored.
            spec = LayerSpec("Model", spec.name, {}, children=[spec], is_model=True)
            notes.append(
                f"the model is a {spec.children[0].class_name}, not Sequential or Functional: its sublayers are not described by its config"
            )
        root = from_spec(spec, "", major)
        notes += custom_cell_notes(root)
        keys = {id(layer): key for layer, key in storage_keys(root, spec)}
        if isinstance(raw.storage, LegacyStorage):
            bind_legacy(root, raw.storage, major, notes)
        elif isinstance(raw.storage, ObjectStorage):
            from .objects import bind_objects

            bind_objects(root, raw.storage, keys, whole_root, major, notes)
        else:
            bind_vars(root, raw.storage, keys, major, notes)
    else:
        from .inferred import infer_legacy, infer_vars

        root = Layer(path="", name="model", class_name="Model", config={}, kind="model")
        if isinstance(raw.storage, LegacyStorage):
            infer_legacy(root, raw.storage, major)
        elif isinstance(raw.storage, ObjectStorage):
            from .objects import infer_objects

            infer_objects(root, raw.storage, major, notes)
        else:
            infer_vars(root, raw.storage, major)
        notes.append(
            "the file has no model config: layer classes and configs were inferred from weight names and shapes"
        )
    _stamp_version(root, raw.keras_version)
    return Model(raw, root, notes)


def _stamp_version(layer: Layer, version: str | None) -> None:
    """Give every layer's context the writer's version (defaults differ by Keras generation)."""
    layer.context = replace(layer.context, keras_version=version)
    for child in layer.children:
        _stamp_version(child, version)


def keras_major(raw: RawModel) -> int:
    version = raw.keras_version
    if version and version[:1].isdigit():
        return int(version.split(".")[0])
    if isinstance(raw.storage, LegacyStorage):
        return 1 if raw.format == "h5-weights" else 2
    if isinstance(raw.storage, ObjectStorage):
        return 2  # TF object graphs are written by tf.keras / tf_keras 2.x
    return 3
