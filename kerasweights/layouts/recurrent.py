"""SimpleRNN, GRU, LSTM, ConvLSTM and CuDNN layers: gate splits along the last axis.

Gate orders (keras/src/layers/rnn/{gru,lstm,conv_lstm}.py; Keras 2 keras/layers/recurrent.py):
GRU z (update), r (reset), h (candidate); LSTM i (input), f (forget), c (cell candidate),
o (output). Keras 1 "cpu"/"mem" implementations stored one array per gate (``W_z``,
``U_z``, ``b_z``...), LSTM in the order i, c, f, o.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import LayoutError
from ._base import Config, Context, Index, Part, Rule, Shape, Var, expect_shape, flag
from .keras import KERAS1_NAME, KERAS1_VARIABLES

GATES = {
    "SimpleRNN": (),
    "GRU": ("z", "r", "h"),
    "LSTM": ("i", "f", "c", "o"),
}
GATE_MEANINGS = {
    "z": "update gate",
    "r": "reset gate",
    "h": "candidate",
    "i": "input gate",
    "f": "forget gate",
    "c": "cell candidate",
    "o": "output gate",
}
SIGMOID_GATES = {"LSTM": ("i", "f", "o"), "GRU": ("z", "r")}
"""The gates computed with ``recurrent_activation`` (the others use ``activation``)."""
STATES = {"SimpleRNN": ("h",), "GRU": ("h",), "LSTM": ("h", "c")}
"""Each family's recurrent states, in the order Keras returns them."""
MATRIX_MEANINGS = {
    "kernel": "input weights",
    "recurrent_kernel": "recurrent weights",
    "bias": "bias",
    "recurrent_bias": "recurrent bias",
}
CUDNN_CONVERSION = {"kernel": "cudnn_input", "recurrent_kernel": "cudnn_recurrent"}
"""How CuDNNGRU/CuDNNLSTM (Keras 2, tf.keras 1.x) store each gate's block, and the conversion
tf_keras's loader applies (``hdf5_format._convert_rnn_weights``): cuDNN reads the block
flattened row-major as ``(units, in)``, so Keras's ``(in, units)`` matrix is
``block.T.reshape(block.shape, order="F")``; a recurrent block is transposed. Their biases:
CuDNNLSTM ``(8u,)`` = input then recurrent biases, summed into LSTM's one bias; CuDNNGRU
``(6u,)`` = ``GRU(reset_after=True)``'s two bias rows, flattened."""
COMPUTES_AS = {"CuDNNGRU": "GRU", "CuDNNLSTM": "LSTM"}
"""Layers Keras runs as another class: CuDNNGRU as GRU(reset_after=True), CuDNNLSTM as LSTM."""


def family(class_name: str) -> str:
    """``GRU`` for GRU/CuDNNGRU, ``LSTM`` for LSTM/CuDNNLSTM/ConvLSTM*, ``SimpleRNN``."""
    if "GRU" in class_name:
        return "GRU"
    if "LSTM" in class_name:
        return "LSTM"
    return "SimpleRNN"


def computes_as(class_name: str, config: Config) -> str:
    """The computation Keras runs a layer class as: ``GRU(reset_after=True)`` for CuDNNGRU and
    for GRU with ``reset_after``, ``LSTM`` for CuDNNLSTM; other classes are themselves."""
    base = COMPUTES_AS.get(class_name, class_name)
    if base == "GRU":
        return f"GRU(reset_after={class_name == 'CuDNNGRU' or reset_after(config)})"
    return base


def units_of(config: Config) -> int | None:
    for key in ("units", "filters", "output_dim", "nb_filter"):
        value = config.get(key)
        if isinstance(value, int):
            return value
    return None


def reset_after(config: Config) -> bool:
    # Absent before Keras 2.1.5, which meant the original (reset before) formulation.
    return bool(config.get("reset_after", False))


def meaning(var: str, gate: str | None, reset_after_bias: bool = False) -> str:
    what = MATRIX_MEANINGS[var]
    if var == "bias" and reset_after_bias:
        what = "input bias"
    return f"{GATE_MEANINGS[gate]}, {what}" if gate else what


def _is_per_gate(context: Context, n_gates: int) -> bool:
    names = context.stored_names
    return n_gates > 1 and len(names) == 3 * n_gates and all(KERAS1_NAME.search(n) for n in names)


def recurrent_variables(class_name: str) -> Callable[[Config, Context], list[Var]]:
    gates = GATES[family(class_name)]

    def variables(config: Config, context: Context) -> list[Var]:
        if _is_per_gate(context, len(gates)):
            out = []
            for stored in context.stored_names:
                match = KERAS1_NAME.search(stored)
                assert match is not None
                out.append(Var(f"{match.group(1)}_{match.group(2)}"))
            return out
        names = ["kernel", "recurrent_kernel"]
        if flag(config, "use_bias", True) or class_name.startswith("CuDNN"):
            names.append("bias")
        return [Var(n) for n in names]

    return variables


