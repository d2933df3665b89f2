"""docs/cli.md shows real output: every example command runs and prints what the page shows.

An example is a ```sh block holding one ``kerasweights ...`` line (``# exit code N`` when it
is not 0) followed by a ```text block (stdout and stderr, exactly) or a ```json block (the
parsed document; the page may format it differently, and ``path`` fields may differ).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
from conftest import ROOT

from kerasweights.cli import main

DOC = (ROOT / "docs" / "cli.md").read_text()
EXAMPLE = re.compile(
    r"```sh\n(kerasweights [^\n]*?)(?:\s+# exit code (\d+))?\n```\n\n```(text|json)\n(.*?)```", re.DOTALL
)
EXAMPLES = [
    pytest.param(cmd, int(code or 0), kind, body, id=cmd.removeprefix("kerasweights "))
    for cmd, code, kind, body in EXAMPLE.findall(DOC)
]
JSON_COMMANDS = ("summary", "weights", "diff", "audit")  # the commands that have --json


def _same(documented: Any, actual: Any, key: str = "") -> bool:
    if key == "path":
        return True
    if isinstance(documented, dict):
        return (
            isinstance(actual, dict)
            and documented.keys() == actual.keys()
            and all(_same(documented[k], actual[k], k) for k in documented)
        )
    if isinstance(documented, list):
        return isinstance(actual, list) and len(documented) == len(actual) and all(map(_same, documented, actual))
    if isinstance(documented, float) and isinstance(actual, float):
        return actual == pytest.approx(documented, rel=1e-12)
    return type(documented) is type(actual) and documented == actual


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run where the page runs (the repository root) without writing into it."""
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("cmd", "code", "kind", "body"), EXAMPLES)
def test_example_output_is_real(workdir, capsys, cmd, code, kind, body):
    assert main(shlex.split(cmd)[1:]) == code
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    if kind == "json":
        assert _same(json.loads(body), json.loads(printed))
    else:
        assert printed.rstrip("\n") == body.rstrip("\n")


def test_every_command_is_documented_and_every_json_option_has_an_example():
    commands = {shlex.split(cmd)[1] for cmd, *_ in EXAMPLE.findall(DOC)}
    assert {"summary", "weights", "show", "export", "diff", "plot", "audit"} <= commands
    with_json = {shlex.split(cmd)[1] for cmd, _code, kind, _body in EXAMPLE.findall(DOC) if kind == "json"}
    assert with_json == set(JSON_COMMANDS)


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_json_commands_really_have_json(command, capsys):
    assert main([command, "--help"]) == 0
    assert "--json" in capsys.readouterr().out


def test_documented_text_fits_80_columns():
    for cmd, _code, kind, body in EXAMPLE.findall(DOC):
        # Exempt by design: an error message is one line; a torch.nn constructor is code to copy.
        lines = [line for line in body.splitlines() if "error:" not in line and "torch.nn." not in line]
        if kind == "text" and lines:
            assert max(len(line) for line in lines) <= 80, cmd
