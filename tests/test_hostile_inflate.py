"""Zip members that inflate far more than they say (issue 13): every method, bounded per step.

A member may declare a small size, or a modest ratio, and still inflate to gigabytes: 200
bytes of bzip2 make 256 MiB of zeros, and Deflate64 back-references of 65,538 bytes cost
29 bits each. Whatever the method, kerasweights inflates at most a few MiB per step and stops
at the declared size; these tests measure the peak resident set of a fresh process.
"""

from __future__ import annotations

import bz2
import lzma
import subprocess
import sys
import zipfile
import zlib
from functools import cache
from pathlib import Path

import pytest
from conftest import FIXTURES, truth
from test_hostile import Entry, stored, write_raw_zip

import kerasweights
from kerasweights import CorruptFileError, KerasWeightsError

MiB = 1024**2
MEMBERS = {
    name: (FIXTURES / "variants/rnn_seq_dir" / name).read_bytes() for name in ("config.json", "model.weights.h5")
}
ZEROS = 256 * MiB  # what every bomb below inflates to
DEFLATE64 = 9


class Bits:
    """A deflate bit stream: Huffman codes go in most significant bit first, other fields least first."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, count: int) -> None:
        self.acc |= value << self.n
        self.n += count
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def code(self, code: int, length: int) -> None:
        self.put(int(f"{code:0{length}b}"[::-1], 2), length)

    def fixed_symbol(self, symbol: int) -> None:
        """A literal/length symbol in the fixed Huffman code (RFC 1951, 3.2.6)."""
        if symbol < 144:
            self.code(0x30 + symbol, 8)
        elif symbol < 256:
            self.code(0x190 + symbol - 144, 9)
        elif symbol < 280:
            self.code(symbol - 256, 7)
        else:
            self.code(0xC0 + symbol - 280, 8)

    def done(self) -> bytes:
        return bytes(self.out + (bytes([self.acc]) if self.n else b""))


def deflate64_literals(data: bytes) -> bytes:
    """``data`` as one fixed-Huffman Deflate64 block of literals (a valid, if poor, compression)."""
    bits = Bits()
    bits.put(1, 1)  # last block
    bits.put(1, 2)  # fixed Huffman codes
    for byte in data:
        bits.fixed_symbol(byte)
    bits.fixed_symbol(256)
    return bits.done()


def deflate64_bomb(size: int) -> bytes:
    """One zero byte, then matches of 65,538 bytes at distance 1 (Deflate64's length code 285 has
    16 extra bits): 29 bits per 64 KiB of output, about 18,000 times."""
    bits = Bits()
    bits.put(1, 1)
    bits.put(1, 2)
    bits.fixed_symbol(0)
    left = size - 1
    while left >= 65538:
        bits.fixed_symbol(285)
        bits.put(65535, 16)  # length 3 + 65,535
        bits.code(0, 5)  # distance code 0: distance 1
        left -= 65538
    for _ in range(left):
        bits.fixed_symbol(0)
    bits.fixed_symbol(256)
    return bits.done()


def lzma_member(data: bytes) -> bytes:
    """zip's LZMA: version 9.20, the size of the properties, the properties, raw LZMA1."""
    filters = [{"id": lzma.FILTER_LZMA1, "preset": 1}]
    props = lzma._encode_filter_properties(filters[0])  # type: ignore[attr-defined]
    compressor = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=filters)
    return b"\x09\x14" + len(props).to_bytes(2, "little") + props + compressor.compress(data) + compressor.flush()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@cache
def compressed_zeros(method: int) -> bytes:
    zeros = bytes(ZEROS)
    if method == zipfile.ZIP_DEFLATED:
        return raw_deflate(zeros)
    if method == zipfile.ZIP_BZIP2:
        return bz2.compress(zeros, 9)
    if method == zipfile.ZIP_LZMA:
        return lzma_member(zeros)
    return deflate64_bomb(ZEROS)


@cache
def zeros_crc() -> int:
    return zlib.crc32(bytes(ZEROS))


METHODS = [
    pytest.param(zipfile.ZIP_DEFLATED, id="deflate"),
    pytest.param(DEFLATE64, id="deflate64"),
    pytest.param(zipfile.ZIP_BZIP2, id="bzip2"),
    pytest.param(zipfile.ZIP_LZMA, id="lzma"),
]


