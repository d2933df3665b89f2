"""`kerasweights audit`: text, JSON lines and SARIF output, exit codes, selection, parallel runs."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, truth

from kerasweights.audit import CHECKS
from kerasweights.cli import main

FUNCTIONAL = FIXTURES / "k3" / "functional.keras"
COMPILED = FIXTURES / "variants" / "compiled.keras"
LAMBDA_MESSAGE = (
    "Lambda layer 'double': its function is base64-encoded marshalled Python bytecode, "
    "which Keras runs when loading the model (never decoded here)"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_text_one_line_per_file_and_a_tally(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(FUNCTIONAL), str(COMPILED), str(FIXTURES / "k3" / "rnn_seq.keras"))
    assert code == 1
    assert lines == [
        f"{FUNCTIONAL}: 1 error (lambda-layer)",
        f"{FIXTURES / 'k3' / 'rnn_seq.keras'}: ok",
        f"{COMPILED}: 1 info (optimizer-state)",
        "Audited 3 files: 1 with errors, 0 with warnings, 2 ok",
        "Findings: 1 error, 0 warnings, 1 info",
    ]
    assert err == ""


def test_verbose_lists_findings_within_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    _, lines, _ = run(capsys, str(FUNCTIONAL), "-v")
    assert lines[1:4] == [
        "  error lambda-layer at double: Lambda layer 'double': its function is",
        "      base64-encoded marshalled Python bytecode, which Keras runs when loading",
        "      the model (never decoded here)",
    ]
    assert all(len(line) <= 80 for line in lines[1:])


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, str(COMPILED), str(FUNCTIONAL), "--json")
    documents = [json.loads(line) for line in lines]
    assert [d["path"] for d in documents] == [str(FUNCTIONAL), str(COMPILED)]  # sorted by path
    assert documents[0] == {
        "path": str(FUNCTIONAL),
        "format": "keras-zip",
        "keras_version": truth("functional")["runtime"]["keras"],
        "findings": [{"code": "lambda-layer", "severity": "error", "message": LAMBDA_MESSAGE, "layer": "double"}],
    }
    assert list(documents[0]) == ["path", "format", "keras_version", "findings"]
    assert code == 1


def test_format_json_is_json_lines_too(capsys: pytest.CaptureFixture[str]) -> None:
    _, by_flag, _ = run(capsys, str(FUNCTIONAL), "--json")
    _, by_format, _ = run(capsys, str(FUNCTIONAL), "--format", "json")
    assert by_flag == by_format


def test_sarif(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, str(FUNCTIONAL), str(COMPILED), "--format", "sarif")
    log = json.loads("\n".join(lines))
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["level"], r["message"]["text"]) for r in results] == [
        ("lambda-layer", "error", LAMBDA_MESSAGE),
        ("optimizer-state", "note", "the file carries optimizer state (3,892 bytes)"),
    ]
    assert code == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([str(FUNCTIONAL)], 1, id="error"),
        pytest.param([str(FUNCTIONAL), "--ignore", "lambda-layer"], 0, id="ignored"),
        pytest.param([str(COMPILED), "--fail-on", "warning"], 0, id="info-only"),
        pytest.param([str(FUNCTIONAL), "--select", "optimizer-state,custom-layer"], 0, id="selected-away"),
        pytest.param([str(FIXTURES / "missing.h5")], 1, id="missing-file"),
    ],
)
def test_exit_codes(capsys: pytest.CaptureFixture[str], argv: list[str], expected: int) -> None:
    assert run(capsys, *argv)[0] == expected


def test_fail_on_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads((FIXTURES / "k3" / "rnn_seq.json").read_text())
    config["config"]["layers"].append({"module": "mypkg", "class_name": "MyLayer", "config": {"name": "mine"}})
    archive = tmp_path / "custom.keras"
    with zipfile.ZipFile(FIXTURES / "k3" / "rnn_seq.keras") as old, zipfile.ZipFile(archive, "w") as new:
        for info in old.infolist():
            new.writestr(info, json.dumps(config) if info.filename == "config.json" else old.read(info))
    assert run(capsys, str(archive))[0] == 0
    code, lines, _ = run(capsys, str(archive), "--fail-on", "warning")
    assert code == 1
    assert lines[0] == f"{archive}: 1 warning (custom-layer)"


def test_unknown_code_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(FUNCTIONAL), "--select", "lambda-layer,bogus")
    assert code == 2 and lines == []
    assert f"argument --select: unknown check code 'bogus'; valid codes: {', '.join(CHECKS)}" in err


def test_unreadable_file_is_reported_and_the_scan_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    shutil.copy(FIXTURES / "k3" / "rnn_seq.keras", tmp_path / "fine.keras")
    code, lines, _ = run(capsys, str(tmp_path), "-v")
    assert code == 1
    assert lines[0] == f"{tmp_path / 'broken.h5'}: 1 error (unreadable)"
    assert lines[1].startswith("  error unreadable: cannot open as HDF5")
    assert lines[-3:] == [
        f"{tmp_path / 'fine.keras'}: ok",
        "Audited 2 files: 1 with errors, 0 with warnings, 1 ok",
        "Findings: 1 error, 0 warnings, 0 info",
    ]


def _folder(tmp_path: Path, count: int = 24) -> Path:
    """``count`` fixture model files side by side."""
    sources = [
        p for runtime in ("k3", "tfk") for p in sorted((FIXTURES / runtime).iterdir()) if p.suffix in (".h5", ".keras")
    ]
    for path in sources[:count]:
        shutil.copy(path, tmp_path / f"{path.parent.name}_{path.name}")
    return tmp_path


def test_jobs_do_not_change_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    serial = run(capsys, str(folder), "--json", "--jobs", "1")
    parallel = run(capsys, str(folder), "--json", "--jobs", "2")
    assert serial == parallel
    paths = [json.loads(line)["path"] for line in serial[1]]
    assert paths == sorted(paths) and len(paths) == 24


def test_progress_bar_only_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    assert run(capsys, str(folder), "--jobs", "1")[2] == ""  # stderr is not a terminal under pytest

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["audit", str(folder), "--jobs", "1", "--json"]) == 1
    drawn = terminal.getvalue()
    assert "\raudit [" in drawn and "] 24/24" in drawn and drawn.endswith("\r" + " " * 79 + "\r")


def test_url_through_fsspec_memory(capsys: pytest.CaptureFixture[str]) -> None:
    fsspec = pytest.importorskip("fsspec")
    fsspec.filesystem("memory").pipe("/cli/functional.h5", (FIXTURES / "tfk" / "functional.h5").read_bytes())
    code, lines, _ = run(capsys, "memory://cli/functional.h5", "--json")
    assert json.loads(lines[0])["findings"][0]["layer"] == "double"
    assert code == 1


def test_dask_scheduler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("distributed")
    folder = _folder(tmp_path, 6)
    local = run(capsys, str(folder), "--json", "--jobs", "1")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        on_dask = run(capsys, str(folder), "--json", "--scheduler", cluster.scheduler_address)
    assert on_dask == local


def test_unreachable_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, lines, err = run(capsys, str(FUNCTIONAL), "--scheduler", "tcp://127.0.0.1:1")
    assert code == 3 and lines == []
    assert err.startswith("kerasweights: error: cannot reach the Dask scheduler 'tcp://127.0.0.1:1' (")


@pytest.mark.parametrize("content", [None, "notes.txt"], ids=["empty", "no-models"])
def test_folder_without_model_files_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    if content:
        (tmp_path / content).write_text("not a model")
    code, lines, err = run(capsys, str(tmp_path))
    assert (code, lines, err) == (2, [], f"kerasweights: error: {tmp_path}: no model files found\n")
    code, lines, err = run(capsys, str(tmp_path), "--allow-empty")
    assert (code, lines[-2:], err) == (
        0,
        ["Audited 0 files: 0 with errors, 0 with warnings, 0 ok", "Findings: 0 errors, 0 warnings, 0 info"],
        "",
    )


def test_config_json_alone_in_a_folder_walk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "tfk" / "functional.json", tmp_path / "model.json")
    shutil.copy(FIXTURES / "k3" / "functional.truth.json", tmp_path / "functional.truth.json")  # not a config
    (tmp_path / "package.json").write_text('{"name": "x", "class_name": "not a model"}')
    code, lines, _ = run(capsys, str(tmp_path), "--json")
    assert code == 1
    [report] = map(json.loads, lines)
    assert report == {
        "path": str(tmp_path / "model.json"),
        "format": "config-json",
        "keras_version": truth("functional", "tfk")["runtime"]["tf_keras"],
        "findings": [
            {"code": "lambda-layer", "severity": "error", "message": LAMBDA_MESSAGE, "layer": "double", "line": 1}
        ],
    }


def test_config_json_findings_carry_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads((FIXTURES / "k3" / "functional.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps(config, indent=2))
    code, lines, _ = run(capsys, str(tmp_path / "model.json"), "--json")
    [finding] = json.loads(lines[0])["findings"]
    text = (tmp_path / "model.json").read_text().splitlines()
    assert code == 1 and finding["line"] > 1 and '"name": "double"' in text[finding["line"] - 1]


@pytest.mark.parametrize("sidecar", ["{}.json", "{}_config.json", "{}.config.json"], ids=["json", "_config", ".config"])
@pytest.mark.parametrize("weights", ["{}.weights.h5", "{}_weights.h5"], ids=["dot", "underscore"])
def test_weights_file_is_audited_with_the_config_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sidecar: str, weights: str
) -> None:
    shutil.copy(FIXTURES / "k3" / "functional.weights.h5", tmp_path / weights.format("model"))
    shutil.copy(FIXTURES / "k3" / "functional.json", tmp_path / sidecar.format("model"))
    code, lines, _ = run(capsys, str(tmp_path), "--json")
    [report] = map(json.loads, lines)  # the config is audited with its weights, not again alone
    assert code == 1
    assert report["path"] == str(tmp_path / weights.format("model"))
    assert report["config"] == str(tmp_path / sidecar.format("model"))
    assert [(f["code"], f["layer"], f["file"]) for f in report["findings"]] == [
        ("lambda-layer", "double", str(tmp_path / sidecar.format("model")))
    ]


def test_config_option_for_a_weights_only_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "k3" / "functional.weights.h5", tmp_path / "w.weights.h5")
    code, lines, _ = run(capsys, str(tmp_path / "w.weights.h5"), "--json")
    assert (code, json.loads(lines[0])["findings"]) == (0, [])
    config = str(FIXTURES / "k3" / "functional.json")
    code, lines, _ = run(capsys, str(tmp_path / "w.weights.h5"), "--config", config, "--json")
    report = json.loads(lines[0])
    assert (code, report["config"], [f["code"] for f in report["findings"]]) == (1, config, ["lambda-layer"])
