"""One audit finding: a value, never an exception."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("info", "warning", "error")
"""Severities from least to most severe."""


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for error."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    """Something an audit check found in one file.

    ``code`` is a stable check code (``lambda-layer``); ``layer`` the layer path the
    finding is about (``encoder/lstm_nb``), or ``None`` for the whole file. ``file`` is the
    JSON config the finding was read from when that is not the audited file itself (a
    config beside a weights file), and ``line`` its line there, for JSON configs only.
    """

    code: str
    severity: str
    message: str
    layer: str | None = None
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity, "message": self.message}
        out["layer"] = self.layer
        if self.file is not None:
            out["file"] = self.file
        if self.line is not None:
            out["line"] = self.line
        return out
