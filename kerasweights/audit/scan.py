"""Audit one file: scan model files for unsafe, broken and numerically bad content.

>>> from kerasweights.audit import audit_file
>>> report = audit_file("fixtures/k3/functional.keras")
>>> [(f.code, f.layer) for f in report.findings]
[('lambda-layer', 'double')]

Problems are values (:class:`Finding`), never exceptions: a file that cannot be read is an
``unreadable`` finding. Structure checks read no weight values; numeric checks read each
stored array once. Codes, severities and thresholds are documented in ``docs/audit.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from .. import api
from ..errors import KerasWeightsError, LayoutError, UnsafeContentError
from ..limits import DEFAULT_LIMITS, Limits
from ..model import Model
from . import config_checks, numeric
from .checks import CHECKS, FileReport, enabled_codes
from .discovery import NPZ_MEMBER
from .finding import Finding, severity_rank
from .salvage import Facts, salvage


def audit_file(
    path: str | os.PathLike[str],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> FileReport:
    """Audit one model file, directory or URL. Never raises for anything in the file.

    ``select``/``ignore`` are check codes (see :data:`CHECKS`); an unknown code is a
    ValueError. Findings come worst first, then in check order.
    """
    codes = enabled_codes(select, ignore)
    source = os.fspath(path)
    report = FileReport(path=source)
    try:
        model = api.open(source, limits=limits)
    except Exception as exc:  # noqa: BLE001 - any failure to read is a finding
        problem = (
            exc.problem if isinstance(exc, KerasWeightsError) else " ".join(f"{type(exc).__name__}: {exc}".split())
        )
        facts = salvage(source, limits)
        findings = _fact_findings(facts, codes) if facts else []
        explained = isinstance(exc, UnsafeContentError) and any(
            f.code in ("pickled-weights", "external-link") for f in findings
        )
        if not explained:
            findings.insert(0, Finding("unreadable", "error", problem))
        if facts:
            report.format, report.keras_version = facts.format, facts.keras_version
    else:
        with model:
            facts = Facts(
                model.format,
                model.keras_version,
                model.config,
                model.training_config,
                model.members,
                model.external_links,
                model.optimizer_bytes,
            )
            report.format, report.keras_version = model.format, model.keras_version
            findings = _fact_findings(facts, codes, model) + _model_findings(model, facts, codes)
    order = list(CHECKS)
    kept = [f for f in findings if f.code in codes]
    report.findings = sorted(kept, key=lambda f: (-severity_rank(f.severity), order.index(f.code)))
    return report


def _guarded(code: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one check; a bug or odd file in it becomes a finding instead of stopping the scan."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return [Finding("unreadable", "error", f"the {code} check could not finish ({reason})")]


def _fact_findings(facts: Facts, codes: frozenset[str], model: Model | None = None) -> list[Finding]:
    """Checks on the file's structure and config: no weight values are read."""
    out: list[Finding] = []
    if NPZ_MEMBER in facts.members:
        out.append(
            Finding(
                "pickled-weights",
                "error",
                f"weights are stored as {NPZ_MEMBER}, a pickle: Keras 3.0 to 3.8 load it with allow_pickle=True, "
                "which runs code (never unpickled here)",
            )
        )
    if "external-link" in codes:
        out += _guarded("external-link", lambda: _link_findings(facts.external_links, model))
    if codes & {"lambda-layer", "unsafe-config", "custom-layer"}:
        out += _guarded("config", lambda: _config_findings(facts, codes))
    if facts.optimizer_bytes:
        out.append(
            Finding("optimizer-state", "info", f"the file carries optimizer state ({facts.optimizer_bytes:,} bytes)")
        )
    return out


def _config_findings(facts: Facts, codes: frozenset[str]) -> list[Finding]:
    view = config_checks.ConfigView.of(facts.config)  # walked once for the three checks
    out = []
    if "lambda-layer" in codes:
        out += _guarded("lambda-layer", lambda: config_checks.lambda_findings(view, facts.keras_version, facts.format))
    if "unsafe-config" in codes:
        training = config_checks.ConfigView.of(facts.training_config, layers=False)
        out += _guarded("unsafe-config", lambda: config_checks.unsafe_findings(view, training))
    if "custom-layer" in codes:
        out += _guarded("custom-layer", lambda: config_checks.custom_findings(view))
    return out


def _link_findings(links: list[str], model: Model | None) -> list[Finding]:
    owners = {w.array.key: w.layer_path for w in model.weights()} if model is not None else {}
    out = []
    for text in links:
        severity = "warning" if " is a soft link to " in text else "error"
        key = text.split(" ", 1)[0].lstrip("/")
        out.append(Finding("external-link", severity, f"{text} (never followed)", owners.get(key)))
    return out


def _model_findings(model: Model, facts: Facts, codes: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    if "shape-mismatch" in codes:
        out += _guarded("shape-mismatch", lambda: _shape_findings(model))
    numeric_codes = codes & numeric.NUMERIC_CODES
    if numeric_codes:
        skip = {text.split(" ", 1)[0].lstrip("/") for text in facts.external_links}
        out += _guarded("numeric", lambda: numeric.numeric_findings(model, numeric_codes, skip))
    return out


def _shape_findings(model: Model) -> list[Finding]:
    out = []
    for layer in model.walk():
        if layer.inferred:  # no config to disagree with: its class and config are guesses
            if model.has_config and layer.weights:
                out.append(
                    Finding(
                        "shape-mismatch",
                        "error",
                        f"stored weights of {layer.path!r} belong to no layer of the model config",
                        layer.path,
                    )
                )
            continue
        problems = list(layer.problems)
        if not problems and layer.weights:
            try:
                layer.matrices()  # shapes only: no values are read
            except LayoutError as exc:
                problems.append(exc.problem)
        out += [Finding("shape-mismatch", "error", p, layer.path) for p in problems]
    return out
