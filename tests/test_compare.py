"""kerasweights.compare: one model in every format (and in both Keras generations) compares equal;
real differences (training, edited configs and arrays) are found and measured."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import FIXTURES, K3_MODELS, model_files, truth, truth_arrays
from h5edit import edited_h5, layer_config

import kerasweights
from kerasweights.compare import compare, max_abs_diff, normalize_config, value_change


def _same_model_pairs() -> list:
    """Every pair of saved forms of one model: .keras, .h5, weights-only, k3 and tf_keras."""
    params = []
    for model in K3_MODELS:
        files = [(f, c, rt) for rt in ("k3", "tfk") for f, c in model_files(model, rt)]
        for (fa, ca, ra), (fb, cb, rb) in itertools.combinations(files, 2):
            if model == "convlstm" and ra != rb:
                continue  # a real config difference, tested below
            params.append(pytest.param(fa, ca, fb, cb, model, id=f"{ra}/{fa.name}-vs-{rb}/{fb.name}"))
    variants = FIXTURES / "variants"
    for path, config in (
        (variants / "rnn_seq.deflate.keras", None),
        (variants / "rnn_seq_dir", None),
        (variants / "rnn_seq.weights.json", FIXTURES / "k3/rnn_seq.json"),
    ):
        params.append(
            pytest.param(
                FIXTURES / "k3/rnn_seq.keras", None, path, config, "rnn_seq", id=f"k3/rnn_seq.keras-vs-{path.name}"
            )
        )
    return params


@pytest.mark.parametrize(("a", "config_a", "b", "config_b", "model"), _same_model_pairs())
def test_one_model_saved_twice_compares_equal(a, config_a, b, config_b, model):
    with kerasweights.open(a, config=config_a) as ma, kerasweights.open(b, config=config_b) as mb:
        result = compare(ma, mb)
        n_matrices = len(ma.matrices())
    assert result.same, result.as_dict()
    assert (result.layers_added, result.layers_removed, result.layers_changed) == ([], [], [])
    assert len(result.values) == n_matrices
    assert all(v.max_abs_diff == 0.0 for v in result.values)


def test_keras3_and_tf_keras_name_depthwise_kernel_differently():
    names = {
        rt: [w["name"] for l in truth("misc", rt)["layers"] if l["path"] == "dw" for w in l["weights"]]
        for rt in ("k3", "tfk")
    }
    with kerasweights.open(FIXTURES / "k3/misc.keras") as a, kerasweights.open(FIXTURES / "tfk/misc.h5") as b:
        result = compare(a, b)
    assert result.same
    assert result.weights_renamed == [(f"dw/{names['k3'][0]}", f"dw/{names['tfk'][0]}")]
    assert [v.key_b for v in result.values if v.key_b] == [f"dw/{names['tfk'][0]}"]


def test_convlstm_default_recurrent_activation_differs_between_generations():
    want = {rt: truth("convlstm", rt)["recurrent"][0]["config"]["recurrent_activation"] for rt in ("k3", "tfk")}
    with kerasweights.open(FIXTURES / "k3/convlstm.keras") as a, kerasweights.open(FIXTURES / "tfk/convlstm.h5") as b:
        result = compare(a, b)
    assert not result.same
    [change] = result.layers_changed
    assert (change.path, change.class_a, change.class_b) == ("clstm", "ConvLSTM2D", "ConvLSTM2D")
    assert change.config == {"recurrent_activation": (want["k3"], want["tfk"])}
    assert result.value_changes == []  # identical weights: only the config differs


def test_one_training_step_shows_in_every_matrix_by_the_amount_keras_moved_it():
    before, after = truth_arrays("rnn_seq"), truth_arrays("compiled", "variants")
    kernel_moved = float(np.abs(after["_weights/enc_gru/0"][:, 5:10] - before["_weights/enc_gru/0"][:, 5:10]).max())
    head_moved = float(np.abs(after["_weights/head/1"] - before["_weights/head/1"]).max())
    with (
        kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as a,
        kerasweights.open(FIXTURES / "variants/compiled.keras") as b,
    ):
        result = compare(a, b)
        loose = compare(a, b, atol=max(v.max_abs_diff for v in result.values))
    diffs = {v.key: v.max_abs_diff for v in result.values}
    assert not result.same
    assert diffs["enc_gru/kernel_r"] == pytest.approx(kernel_moved, rel=1e-6)
    assert diffs["head/bias"] == pytest.approx(head_moved, rel=1e-6)
    assert loose.same and loose.value_changes == []


def test_edited_config_and_shapes_are_reported(tmp_path):
    kernel = truth_arrays("rnn_seq")["_weights/head/0"]  # (3, 2)

    def wider_head(document):
        layer_config(document, "head")["units"] = 3

    edited = edited_h5(
        FIXTURES / "k3/rnn_seq.h5",
        tmp_path / "wider.h5",
        config=wider_head,
        arrays={
            "model_weights/head/rnn_seq/head/kernel": np.hstack([kernel, kernel[:, :1]]),
            "model_weights/head/rnn_seq/head/bias": np.zeros(3, np.float32),
        },
    )
    with kerasweights.open(FIXTURES / "k3/rnn_seq.h5") as a, kerasweights.open(edited) as b:
        result = compare(a, b)
    assert not result.same
    assert [(c.path, c.config) for c in result.layers_changed] == [("head", {"units": (2, 3)})]
    assert [(s.key, s.shape_a, s.shape_b) for s in result.shape_changes] == [
        ("head/kernel", (3, 2), (3, 3)),
        ("head/bias", (2,), (3,)),
    ]
    assert "head/kernel" not in {v.key for v in result.values}  # no values compared across shapes


def test_one_changed_value_is_found_in_its_gate(tmp_path):
    kernel = truth_arrays("rnn_seq")["_weights/enc_gru/0"].copy()
    kernel[2, 7] += 0.25  # column 7 of (6, 3*5): the reset gate r
    edited = edited_h5(
        FIXTURES / "k3/rnn_seq.h5",
        tmp_path / "edited.h5",
        arrays={"model_weights/enc_gru/rnn_seq/enc_gru/gru_cell/kernel": kernel},
    )
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as a, kerasweights.open(edited) as b:
        result = compare(a, b)
        within = compare(a, b, atol=0.3)
    [changed] = result.value_changes
    assert changed.key == "enc_gru/kernel_r"
    assert changed.max_abs_diff == pytest.approx(0.25, abs=1e-7)
    assert within.same


def test_layers_added_and_removed_between_different_models():
    paths = {m: [l["path"] for l in truth(m)["layers"]] for m in ("rnn_seq", "functional")}
    with (
        kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as a,
        kerasweights.open(FIXTURES / "k3/functional.keras") as b,
    ):
        result = compare(a, b)
    assert result.layers_removed == [p for p in paths["rnn_seq"] if p not in paths["functional"]]
    assert result.layers_added == [p for p in paths["functional"] if p not in paths["rnn_seq"]]
    assert not result.same


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        pytest.param([1.0, 2.0], [1.0, 2.5], 0.5, id="finite"),
        pytest.param([np.nan, 1.0], [np.nan, 1.0], 0.0, id="nan-matches-nan"),
        pytest.param([np.inf, -np.inf], [np.inf, -np.inf], 0.0, id="same-infinities"),
        pytest.param([np.nan, 1.0], [0.0, 1.0], math.inf, id="nan-vs-number"),
        pytest.param([np.inf], [-np.inf], math.inf, id="opposite-infinities"),
    ],
)
def test_max_abs_diff_treats_nan_and_inf_by_position(x, y, expected):
    assert max_abs_diff(np.array(x, np.float32), np.array(y, np.float32)) == expected


@pytest.mark.parametrize(
    ("x", "y", "rel", "cosine"),
    [
        pytest.param([3.0, 4.0], [3.0, 4.0], 0.0, 1.0, id="same"),
        pytest.param([3.0, 4.0], [6.0, 8.0], 1.0, 1.0, id="scaled"),
        pytest.param([1.0, 0.0], [0.0, 1.0], math.sqrt(2), 0.0, id="orthogonal"),
        pytest.param([1.0, 2.0], [-1.0, -2.0], 2.0, -1.0, id="opposite"),
        pytest.param([0.0, 0.0], [0.0, 0.0], 0.0, 1.0, id="both-zero"),
        pytest.param([0.0, 0.0], [1.0, 0.0], math.inf, None, id="from-zero"),
        pytest.param([np.nan, 3.0, 4.0], [np.nan, 3.0, 4.0], 0.0, 1.0, id="nan-positions-left-out"),
    ],
)
def test_relative_change_and_cosine(x, y, rel, cosine):
    change = value_change(np.array(x), np.array(y))
    assert change.rel_change == pytest.approx(rel)
    assert change.cosine == (None if cosine is None else pytest.approx(cosine))


def test_value_change_accumulates_over_chunks(monkeypatch):
    """Chunked sums give what one pass over the whole array gives (memory stays bounded)."""
    import kerasweights.compare as compare_module
    from kerasweights.stats import chunks

    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((50, 40)), rng.standard_normal((50, 40))
    whole = value_change(a, b)
    monkeypatch.setattr(compare_module, "chunks", lambda array: chunks(array, max_elements=64))
    chunked = value_change(a, b)
    assert chunked.max_abs == whole.max_abs
    assert chunked.rel_change == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-12)
    assert chunked.cosine == pytest.approx(whole.cosine, rel=1e-12)


def test_max_abs_diff_refuses_different_shapes():
    with pytest.raises(ValueError, match=r"shapes differ: \(2,\) vs \(3,\)"):
        max_abs_diff(np.zeros(2), np.zeros(3))


def test_serialization_details_are_normalized_away():
    keras3 = {
        "dtype": {
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": {"name": "float32"},
            "registered_name": None,
        },
        "kernel_initializer": {
            "module": "keras.initializers",
            "class_name": "Zeros",
            "config": {},
            "shared_object_id": 1,
        },
        "function": {"class_name": "__lambda__", "config": {"code": "abc", "defaults": None, "closure": None}},
        "batch_shape": [None, 6],
    }
    tf_keras = {
        "dtype": "float32",
        "kernel_initializer": {"class_name": "Zeros", "config": {}},
        "function": ["abc", None, None],
        "batch_input_shape": [None, 6],
    }
    assert normalize_config(keras3) == normalize_config(tf_keras)
