"""CRC32C (Castagnoli), as TensorFlow's tensor bundles and LevelDB tables store it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

_MASK_DELTA = 0xA282EAD8


def _table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


def _python_crc32c(data: bytes) -> int:
    # Slow fallback (about 10 MB/s) for platforms without the google-crc32c wheel.
    table = _TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TABLE = _table()


@cache
def _implementation() -> Callable[[bytes], int]:
    try:  # imported on first use, not with kerasweights
        import google_crc32c
    except ImportError:  # pragma: no cover - google-crc32c is a dependency; kept for odd platforms
        return _python_crc32c
    return lambda data: int(google_crc32c.value(data))


def value(data: bytes) -> int:
    """CRC32C of ``data`` (google-crc32c's C code when installed)."""
    return _implementation()(data)


def unmask(masked: int) -> int:
    """LevelDB/TensorFlow store CRCs rotated and offset ("masked") so CRCs of CRCs stay distinct."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
