"""The model tree against what Keras itself said: parameter counts, paths, weight names, shapes, values."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import FIXTURES, all_model_files, truth, truth_arrays

import kerasweights
from kerasweights import NotFoundError

_CELL = re.compile(r"^(simple_rnn|gru|lstm|conv_lstm|conv_lstm_cell|lstm_cell|gru_cell|simple_rnn_cell)(_\d+)?$")


def keras_weight_name(layer_path: str, weight: dict) -> str:
    """The name kerasweights should give a Keras variable: its path below the layer, minus the RNN cell scope."""
    path = weight["path"].removesuffix(":0")
    parts = path.split("/")
    # Keras 3 Sequential paths carry the model name; tf.keras paths may drop outer scopes.
    leaf = layer_path.split("/")[-1]
    if leaf in parts:
        parts = parts[len(parts) - 1 - parts[::-1].index(leaf) + 1 :]
    parts = [p for p in parts if not p.endswith("_cell") and not _CELL.match(p)]
    return (
        "/".join(parts) if len(parts) > 1 and parts[0] in ("query", "key", "value", "attention_output") else parts[-1]
    )


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_params_match_keras(path, config, model, runtime):
    expected = truth(model, runtime)
    with kerasweights.open(path, config=config) as m:
        assert m.total_params == expected["count_params"]
        got = {layer.path: layer.params for layer in m.walk()}
    for layer in expected["layers"]:
        assert got[layer["path"]] == layer["count_params"], layer["path"]


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_layer_paths_classes_and_weights_match_keras(path, config, model, runtime):
    expected = truth(model, runtime)
    with kerasweights.open(path, config=config) as m:
        layers = {layer.path: layer for layer in m.walk()}
        assert set(layers) == {layer["path"] for layer in expected["layers"]}
        for want in expected["layers"]:
            layer = layers[want["path"]]
            assert layer.class_name == want["class_name"]
            if layer.kind != "layer":
                continue
            assert [w.shape for w in layer.weights] == [tuple(w["shape"]) for w in want["weights"]], layer.path
            assert [w.dtype for w in layer.weights] == [w["dtype"] for w in want["weights"]], layer.path
            assert [w.name for w in layer.weights] == [keras_weight_name(layer.path, w) for w in want["weights"]]
            assert not layer.problems


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_stored_values_are_the_ones_keras_set(path, config, model, runtime):
    arrays = truth_arrays(model, runtime)
    with kerasweights.open(path, config=config) as m:
        for layer in m.walk():
            for i, weight in enumerate(layer.weights):
                np.testing.assert_array_equal(weight.read(), arrays[f"_weights/{layer.path}/{i}"], err_msg=weight.key)


def test_class_based_storage_names_map_back_to_layer_names():
    # Keras 3 stores the first GRU (named "gru_1") at layers/gru and the later "gru" at layers/gru_1.
    arrays = truth_arrays("gru_names")
    with kerasweights.open(FIXTURES / "k3" / "gru_names.keras") as m:
        first = m.layer("gru_1").weight("kernel")
        assert first.array.key.startswith("layers/gru/")
        np.testing.assert_array_equal(first.read(), arrays["_weights/gru_1/0"])
        np.testing.assert_array_equal(m.layer("gru").weight("kernel").read(), arrays["_weights/gru/0"])


def test_weights_are_read_lazily():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as m:
        assert not any(w.array.is_loaded for w in m.weights())
        gate = m.layer("enc_gru").matrix("kernel_z").read()  # reads only its columns
        assert not any(w.array.is_loaded for w in m.weights())
        kernel = m.layer("enc_gru").weight("kernel").read()
        assert [w.key for w in m.weights() if w.array.is_loaded] == ["enc_gru/kernel"]
        np.testing.assert_array_equal(gate, kernel[:, :5])


def test_unknown_layer_lists_the_valid_paths():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as m, pytest.raises(NotFoundError) as err:
        m.layer("nope")
    assert str(err.value) == "no layer 'nope'; layers with weights: my_rnn, enc_gru, gru_ra_false, lstm_last, head"


def test_find_reports_valid_names():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as m:
        assert m.find("enc_gru/kernel_r").shape == (6, 5)
        assert m.find("enc_gru/kernel").shape == (6, 15)
        with pytest.raises(
            NotFoundError, match=r"layer 'enc_gru' has no matrix or weight 'kernel_q'; valid names: bias, bias_h"
        ):
            m.find("enc_gru/kernel_q")


def test_find_of_a_layer_names_its_matrices():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as m, pytest.raises(NotFoundError) as err:
        m.find("head")
    assert str(err.value) == "'head' is a layer; name one of its matrices or weights: head/kernel, head/bias"


def test_matrix_by_key_and_meaning_on_both_kinds():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as m:
        assert m.matrix("lstm_last/bias_f").gate == "f"
        assert m.find("enc_gru/kernel").meaning == "stored array"
        assert m.find("enc_gru/kernel_z").meaning == "update gate, input weights"
        with pytest.raises(NotFoundError, match="'enc_gru/kernel' is a stored weight, not a named matrix; layer"):
            m.matrix("enc_gru/kernel")


@pytest.mark.parametrize(
    ("source", "config"),
    [
        pytest.param("k3/rnn_seq.json", None, id="config-alone"),
        pytest.param("k3/rnn_seq.weights.h5", "k3/rnn_seq.json", id="note"),
    ],
)
def test_library_messages_name_the_keyword_not_the_cli_option(source, config):
    """Python callers are told about ``config=``; ``--config`` is the command line's word."""
    try:
        with kerasweights.open(FIXTURES / source, config=FIXTURES / config if config else None) as m:
            text = " ".join(m.notes)
    except kerasweights.KerasWeightsError as exc:
        text = str(exc)
        assert "config=" in text
    assert "--" not in text


