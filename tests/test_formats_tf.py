"""TensorFlow-family files (SavedModel, TF checkpoint, TF.js Layers) read like the .h5 of the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIXTURES, truth, truth_arrays

import kerasweights
from kerasweights.cli import main
from kerasweights.formats import tensor_bundle, tfjs
from kerasweights.trace import merge, trace

TF = FIXTURES / "tf"
MODELS = ("rnn_seq", "functional", "bidir_lstm", "misc", "gru_names", "float16")
# Keras runs float16 layers in float16; the numpy recurrence runs float64 (as in test_trace)
TOLERANCE = {"float16": 2e-3}


def tf_files() -> list[Any]:
    """(path, config, model) for every way a user can name each TF-family fixture."""
    params = []
    for model in MODELS:
        config = TF / f"{model}.json"
        forms: list[tuple[Path, Path | None, str]] = [
            (TF / f"{model}_savedmodel", None, "savedmodel"),
            (TF / f"{model}_savedmodel" / "saved_model.pb", None, "saved_model.pb"),
            (TF / f"{model}_savedmodel" / "keras_metadata.pb", None, "keras_metadata.pb"),
            (TF / f"{model}_ckpt", config, "ckpt-folder"),
            (TF / f"{model}_ckpt" / "ckpt", config, "ckpt-prefix"),
            (TF / f"{model}_ckpt" / "ckpt.index", config, "ckpt.index"),
            (TF / f"{model}_tfjs", None, "tfjs-folder"),
            (TF / f"{model}_tfjs" / "model.json", None, "model.json"),
        ]
        params += [pytest.param(p, c, model, id=f"{model}:{form}") for p, c, form in forms]
    return params


FILES = tf_files()
FORMATS = {"savedmodel": "tf-savedmodel", "ckpt": "tf-checkpoint", "tfjs": "tfjs-layers"}


def expected_format(path: Path) -> str:
    folder = path if path.is_dir() else path.parent
    return next(v for k, v in FORMATS.items() if folder.name.endswith(k) or f"_{k}" in folder.name)


@pytest.mark.parametrize("path, config, model", FILES)
def test_parameter_counts_and_weight_names_equal_keras(path, config, model):
    expected = truth(model, "tfk")
    with kerasweights.open(path, config=config) as m:
        assert m.format == expected_format(path)
        assert m.total_params == expected["count_params"]
        got = {layer.path: layer for layer in m.walk()}
        for entry in expected["layers"]:
            layer = got[entry["path"]]
            assert layer.class_name == entry["class_name"]
            assert layer.params == entry["count_params"], entry["path"]
            if not layer.children:
                # (MHA's weights are named query/kernel ...: a suffix of Keras's variable name)
                names = [w["path"].removesuffix(":0") for w in entry["weights"]]
                assert len(layer.weights) == len(names)
                assert all(n.endswith(w.name) for w, n in zip(layer.weights, names)), (layer.weights, names)
                assert [list(w.shape) for w in layer.weights] == [w["shape"] for w in entry["weights"]]
            assert not layer.problems


@pytest.mark.parametrize("path, config, model", FILES)
def test_named_matrices_equal_the_h5_of_the_same_model(path, config, model):
    with kerasweights.open(path, config=config) as m, kerasweights.open(TF / f"{model}.h5") as h5:
        ours, theirs = m.matrices(), h5.matrices()
        assert list(ours) == list(theirs)
        for key, matrix in ours.items():
            assert matrix.source == theirs[key].source
            np.testing.assert_array_equal(matrix.read(), theirs[key].read(), err_msg=key)


@pytest.mark.parametrize("path, config, model", FILES)
def test_leaf_weights_equal_keras_get_weights(path, config, model):
    arrays = truth_arrays(model, "tfk")
    with kerasweights.open(path, config=config) as m:
        for layer in m.walk():
            for i, weight in enumerate(layer.weights if not layer.children else []):
                np.testing.assert_array_equal(weight.read(), arrays[f"_weights/{layer.path}/{i}"])


@pytest.mark.parametrize(
    "path, config, model",
    [p for p in FILES if p.id.endswith((":savedmodel", ":ckpt-folder", ":tfjs-folder"))],
)
def test_diff_with_the_h5_says_same(path, config, model, capsys):
    argv = ["diff", str(path), str(TF / f"{model}.h5")] + (["--config-a", str(config)] if config else [])
    if model == "float16" and path.name.endswith("_tfjs"):
        # the TF.js converter stores float16 variables as float32: same values, other dtype
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert "Weight gru16/kernel: 3x12 float32 -> 3x12 float16" in out
        assert "(14 of 14 matrices within 0; max abs diff 0)" in out
        return
    assert main(argv) == 0
    assert "Result: same" in capsys.readouterr().out


def recurrent_cases() -> list[Any]:
    params = []
    for model in MODELS:
        for entry in truth(model, "tfk")["recurrent"]:
            for form, config in (("savedmodel", None), ("ckpt", TF / f"{model}.json"), ("tfjs", None)):
                path = TF / f"{model}_{form}"
                params.append(pytest.param(path, config, model, entry, id=f"{model}_{form}:{entry['path']}"))
    return params


@pytest.mark.parametrize("path, config, model, entry", recurrent_cases())
def test_traced_outputs_equal_keras(path, config, model, entry):
    arrays = truth_arrays(model, "tfk")
    with kerasweights.open(path, config=config) as m:
        layer = m.layer(entry["path"])
        out = trace(layer, arrays[entry["input"]])
        atol = TOLERANCE.get(model, 1e-5)
        np.testing.assert_allclose(out["h"], arrays[entry["sequences"]].astype(np.float32), rtol=0, atol=atol)
        output = arrays[entry["output"]]
        if entry["class_name"] == "Bidirectional" and output.ndim != out["h"].ndim:
            got = merge(layer, out["forward/h"][:, -1], out["backward/h"][:, -1])
        else:
            got = out["h"] if output.ndim == out["h"].ndim else out["h"][:, -1]
        np.testing.assert_allclose(got, output.astype(np.float32), rtol=0, atol=atol)


# -- checkpoints --------------------------------------------------------------------------------------


def test_checkpoint_without_config_infers_layers():
    expected = truth("functional", "tfk")
    with kerasweights.open(TF / "functional_ckpt") as m:
        assert m.total_params == expected["count_params"]
        assert all(layer.inferred for layer in m.walk())
        assert any("inferred" in note for note in m.notes)
        assert [l.class_name for l in m.layers] == [
            "Embedding",
            "LSTM",
            "Bidirectional",
            "TimeDistributed",
            "Model",
            "Conv1D",
            "LayerNormalization",
            "MultiHeadAttention",
            "Dense",
        ]
        assert m.layer("layer_with_weights-1").matrix("kernel_i").shape == (4, 5)


def test_checkpoint_folder_reads_the_latest_save_with_optimizer_state():
    expected = truth("compiled", "tf")
    arrays = truth_arrays("compiled", "tf")
    with kerasweights.open(TF / "compiled_ckpt", config=TF / "compiled.json") as m:
        assert any("'trained'" in note and "latest" in note for note in m.notes)
        assert m.total_params == expected["count_params"]
        np.testing.assert_array_equal(m.layer("enc_gru").weight("kernel").read(), arrays["_weights/enc_gru/0"])
        slots = sum(int(np.prod(v["shape"])) * np.dtype(v["dtype"]).itemsize for v in expected["optimizer_variables"])
        assert m.optimizer_bytes == slots + 4  # + the float32 learning rate, not in optimizer.variables
        assert all(w.key.split("/")[0] != "optimizer" for w in m.weights())
    # the first save, named explicitly, holds the untrained weights and no optimizer
    with kerasweights.open(TF / "compiled_ckpt" / "initial", config=TF / "compiled.json") as m:
        np.testing.assert_array_equal(
            m.layer("enc_gru").weight("kernel").read(), truth_arrays("rnn_seq", "tfk")["_weights/enc_gru/0"]
        )
        assert m.optimizer_bytes == 0


# -- TF.js quantized ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, suffix", [("functional", "uint8"), ("rnn_seq", "uint16"), ("bidir_lstm", "float16")])
def test_quantized_tfjs_is_dequantized_within_half_a_step(model, suffix):
    folder = TF / f"{model}_tfjs_{suffix}"
    manifest = json.loads((folder / "model.json").read_text())["weightsManifest"]
    scales = {w["name"]: w["quantization"].get("scale", 0.0) for g in manifest for w in g["weights"]}
    arrays = truth_arrays(model, "tfk")
    with kerasweights.open(folder) as m:
        assert m.total_params == truth(model, "tfk")["count_params"]
        assert any(suffix in note and "de-quantized" in note for note in m.notes)
        for layer in m.walk():
            for i, weight in enumerate(layer.weights if not layer.children else []):
                value, keras = weight.read(), arrays[f"_weights/{layer.path}/{i}"]
                assert value.dtype == np.float32
                if suffix == "float16":
                    np.testing.assert_array_equal(value, keras.astype(np.float16).astype(np.float32))
                else:
                    step = scales[weight.array.stored_name]
                    assert np.abs(value - keras).max() <= step / 2 + 1e-6


def test_tfjs_tensor_spanning_two_shards_is_read_whole():
    manifest = json.loads((TF / "rnn_seq_tfjs" / "model.json").read_text())["weightsManifest"]
    assert len(manifest[0]["paths"]) >= 2


# -- laziness -----------------------------------------------------------------------------------------------


def test_summary_reads_no_tensor_bytes_and_one_weight_reads_its_own(monkeypatch):
    reads: list[str] = []
    original = tensor_bundle.TensorBundle._bytes

    def counting(self, entry, *args, **kwargs):
        reads.append(entry.key)
        return original(self, entry, *args, **kwargs)

    monkeypatch.setattr(tensor_bundle.TensorBundle, "_bytes", counting)
    with kerasweights.open(TF / "functional_savedmodel") as m:
        assert m.total_params > 0
        assert reads == [tensor_bundle.OBJECT_GRAPH_KEY]  # the graph of objects, no tensor
        m.layer("bi_g/forward_g").matrix("kernel_z").read()
        assert len(reads) == 2 and reads[1].endswith("/.ATTRIBUTES/VARIABLE_VALUE")


def test_tfjs_summary_reads_no_shard_bytes(monkeypatch):
    reads: list[int] = []
    original = tfjs._Group.read

    def counting(self, offset, nbytes):
        reads.append(nbytes)
        return original(self, offset, nbytes)

    monkeypatch.setattr(tfjs._Group, "read", counting)
    with kerasweights.open(TF / "functional_tfjs") as m:
        assert m.total_params > 0 and reads == []
        m.layer("head").weight("kernel").read()
        assert reads == [3 * 2 * 4]


def test_summary_command_lists_the_savedmodel(capsys):
    assert main(["summary", str(TF / "rnn_seq_savedmodel")]) == 0
    out = capsys.readouterr().out
    assert "tf-savedmodel" in out and "enc_gru" in out and "Total params: 485" in out


def test_audit_walk_takes_each_tf_model_folder_as_one_model(tmp_path):
    from kerasweights.audit.discovery import iter_model_files

    for name in ("rnn_seq_savedmodel", "rnn_seq_tfjs", "compiled_ckpt"):
        shutil.copytree(TF / name, tmp_path / name)
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in ("ckpt.index", "ckpt.data-00000-of-00001"):
        shutil.copy(TF / "rnn_seq_ckpt" / name, loose / name)
    found = [Path(p).relative_to(tmp_path).as_posix() for p in iter_model_files([tmp_path])]
    assert found == ["compiled_ckpt", "loose/ckpt.index", "rnn_seq_savedmodel", "rnn_seq_tfjs"]


def test_savedmodel_without_keras_metadata_infers_from_the_object_graph(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(TF / "rnn_seq_savedmodel", folder)
    (folder / "keras_metadata.pb").unlink()
    with kerasweights.open(folder) as m:
        assert m.format == "tf-savedmodel" and not m.has_config
        assert m.total_params == truth("rnn_seq", "tfk")["count_params"]
        assert [l.class_name for l in m.layers] == ["SimpleRNN", "GRU", "GRU", "LSTM", "Dense"]
        assert [l.config.get("reset_after") for l in m.layers[1:3]] == [True, False]
        assert any("keras_metadata.pb" in note for note in m.notes)


@pytest.mark.parametrize("model", ["functional", "misc"])
def test_savedmodel_with_metadata_in_saved_model_pb_as_before_tf_2_5(tmp_path, model):
    """TF 2.0-2.4 kept each layer's JSON in saved_model.pb (SavedUserObject.metadata), with no
    keras_metadata.pb; keras_metadata.pb's node ids are those of that object graph."""
    from kerasweights.formats import _protobuf

    folder = tmp_path / "model"
    shutil.copytree(TF / f"{model}_savedmodel", folder)
    meta = _protobuf.parse(_protobuf.SavedMetadata, (folder / "keras_metadata.pb").read_bytes(), "m", 1 << 30)
    saved = _protobuf.parse(_protobuf.SavedModel, (folder / "saved_model.pb").read_bytes(), "s", 1 << 30)
    nodes = saved.meta_graphs[0].object_graph_def.nodes
    for node in meta.nodes:
        nodes[node.node_id].user_object.identifier = node.identifier
        nodes[node.node_id].user_object.metadata = node.metadata
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    (folder / "keras_metadata.pb").unlink()
    assert main(["diff", str(folder), str(TF / f"{model}.h5")]) == 0


