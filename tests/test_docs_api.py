"""The examples in docs/api.md and the package docstring run as written."""

from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys

import pytest
from conftest import ROOT

import kerasweights


def test_api_doc_examples(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 15


def test_package_docstring_example(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(kerasweights, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 2


def test_api_doc_examples_pass_mypy_strict(tmp_path):
    """The examples as a script: what a user copies must type-check (``find`` returns
    ``Matrix | Weight``; both have ``meaning``)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    text = (ROOT / "docs" / "api.md").read_text()
    lines = [
        line[4:]
        for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
        for line in block.splitlines()
        if line.startswith((">>> ", "... "))
    ]
    script = tmp_path / "api_examples.py"
    script.write_text("\n".join(lines) + "\n")
    # Imported modules are checked by the package's own mypy run; here only the examples count.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout
