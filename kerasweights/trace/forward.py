"""Feed a model's input to one of its layers: run the layers before it in numpy.

Only simple layers run (identity layers, Masking, Embedding, Dense, Activation,
TimeDistributed over those, recurrent layers and Bidirectional via :mod:`.trace`, nested
Sequential/Functional models made of them), along a single chain of tensors from the model
input. Masks travel as Keras propagates them: Masking and ``Embedding(mask_zero=True)``
make one, recurrent layers returning sequences pass it on, the others pass it unchanged.
Anything else raises :class:`UnsupportedLayerError` naming the layer that cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError, KerasWeightsError, TraceInputError, UnsupportedLayerError
from ..layouts.keras import IDENTITY_AT_INFERENCE
from ..model import Layer, Model
from . import activations
from .recurrence import is_traceable, returns_sequences, trace

Array = np.ndarray
Flow = tuple[Array, "Array | None"]  # a tensor and its Keras mask (bool (batch, time)) or None

RUNNABLE = "Embedding, Masking, Dense, Activation, TimeDistributed(Dense), Dropout and noise layers, recurrent layers"


def trace_from_input(
    model: Model,
    path: str,
    x: Any,
    initial_state: Any = None,
    mask: Any = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Array]:
    """:func:`~kerasweights.trace.trace` the layer at ``path`` fed by the model's input ``x``.

    ``x`` is batch-first, as the model takes it; ``mask`` (optional) is a mask on the model
    input, propagated as Keras would.
    """
    target = model.layer(path)
    try:
        inputs, flow_mask = layer_input(model, path, x, mask)
    except KerasWeightsError as exc:
        raise exc.with_path(model.path) from None
    return trace(target, inputs, initial_state, flow_mask, progress=progress)


def layer_input(model: Model, path: str, x: Any, mask: Any = None) -> Flow:
    """The input (and mask) the layer at ``path`` receives when the model is fed ``x``."""
    target = model.layer(path)
    if not model.has_config:
        raise UnsupportedLayerError(
            f"cannot feed layer {target.path!r} from the model input: the file has no model config, so the layers before it are unknown"
        )
    flow: Flow = (np.asarray(x), None if mask is None else np.asarray(mask, dtype=bool))
    for layer in _chain(model.root, target):
        flow = run_layer(layer, flow, target)
    return flow


def model_input_ndim(model: Model) -> int | None:
    """Axes of the model's input including batch, from its first InputLayer's shape (if stated)."""
    config = model.root.config
    for entry in config.get("layers", []) if isinstance(config, dict) else []:
        inner = entry.get("config", {}) if isinstance(entry, dict) else {}
        shape = inner.get("batch_shape") or inner.get("batch_input_shape")
        if isinstance(shape, list):
            return len(shape)
    return None


# -- which layers run, in order ----------------------------------------------------------------


def _contains(layer: Layer, target: Layer) -> bool:
    return layer is target or any(_contains(c, target) for c in layer.children)


def _chain(container: Layer, target: Layer) -> list[Layer]:
    """Layers to run, in order, so that the next one is ``target`` (or a wrapper holding it)."""
    holder = next((c for c in container.children if _contains(c, target)), None)
    if holder is None:
        raise UnsupportedLayerError(f"layer {target.path!r} is not reachable from the model's input")
    if container.class_name == "Sequential" or not isinstance(container.config.get("layers"), list):
        before = container.children[: container.children.index(holder)]
    else:
        before = _functional_chain(container, holder)
    if holder is target:
        return before
    if holder.kind == "model":
        return before + _chain(holder, target)
    if holder.class_name == "Bidirectional" and target in holder.children:
        return before  # each half gets the wrapper's input
    raise UnsupportedLayerError(
        f"cannot feed layer {target.path!r} from the model input: it sits inside {holder.class_name} {holder.path!r}"
    )


def _functional_chain(container: Layer, last: Layer) -> list[Layer]:
    """The layers feeding ``last`` in a Functional graph, first to last (one input each)."""
    by_name = {c.name: c for c in container.children}
    graph = {
        str(e.get("config", {}).get("name", e.get("name"))): e
        for e in container.config["layers"]
        if isinstance(e, dict)
    }
    chain: list[Layer] = []  # last to first
    current = last.name
    seen: set[str] = set()  # a hostile config can make a layer feed itself, or an earlier one
    while True:
        if current in seen:
            raise ConfigError(
                f"the graph of {container.path or 'the model'!r} has a cycle: layer {current!r} feeds itself "
                "through its inbound_nodes"
            )
        seen.add(current)
        entry = graph.get(current)
        if entry is None:
            raise UnsupportedLayerError(f"layer {current!r} is not in the config of {container.path or 'the model'!r}")
        if entry.get("class_name") == "InputLayer":
            chain.reverse()
            return chain
        sources = _inbound(entry)
        if len(sources) != 1:
            what = "no inputs" if not sources else f"{len(sources)} inputs ({', '.join(s[0] for s in sources)})"
            raise UnsupportedLayerError(f"cannot follow the model input through layer {current!r}: it has {what}")
        name, tensor = sources[0]
        if tensor != 0:
            raise UnsupportedLayerError(
                f"cannot follow the model input through layer {name!r}: output {tensor} of it is used, only output 0 is supported"
            )
        source = graph.get(name)
        if source is not None and source.get("class_name") != "InputLayer":
            if name not in by_name:
                raise UnsupportedLayerError(f"layer {name!r} feeds {current!r} but is not a layer kerasweights knows")
            chain.append(by_name[name])
        current = name


def _inbound(entry: dict[str, Any]) -> list[tuple[str, int]]:
    """Distinct (layer name, tensor index) pairs feeding a layer's first call."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) > 1:
        name = entry.get("config", {}).get("name")
        raise UnsupportedLayerError(
            f"layer {name!r} is called {len(nodes)} times in the model; cannot tell which call to follow"
        )
    found: list[tuple[str, int]] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            history = (
                value.get("config", {}).get("keras_history") if value.get("class_name") == "__keras_tensor__" else None
            )
            if isinstance(history, list) and len(history) == 3:  # Keras 3: {"keras_history": [name, node, tensor]}
                found.append((str(history[0]), int(history[2])))
            else:
                for v in value.values():
                    visit(v)
        elif isinstance(value, list):
            # Keras 1/2: [name, node_index, tensor_index(, kwargs)]
            if (
                len(value) in (3, 4)
                and isinstance(value[0], str)
                and isinstance(value[1], int)
                and isinstance(value[2], int)
            ):
                found.append((value[0], value[2]))
                if len(value) == 4:
                    visit(value[3])
            else:
                for v in value:
                    visit(v)

    visit(nodes[0] if nodes else [])
    return list(dict.fromkeys(found))