def test_legacy_optimizer_slots_are_optimizer_state_not_weights():
    """OptimizerV2 (TF <= 2.10 Adam): slots are slot_variables keyed .OPTIMIZER_SLOT, outside the layers."""
    expected = truth("legacy_adam", "tf")
    arrays = truth_arrays("legacy_adam", "tf")
    with kerasweights.open(TF / "legacy_adam_ckpt", config=TF / "rnn_seq.json") as m:
        assert m.total_params == expected["count_params"]
        assert all(".OPTIMIZER_SLOT" not in w.array.key for w in m.weights())
        np.testing.assert_array_equal(m.layer("lstm_last").weight("bias").read(), arrays["_weights/lstm_last/2"])
        state = sum(int(np.prod(v["shape"])) * np.dtype(v["dtype"]).itemsize for v in expected["optimizer_variables"])
        assert m.optimizer_bytes == state + 16  # + beta_1, beta_2, decay, learning_rate (float32 hyperparameters)


@pytest.mark.parametrize("form", ["savedmodel", "ckpt"])
def test_subclassed_model_layers_are_inferred_from_attribute_names(form):
    """A subclassed model tracks its layers as attributes (self.rnn), not layer-<i>; its SavedModel
    config lists no layers. keras_metadata.pb still names them (bi), a checkpoint does not (rnn)."""
    expected = truth("subclassed", "tf")
    arrays = truth_arrays("subclassed", "tf")
    names = {
        "savedmodel": ["embed", "bi", "bi/forward_g", "bi/backward_g", "head"],
        "ckpt": ["embed", "rnn", "rnn/forward_layer", "rnn/backward_layer", "head"],
    }[form]
    with kerasweights.open(TF / f"subclassed_{form}") as m:
        assert m.total_params == expected["count_params"]
        assert [layer.path for layer in m.walk()] == names
        assert [layer.class_name for layer in m.walk()] == [e["class_name"] for e in expected["layers"]]
        assert not any("not matched" in note for note in m.notes)
        for layer, entry in zip(m.walk(), expected["layers"]):
            assert layer.params == entry["count_params"]
            for i, weight in enumerate(layer.weights):
                np.testing.assert_array_equal(weight.read(), arrays[f"_weights/{entry['path']}/{i}"])
        assert m.layer(names[2]).matrix("kernel_z").shape == (4, 3)


