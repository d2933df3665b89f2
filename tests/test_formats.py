"""Format detection by content, and each reader on real files and on hand-built edge cases."""

from __future__ import annotations

import io
import shutil
import zipfile

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, truth

import kerasweights
from kerasweights import ConfigError, UnsafeContentError, UnsupportedFormatError, formats

VARIANTS = FIXTURES / "variants"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(FIXTURES / "k3/rnn_seq.keras", "keras-zip", id="keras-zip"),
        pytest.param(FIXTURES / "tfk/rnn_seq.keras", "keras-zip", id="tfk-keras-zip"),
        pytest.param(VARIANTS / "rnn_seq.deflate.keras", "keras-zip", id="deflated"),
        pytest.param(VARIANTS / "rnn_seq.deflate64.keras", "keras-zip", id="deflate64"),
        pytest.param(VARIANTS / "rnn_seq_dir", "keras-dir", id="directory"),
        pytest.param(FIXTURES / "k3/rnn_seq.h5", "h5-full", id="k3-legacy-h5"),
        pytest.param(FIXTURES / "tfk/rnn_seq.h5", "h5-full", id="tfk-h5"),
        pytest.param(FIXTURES / "tfk/rnn_seq_weights.h5", "h5-weights", id="tfk-weights-h5"),
        pytest.param(FIXTURES / "k3/rnn_seq.weights.h5", "weights-h5", id="k3-weights-h5"),
        pytest.param(VARIANTS / "rnn_seq.weights.json", "weights-sharded", id="sharded"),
    ],
)
def test_every_format_reads_with_keras_parameter_count(path, expected):
    with kerasweights.open(path) as model:
        assert model.format == expected
        assert model.total_params == truth("rnn_seq")["count_params"]


@pytest.mark.parametrize(
    ("path", "config"),
    [
        pytest.param(FIXTURES / "k3/rnn_seq.weights.h5", FIXTURES / "k3/rnn_seq.json", id="k3-weights"),
        pytest.param(FIXTURES / "tfk/functional_weights.h5", FIXTURES / "tfk/functional.json", id="tfk-weights"),
        pytest.param(VARIANTS / "rnn_seq.weights.json", FIXTURES / "k3/rnn_seq.json", id="sharded"),
    ],
)
def test_weights_only_with_config_behaves_like_full_model(path, config):
    full = path.parent / (path.name.split(".")[0].removesuffix("_weights") + ".keras")
    if not full.exists():
        full = FIXTURES / "k3" / "rnn_seq.keras"
    with kerasweights.open(path, config=config) as partial, kerasweights.open(full) as whole:
        assert [(l.path, l.class_name, l.params) for l in partial.walk()] == [
            (l.path, l.class_name, l.params) for l in whole.walk()
        ]
        assert not any(l.inferred for l in partial.walk())
        for key, matrix in whole.matrices().items():
            np.testing.assert_array_equal(partial.find(key).read(), matrix.read())


def test_extension_is_only_a_hint(tmp_path):
    lying = tmp_path / "model.keras"
    shutil.copy(FIXTURES / "k3/rnn_seq.h5", lying)
    with kerasweights.open(lying) as model:
        assert model.format == "h5-full"
    zipped = tmp_path / "model.h5"
    shutil.copy(FIXTURES / "k3/rnn_seq.keras", zipped)
    with kerasweights.open(zipped) as model:
        assert model.format == "keras-zip"


def test_file_objects_are_accepted():
    data = io.BytesIO((FIXTURES / "k3/rnn_seq.keras").read_bytes())
    with kerasweights.open(data) as model:
        assert model.path == "<stream>"
        assert model.layer("enc_gru").matrix("kernel_z").shape == (6, 5)


def test_pickled_npz_weights_are_refused():
    with pytest.raises(UnsafeContentError) as err:
        kerasweights.open(VARIANTS / "rnn_seq.npz.keras")
    assert str(err.value) == (
        f"{VARIANTS / 'rnn_seq.npz.keras'}: weights are stored as model.weights.npz, a pickle; "
        "kerasweights never unpickles weights"
    )


def test_config_json_alone_points_to_config_option():
    with pytest.raises(
        UnsupportedFormatError, match=r"model config \(JSON\) without weights: give it to a weights file as config="
    ):
        kerasweights.open(FIXTURES / "k3/rnn_seq.json")


