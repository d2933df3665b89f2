"""Keras layers as PyTorch ``state_dict`` tensors: recurrent layers for ``torch.nn.RNN`` / ``GRU`` /
``LSTM`` here, Dense, Embedding, convolutions and normalizations in :mod:`.torch_layers`.

Pure numpy: torch is never imported. Keras computes ``x @ kernel`` with gates z, r, h (GRU) or
i, f, c, o (LSTM) side by side along the last axis; torch computes ``weight_ih @ x`` with gates
r, z, n and i, f, g, o stacked along the first axis, and always has two biases (``bias_ih``,
``bias_hh``). Only configs whose torch module computes exactly what Keras computes are exported
unless ``force=True``.

Decision: ``use_bias=False`` is written as zero biases with ``bias=True`` in the constructor
arguments (and a warning), so every exported module loads the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import KerasWeightsError, LayoutError, UnsupportedLayerError
from ..layouts import family, runs_as
from ..layouts.keras import default_recurrent_activation
from ..layouts.recurrent import reset_after, stacked_cells
from ..model import Layer, Matrix, Model
from . import torch_layers

__all__ = [
    "EXPORTABLE_CLASSES",
    "TorchModule",
    "TorchPort",
    "layer_to_torch",
    "refusal_reasons",
    "to_torch",
    "torch_port",
]

RECURRENT_CLASSES = ("SimpleRNN", "GRU", "LSTM", "CuDNNGRU", "CuDNNLSTM")
EXPORTABLE_CLASSES = (*RECURRENT_CLASSES, *torch_layers.CLASSES)
MODULES = {"SimpleRNN": "RNN", "GRU": "GRU", "LSTM": "LSTM"}
# Keras gate letters in torch's order: GRU r, z, n(=h); LSTM i, f, g(=c), o.
TORCH_GATE_ORDER = {"SimpleRNN": ("",), "GRU": ("r", "z", "h"), "LSTM": ("i", "f", "c", "o")}
_FORCE_HINT = "pass force=True to write {} anyway"
_BACKWARDS = "go_backwards=True (torch has no backwards-only module)"
_UNKNOWN = "no layer config in the file (activations and go_backwards unknown: pass config=)"


@dataclass
class TorchModule:
    """One torch.nn module's worth of tensors, keyed ``<layer path with / -> .>.<parameter>``."""

    layer_path: str
    module: str  # the torch.nn class: "GRU", "Linear", "Conv2d", "BatchNorm1d"...
    kwargs: dict[str, Any]
    tensors: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what to do around the module (permute, activation)

    @property
    def prefix(self) -> str:
        """``bi_g.`` for ``bi_g``; ``encoder.lstm_nb.`` for ``encoder/lstm_nb``."""
        return self.layer_path.replace("/", ".") + "."

    def state_dict(self) -> dict[str, np.ndarray]:
        """The tensors without the prefix: what ``module.load_state_dict`` expects."""
        return {key.removeprefix(self.prefix): value for key, value in self.tensors.items()}

    def constructor(self) -> str:
        """``torch.nn.GRU(input_size=4, hidden_size=5, ...)``: how to build the module."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"torch.nn.{self.module}({args})"


@dataclass
class _Direction:
    """One Keras recurrent layer as one direction of a torch module."""

    module: str
    input_size: int
    hidden_size: int
    nonlinearity: str
    params: dict[str, np.ndarray]  # weight_ih, weight_hh, bias_ih, bias_hh
    batch_first: bool
    notes: list[str]


@dataclass
class TorchPort:
    """A whole model's port: one module per exported layer, and the layers left out with why."""

    modules: list[TorchModule]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (layer path, reason)


def to_torch(
    model: Model, layer: str | None = None, force: bool = False, skip_inexact: bool = False
) -> list[TorchModule]:
    """torch.nn modules for one layer (by path) or for every weighted layer of ``model``
    (:func:`torch_port` says which layers ``skip_inexact`` left out)."""
    return torch_port(model, layer, force=force, skip_inexact=skip_inexact).modules


