"""Audit one file: open it, or salvage what can be read of it, and run the enabled checks.

A file that cannot be read is an ``unreadable`` finding, never an exception; each check runs
on its own, so one that fails becomes a finding and the others still run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import replace

from .. import api
from ..errors import KerasWeightsError, LayoutError, UnsafeContentError
from ..formats import load_json, open_regular, remote
from ..limits import DEFAULT_LIMITS, Limits
from ..model import Model
from . import config_checks, discovery, graph_ops, members, numeric
from .checks import CHECKS, FileReport, enabled_codes
from .discovery import NPZ_MEMBER
from .finding import Finding, severity_rank
from .salvage import Facts, salvage


def audit_file(
    path: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> FileReport:
    """Audit one model file, directory or URL. Never raises for anything in the file.

    ``config`` is a model config JSON (``model.to_json()``) for a weights-only file; without
    it, a weights-only ``X.weights.h5`` (``X.h5``, ``X.weights.json``) is audited with
    ``X.json``, ``X_config.json`` or ``X.config.json`` beside it. A model config JSON on its
    own gets the config checks. ``select``/``ignore`` are check codes (see :data:`CHECKS`);
    an unknown code is a ValueError. Findings come worst first, then in check order.
    """
    codes = enabled_codes(select, ignore)
    source = os.fspath(path)
    config_path = os.fspath(config) if config is not None else None
    report = FileReport(path=source)
    alone = None if config_path else _config_alone(source, limits)
    if alone is not None:
        facts, text = alone
        report.format, report.keras_version = facts.format, facts.keras_version
        findings = _placed(_fact_findings(facts, codes, source, limits), text, None)
        return _finish(report, findings, codes)
    try:
        model = api.open(source, config=config_path, limits=limits)
        if config_path is None and not model.has_config and (beside := discovery.sidecar_config(source)):
            model.close()
            config_path = beside
            model = api.open(source, config=config_path, limits=limits)
    except Exception as exc:
        problem = (
            exc.problem if isinstance(exc, KerasWeightsError) else " ".join(f"{type(exc).__name__}: {exc}".split())
        )
        salvaged = salvage(source, limits)
        findings = _fact_findings(salvaged, codes, source, limits) if salvaged else []
        if "graph-op" in codes and not remote.is_url(source) and (not salvaged or salvaged.format != "tf-savedmodel"):
            findings += _guarded("graph-op", lambda: graph_ops.graph_op_findings(source, limits))
        explained = isinstance(exc, UnsafeContentError) and any(
            f.code in ("pickled-weights", "external-link") for f in findings
        )
        if not explained:
            findings.insert(0, Finding("unreadable", "error", problem))
        if salvaged:
            report.format, report.keras_version = salvaged.format, salvaged.keras_version
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
            report.config = config_path
            findings = _fact_findings(facts, codes, source, limits, model) + _model_findings(model, facts, codes)
            if config_path is not None:
                findings = _placed(findings, _text_of(config_path), config_path, _CONFIG_CODES)
    return _finish(report, findings, codes)


_CONFIG_CODES = frozenset({"lambda-layer", "unsafe-config", "custom-layer"})


def _finish(report: FileReport, findings: list[Finding], codes: frozenset[str]) -> FileReport:
    order = list(CHECKS)
    kept = [f for f in findings if f.code in codes]
    report.findings = sorted(kept, key=lambda f: (-severity_rank(f.severity), order.index(f.code)))
    return report


def _config_alone(source: str, limits: Limits) -> tuple[Facts, str] | None:
    """A model config JSON file on its own (``model.to_json()``): its facts and text, else ``None``."""
    if remote.is_url(source) or not source.lower().endswith(".json") or not discovery.is_model_config(source):
        return None
    text = _text_of(source)
    try:
        document = load_json(text.encode(), "model config", limits)
    except KerasWeightsError:
        return None
    document = discovery.model_config_of(document)
    if document is None:
        return None
    version = document.get("keras_version")
    return Facts("config-json", str(version) if version is not None else None, document), text


def _text_of(path: str) -> str:
    try:
        with open_regular(path) as f:
            return f.read(DEFAULT_LIMITS.max_json_bytes + 1).decode("utf-8", "replace")
    except (OSError, KerasWeightsError):
        return ""


def _placed(findings: list[Finding], text: str, file: str | None, codes: frozenset[str] | None = None) -> list[Finding]:
    """Config findings given the line of their layer in the JSON ``text`` (line 1 for the whole config)."""
    out = []
    for f in findings:
        if codes is not None and f.code not in codes:
            out.append(f)
            continue
        line = 1
        if f.layer:
            name = json.dumps(f.layer.rsplit("/", 1)[-1])
            match = re.search(r'"name"\s*:\s*' + re.escape(name), text)
            if match:
                line = text.count("\n", 0, match.start()) + 1
        out.append(replace(f, file=file, line=line))
    return out


def _guarded(code: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one check; a bug or odd file in it becomes a finding instead of stopping the scan."""
    try:
        return run()
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return [Finding("unreadable", "error", f"the {code} check could not finish ({reason})")]


def _fact_findings(
    facts: Facts, codes: frozenset[str], source: str, limits: Limits, model: Model | None = None
) -> list[Finding]:
    """Checks on the file's structure and config: no weight values are read."""
    out: list[Finding] = []
    if codes & members.MEMBER_CODES:
        out += _guarded("archive members", lambda: members.member_findings(source, facts.format, limits))
    if "graph-op" in codes and facts.format == "tf-savedmodel":
        out += _guarded("graph-op", lambda: graph_ops.graph_op_findings(source, limits))
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
