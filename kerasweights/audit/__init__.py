"""Batch audit: scan model files for unsafe, broken and numerically bad content.

>>> from kerasweights.audit import audit_file
>>> report = audit_file("fixtures/k3/functional.keras")
>>> [(f.code, f.layer) for f in report.findings]
[('lambda-layer', 'double')]

Problems are values (:class:`Finding`), never exceptions: a file that cannot be read is an
``unreadable`` finding. Structure checks read no weight values; numeric checks read each
stored array at most once. Codes, severities and thresholds are documented in ``docs/audit.md``.

Modules: :mod:`.checks` (the check table, reports), :mod:`.scan` (one file),
:mod:`.config_checks` and :mod:`.numeric` (what is looked at), :mod:`.salvage` (refused files),
:mod:`.discovery` (folder walks), :mod:`.parallel` (many files), :mod:`.sarif` (output).
"""

from __future__ import annotations

from .checks import CHECKS, Check, FileReport, enabled_codes
from .discovery import iter_model_files
from .finding import SEVERITIES, Finding, severity_rank
from .numeric import EXTREME_MAGNITUDE, SATURATING_BIAS, SPECTRAL_NORM_LIMIT
from .parallel import audit_paths, iter_audit
from .sarif import sarif_report
from .scan import audit_file

__all__ = [
    "CHECKS",
    "EXTREME_MAGNITUDE",
    "SATURATING_BIAS",
    "SEVERITIES",
    "SPECTRAL_NORM_LIMIT",
    "Check",
    "FileReport",
    "Finding",
    "audit_file",
    "audit_paths",
    "enabled_codes",
    "iter_audit",
    "iter_model_files",
    "sarif_report",
    "severity_rank",
]