def torch_port(model: Model, layer: str | None = None, force: bool = False, skip_inexact: bool = False) -> TorchPort:
    """Port one layer (by path) or the whole model to torch.nn modules.

    With ``layer=None``: every layer with weights, in model order, nested models and wrappers
    (TimeDistributed) included; a Bidirectional's halves are exported only as part of it.
    Recurrent layers become ``RNN``/``GRU``/``LSTM``; Dense ``Linear``, Embedding ``Embedding``,
    Conv1D/2D/3D ``Conv1d/2d/3d``, LayerNormalization ``LayerNorm``, BatchNormalization
    ``BatchNorm1d/2d/3d``. A layer torch would compute differently (or has no counterpart for)
    raises :class:`UnsupportedLayerError` naming every such layer, unless ``skip_inexact``
    (they are left out and listed in ``skipped``) or ``force`` (layers with a counterpart are
    written anyway, each with one warning).
    """
    try:
        if layer is not None:
            target = model.layer(layer)
            parent = model.layer(target.path.rsplit("/", 1)[0]) if "/" in target.path else None
            if _backwards_stack(parent) and not force:
                assert parent is not None
                raise UnsupportedLayerError(
                    f"layer {target.path!r} is a cell of {parent.path!r}, which runs go_backwards=True "
                    f"(torch has no backwards-only module); {_FORCE_HINT.format('it')}"
                )
            if not _exportable(target):
                raise UnsupportedLayerError(f"{_no_counterpart(target)}; exportable layers here: {_names(model)}")
            return TorchPort([layer_to_torch(target, force=force, input_rank=_input_ranks(model).get(target.name))])
        found = list(_candidates(model.layers))
        if not any(_exportable(l) for l in found):
            raise UnsupportedLayerError(f"no layer to export to PyTorch; {_SUPPORTED}")
        reasons = {l.path: _reasons(l) for l in found}
        blocking = [l for l in found if reasons[l.path] and not (force and _exportable(l))]
        if blocking and not skip_inexact:
            which = "it" if len(blocking) == 1 else "them"
            listed = "; ".join(f"layer {l.path!r}: {', '.join(reasons[l.path])}" for l in blocking)
            hint = f"pass skip_inexact=True to leave {which} out"
            if any(_exportable(l) for l in blocking):
                hint = f"{_FORCE_HINT.format(which)}, skip_inexact=True to leave {which} out"
            raise UnsupportedLayerError(f"cannot export to PyTorch exactly: {listed} ({hint}, or layer= to pick one)")
        skipped = [(l.path, ", ".join(reasons[l.path])) for l in blocking]
        ranks = _input_ranks(model)
        modules = [layer_to_torch(l, force=force, input_rank=ranks.get(l.name)) for l in found if l not in blocking]
        return TorchPort(modules, skipped)
    except KerasWeightsError as exc:
        raise exc.with_path(model.path) from None


def _input_ranks(model: Model) -> dict[str, int]:
    """Layer name -> input rank (batch included) from the ``build_config`` Keras 3 writes into
    ``.keras`` configs; names that appear with different ranks (nested models) are left out."""
    found: dict[str, set[int]] = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            inner, build = value.get("config"), value.get("build_config")
            if isinstance(inner, dict) and isinstance(build, dict) and isinstance(inner.get("name"), str):
                shape = build.get("input_shape")
                if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
                    found.setdefault(inner["name"], set()).add(len(shape))
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    visit(model.config)
    return {name: next(iter(ranks)) for name, ranks in found.items() if len(ranks) == 1}


def _backwards_stack(layer: Layer | None) -> bool:
    """An ``RNN(StackedRNNCells)`` with ``go_backwards``: one module per cell cannot express it."""
    return (
        layer is not None
        and layer.class_name == "RNN"
        and stacked_cells(layer.config) is not None
        and bool(layer.config.get("go_backwards"))
    )


def _reasons(layer: Layer) -> list[str]:
    if _backwards_stack(layer):
        return [f"{_BACKWARDS}, on a stack of cells exported one module per cell"]
    if not _exportable(layer):
        return [_no_counterpart_reason(layer)]
    return refusal_reasons(layer)


