"""Run a recurrent layer in numpy and record every gate at every time step.

:mod:`.recurrence` holds Keras's cell equations and the time loop, :mod:`.forward` feeds a
layer from the model's input, :mod:`.activations` names Keras's activations in numpy, and
:mod:`.plot` draws the traced gates. The public names live here.
"""

from __future__ import annotations

from ..errors import TraceInputError
from ..layouts.recurrent import STATES
from .recurrence import (
    MERGE_MODES,
    OUTPUTS,
    RECURRENT,
    conv,
    gate_ranges,
    is_traceable,
    merge,
    returns_sequences,
    state_names,
    trace,
)

__all__ = [
    "MERGE_MODES",
    "OUTPUTS",
    "RECURRENT",
    "STATES",
    "TraceInputError",
    "conv",
    "gate_ranges",
    "is_traceable",
    "merge",
    "returns_sequences",
    "state_names",
    "trace",
]
