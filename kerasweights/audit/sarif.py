"""SARIF 2.1.0 output for code-scanning dashboards."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..formats import remote
from .checks import CHECKS, FileReport

# -- SARIF ---------------------------------------------------------------------------------------------

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _artifact_uri(path: str) -> str:
    if remote.is_url(path):
        return path
    if os.path.isabs(path):
        return Path(path).as_uri()
    return quote(Path(path).as_posix())


DOCS_URL = "https://github.com/kerasweights/kerasweights/blob/main/docs/audit.md"
"""Where ``docs/audit.md`` is published; each rule's ``helpUri`` is an anchor in it (``#lambda-layer``)."""
FINGERPRINT_KEY = "kerasweightsFinding/v1"


def help_uri(code: str, docs_url: str = DOCS_URL) -> str:
    """The ``docs/audit.md`` section of a check code."""
    return f"{docs_url}#{code}"


def _fingerprint(rule: str, uri: str, layer: str | None, message: str, seen: dict[str, int]) -> str:
    """Stable across runs: the same finding in the same file gets the same hash (repeats are numbered)."""
    base = hashlib.sha256("\x1f".join((rule, uri, layer or "", message)).encode()).hexdigest()[:32]
    seen[base] = seen.get(base, 0) + 1
    return f"{base}:{seen[base]}"


def sarif_report(reports: Iterable[FileReport], version: str = "", docs_url: str = DOCS_URL) -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``reports`` for code-scanning dashboards (one run, one rule per check).

    Every result has a region (the line of its layer in a JSON config, else line 1: model
    files are binary), a ``partialFingerprints`` entry that stays the same across runs, and
    its rule a ``helpUri`` into ``docs/audit.md``.
    """
    order = list(CHECKS)
    rules = [
        {
            "id": check.code,
            "name": "".join(part.title() for part in check.code.split("-")),
            "shortDescription": {"text": check.summary},
            "helpUri": help_uri(check.code, docs_url),
            "help": {"text": f"See {help_uri(check.code, docs_url)}"},
            "defaultConfiguration": {"level": _SARIF_LEVEL[check.severity]},
        }
        for check in CHECKS.values()
    ]
    results = []
    seen: dict[str, int] = {}
    for report in reports:
        for finding in report.findings:
            uri = _artifact_uri(finding.file or report.path)
            location: dict[str, Any] = {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": finding.line or 1},
                }
            }
            if finding.layer:
                location["logicalLocations"] = [
                    {
                        "name": finding.layer.rsplit("/", 1)[-1],
                        "fullyQualifiedName": finding.layer,
                        "kind": "member",
                    }
                ]
            result: dict[str, Any] = {
                "ruleId": finding.code,
                "ruleIndex": order.index(finding.code),
                "level": _SARIF_LEVEL[finding.severity],
                "message": {"text": finding.message},
                "locations": [location],
                "partialFingerprints": {
                    FINGERPRINT_KEY: _fingerprint(finding.code, uri, finding.layer, finding.message, seen)
                },
            }
            if finding.file and finding.file != report.path:
                result["relatedLocations"] = [
                    {
                        "id": 0,
                        "physicalLocation": {"artifactLocation": {"uri": _artifact_uri(report.path)}},
                        "message": {"text": "the weights file audited with this config"},
                    }
                ]
            results.append(result)
    driver = {"name": "kerasweights", "informationUri": docs_url, "rules": rules}
    if version:
        driver["version"] = version
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