# -- running one layer -----------------------------------------------------------------------------


def _unsupported(layer: Layer, target: Layer, why: str = "") -> UnsupportedLayerError:
    reason = why or f"{layer.class_name} cannot run in numpy (kerasweights runs {RUNNABLE} and nested models of them)"
    return UnsupportedLayerError(
        f"cannot feed layer {target.path!r} from the model input: layer {layer.path!r}: {reason}"
    )


def run_layer(layer: Layer, flow: Flow, target: Layer) -> Flow:
    """Apply one layer (inference mode) to a tensor and its mask."""
    x, mask = flow
    name, config, major = layer.class_name, layer.config, layer.context.keras_major
    if layer.kind == "model":
        for child in _chain_to_output(layer, target):
            x, mask = run_layer(child, (x, mask), target)
        return x, mask
    if name in IDENTITY_AT_INFERENCE:
        return x, mask
    if name == "Masking":
        keep = np.any(x != config.get("mask_value", 0.0), axis=-1)
        return x * keep[..., None], keep
    if name == "Embedding":
        return _embedding(layer, x, target)
    if name in ("Dense", "Activation"):
        if x.dtype.kind not in "fiub":
            raise TraceInputError(f"layer {layer.path!r}: input must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float64)
        if name == "Dense":
            x = x @ _read(layer, "kernel") + (_read(layer, "bias") if config.get("use_bias", True) else 0.0)
        return activations.get(config.get("activation", "linear"), major, layer.path)(x), mask
    if name == "TimeDistributed":
        inner = layer.children[0] if layer.children else None
        if inner is None or not (
            inner.class_name in ("Dense", "Activation") or inner.class_name in IDENTITY_AT_INFERENCE
        ):
            raise _unsupported(
                layer, target, f"TimeDistributed({inner.class_name if inner else '?'}) cannot run in numpy here"
            )
        return run_layer(inner, (x, None), target)[0], mask
    if is_traceable(layer):
        return _recurrent(layer, x, mask, target)
    raise _unsupported(layer, target)


def _read(layer: Layer, name: str) -> Array:
    return layer.matrix(name).read().astype(np.float64)


def _embedding(layer: Layer, x: Array, target: Layer) -> Flow:
    if x.dtype.kind == "f":
        if not np.all(np.equal(np.mod(x, 1), 0)):
            raise TraceInputError(f"layer {layer.path!r} (Embedding) needs integer token ids, got non-integer values")
        x = x.astype(np.int64)
    if x.dtype.kind not in "iub":
        raise TraceInputError(f"layer {layer.path!r} (Embedding) needs integer token ids, got dtype {x.dtype}")
    table = _read(layer, "embeddings")
    if x.size and (x.min() < 0 or x.max() >= table.shape[0]):
        raise TraceInputError(
            f"layer {layer.path!r} (Embedding): token ids must lie in [0, {table.shape[0]}), got {x.min()}..{x.max()}"
        )
    mask = x != 0 if layer.config.get("mask_zero", False) else None
    return table[x], mask


def _recurrent(layer: Layer, x: Array, mask: Array | None, target: Layer) -> Flow:
    if layer.class_name == "Bidirectional" and layer.config.get("merge_mode", "concat") is None:
        raise _unsupported(layer, target, "merge_mode=None returns two tensors")
    output = trace(layer, x, mask=mask)["output"].astype(np.float64)
    # Keras passes the mask on unchanged with sequences (also for go_backwards), else drops it.
    return output, mask if returns_sequences(layer) else None


def _chain_to_output(model_layer: Layer, target: Layer) -> list[Layer]:
    """Every layer of a nested model, in order, from its input to its (single) output."""
    config = model_layer.config
    if model_layer.class_name == "Sequential" or not isinstance(config.get("output_layers"), list):
        return list(model_layer.children)
    outputs = config["output_layers"]
    first = outputs[0] if outputs and isinstance(outputs[0], list) else outputs
    names = [c.name for c in model_layer.children]
    if not first or first[0] not in names or (outputs and isinstance(outputs[0], list) and len(outputs) > 1):
        raise _unsupported(model_layer, target, "a nested model with several outputs cannot run in numpy here")
    last = model_layer.children[names.index(first[0])]
    return [*_functional_chain(model_layer, last), last]