def recurrent_parts(class_name: str) -> Callable[[Config, dict[str, Shape], Context], list[Part]]:
    fam = family(class_name)
    gates = GATES[fam]
    convolutional = class_name.startswith("ConvLSTM")
    cudnn = class_name.startswith("CuDNN")

    def parts(config: Config, shapes: dict[str, Shape], context: Context) -> list[Part]:
        layer = str(config.get("name", class_name))
        if _is_per_gate(context, len(gates)):
            return _per_gate_parts(shapes)
        units = units_of(config)
        n = max(len(gates), 1)
        kernel = shapes.get("kernel")
        if kernel is None or "recurrent_kernel" not in shapes:
            raise LayoutError(
                f"layer {layer!r}: expected kernel and recurrent_kernel, found {', '.join(shapes) or 'nothing'}"
            )
        if units is None:
            units = shapes["recurrent_kernel"][-1] // n
        lead = [None] * (len(kernel) - 1)
        why = f"{'filters' if convolutional else 'units'}={units}"
        expect_shape(layer, "kernel", kernel, [*lead, n * units], why)
        expect_shape(layer, "recurrent_kernel", shapes["recurrent_kernel"], [*lead[1:], units, n * units], why)
        rows = len(kernel) - 1  # axes before the split axis
        out: list[Part] = []
        for var in ("kernel", "recurrent_kernel"):
            # cuDNN layers store each gate's block in cuDNN's memory layout (CUDNN_CONVERSION).
            convert = CUDNN_CONVERSION[var] if cudnn else ""
            out += _split(var, var, rows, gates, units, (), convert=convert)
        if "bias" not in shapes:
            return out
        bias = shapes["bias"]
        two_rows = fam == "GRU" and not cudnn and reset_after(config)
        if cudnn:
            expect_shape(
                layer, "bias", bias, [2 * n * units], f"{class_name} with units={units} (input and recurrent biases)"
            )
            if fam == "LSTM":  # an LSTM has one bias: Keras sums cuDNN's two
                out += _split("bias", "bias", 0, gates, units, (), plus=n * units)
            else:  # CuDNNGRU is GRU(reset_after=True): input and recurrent biases stay apart
                out += _split("bias", "bias", 0, gates, units, (), reset_after_bias=True)
                out += _split("recurrent_bias", "bias", 0, gates, units, (), offset=n * units)
        elif two_rows:
            expect_shape(layer, "bias", bias, [2, n * units], f"reset_after=True with units={units}")
            out += _split("bias", "bias", 0, gates, units, (0,), reset_after_bias=True)
            out += _split("recurrent_bias", "bias", 0, gates, units, (1,))
        else:
            extra = " and reset_after=False" if fam == "GRU" else ""
            expect_shape(layer, "bias", bias, [n * units], f"units={units}{extra}")
            out += _split("bias", "bias", 0, gates, units, ())
        return out

    return parts


def _split(
    name: str,
    var: str,
    rows: int,
    gates: tuple[str, ...],
    units: int,
    lead: tuple[int, ...],
    offset: int = 0,
    reset_after_bias: bool = False,
    plus: int | None = None,
    convert: str = "",
) -> list[Part]:
    """One part per gate, ``units`` wide along the last axis from ``offset``; ``plus``
    (an offset) adds a second block of the same variable."""
    full: Index = (*lead, *([slice(None)] * rows))
    if not gates:
        index: Index = (*full, slice(offset, offset + units)) if offset or lead else ()
        return [Part(name, var, index, meaning(name, None), convert=convert)]
    out = []
    for k, gate in enumerate(gates):
        second = None if plus is None else (*full, slice(plus + k * units, plus + (k + 1) * units))
        what = meaning(name, gate, reset_after_bias)
        if second is not None:
            what += " (cuDNN's input and recurrent biases, summed)"
        elif convert:
            what += " (converted from cuDNN's layout)"
        index = (*full, slice(offset + k * units, offset + (k + 1) * units))
        out.append(Part(f"{name}_{gate}", var, index, what, gate, second, convert))
    return out


def _per_gate_parts(shapes: dict[str, Shape]) -> list[Part]:
    out = []
    for stored in shapes:
        letter, gate = stored.split("_")
        var = KERAS1_VARIABLES[letter]
        out.append(Part(f"{var}_{gate}", stored, (), meaning(var, gate), gate))
    return out


