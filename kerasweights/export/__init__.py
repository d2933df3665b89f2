"""Write a model's weights out: :mod:`.arrays` (``.npz``/``.safetensors``) and :mod:`.torch` (PyTorch).

:mod:`.torch` is imported on first use only (it is the only part that knows PyTorch's layouts).
"""

from __future__ import annotations

from .arrays import FORMATS, Selection, format_for, select, write, write_npz, write_safetensors

__all__ = ["FORMATS", "Selection", "format_for", "select", "write", "write_npz", "write_safetensors"]
