"""kerasweights.export.arrays: .npz and .safetensors hold Keras's values under <layer path>/<name>."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest
from conftest import FIXTURES, all_model_files, truth, truth_arrays
from h5edit import edited_h5, layer_config

import kerasweights
from kerasweights.export import arrays as exporting
from kerasweights.layouts import GATES, family


def _load(path, fmt):
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_raw_export_holds_every_stored_array_as_keras_has_it(tmp_path, path, config, model, runtime, fmt):
    out = tmp_path / f"raw.{fmt}"
    with kerasweights.open(path, config=config) as m:
        selection = exporting.select(m, raw=True)
        exporting.write(out, selection.arrays, fmt)
        keys = {layer.path: [w.key for w in layer.weights] for layer in m.walk()}
    got = _load(out, fmt)
    expected = truth_arrays(model, runtime)
    leaves = [l for l in truth(model, runtime)["layers"] if f"_weights/{l['path']}/0" in expected]
    assert leaves
    for leaf in leaves:
        for i, key in enumerate(keys[leaf["path"]]):
            want = expected[f"_weights/{leaf['path']}/{i}"]
            assert got[key].dtype == want.dtype
            np.testing.assert_array_equal(got[key], want, err_msg=key)
    assert len(got) == sum(len(l["weights"]) for l in leaves)


@pytest.mark.parametrize(("path", "config", "model", "runtime"), all_model_files())
def test_gate_matrices_concatenate_back_to_the_stored_array(tmp_path, path, config, model, runtime):
    out = tmp_path / "split.npz"
    with kerasweights.open(path, config=config) as m:
        exporting.write(out, exporting.select(m).arrays, "npz")
    got = _load(out, "npz")
    expected = truth_arrays(model, runtime)
    checked = 0
    for entry in truth(model, runtime)["recurrent"]:
        kernel = expected.get(f"_weights/{entry['path']}/0")
        gates = GATES.get(family(entry["class_name"]), ())
        if kernel is None or not gates:
            continue  # Bidirectional parents; SimpleRNN has no gates
        parts = [got[f"{entry['path']}/kernel_{g}"] for g in gates]
        np.testing.assert_array_equal(np.concatenate(parts, axis=-1), kernel)
        recurrent = [got[f"{entry['path']}/recurrent_kernel_{g}"] for g in gates]
        np.testing.assert_array_equal(np.concatenate(recurrent, axis=-1), expected[f"_weights/{entry['path']}/1"])
        checked += 1
    assert checked or model == "misc"  # every other fixture model has a GRU or LSTM (fixtures/README.md)


def test_issue_examples_have_keras_values(tmp_path):
    out = tmp_path / "functional.npz"
    with kerasweights.open(FIXTURES / "k3/functional.keras") as m:
        exporting.write(out, exporting.select(m).arrays, "npz")
    got = _load(out, "npz")
    w = truth_arrays("functional")
    np.testing.assert_array_equal(got["bi_g/forward_g/recurrent_bias_h"], w["_weights/bi_g/forward_g/2"][1, 6:9])
    np.testing.assert_array_equal(got["encoder/lstm_nb/kernel_f"], w["_weights/encoder/lstm_nb/0"][:, 4:8])
    np.testing.assert_array_equal(got["head/kernel"], w["_weights/head/0"])
    assert not any(k.startswith("encoder/lstm_nb/bias") for k in got)  # use_bias=False


def test_enc_gru_kernel_z_is_the_first_five_columns(tmp_path):
    out = tmp_path / "rnn.safetensors"
    with kerasweights.open(FIXTURES / "k3/rnn_seq.h5") as m:
        exporting.write(
            out, exporting.select(m, layer="enc_gru").arrays, "safetensors", metadata={"source": "rnn_seq.h5"}
        )
    got = _load(out, "safetensors")
    stored = truth_arrays("rnn_seq")["_weights/enc_gru/0"]
    np.testing.assert_array_equal(got["enc_gru/kernel_z"], stored[:, :5])
    assert sorted(got) == sorted(
        f"enc_gru/{p}_{g}" for p in ("kernel", "recurrent_kernel", "bias", "recurrent_bias") for g in "zrh"
    )
    from safetensors import safe_open

    with safe_open(str(out), framework="np") as f:
        assert f.metadata() == {"source": "rnn_seq.h5"}


def test_layer_selects_the_layer_and_its_children():
    with kerasweights.open(FIXTURES / "k3/functional.keras") as m:
        keys = list(exporting.select(m, layer="bi_g").arrays)
    assert keys and all(k.startswith(("bi_g/forward_g/", "bi_g/backward_g/")) for k in keys)
    assert len(keys) == 2 * 12  # per half: 3 gates x kernel, recurrent_kernel, bias, recurrent_bias


def test_a_layer_that_does_not_fit_its_rule_is_exported_unsplit_with_a_warning(tmp_path):
    def wrong_units(document):
        layer_config(document, "enc_gru")["units"] = 6  # stored kernel is (6, 15) = 3 * 5 units

    path = edited_h5(FIXTURES / "k3/rnn_seq.h5", tmp_path / "bad.h5", config=wrong_units)
    with kerasweights.open(path) as m:
        selection = exporting.select(m)
    [warning] = selection.warnings
    assert warning.startswith("layer 'enc_gru': kernel has shape (6, 15), expected ")
    assert warning.endswith("; exported its stored arrays unsplit")
    assert [k for k in selection.arrays if k.startswith("enc_gru/")] == [
        "enc_gru/kernel",
        "enc_gru/recurrent_kernel",
        "enc_gru/bias",
    ]
    assert "gru_ra_false/kernel_z" in selection.arrays  # the others are still split


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        pytest.param("out.npz", None, "npz", id="npz-extension"),
        pytest.param("out.SafeTensors", None, "safetensors", id="safetensors-extension"),
        pytest.param("out.bin", "npz", "npz", id="format-wins"),
    ],
)
def test_format_for(path, fmt, expected):
    assert exporting.format_for(path, fmt) == expected


@pytest.mark.parametrize(
    ("path", "fmt", "message"),
    [
        pytest.param(
            "out.bin",
            None,
            "cannot tell the export format from 'out.bin'; name it .npz or .safetensors, or pass fmt=",
            id="unknown-extension",
        ),
        pytest.param("out.npz", "pt", "unknown export format 'pt'; use one of: npz, safetensors", id="unknown-format"),
        pytest.param(
            "out.npz",
            "safetensors",
            "format safetensors does not match the name 'out.npz'; name it out.safetensors",
            id="format-against-extension",
        ),
        pytest.param(
            "dir/w.safetensors",
            "npz",
            "format npz does not match the name 'dir/w.safetensors'; name it w.npz",
            id="npz-format-safetensors-name",
        ),
    ],
)
def test_format_for_refuses(path, fmt, message):
    with pytest.raises(ValueError) as info:
        exporting.format_for(path, fmt)
    assert str(info.value) == message


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_exports_get_the_usual_file_mode(tmp_path, fmt):
    pytest.importorskip("safetensors")
    out = tmp_path / f"x.{fmt}"
    old = os.umask(0o022)
    try:
        exporting.write(out, {"a/b": np.zeros(2, np.float32)}, fmt)
        os.umask(0o027)
        exporting.write(tmp_path / f"y.{fmt}", {"a/b": np.zeros(2, np.float32)}, fmt)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / f"y.{fmt}").stat().st_mode) == 0o640


def test_safetensors_need_no_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # import now raises ImportError
    out = tmp_path / "x.safetensors"
    assert exporting.write(out, {"a/b": np.arange(2, dtype=">f4")}, "safetensors") == 2  # big-endian input
    monkeypatch.undo()
    from safetensors.numpy import load_file

    np.testing.assert_array_equal(load_file(out)["a/b"], np.arange(2, dtype="<f4"))


def test_a_failed_write_leaves_no_file_behind(tmp_path):
    class Broken:
        dtype, shape = "float32", (2,)

        def read(self):
            raise OSError("disk on fire")

    out = tmp_path / "x.npz"
    with pytest.raises(OSError, match="disk on fire"):
        exporting.write(out, {"a/ok": np.ones(2, np.float32), "a/broken": Broken()}, "npz")  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_progress_is_called_once_per_array_in_order(tmp_path):
    seen = []
    arrays = {"x/a": np.zeros(1, np.float32), "x/b": np.ones((2, 2), np.float64)}
    assert exporting.write(tmp_path / "p.npz", arrays, "npz", progress=seen.append) == 5
    assert seen == ["x/a", "x/b"]