def _rule(class_name: str, groups: tuple[str, ...] = ("", "cell")) -> Rule:
    return Rule(
        class_names=(class_name,),
        variables=recurrent_variables(class_name),
        parts=recurrent_parts(class_name),
        v3_groups=groups,
        description=f"{class_name} gates {', '.join(GATES[family(class_name)]) or '(none)'}",
    )


RECURRENT_CLASSES = ("SimpleRNN", "GRU", "LSTM", "CuDNNGRU", "CuDNNLSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")

# -- generic RNN(cell) ---------------------------------------------------------------------------

CELL_CLASSES = {"SimpleRNNCell": "SimpleRNN", "GRUCell": "GRU", "LSTMCell": "LSTM"}
"""Keras's built-in cells and the layer each computes as inside ``RNN`` (same variables, same
equations: keras/src/layers/rnn/{simple_rnn,gru,lstm}.py define the layer as ``RNN(cell)``).
tf.keras 2.x also wrote ``GRUCellV2``/``LSTMCellV2`` (tf.keras 1.x: ``...V1``); same layouts."""
STACKED_CELLS = "StackedRNNCells"
_CELL_MODULES = ("keras", "tf_keras", "tensorflow")


def cell_entry(config: Config) -> tuple[str, Config] | None:
    """``(class_name, config)`` of an ``RNN`` config's ``cell`` (``V1``/``V2`` suffix removed)."""
    cell = config.get("cell")
    if not isinstance(cell, dict) or not isinstance(cell.get("class_name"), str):
        return None
    inner = cell.get("config")
    name = str(cell["class_name"])
    if name[-2:] in ("V1", "V2") and name[:-2] in CELL_CLASSES:
        name = name[:-2]
    module = cell.get("module")
    if isinstance(module, str) and module and module.split(".")[0] not in _CELL_MODULES:
        name = f"{module}.{name}"  # a user's class that happens to share a Keras name
    return name, inner if isinstance(inner, dict) else {}


def runs_as(class_name: str, config: Config) -> tuple[str, Config] | None:
    """The recurrent class and config Keras computes a layer as, or ``None`` if not recurrent.

    ``RNN(LSTMCell(...))`` runs as ``LSTM`` with the cell's config (units, activations, use_bias)
    and the RNN's own (return_sequences, go_backwards...); a cell of ``StackedRNNCells`` (shown
    as a layer of its own) runs as its layer class. Other recurrent classes are themselves.
    """
    if class_name in RECURRENT_CLASSES:
        return class_name, config
    if class_name in CELL_CLASSES:
        return CELL_CLASSES[class_name], config
    if class_name == "RNN":
        entry = cell_entry(config)
        if entry is not None and entry[0] in CELL_CLASSES:
            own = {k: v for k, v in config.items() if k != "cell"}
            return CELL_CLASSES[entry[0]], {**entry[1], **own}
    return None


def stacked_cells(config: Config) -> list[tuple[str, Config]] | None:
    """The cells of an ``RNN(StackedRNNCells([...]))`` config, in order, or ``None``."""
    entry = cell_entry(config)
    if entry is None or entry[0] != STACKED_CELLS:
        return None
    out = []
    for cell in entry[1].get("cells", []):
        one = cell_entry({"cell": cell})
        if one is not None:
            out.append(one)
    return out


def custom_cell(config: Config) -> str | None:
    """The class of an ``RNN`` config's cell when Keras does not ship it (its weights stay unsplit)."""
    entry = cell_entry(config)
    if entry is None or entry[0] in CELL_CLASSES or entry[0] == STACKED_CELLS:
        return None
    return entry[0]


def _rnn_rule() -> Rule:
    """``RNN`` with a built-in cell: the rule of the layer class the cell computes as."""
    rules = {cls: _rule(cls) for cls in GATES}

    def view(config: Config) -> tuple[Rule | None, Config]:
        found = runs_as("RNN", config)
        return (rules[found[0]], found[1]) if found else (None, config)

    def variables(config: Config, context: Context) -> list[Var]:
        rule, cell_config = view(config)
        return [] if rule is None else rule.variables(cell_config, context)  # stacked: the cells own them

    def parts(config: Config, shapes: dict[str, Shape], context: Context) -> list[Part]:
        rule, cell_config = view(config)
        return [] if rule is None else rule.split(cell_config, shapes, context)

    return Rule(("RNN",), variables, parts, v3_groups=("", "cell"), description="RNN with a built-in cell")


def _cell_rule(cell_class: str) -> Rule:
    base = _rule(CELL_CLASSES[cell_class], groups=("",))
    return Rule((cell_class,), base.variables, base.parts, base.v3_groups, description=f"{cell_class} in RNN")


RULES = [_rule(name) for name in RECURRENT_CLASSES] + [_rnn_rule()] + [_cell_rule(c) for c in CELL_CLASSES]
