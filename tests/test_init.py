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


def test_layer_to_torch_state_delegates():
    from conftest import FIXTURES

    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as model:
        module = model.layer("enc_gru").to_torch_state()
        assert (
            module.constructor()
            == "torch.nn.GRU(input_size=6, hidden_size=5, bias=True, batch_first=True, bidirectional=False)"
        )