def test_chunked_and_bytes_attributes(tmp_path):
    # Keras splits long name lists into layer_names0, layer_names1, ... and writes bytes.
    path = tmp_path / "chunked.h5"
    with h5py.File(path, "w") as f:
        names = [f"dense_{i}".encode() for i in range(3)]
        f.attrs["layer_names0"] = np.array(names[:2])
        f.attrs["layer_names1"] = np.array(names[2:])
        f.attrs["keras_version"] = b"2.2.4"
        for _i, name in enumerate(names):
            g = f.create_group(name.decode())
            g.attrs["weight_names"] = np.array(
                [f"{name.decode()}/kernel:0".encode(), f"{name.decode()}/bias:0".encode()]
            )
            g.create_dataset(f"{name.decode()}/kernel:0", data=np.ones((2, 3)))
            g.create_dataset(f"{name.decode()}/bias:0", data=np.ones(3))
    with kerasweights.open(path) as model:
        assert [l.path for l in model.walk()] == ["dense_0", "dense_1", "dense_2"]
        assert model.total_params == 27
        assert model.keras_version == "2.2.4"


def test_weightless_layer_names_stored_as_empty_float_array(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"input_1"])
        f.create_group("input_1").attrs["weight_names"] = np.array([], dtype=np.float64)
    with kerasweights.open(path) as model:
        assert model.total_params == 0


def test_bfloat16_is_read_exactly(tmp_path):
    path = tmp_path / "bf16.weights.h5"
    values = np.array([1.5, -2.0, 0.15625], dtype=np.float32)
    raw = (values.view(np.uint32) >> 16).astype(np.uint16)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("layers/dense/vars/0", data=raw.view("V2"))
        ds.attrs["dtype"] = "bfloat16"
    with kerasweights.open(path) as model:
        weight = model.weights()[0]
        assert weight.dtype == "bfloat16"
        np.testing.assert_array_equal(weight.read(), values)


def test_deflate64_member_is_inflated_once(tmp_path):
    with zipfile.ZipFile(VARIANTS / "rnn_seq.deflate64.keras") as zf:
        assert {i.filename: i.compress_type for i in zf.infolist()}["model.weights.h5"] == 9
    with (
        kerasweights.open(VARIANTS / "rnn_seq.deflate64.keras") as a,
        kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as b,
    ):
        for key, matrix in b.matrices().items():
            np.testing.assert_array_equal(a.find(key).read(), matrix.read())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param([1, 2], "model config is not a JSON object with a class_name", id="list"),
        pytest.param({"config": {}}, "model config is not a JSON object with a class_name", id="no-class"),
        pytest.param({"class_name": "Sequential", "config": 3}, "has a config of type int", id="config-int"),
        pytest.param(
            {"class_name": "Sequential", "config": {"layers": {"a": 1}}},
            "layers is a dict, expected a list",
            id="layers-dict",
        ),
        pytest.param({"class_name": "Sequential", "config": {"layers": ["Dense"]}}, "layer 0 is a str", id="layer-str"),
    ],
)
def test_wrong_config_types_are_clear_errors(tmp_path, config, message):
    import json

    (tmp_path / "bad.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        kerasweights.open(FIXTURES / "k3/rnn_seq.weights.h5", config=tmp_path / "bad.json")


def test_sniff():
    with open(FIXTURES / "k3/rnn_seq.keras", "rb") as f:
        assert formats.sniff(f) == "zip"
    with open(FIXTURES / "k3/rnn_seq.h5", "rb") as f:
        assert formats.sniff(f) == "hdf5"
    assert formats.sniff(io.BytesIO(b'{"weight_map": {}}')) == "json"
    assert formats.sniff(io.BytesIO(b"hello")) == "unknown"


def test_tf_keras_2_13_checkpoint_dependencies_prefix(tmp_path):
    # tf.keras 2.12-2.14 wrote the vars tree under _layer_checkpoint_dependencies instead of layers.
    source = FIXTURES / "tfk/rnn_seq.keras"
    target = tmp_path / "old.keras"
    with zipfile.ZipFile(source) as zin:
        weights = zin.read("model.weights.h5")
        members = {n: zin.read(n) for n in zin.namelist() if n != "model.weights.h5"}
    h5_path = tmp_path / "w.h5"
    h5_path.write_bytes(weights)
    with h5py.File(h5_path, "r+") as f:
        f.move("layers", "_layer_checkpoint_dependencies")
    with zipfile.ZipFile(target, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
        zout.write(h5_path, "model.weights.h5")
    with kerasweights.open(target) as old, kerasweights.open(source) as new:
        assert old.total_params == new.total_params == 485
        assert old.layer("enc_gru").weight("kernel").array.key.startswith("_layer_checkpoint_dependencies/gru/")
        np.testing.assert_array_equal(old.find("lstm_last/kernel_f").read(), new.find("lstm_last/kernel_f").read())
