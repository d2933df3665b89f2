"""``graph-op``: SavedModel graph ops that touch files or run Python (listed, never run)."""

from __future__ import annotations

from pathlib import Path

from ..formats import savedmodel
from ..limits import Limits
from .finding import Finding

_WARNING_ONLY = frozenset({"PrintV2"})  # can write to a file, usually writes to stderr


def savedmodel_folder(source: str) -> Path | None:
    """The SavedModel folder ``source`` names (the folder, or a file in it), else ``None``."""
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    return folder if (folder / savedmodel.SAVED_MODEL).is_file() else None


def graph_op_findings(source: str, limits: Limits) -> list[Finding]:
    """One finding per risky op and function in ``saved_model.pb``; none for other formats."""
    folder = savedmodel_folder(source)
    if folder is None:
        return []
    out = []
    for op, why, function, count in savedmodel.risky_ops(folder, limits):
        where = f"function {function}" if function else "the top-level graph"
        times = f"{count} {op} ops" if count > 1 else f"a {op} op"
        severity = "warning" if op in _WARNING_ONLY else "error"
        message = f"{savedmodel.SAVED_MODEL}: {times} in {where}: {why} when TensorFlow runs the model (never run here)"
        out.append(Finding("graph-op", severity, message))
    return out
