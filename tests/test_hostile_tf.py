"""Hostile TensorFlow-family files: damaged, oversized or escaping ones are one-line errors naming the file."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from conftest import FIXTURES

import kerasweights
from kerasweights import (
    CorruptFileError,
    KerasWeightsError,
    LimitExceededError,
    Limits,
    UnsafeContentError,
    UnsupportedFormatError,
)
from kerasweights.cli import main
from kerasweights.formats import tensor_bundle

TF = FIXTURES / "tf"


def copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(TF / name, target)
    return target


def open_all(path: Path, config: Path | None = None, limits: Limits | None = None) -> None:
    """Open and read every matrix (errors may come at open or at read)."""
    with kerasweights.open(path, config=config, limits=limits or Limits()) as model:
        for matrix in model.matrices().values():
            matrix.read()


def assert_one_line(exc: KerasWeightsError, names: str) -> None:
    text = str(exc)
    assert "\n" not in text
    assert names in text, text


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


# -- tensor bundles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 10, 47, -1], ids=["empty", "10-bytes", "no-footer", "last-byte-cut"])
def test_truncated_index_is_corrupt(tmp_path, keep):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    index = folder / "ckpt.index"
    data = index.read_bytes()
    index.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises((CorruptFileError, UnsupportedFormatError)) as info:
        open_all(folder, TF / "rnn_seq.json")
    assert_one_line(info.value, str(folder))


def test_damaged_index_block_fails_its_crc(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    flip(folder / "ckpt.index", 20)  # inside the first data block
    with pytest.raises(CorruptFileError, match="fails its CRC32C check") as info:
        open_all(folder / "ckpt.index", TF / "rnn_seq.json")
    assert_one_line(info.value, "ckpt.index")


def entry_of(prefix: Path, suffix: str) -> tensor_bundle.Entry:
    bundle = tensor_bundle.TensorBundle(prefix, prefix.parent, Limits())
    return next(e for k, e in bundle.entries.items() if k.endswith(suffix))


def test_damaged_shard_fails_its_crc_when_the_weight_is_read(tmp_path):
    folder = copy(tmp_path, "functional_savedmodel")
    shard = folder / "variables" / "variables.data-00000-of-00001"
    entry = entry_of(folder / "variables" / "variables", "layer_with_weights-8/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    flip(shard, entry.offset + 2)  # inside head/kernel only
    with kerasweights.open(folder) as model:
        assert model.total_params == 736  # metadata is intact
        with pytest.raises(CorruptFileError, match="fails its CRC32C check") as info:
            for matrix in model.matrices().values():
                matrix.read()
    assert_one_line(info.value, str(folder))
    assert "variables.data-00000-of-00001" in str(info.value)


def test_truncated_shard_is_refused_when_opened(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    shard = folder / "ckpt.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match="truncated") as info:
        open_all(folder, TF / "rnn_seq.json")
    assert_one_line(info.value, "ckpt.data-00000-of-00001")


def test_missing_shard_is_named(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    (folder / "ckpt.data-00000-of-00001").unlink()
    with pytest.raises(CorruptFileError, match=r"data shard ckpt\.data-00000-of-00001 is missing"):
        open_all(folder, TF / "rnn_seq.json")


def test_oversized_index_is_refused_before_reading(tmp_path):
    with pytest.raises(LimitExceededError, match="over the limit of 100") as info:
        open_all(TF / "rnn_seq_ckpt", TF / "rnn_seq.json", Limits(max_index_bytes=100))
    assert_one_line(info.value, "rnn_seq_ckpt")


def test_oversized_protobuf_is_refused(tmp_path):
    with pytest.raises(LimitExceededError, match=r"keras_metadata\.pb is .* over the limit of 1,000"):
        open_all(TF / "functional_savedmodel", limits=Limits(max_protobuf_bytes=1000))


def test_oversized_tensor_is_refused_on_read():
    with (
        kerasweights.open(TF / "rnn_seq_savedmodel", limits=Limits(max_array_bytes=16)) as model,
        pytest.raises(LimitExceededError, match="over the limit of 16"),
    ):
        model.layer("enc_gru").weight("kernel").read()


def test_index_whose_entry_points_past_its_shard(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    shard = folder / "ckpt.data-00000-of-00001"
    with open(shard, "r+b") as f:
        f.truncate(8)
    with pytest.raises(CorruptFileError, match="ends at byte"):
        open_all(folder, TF / "rnn_seq.json")


def test_shard_symlinked_out_of_the_folder_is_refused(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    outside = tmp_path / "elsewhere.bin"
    shard = folder / "ckpt.data-00000-of-00001"
    shutil.move(shard, outside)
    os.symlink(outside, shard)
    with pytest.raises(UnsafeContentError, match="outside the model's folder") as info:
        open_all(folder, TF / "rnn_seq.json")
    assert_one_line(info.value, str(folder))


@pytest.mark.parametrize("named", ['"../rnn_seq_ckpt/ckpt"', '"/etc/passwd"'], ids=["climbs", "absolute"])
def test_checkpoint_file_pointing_outside_is_refused(tmp_path, named):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    (folder / "checkpoint").write_text(f"model_checkpoint_path: {named}\n")
    with pytest.raises(UnsafeContentError) as info:
        open_all(folder, TF / "rnn_seq.json")
    assert_one_line(info.value, str(folder))


def test_checkpoint_file_naming_nothing(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    (folder / "checkpoint").write_text("garbage\n")
    with pytest.raises(CorruptFileError, match="names no model_checkpoint_path"):
        open_all(folder, TF / "rnn_seq.json")


def test_damaged_object_graph_fails_its_crc_before_parsing(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    entry = entry_of(folder / "ckpt", tensor_bundle.OBJECT_GRAPH_KEY)
    flip(folder / "ckpt.data-00000-of-00001", entry.offset + entry.size // 2)
    with pytest.raises(CorruptFileError, match="_CHECKPOINTABLE_OBJECT_GRAPH") as info:
        open_all(folder, TF / "rnn_seq.json")
    assert_one_line(info.value, str(folder))


def test_savedmodel_metadata_garbage_is_corrupt(tmp_path):
    folder = copy(tmp_path, "rnn_seq_savedmodel")
    (folder / "keras_metadata.pb").write_bytes(b"\xff" * 64)
    with pytest.raises(CorruptFileError, match=r"keras_metadata\.pb is not a valid protocol buffer") as info:
        open_all(folder)
    assert_one_line(info.value, str(folder))


def test_variables_folder_symlinked_out_is_refused(tmp_path):
    folder = copy(tmp_path, "rnn_seq_savedmodel")
    outside = tmp_path / "vars_elsewhere"
    shutil.move(folder / "variables", outside)
    os.symlink(outside, folder / "variables")
    with pytest.raises(UnsafeContentError, match="outside the model's folder"):
        open_all(folder)


def test_stream_of_an_index_asks_for_a_path():
    with (
        open(TF / "rnn_seq_ckpt" / "ckpt.index", "rb") as f,
        pytest.raises(UnsupportedFormatError, match="pass its path"),
    ):
        kerasweights.open(f)


# -- TF.js --------------------------------------------------------------------------------------------------


def edit_manifest(folder: Path, change) -> None:
    path = folder / "model.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "shard",
    ["../outside.bin", "/etc/passwd", "sub/../../outside.bin"],
    ids=["climbs", "absolute", "climbs-after-sub"],
)
def test_tfjs_shard_path_leaving_the_folder_is_refused(tmp_path, shard):
    folder = copy(tmp_path, "functional_tfjs")
    (tmp_path / "outside.bin").write_bytes(b"\0" * 4096)
    edit_manifest(folder, lambda d: d["weightsManifest"][0].__setitem__("paths", [shard]))
    with pytest.raises(UnsafeContentError) as info:
        open_all(folder)
    assert_one_line(info.value, str(folder))


def test_tfjs_shard_symlinked_out_of_the_folder_is_refused(tmp_path):
    folder = copy(tmp_path, "functional_tfjs")
    shard = folder / "group1-shard1of1.bin"
    outside = tmp_path / "outside.bin"
    shutil.move(shard, outside)
    os.symlink(outside, shard)
    with pytest.raises(UnsafeContentError, match="outside the model's folder"):
        open_all(folder)


def test_tfjs_truncated_shard_names_the_shards(tmp_path):
    folder = copy(tmp_path, "functional_tfjs")
    shard = folder / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:-8])
    with pytest.raises(CorruptFileError, match=r"group1-shard1of1\.bin") as info:
        open_all(folder)
    assert_one_line(info.value, str(folder))


def test_tfjs_huge_declared_shape_is_refused(tmp_path):
    folder = copy(tmp_path, "functional_tfjs")
    edit_manifest(folder, lambda d: d["weightsManifest"][0]["weights"][0].__setitem__("shape", [2**31, 2**31]))
    with pytest.raises(LimitExceededError, match="over the limit"):
        open_all(folder)


@pytest.mark.parametrize(
    "quantization, message",
    [
        ({"dtype": "int4"}, "unknown quantization"),
        ({"dtype": "uint8", "scale": "x", "min": 0}, "finite scale and min"),
        ({"dtype": "uint8", "scale": float("nan"), "min": 0}, "finite scale and min"),
    ],
    ids=["dtype", "scale-text", "scale-nan"],
)
def test_tfjs_bad_quantization_is_a_config_error(tmp_path, quantization, message):
    folder = copy(tmp_path, "functional_tfjs")
    edit_manifest(folder, lambda d: d["weightsManifest"][0]["weights"][0].__setitem__("quantization", quantization))
    with pytest.raises(KerasWeightsError, match=message):
        open_all(folder)


def test_tfjs_graph_model_is_unsupported(tmp_path):
    folder = copy(tmp_path, "functional_tfjs")
    edit_manifest(folder, lambda d: d.__setitem__("format", "graph-model"))
    with pytest.raises(UnsupportedFormatError, match="graph-model"):
        open_all(folder)


def test_cli_error_is_one_line_exit_2(tmp_path, capsys):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    (folder / "ckpt.index").write_bytes(b"\0" * 100)
    code = main(["summary", str(folder)])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and str(folder) in err


def test_footer_magic_alone_is_not_enough(tmp_path):
    path = tmp_path / "x.index"
    path.write_bytes(b"\0" * 40 + struct.pack("<Q", 0xDB4775248B80FB57))
    with pytest.raises(KerasWeightsError) as info:
        open_all(path)
    assert_one_line(info.value, str(path))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_index_block_larger_than_the_file_is_refused(tmp_path):
    folder = copy(tmp_path, "rnn_seq_ckpt")
    index = folder / "ckpt.index"
    data = index.read_bytes()
    handles = varint(0) + varint(1) + varint(0) + varint(2**40)  # metaindex, then a 1 TiB index block
    footer = handles + b"\0" * (40 - len(handles)) + data[-8:]
    index.write_bytes(data[:-48] + footer)
    with pytest.raises(CorruptFileError, match="runs past the end of the file") as info:
        open_all(folder, TF / "rnn_seq.json")
    assert_one_line(info.value, str(folder))
