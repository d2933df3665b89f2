"""Every audit check: its code, severity and summary; the report of one file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .finding import Finding, severity_rank
from .numeric import EXTREME_MAGNITUDE, SATURATING_BIAS, SPECTRAL_NORM_LIMIT


@dataclass(frozen=True)
class Check:
    """One audit check: its stable code, usual severity and what it looks for."""

    code: str
    severity: str
    summary: str
    reads_values: bool = False


CHECKS: dict[str, Check] = {
    c.code: c
    for c in (
        Check("unreadable", "error", "not a Keras model file, or truncated or corrupt"),
        Check("lambda-layer", "error", "a Lambda layer anywhere in the model, with or without Python bytecode"),
        Check("unsafe-config", "error", "config entries that make Keras import, call or read outside code or files"),
        Check("graph-op", "error", "SavedModel graph ops that read or write files or run Python (PrintV2: warning)"),
        Check("pickled-weights", "error", "a .keras archive whose weights are a pickled model.weights.npz"),
        Check("pickle-member", "error", "an archive member that is a pickle, with the globals it imports"),
        Check("member-path", "error", "an archive member whose name is absolute, climbs out (..) or is a link"),
        Check("executable-member", "warning", "an archive member that is a program or script"),
        Check("nested-archive", "warning", "an archive inside the archive (its members are scanned too)"),
        Check("unexpected-member", "warning", "an archive member Keras does not write"),
        Check(
            "external-link", "error", "HDF5 external links, external storage or virtual datasets (soft links: warning)"
        ),
        Check("non-finite", "error", "NaN or Inf in a weight", True),
        Check("custom-layer", "warning", "a layer class Keras does not ship"),
        Check("shape-mismatch", "error", "stored weights that do not fit the layer config"),
        Check("all-zero", "warning", "a matrix of zeros (info for biases)", True),
        Check("dead-units", "warning", "units or inputs whose weights are all zero", True),
        Check("extreme-magnitude", "warning", f"weights beyond ±{EXTREME_MAGNITUDE:g}", True),
        Check("saturating-gate-bias", "warning", f"LSTM/GRU sigmoid-gate biases beyond ±{SATURATING_BIAS:g}", True),
        Check(
            "large-spectral-norm", "info", f"recurrent matrices with spectral norm above {SPECTRAL_NORM_LIMIT:g}", True
        ),
        Check("optimizer-state", "info", "the file carries optimizer state"),
    )
}
"""Every check by code, in report order. Codes are stable; new checks get new codes."""


@dataclass
class FileReport:
    """The audit of one file: what it is and what was found, worst first."""

    path: str
    format: str | None = None
    keras_version: str | None = None
    findings: list[Finding] = field(default_factory=list)
    config: str | None = None
    """The model config JSON the file was audited with (``--config``, or the one found beside it)."""

    @property
    def worst(self) -> str | None:
        """The highest severity found, or ``None`` when nothing was."""
        return max((f.severity for f in self.findings), key=severity_rank, default=None)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "format": self.format, "keras_version": self.keras_version}
        if self.config is not None:
            out["config"] = self.config
        out["findings"] = [f.to_dict() for f in self.findings]
        return out


def enabled_codes(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> frozenset[str]:
    """The codes to run: ``select`` (default: all) minus ``ignore``. Unknown codes raise ValueError."""
    chosen = list(select) if select is not None else list(CHECKS)
    dropped = list(ignore or ())
    unknown = [c for c in (*chosen, *dropped) if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check code {unknown[0]!r}; valid codes: {', '.join(CHECKS)}")
    return frozenset(chosen) - frozenset(dropped)
