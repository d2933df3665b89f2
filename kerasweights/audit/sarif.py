"""SARIF 2.1.0 output for code-scanning dashboards."""

from __future__ import annotations

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


def sarif_report(reports: Iterable[FileReport], version: str = "") -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``reports`` for code-scanning dashboards (one run, one rule per check)."""
    order = list(CHECKS)
    rules = [
        {
            "id": check.code,
            "name": "".join(part.title() for part in check.code.split("-")),
            "shortDescription": {"text": check.summary},
            "defaultConfiguration": {"level": _SARIF_LEVEL[check.severity]},
        }
        for check in CHECKS.values()
    ]
    results = []
    for report in reports:
        for finding in report.findings:
            location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": _artifact_uri(report.path)}}}
            if finding.layer:
                location["logicalLocations"] = [
                    {
                        "name": finding.layer.rsplit("/", 1)[-1],
                        "fullyQualifiedName": finding.layer,
                        "kind": "member",
                    }
                ]
            results.append(
                {
                    "ruleId": finding.code,
                    "ruleIndex": order.index(finding.code),
                    "level": _SARIF_LEVEL[finding.severity],
                    "message": {"text": finding.message},
                    "locations": [location],
                }
            )
    driver = {"name": "kerasweights", "rules": rules}
    if version:
        driver["version"] = version
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