def layer_to_torch(layer: Layer, force: bool = False, input_rank: int | None = None) -> TorchModule:
    """The torch.nn module for one layer (recurrent, Bidirectional, or of :data:`torch_layers.CLASSES`);
    ``input_rank`` (batch included), when known, picks ``BatchNorm1d``/``2d``/``3d``."""
    if not _exportable(layer):
        raise UnsupportedLayerError(_no_counterpart(layer))
    reasons = refusal_reasons(layer)
    if reasons and not force:
        raise UnsupportedLayerError(
            f"layer {layer.path!r} cannot be exported to PyTorch exactly: {', '.join(reasons)} "
            f"({_FORCE_HINT.format('it')})"
        )
    warnings = [_forced(layer, reasons)] if reasons else []
    if layer.class_name in torch_layers.CLASSES:
        try:
            converted = torch_layers.convert(layer, input_rank)
        except (KeyError, IndexError, ValueError) as exc:
            raise LayoutError(f"layer {layer.path!r}: its weights do not fit {layer.class_name}: {exc}") from None
        prefix = layer.path.replace("/", ".") + "."
        tensors = {prefix + k: v for k, v in converted.params.items()}
        return TorchModule(layer.path, converted.module, converted.kwargs, tensors, warnings, converted.notes)
    if layer.class_name == "Bidirectional":
        forward, backward = (_direction(half) for half in layer.children)
        _same_shape(layer, forward, backward)
        params = {f"{k}_l0": v for k, v in forward.params.items()}
        params |= {f"{k}_l0_reverse": v for k, v in backward.params.items()}
        notes = forward.notes + [n for n in backward.notes if n not in forward.notes]
        notes += _merge_notes(layer, forward.hidden_size)
        return _module(layer, forward, params, True, warnings + notes)
    one = _direction(layer)
    return _module(layer, one, {f"{k}_l0": v for k, v in one.params.items()}, False, warnings + one.notes)


def refusal_reasons(layer: Layer) -> list[str]:
    """Why torch cannot reproduce this layer exactly (empty when it can)."""
    if layer.class_name in torch_layers.CLASSES:
        return torch_layers.inexact_reasons(layer)
    if layer.class_name != "Bidirectional":
        return _leaf_reasons(layer, backward_ok=False)
    forward, backward = layer.children
    # Halves that differ otherwise (units, tanh vs relu) fail in layer_to_torch: no one module fits.
    reasons = [f"{forward.name}: {r}" for r in _leaf_reasons(forward, backward_ok=False)]
    return reasons + [f"{backward.name}: {r}" for r in _leaf_reasons(backward, backward_ok=True)]


def _forced(layer: Layer, reasons: list[str]) -> str:
    if all(r.endswith(_UNKNOWN) for r in reasons):
        outcome = "assumed Keras's defaults (tanh, sigmoid gates, go_backwards=False)"
    elif all(r.endswith(_BACKWARDS) for r in reasons):
        outcome = "feed it the input reversed in time (x.flip(1)) to get Keras's outputs"
    else:
        outcome = "the torch module will not reproduce Keras's outputs"
    return f"layer {layer.path!r}: forced export although {', '.join(reasons)}; {outcome}"


# -- checks -----------------------------------------------------------------------------


def _leaf_reasons(layer: Layer, backward_ok: bool) -> list[str]:
    class_name, config = _view(layer)
    fam, cudnn = family(class_name), class_name.startswith("CuDNN")
    reasons = []
    if layer.inferred:
        reasons.append(_UNKNOWN)
    if fam == "GRU" and not cudnn and not reset_after(config):
        reasons.append(
            "reset_after=False (torch.nn.GRU computes only the reset_after=True form, "
            "which applies the reset gate after the recurrent matmul)"
        )
    if layer.inferred:
        return reasons  # inferred layers are assumed to use Keras's defaults
    activation = "tanh" if cudnn else _activation(_cfg(layer, "activation"))  # CuDNN: always tanh/sigmoid
    allowed = ("tanh", "relu") if fam == "SimpleRNN" else ("tanh",)
    if activation not in allowed:
        reasons.append(f"activation={activation!r} (torch.nn.{MODULES[fam]} supports only {' or '.join(allowed)})")
    if fam != "SimpleRNN" and not cudnn:
        recurrent = _activation(_cfg(layer, "recurrent_activation"))
        if recurrent != "sigmoid":
            reasons.append(f"recurrent_activation={recurrent!r} (torch.nn.{MODULES[fam]} gates use sigmoid)")
    go_backwards = bool(_cfg(layer, "go_backwards"))
    if go_backwards and not backward_ok:
        reasons.append(_BACKWARDS)
    elif backward_ok and not go_backwards:
        reasons.append("go_backwards=False in the backward layer of a Bidirectional")
    return reasons


