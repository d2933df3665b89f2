"""The package's public surface: everything in __all__ resolves, heavier parts only on first use."""

from __future__ import annotations

import pytest

import kerasweights


@pytest.mark.parametrize("name", kerasweights.__all__)
def test_every_public_name_resolves(name):
    assert getattr(kerasweights, name) is not None


def test_lazy_names_are_the_modules_own():
    from kerasweights import audit, compare, torch_export

    assert kerasweights.audit_file is audit.audit_file
    assert kerasweights.Comparison is compare.Comparison
    assert kerasweights.to_torch is torch_export.to_torch


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="module 'kerasweights' has no attribute 'nope'"):
        kerasweights.nope  # noqa: B018
