"""README's promises: the quick start's two commands, its summary output, and CI running the same test command."""

from __future__ import annotations

import re

from conftest import ROOT

from kerasweights.cli import main

README = (ROOT / "README.md").read_text()
COMMANDS = re.findall(r"```sh\n(.+?)\n```", README)


def test_quick_start_has_exactly_two_commands():
    assert len(COMMANDS) == 2
    assert "kerasweights summary fixtures/" in COMMANDS[0]
    assert "pytest" in COMMANDS[1]


def test_ci_runs_the_readme_test_command():
    assert COMMANDS[1] in (ROOT / ".ci" / "run").read_text()


def test_quick_start_output_is_real(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    model = COMMANDS[0].split("kerasweights summary ")[1].strip()
    assert main(["summary", model]) == 0
    out = capsys.readouterr().out.rstrip()
    assert out in README


def test_weights_example_is_real(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["weights", "fixtures/k3/rnn_seq.keras", "--split", "--layer", "enc_gru"]) == 0
    assert capsys.readouterr().out.rstrip() in README