def _cfg(layer: Layer, key: str) -> Any:
    """A config value with Keras's defaults, reading Keras 1 names too."""
    config = _view(layer)[1]
    if key == "recurrent_activation":
        value = config.get("recurrent_activation", config.get("inner_activation"))
        if value is None and "recurrent_activation" not in config and "inner_activation" not in config:
            return default_recurrent_activation(layer.context.keras_version, layer.context.keras_major)
        return value
    if key == "activation":
        return config.get("activation", "tanh")
    if key == "use_bias":
        return config.get("use_bias", True) is not False
    if key == "reset_after":
        return reset_after(config)
    return config.get(key)


def _activation(value: Any) -> str:
    """``tanh`` for "tanh", {"config": "tanh", ...} or "keras.activations.tanh"; None is linear."""
    if isinstance(value, dict):
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    if value is None:
        return "linear"
    return str(value).rsplit(".", 1)[-1].lower()


_SUPPORTED = (
    "kerasweights ports SimpleRNN, GRU, LSTM, CuDNNGRU, CuDNNLSTM, Bidirectional wrappers of them, Dense, "
    "Embedding, Conv1D/2D/3D, LayerNormalization and BatchNormalization"
)


def _exportable(layer: Layer) -> bool:
    if layer.class_name == "Bidirectional":
        return len(layer.children) == 2 and all(_recurrent(c) for c in layer.children)
    return layer.class_name in torch_layers.CLASSES or _recurrent(layer)


def _recurrent(layer: Layer) -> bool:
    """A layer torch.nn.RNN/GRU/LSTM can hold: also ``RNN(LSTMCell)`` and a stacked RNN's cells."""
    found = runs_as(layer.class_name, layer.config)
    return found is not None and found[0] in RECURRENT_CLASSES


def _view(layer: Layer) -> tuple[str, dict[str, Any]]:
    """The class and config Keras computes ``layer`` as: ``RNN(LSTMCell)`` is an ``LSTM``."""
    return runs_as(layer.class_name, layer.config) or (layer.class_name, layer.config)


def _what(layer: Layer) -> str:
    if layer.class_name == "Bidirectional":
        return f"Bidirectional of {', '.join(sorted({c.class_name for c in layer.children})) or 'nothing'}"
    return layer.class_name


def _no_counterpart_reason(layer: Layer) -> str:
    return f"{_what(layer)} has no torch.nn counterpart here"


def _no_counterpart(layer: Layer) -> str:
    return f"layer {layer.path!r} is a {_what(layer)}, which has no torch.nn counterpart here ({_SUPPORTED})"


def _candidates(layers: list[Layer]) -> Iterator[Layer]:
    """Layers that become one module each, or that hold weights no module takes."""
    for layer in layers:
        if _backwards_stack(layer):
            yield layer  # its cells would each run forwards in torch: refused or skipped as one
        elif _exportable(layer) or layer.class_name == "Bidirectional":
            yield layer  # a Bidirectional's halves are part of its module
        elif layer.kind == "layer" and layer.weights:
            yield layer  # weighted, with no counterpart: refused or skipped by name
        else:
            yield from _candidates(layer.children)


def _names(model: Model) -> str:
    return ", ".join(l.path for l in _candidates(model.layers) if _exportable(l)) or "none"


# -- tensors ------------------------------------------------------------------------------


def _direction(layer: Layer) -> _Direction:
    fam = family(_view(layer)[0])
    matrices = layer.matrices()
    gates = TORCH_GATE_ORDER[fam]

    def stacked(var: str) -> np.ndarray | None:
        names = [f"{var}_{g}" if g else var for g in gates]
        if var.endswith("bias") and not any(n in matrices for n in names):
            return None
        return np.concatenate([_matrix(layer, matrices, n).read() for n in names], axis=-1)

    kernel, recurrent = stacked("kernel"), stacked("recurrent_kernel")
    assert kernel is not None and recurrent is not None
    hidden = recurrent.shape[0]
    zeros = np.zeros(len(gates) * hidden, dtype=kernel.dtype)
    bias, recurrent_bias = stacked("bias"), stacked("recurrent_bias")
    notes = []
    if bias is None:
        notes.append(
            f"layer {layer.path!r}: use_bias=False, so bias_ih and bias_hh are zeros (keep them at zero if you train)"
        )
    params = {
        "weight_ih": np.ascontiguousarray(kernel.T),  # Keras x @ W == torch W.T x
        "weight_hh": np.ascontiguousarray(recurrent.T),
        "bias_ih": zeros.copy() if bias is None else np.array(bias),
        # LSTM/SimpleRNN have one bias: torch's second (recurrent) bias stays zero.
        "bias_hh": zeros.copy() if recurrent_bias is None else np.array(recurrent_bias),
    }
    nonlinearity = _activation(_cfg(layer, "activation")) if fam == "SimpleRNN" and not layer.inferred else "tanh"
    return _Direction(
        module=MODULES[fam],
        input_size=int(kernel.shape[0]),
        hidden_size=int(hidden),
        nonlinearity=nonlinearity if nonlinearity in ("tanh", "relu") else "tanh",
        params=params,
        batch_first=not _cfg(layer, "time_major"),
        notes=notes,
    )


def _matrix(layer: Layer, matrices: dict[str, Matrix], name: str) -> Matrix:
    if name not in matrices:
        raise LayoutError(f"layer {layer.path!r}: no {name} among its weights ({', '.join(matrices) or 'none'})")
    return matrices[name]


def _same_shape(layer: Layer, forward: _Direction, backward: _Direction) -> None:
    f = (forward.module, forward.input_size, forward.hidden_size, forward.nonlinearity)
    b = (backward.module, backward.input_size, backward.hidden_size, backward.nonlinearity)
    if f != b:
        raise UnsupportedLayerError(
            f"layer {layer.path!r}: forward and backward layers are different modules "
            f"({_describe(forward)} vs {_describe(backward)}); a bidirectional torch module needs one"
        )


def _describe(d: _Direction) -> str:
    extra = f", {d.nonlinearity}" if d.module == "RNN" else ""
    return f"{d.module} {d.input_size}->{d.hidden_size}{extra}"


def _merge_notes(layer: Layer, hidden: int) -> list[str]:
    mode = layer.config.get("merge_mode", "concat")
    if mode == "concat" or layer.inferred:
        return []
    how = {
        "sum": "add its two halves",
        "mul": "multiply its two halves",
        "ave": "average its two halves",
        None: "split it into the two outputs Keras returns",
    }.get(mode, f"combine its two halves as merge_mode={mode!r} does")
    message = (
        f"layer {layer.path!r}: merge_mode={mode!r}; torch concatenates the directions, so {how} "
        f"(output[..., :{hidden}] and output[..., {hidden}:])"
    )
    return [message]


def _module(
    layer: Layer, d: _Direction, params: dict[str, np.ndarray], bidirectional: bool, warnings: list[str]
) -> TorchModule:
    kwargs: dict[str, Any] = {"input_size": d.input_size, "hidden_size": d.hidden_size}
    if d.module == "RNN":
        kwargs["nonlinearity"] = d.nonlinearity
    kwargs |= {"bias": True, "batch_first": d.batch_first, "bidirectional": bidirectional}
    prefix = layer.path.replace("/", ".") + "."
    return TorchModule(layer.path, d.module, kwargs, {prefix + k: v for k, v in params.items()}, warnings)