def test_cli_words_turn_keywords_into_options():
    from kerasweights.cli._output import cli_words

    assert cli_words("unknown: pass config=); (pass force=True to write it, or layer= to pick one)") == (
        "unknown: pass --config); (pass --force to write it, or --layer to pick one)"
    )
    assert (
        cli_words("use_bias=False, reset_after=False, some_config=1")
        == "use_bias=False, reset_after=False, some_config=1"
    )


def test_model_facts():
    with kerasweights.open(FIXTURES / "k3" / "functional.keras") as m:
        assert (m.format, m.keras_version, m.name, m.has_config) == ("keras-zip", "3.15.1", "toy", True)
        assert [l.path for l in m.layers][:3] == ["tokens", "embed", "lstm_seq"]
        assert m.layer("bi_g").kind == "wrapper" and m.layer("encoder").kind == "model"
        assert m.layer("double").class_name == "Lambda"


def test_weights_only_file_without_config_is_inferred_and_says_so():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.weights.h5") as m:
        assert m.total_params == truth("rnn_seq")["count_params"]
        assert {l.path: l.class_name for l in m.walk()} == {
            "my_rnn": "SimpleRNN",
            "enc_gru": "GRU",
            "gru_ra_false": "GRU",
            "lstm_last": "LSTM",
            "head": "Dense",
        }
        assert all(l.inferred for l in m.walk())
        assert "inferred" in m.notes[-1]
        assert m.layer("enc_gru").matrix("recurrent_bias_h").shape == (5,)


def test_custom_layer_keeps_stored_names(tmp_path):
    import json

    config = json.loads((FIXTURES / "k3" / "rnn_seq.json").read_text())
    config["config"]["layers"][-1]["class_name"] = "MyDense"
    config["config"]["layers"][-1]["module"] = "my_package.layers"
    (tmp_path / "custom.json").write_text(json.dumps(config))
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.weights.h5", config=tmp_path / "custom.json") as m:
        head = m.layer("head")
        assert head.is_custom and head.rule is None
        assert [w.name for w in head.weights] == ["0", "1"]
        assert m.layer("enc_gru").matrix("kernel_h").shape == (6, 5)  # the rest still works


def test_uncached_read_leaves_nothing_in_memory():
    with kerasweights.open(FIXTURES / "k3" / "rnn_seq.keras") as m:
        weight = m.layer("enc_gru").weight("kernel")
        values = weight.array.read(cache=False)
        assert not weight.array.is_loaded
        np.testing.assert_array_equal(values, truth_arrays("rnn_seq")["_weights/enc_gru/0"])
        assert weight.read() is weight.read()  # the default keeps it


@pytest.mark.parametrize(
    "path", [FIXTURES / "k3/functional.keras", FIXTURES / "k3/rnn_seq.h5", FIXTURES / "cudnn/cudnn.h5"]
)
@pytest.mark.parametrize("loaded", [False, True], ids=["from-file", "loaded"])
def test_matrix_blocks_are_the_matrix_in_rows(path, loaded):
    """Blocks of rows read on their own (a diff holds a few MiB per side) add up to the matrix."""
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with kerasweights.open(path) as model:
        if loaded:
            for weight in model.weights():
                weight.read()
        for key, matrix in model.matrices().items():
            blocks = list(matrix.blocks(max_elements=5))
            whole = matrix.read()
            joined = np.concatenate(blocks) if whole.ndim else blocks[0]
            np.testing.assert_array_equal(joined, whole, err_msg=key)
            if matrix.is_view and whole.ndim and whole.size > 5:
                assert len(blocks) > 1, key
