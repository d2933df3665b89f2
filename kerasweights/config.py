"""Model config JSON -> a tree of :class:`LayerSpec` (Sequential, Functional, nested models, wrappers).

Understands Keras 1 (list-style Sequential, ``Model``/``Merge``), Keras 2 / tf.keras and
Keras 3 config schemas. Nothing in a config is ever imported, called or evaluated.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .layouts.recurrent import stacked_cells

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
# Old class names that mean the same layer (tf 1.13-era and Keras 1 spellings).
CLASS_ALIASES = {
    "BatchNormalizationV1": "BatchNormalization",
    "BatchNormalizationV2": "BatchNormalization",
    "GroupQueryAttention": "GroupedQueryAttention",  # Keras 3's export name; the class is GroupedQueryAttention
    "UnifiedLSTM": "LSTM",
    "UnifiedGRU": "GRU",
    "LSTMV1": "LSTM",
    "GRUV1": "GRU",
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D",
    "Deconvolution2D": "Conv2DTranspose",
    "Deconvolution3D": "Conv3DTranspose",
    "Conv2DTranspose": "Conv2DTranspose",
    "SeparableConvolution1D": "SeparableConv1D",
    "SeparableConvolution2D": "SeparableConv2D",
    "DepthwiseConvolution2D": "DepthwiseConv2D",
    "AtrousConvolution1D": "Conv1D",
    "AtrousConvolution2D": "Conv2D",
}


@dataclass
class LayerSpec:
    """One layer as its config describes it.

    ``storage_key`` is the name Keras 3 gives this layer's group inside its parent
    (``layers/gru_1``, ``forward_layer``, ``layer``); legacy files use ``name``.
    """

    class_name: str
    name: str
    config: dict[str, Any]
    module: str | None = None
    registered_name: str | None = None
    children: list[LayerSpec] = field(default_factory=list)
    storage_key: str = ""
    is_model: bool = False

    @property
    def kind(self) -> str:
        if self.is_model:
            return "model"
        return "wrapper" if self.children else "layer"


def canonical_class(class_name: str) -> str:
    return CLASS_ALIASES.get(class_name, class_name)


@functools.lru_cache(maxsize=1024)  # (class names repeat: 4,000 Dense layers are one name)
def to_snake_case(name: str) -> str:
    """Keras's own ``to_snake_case`` (saving_lib names storage groups with it)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def parse_model(document: dict[str, Any]) -> LayerSpec:
    """The root :class:`LayerSpec` of a model config (``{"class_name", "config"}``)."""
    if not isinstance(document, dict):
        raise ConfigError("model config is not a JSON object")
    return _parse_entry(document, where="model config")


def _parse_entry(entry: Any, where: str) -> LayerSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is a {type(entry).__name__}, expected an object with class_name and config")
    class_name = entry.get("class_name")
    if not isinstance(class_name, str):
        raise ConfigError(f"{where} has no class_name string")
    raw_config = entry.get("config", {})
    if raw_config is None:
        raw_config = {}
    if class_name in MODEL_CLASSES and isinstance(raw_config, list):
        raw_config = {"layers": raw_config}  # Keras 1 and Keras <= 2.2.2 Sequential
    if not isinstance(raw_config, dict):
        raise ConfigError(f"{where} ({class_name}) has a config of type {type(raw_config).__name__}")
    name = raw_config.get("name", entry.get("name"))
    name = str(name) if name is not None else to_snake_case(class_name)
    spec = LayerSpec(
        class_name=canonical_class(class_name),
        name=name,
        config=raw_config,
        module=entry.get("module") if isinstance(entry.get("module"), str) else None,
        registered_name=entry.get("registered_name") if isinstance(entry.get("registered_name"), str) else None,
    )
    if class_name in MODEL_CLASSES or (isinstance(raw_config.get("layers"), list) and "input_layers" in raw_config):
        spec.is_model = True
        spec.children = _parse_model_layers(spec, where)
    elif spec.class_name == "Bidirectional":
        spec.children = _parse_bidirectional(spec, where)
    elif spec.class_name == "RNN" and stacked_cells(raw_config) is not None:
        spec.children = _parse_stacked_cells(spec)
    elif isinstance(raw_config.get("layer"), dict):  # TimeDistributed and other wrappers
        child = _parse_entry(raw_config["layer"], f"{where} > {name}")
        child.storage_key = "layer"
        spec.children = [child]
    return spec


def _parse_model_layers(spec: LayerSpec, where: str) -> list[LayerSpec]:
    layers = spec.config.get("layers", [])
    if not isinstance(layers, list):
        raise ConfigError(f"{where} > {spec.name}: layers is a {type(layers).__name__}, expected a list")
    sequential = spec.class_name == "Sequential"
    children: list[LayerSpec] = []
    counters: dict[str, int] = {}
    for i, entry in enumerate(layers):
        child = _parse_entry(entry, f"{where} > {spec.name} > layer {i}")
        if _is_op(child):
            continue  # keras.ops calls in a Functional graph are not layers and own nothing
        if sequential and child.class_name == "InputLayer":
            continue  # not in Sequential.layers, so not stored either
        snake = to_snake_case(child.class_name)
        count = counters.get(snake, 0)
        counters[snake] = count + 1
        child.storage_key = f"layers/{snake}" + (f"_{count}" if count else "")
        children.append(child)
    return children


def _parse_stacked_cells(spec: LayerSpec) -> list[LayerSpec]:
    """``RNN(StackedRNNCells([...]))``: one child per cell, named by the cell's name (by its index
    when two cells share a name); Keras 3 stores each at ``cell/cells/<snake class>[_n]``."""
    cells = stacked_cells(spec.config) or []
    raw = [c for c in spec.config["cell"].get("config", {}).get("cells", []) if isinstance(c, dict)]
    names = [str(config.get("name", "")) for _, config in cells]
    children = []
    counters: dict[str, int] = {}
    for index, ((class_name, config), entry) in enumerate(zip(cells, raw)):
        name = names[index] if names[index] and names.count(names[index]) == 1 else str(index)
        snake = to_snake_case(str(entry.get("class_name", class_name)))
        count = counters.get(snake, 0)
        counters[snake] = count + 1
        child = LayerSpec(
            class_name, name, config, module=entry.get("module") if isinstance(entry.get("module"), str) else None
        )
        child.storage_key = f"cell/cells/{snake}" + (f"_{count}" if count else "")
        children.append(child)
    return children


def _is_op(spec: LayerSpec) -> bool:
    return bool(spec.module and spec.module.startswith("keras.src.ops"))


def _parse_bidirectional(spec: LayerSpec, where: str) -> list[LayerSpec]:
    inner = spec.config.get("layer")
    if not isinstance(inner, dict):
        raise ConfigError(f"{where} > {spec.name}: Bidirectional without an inner layer config")
    forward = _parse_entry(inner, f"{where} > {spec.name}")
    base = forward.name.removeprefix("forward_")
    forward.name = f"forward_{base}"
    forward.storage_key = "forward_layer"
    backward_entry = spec.config.get("backward_layer")
    if isinstance(backward_entry, dict):
        backward = _parse_entry(backward_entry, f"{where} > {spec.name} > backward_layer")
    else:
        backward = _parse_entry(inner, f"{where} > {spec.name}")
        backward.config = {**backward.config, "go_backwards": not backward.config.get("go_backwards", False)}
        backward.name = f"backward_{base}"
    backward.storage_key = "backward_layer"
    return [forward, backward]
