"""The examples in docs/api.md and the package docstring run as written."""

from __future__ import annotations

import doctest

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
