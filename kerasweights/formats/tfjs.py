"""TensorFlow.js Layers models: ``model.json`` (Keras topology + weights manifest) and binary shards.

The manifest lists weight groups; a group's shards are one byte stream cut into files
(``group1-shard1of3.bin``...), its weights lie back to back in manifest order, so one
tensor can span two files. Weight names are the ``.h5`` names without ``:0``
(``gru/gru_cell/kernel``), grouped by layer name in sorted order, with a nested model's
own name dropped (``lstm_nb/lstm_cell/kernel`` for a layer of the sub-model ``encoder``).
Quantized weights (``quantization``: ``uint8``/``uint16`` with ``scale`` and ``min``, or
``float16``) are de-quantized on read. The converter drops optimizer weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, CorruptFileError, LimitExceededError, UnsupportedFormatError
from ..limits import Limits
from ..store import Index, StoredArray
from ._files import inside, open_regular
from ._raw import LegacyStorage, RawModel

_DTYPES = {
    "float32": "float32",
    "int32": "int32",
    "bool": "bool",
    "uint8": "uint8",
    "uint16": "uint16",
    "float16": "float16",
    "complex64": "complex64",
}
QUANTIZED = ("uint8", "uint16", "float16")


def is_tfjs(document: object) -> bool:
    return isinstance(document, dict) and "weightsManifest" in document and "modelTopology" in document


@dataclass
class _Group:
    paths: list[Path]
    sizes: list[int]

    def read(self, offset: int, nbytes: int) -> bytes:
        out = bytearray()
        start = 0
        for path, size in zip(self.paths, self.sizes):
            end = start + size
            if offset < end and offset + nbytes > start:
                lo = max(offset, start) - start
                hi = min(offset + nbytes, end) - start
                with open_regular(path, f"weight shard {path.name}") as f:
                    f.seek(lo)
                    chunk = f.read(hi - lo)
                if len(chunk) != hi - lo:
                    raise CorruptFileError(f"weight shard {path.name} is shorter than when the model was opened")
                out += chunk
            start = end
        return bytes(out)


def read_tfjs(path: Path, document: dict[str, Any], raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from a TF.js ``model.json`` (already parsed) and its shards."""
    raw.format = "tfjs-layers"
    kind = document.get("format")
    if kind not in (None, "layers-model"):
        raise UnsupportedFormatError(
            f"TensorFlow.js model of format {kind!r}: only Layers models (converted from Keras) hold Keras layers"
        )
    topology = document.get("modelTopology")
    if not isinstance(topology, dict):
        raise ConfigError("model.json has no modelTopology object")
    config = topology.get("model_config", topology if "class_name" in topology else None)
    if not isinstance(config, dict):
        raise ConfigError("model.json modelTopology holds no model_config object")
    raw.config = config
    for key, attr in (("keras_version", "keras_version"), ("backend", "backend")):
        value = topology.get(key)
        if isinstance(value, str):
            setattr(raw, attr, value)
    if isinstance(topology.get("training_config"), dict):
        raw.training_config = topology["training_config"]
    manifest = document.get("weightsManifest")
    if not isinstance(manifest, list):
        raise ConfigError("model.json weightsManifest is not a list")
    folder = path.parent
    arrays: list[StoredArray] = []
    quantized: set[str] = set()
    for g, group_doc in enumerate(manifest):
        if (
            not isinstance(group_doc, dict)
            or not isinstance(group_doc.get("paths"), list)
            or not isinstance(group_doc.get("weights"), list)
        ):
            raise ConfigError(f"model.json weightsManifest group {g} needs lists 'paths' and 'weights'")
        group = _open_group(folder, group_doc["paths"], raw)
        offset = 0
        for w, spec in enumerate(group_doc["weights"]):
            array, nbytes, qdtype = _weight(spec, g, w, group, offset, limits)
            if qdtype:
                quantized.add(qdtype)
            arrays.append(array)
            offset += nbytes
        total = sum(group.sizes)
        if offset > total:
            raise CorruptFileError(
                f"weight group {g} needs {offset:,} bytes but its shards ({', '.join(p.name for p in group.paths)}) hold {total:,} (truncated?)"
            )
    if quantized:
        raw.notes.append(
            f"weights are stored quantized ({', '.join(sorted(quantized))}) and shown de-quantized "
            "(q * scale + min); they differ from the original model by up to half a quantization step"
        )
    raw.storage = _group_by_layer(arrays, config)


def _open_group(folder: Path, paths: list[Any], raw: RawModel) -> _Group:
    files, sizes = [], []
    for name in paths:
        if not isinstance(name, str):
            raise ConfigError("model.json weight shard path is not a string")
        shard = inside(folder, name, f"weight shard {name!r}")
        if not shard.is_file():
            raise CorruptFileError(f"weight shard {name} listed in model.json is missing")
        files.append(shard)
        sizes.append(shard.stat().st_size)
        raw.members.append(name)
    return _Group(files, sizes)


def _weight(
    spec: Any, g: int, w: int, group: _Group, offset: int, limits: Limits
) -> tuple[StoredArray, int, str | None]:
    where = f"weightsManifest group {g} weight {w}"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ConfigError(f"model.json {where} has no name")
    name = spec["name"]
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ConfigError(f"model.json weight {name!r} has a bad shape {shape!r}")
    dtype = spec.get("dtype", "float32")
    quant = spec.get("quantization")
    stored = dtype
    if quant is not None:
        if not isinstance(quant, dict) or quant.get("dtype") not in QUANTIZED:
            raise ConfigError(f"model.json weight {name!r} has an unknown quantization {quant!r}")
        stored = quant["dtype"]
        dtype = quant.get("original_dtype", dtype)
    if stored not in _DTYPES or dtype not in _DTYPES:
        raise UnsupportedFormatError(
            f"model.json weight {name!r} has dtype {dtype!r}, which kerasweights does not read"
        )
    count = math.prod(shape)
    nbytes = count * np.dtype(_DTYPES[stored]).itemsize
    if nbytes > limits.max_array_bytes or count * np.dtype(_DTYPES[dtype]).itemsize > limits.max_array_bytes:
        raise LimitExceededError(
            f"model.json weight {name!r} declares {nbytes:,} bytes, over the limit of {limits.max_array_bytes:,}"
        )
    scale = minimum = 0.0
    if quant is not None and stored != "float16":
        given = (quant.get("scale"), quant.get("min"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in given):
            raise ConfigError(f"model.json weight {name!r} is quantized without a finite scale and min")
        scale, minimum = float(given[0]), float(given[1])  # type: ignore[arg-type]

    def read(index: Index) -> np.ndarray:
        data = group.read(offset, nbytes)
        values = np.frombuffer(data, dtype=np.dtype(_DTYPES[stored]).newbyteorder("<")).reshape(shape)
        if quant is not None:
            if stored == "float16":
                values = values.astype(_DTYPES[dtype])
            else:
                dequantized = values.astype(np.float32) * np.float32(scale) + np.float32(minimum)
                values = dequantized if dtype == "float32" else np.round(dequantized).astype(_DTYPES[dtype])
        else:
            values = values.astype(values.dtype.newbyteorder("="), copy=False)
        return values[(*index, Ellipsis)] if index else values

    array = StoredArray(
        key=f"group{g + 1}/{name}", stored_name=name, shape=tuple(shape), dtype=_DTYPES[dtype], _reader=read
    )
    return array, nbytes, stored if quant is not None else None


def _layer_entries(config: dict[str, Any]) -> list[Any]:
    inner = config.get("config")
    if isinstance(inner, list):  # Keras <= 2.2.2 Sequential
        return inner
    if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        return list(inner["layers"])
    return []


def _entry_name(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    inner = entry.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    name = name if name is not None else entry.get("name")
    return name if isinstance(name, str) else None


def _descendants(entry: dict[str, Any]) -> list[str]:
    names = []
    for child in _layer_entries(entry):
        name = _entry_name(child)
        if name is not None:
            names.append(name)
        if isinstance(child, dict):
            names += _descendants(child)
    return names


def _group_by_layer(arrays: list[StoredArray], config: dict[str, Any]) -> LegacyStorage:
    """The ``.h5`` layout: arrays per top-level layer, a nested model's under the model's name."""
    owner: dict[str, str] = {}
    order: list[str] = []
    for entry in _layer_entries(config):
        name = _entry_name(entry)
        if name is None:
            continue
        order.append(name)
        owner.setdefault(name, name)
        for inner in _descendants(entry):
            owner.setdefault(inner, name)
    layers: dict[str, list[StoredArray]] = {}
    for array in arrays:
        parts = array.stored_name.split("/")
        first = next((p for p in parts[:2] if p in owner), parts[0])  # Keras 3 Sequential names start with the model
        layers.setdefault(owner.get(first, first), []).append(array)
    names = [n for n in order if n in layers] + [n for n in layers if n not in order]
    return LegacyStorage(layer_names=names, layers=layers)
