"""formats._protobuf: the pure-Python decoder reads what the protobuf runtime reads, and only that."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasweights import CorruptFileError, LimitExceededError
from kerasweights.formats import _protobuf
from kerasweights.formats.tensor_bundle import OBJECT_GRAPH_KEY, TensorBundle
from kerasweights.limits import Limits

TF = FIXTURES / "tf"


def same(decoded: Any, parsed: Any, name: str) -> None:
    """Every schema field of ``decoded`` equals the runtime's, recursively."""
    for field, _, kind, repeated in _protobuf._MESSAGES[name]:
        ours, theirs = getattr(decoded, field), getattr(parsed, field)
        if kind in _protobuf._DEFAULTS:
            assert (list(ours) if repeated else ours) == (list(theirs) if repeated else theirs), field
        elif repeated:
            assert len(ours) == len(theirs), field
            for a, b in zip(ours, theirs):
                same(a, b, kind)
        else:
            same(ours, theirs, kind)


def bundle_messages() -> list[Any]:
    params = []
    for index in sorted(TF.rglob("*.index")):
        prefix = index.with_suffix("")
        params.append(pytest.param(prefix, id=str(index.relative_to(TF))))
    return params


@pytest.mark.parametrize("prefix", bundle_messages())
def test_decoder_equals_runtime_on_every_fixture_object_graph(prefix: Path) -> None:
    bundle = TensorBundle(prefix, prefix.parent, Limits())
    data = bundle.read_string(OBJECT_GRAPH_KEY)
    name = "TrackableObjectGraph"
    same(
        _protobuf.decode(name, data, "g", 1 << 30), _protobuf.parse(getattr(_protobuf, name), data, "g", 1 << 30), name
    )


@pytest.mark.parametrize("path", sorted(TF.glob("*_savedmodel/keras_metadata.pb")), ids=lambda p: p.parent.name)
def test_decoder_equals_runtime_on_keras_metadata(path: Path) -> None:
    data = path.read_bytes()
    same(
        _protobuf.decode("SavedMetadata", data, "m", 1 << 30),
        _protobuf.parse(_protobuf.SavedMetadata, data, "m", 1 << 30),
        "SavedMetadata",
    )


def test_negative_and_large_numbers_round_trip() -> None:
    entry = _protobuf.BundleEntryProto(dtype=1, shard_id=-1, offset=2**40, size=7, crc32c=0xFFFFFFFF)
    entry.shape.dim.add(size=-1)
    decoded = _protobuf.decode("BundleEntryProto", entry.SerializeToString(), "e", 1 << 20)
    assert (decoded.shard_id, decoded.offset, decoded.crc32c, decoded.shape.dim[0].size) == (-1, 2**40, 0xFFFFFFFF, -1)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x08", "truncated varint"),
        (b"\x08" + b"\xff" * 11, "varint longer than 10 bytes"),
        (b"\x12\x05ab", "runs past the end"),
        (b"\x0d\x01", "truncated 32-bit field"),
        (b"\x0b", "wire type 3"),
        (b"\x00", "field number 0"),
        (b"\x0a\x01\x00", "field dtype has wire type 2"),  # dtype (1) sent length-delimited
    ],
    ids=["varint", "long-varint", "overrun", "fixed32", "group", "zero", "wire-type"],
)
def test_damaged_bytes_are_one_corrupt_error(data: bytes, message: str) -> None:
    with pytest.raises(CorruptFileError, match=message):
        _protobuf.decode("BundleEntryProto", data, "entry", 1 << 20)


def test_size_limit_is_checked_first() -> None:
    with pytest.raises(LimitExceededError, match="over the limit of 10"):
        _protobuf.decode("BundleEntryProto", b"\0" * 11, "entry", 10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(sorted(_protobuf._MESSAGES)))
def test_any_bytes_decode_or_raise_corrupt(data: bytes, name: str) -> None:
    with contextlib.suppress(CorruptFileError):  # anything else (IndexError, ...) fails the test
        _protobuf.decode(name, data, "fuzz", 1 << 20)
