"""Config JSON of every Keras generation -> layer tree, with Keras 3 storage keys."""

from __future__ import annotations

import pytest

from kerasweights import ConfigError
from kerasweights.config import parse_model, to_snake_case


@pytest.mark.parametrize(
    ("class_name", "snake"),
    [
        ("Dense", "dense"),
        ("SimpleRNN", "simple_rnn"),
        ("ConvLSTM2D", "conv_lstm2d"),
        ("PReLU", "p_re_lu"),
        ("Conv2DTranspose", "conv2d_transpose"),
        ("InputLayer", "input_layer"),
        ("MultiHeadAttention", "multi_head_attention"),
    ],
    ids=lambda v: v if isinstance(v, str) and v[0].isupper() else None,
)
def test_snake_case_matches_keras(class_name, snake):
    assert to_snake_case(class_name) == snake


def test_keras1_list_sequential():
    spec = parse_model(
        {
            "class_name": "Sequential",
            "config": [
                {"class_name": "LSTM", "config": {"name": "lstm_1", "output_dim": 6}},
                {"class_name": "Dense", "config": {"name": "dense_1"}},
            ],
        }
    )
    assert [(c.name, c.class_name) for c in spec.children] == [("lstm_1", "LSTM"), ("dense_1", "Dense")]


def test_functional_counters_skip_ops_and_count_per_class():
    spec = parse_model(
        {
            "class_name": "Functional",
            "config": {
                "name": "m",
                "input_layers": [],
                "layers": [
                    {"class_name": "InputLayer", "config": {"name": "inp"}},
                    {"class_name": "GRU", "config": {"name": "gru_1"}},
                    {"class_name": "Add", "module": "keras.src.ops.numpy", "config": {"name": "add"}},
                    {"class_name": "GRU", "config": {"name": "gru"}},
                ],
            },
        }
    )
    assert [(c.name, c.storage_key) for c in spec.children] == [
        ("inp", "layers/input_layer"),
        ("gru_1", "layers/gru"),
        ("gru", "layers/gru_1"),
    ]


def test_sequential_storage_skips_its_input_layer():
    spec = parse_model(
        {
            "class_name": "Sequential",
            "config": {
                "name": "s",
                "layers": [
                    {"class_name": "InputLayer", "config": {"name": "input_layer"}},
                    {"class_name": "Dense", "config": {"name": "d"}},
                ],
            },
        }
    )
    assert [(c.name, c.storage_key) for c in spec.children] == [("d", "layers/dense")]


@pytest.mark.parametrize(
    ("config", "names"),
    [
        pytest.param(
            {"layer": {"class_name": "GRU", "config": {"name": "g"}}}, ["forward_g", "backward_g"], id="tf-keras"
        ),
        pytest.param(
            {
                "layer": {"class_name": "GRU", "config": {"name": "forward_g"}},
                "backward_layer": {"class_name": "GRU", "config": {"name": "backward_g", "go_backwards": True}},
            },
            ["forward_g", "backward_g"],
            id="keras3",
        ),
    ],
)
def test_bidirectional_halves_are_named_like_keras(config, names):
    spec = parse_model({"class_name": "Bidirectional", "config": {"name": "bi", **config}})
    assert [c.name for c in spec.children] == names
    assert [c.storage_key for c in spec.children] == ["forward_layer", "backward_layer"]
    assert spec.children[1].config["go_backwards"] is True


def test_old_class_names_are_canonical():
    spec = parse_model(
        {"class_name": "Sequential", "config": [{"class_name": "Convolution2D", "config": {"name": "c"}}]}
    )
    assert spec.children[0].class_name == "Conv2D"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({"class_name": 3}, "model config has no class_name string", id="class-not-str"),
        pytest.param(
            {"class_name": "Sequential", "config": {"layers": [{"config": {}}]}},
            "layer 0 has no class_name",
            id="entry-no-class",
        ),
    ],
)
def test_malformed_configs(document, message):
    with pytest.raises(ConfigError, match=message):
        parse_model(document)