def test_traced_savedmodel_keys_cell_variables_by_the_roots_list():
    """With traced functions, a SavedModel stores the RNN cell's variables once, as variables/N:
    they are found through the object graph, not by key."""
    from kerasweights.formats.tensor_bundle import TensorBundle
    from kerasweights.limits import Limits

    folder = TF / "traced_rnn_savedmodel"
    bundle = TensorBundle(folder / "variables" / "variables", folder / "variables", Limits())
    assert any(key.startswith("variables/") for key in bundle.entries)
    expected = truth("traced_rnn", "tf")
    arrays = truth_arrays("traced_rnn", "tf")
    with kerasweights.open(folder) as m, kerasweights.open(TF / "traced_rnn.h5") as h5:
        assert m.total_params == expected["count_params"]
        assert [w.array.key.split("/")[0] for w in m.layer("r").weights] == ["variables"] * 3
        for i, weight in enumerate(m.layer("r").weights):
            np.testing.assert_array_equal(weight.read(), arrays[f"_weights/r/{i}"])
        ours, theirs = m.matrices(), h5.matrices()
        assert list(ours) == list(theirs)
        entry = expected["recurrent"][0]
        out = trace(m.layer("r"), arrays[entry["input"]])
        np.testing.assert_allclose(out["h"], arrays[entry["sequences"]], rtol=0, atol=1e-5)