def bomb(tmp: Path, method: int, declared: str) -> Path:
    data = compressed_zeros(method)
    size = {"1000-bytes": 1000, "ratio-150": 150 * len(data), "truthfully": ZEROS}[declared]
    return write_raw_zip(
        tmp / "bomb.keras",
        [
            stored("config.json", MEMBERS["config.json"]),
            Entry("model.weights.h5", method, zeros_crc(), len(data), size, [data]),
        ],
    )


PEAK_PROBE = """
import sys, kerasweights
def hwm():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the peak to the current resident set
base = hwm()
try:
    kerasweights.open(sys.argv[1]).close()
    print("opened")
except kerasweights.KerasWeightsError as exc:
    print(type(exc).__name__, exc.problem)
print((hwm() - base) // 1024**2)
"""


def peak_mib(path: Path) -> tuple[str, int]:
    result = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    outcome, peak = result.stdout.strip().rsplit("\n", 1)
    return outcome, int(peak)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("declared", ["1000-bytes", "ratio-150", "truthfully"])
@pytest.mark.parametrize("method", METHODS)
def test_inflation_is_bounded_per_step_for_every_method(tmp_path, method, declared):
    """256 MiB of zeros behind a member that says 1,000 bytes, or a modest ratio, or the truth:
    the peak resident set stays far below what one unbounded inflation step would take."""
    path = bomb(tmp_path, method, declared)
    outcome, peak = peak_mib(path)
    if declared == "truthfully":  # a ratio over the limit of 200: refused before inflating
        assert outcome.startswith("LimitExceededError ") and "over the limit of 200" in outcome
    elif declared == "ratio-150":
        assert outcome.startswith("CorruptFileError zip member 'model.weights.h5' inflates past its declared size")
    else:
        assert (
            outcome == "CorruptFileError zip member 'model.weights.h5' inflates past its declared size of 1,000 bytes"
        )
    assert peak < 48, f"peak resident set grew by {peak} MiB"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_reads_a_real_model(tmp_path, method):
    weights = MEMBERS["model.weights.h5"]
    if method == DEFLATE64:
        data = deflate64_literals(weights)
    elif method == zipfile.ZIP_LZMA:
        data = lzma_member(weights)
    elif method == zipfile.ZIP_BZIP2:
        data = bz2.compress(weights)
    else:
        data = raw_deflate(weights)
    entry = Entry("model.weights.h5", method, zlib.crc32(weights), len(data), len(weights), [data])
    path = write_raw_zip(tmp_path / "model.keras", [stored("config.json", MEMBERS["config.json"]), entry])
    with kerasweights.open(path) as model:
        assert model.total_params == truth("rnn_seq")["count_params"]
        for weight in model.weights():
            weight.read()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_damaged_compressed_member_is_refused(tmp_path, method, damage):
    weights = MEMBERS["model.weights.h5"]
    data = {
        DEFLATE64: deflate64_literals,
        zipfile.ZIP_LZMA: lzma_member,
        zipfile.ZIP_BZIP2: bz2.compress,
        zipfile.ZIP_DEFLATED: raw_deflate,
    }[method](weights)
    crc = zlib.crc32(weights) ^ (1 if damage == "crc" else 0)
    if damage == "truncated":
        data = data[: len(data) // 2]
    entry = Entry("model.weights.h5", method, crc, len(data), len(weights), [data])
    path = write_raw_zip(tmp_path / "model.keras", [stored("config.json", MEMBERS["config.json"]), entry])
    with pytest.raises(CorruptFileError) as info:
        kerasweights.open(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "model.weights.h5" in message


def test_encrypted_member_is_refused(tmp_path):
    members = dict(MEMBERS)
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set bit 0 of every flags field
        at = raw.find(signature)
        while at >= 0:
            raw[at + flag_at] |= 1
            at = raw.find(signature, at + 4)
    path.write_bytes(raw)
    with pytest.raises(KerasWeightsError) as info:
        kerasweights.open(path)
    assert str(info.value) == f"{path}: zip member 'config.json' is encrypted"
