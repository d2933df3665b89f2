"""Zip archives (``.keras``) read safely, with stored members opened in place.

Compressed members are inflated here (not by ``zipfile``), in steps whose output is
bounded. This is the only module that imports ``zipfile_deflate64``, and only when a
Deflate64 member is read, because importing it patches ``zipfile`` for the whole process.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import shutil
import struct
import tempfile
import threading
import zipfile
import zlib
from typing import IO, Any, cast

from ..errors import CorruptFileError, KerasWeightsError, LimitExceededError, UnsupportedFormatError
from ..limits import Limits, MiB

ZIP_SIGNATURE = b"PK\x03\x04"
ZIP_STARTS = (ZIP_SIGNATURE, b"PK\x05\x06", b"PK\x07\x08")  # a member, an empty archive, a spanned one
_DEFLATE64 = 9
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


def is_archive(file: IO[bytes]) -> bool:
    """True when ``file`` is a zip archive that lists at least one member.

    Stricter than :func:`zipfile.is_zipfile`, which accepts any end-of-archive signature in
    the last 64 KiB (the weights of an HDF5 file can hold one by chance).
    """
    if not zipfile.is_zipfile(file):
        return False
    try:
        with zipfile.ZipFile(file) as archive:
            return bool(archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error):
        return False


def stored_member_at(file: IO[bytes], offset: int) -> str | None:
    """The name of the stored (uncompressed) member whose data starts at ``offset``, if any."""
    try:
        with zipfile.ZipFile(file) as archive:
            infos = [i for i in archive.infolist() if i.compress_type == zipfile.ZIP_STORED]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error):
        return None
    for info in infos:
        file.seek(info.header_offset)
        header = file.read(_LOCAL_HEADER.size)
        if len(header) == _LOCAL_HEADER.size and header[:4] == ZIP_SIGNATURE:
            fields = _LOCAL_HEADER.unpack(header)
            if info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1] == offset:
                return info.filename
    return None


class MemberWindow(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes at ``offset`` of a file.

    h5py reads the HDF5 member through this window, so a stored member of any
    size is used in place instead of being copied into memory.
    """

    def __init__(self, file: IO[bytes], offset: int, length: int, lock: threading.Lock) -> None:
        super().__init__()
        self._file = file
        self._offset = offset
        self._length = length
        self._pos = 0
        self._lock = lock

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._length - self._pos)
        if count <= 0:
            return 0
        with self._lock:
            self._file.seek(self._offset + self._pos)
            got = self._file.readinto(view[:count])  # type: ignore[attr-defined]
        got = got or 0
        self._pos += got
        return got


class ZipArchive:
    """The members of a zip archive, checked against :class:`Limits` before use."""

    def __init__(self, file: IO[bytes], limits: Limits) -> None:
        self._file = file
        self._limits = limits
        self._lock = threading.Lock()
        try:
            self._zip = zipfile.ZipFile(file)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise CorruptFileError(f"broken zip archive ({exc})") from None
        if len(infos) > limits.max_members:
            raise LimitExceededError(
                f"zip archive has {len(infos):,} members, over the limit of {limits.max_members:,}"
            )
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self._infos:
                raise CorruptFileError(f"zip archive holds {info.filename!r} twice")
            self._infos[info.filename] = info

    def names(self) -> list[str]:
        return list(self._infos)

    def info(self, name: str) -> zipfile.ZipInfo | None:
        return self._infos.get(name)

    def close(self) -> None:
        self._zip.close()

    def _check_sizes(self, info: zipfile.ZipInfo, max_bytes: int) -> None:
        if info.file_size > max_bytes:
            raise LimitExceededError(
                f"zip member {info.filename!r} declares {info.file_size:,} bytes, over the limit of {max_bytes:,}"
            )
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MiB:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > self._limits.max_compression_ratio:
                raise LimitExceededError(
                    f"zip member {info.filename!r} would inflate {ratio:,.0f} times "
                    f"({info.compress_size:,} to {info.file_size:,} bytes), over the limit of "
                    f"{self._limits.max_compression_ratio:,.0f}"
                )

    def read_bytes(self, name: str, max_bytes: int) -> bytes:
        """A small member (JSON) read whole, within ``max_bytes``, its CRC checked."""
        info = self._infos[name]
        self._check_sizes(info, max_bytes)
        with self._open_member(info) as member:
            # (RawIOBase.read(n) allocates n bytes up front: ask for no more than the member holds)
            data = _read_upto(member, min(max_bytes, info.file_size) + 1)
        if len(data) > max_bytes:
            raise LimitExceededError(f"zip member {name!r} is over the limit of {max_bytes:,} bytes")
        if info.compress_type == zipfile.ZIP_STORED and zlib.crc32(data) != info.CRC:
            raise CorruptFileError(f"cannot read zip member {name!r} (Bad CRC-32)")
        return data

    def open_binary(self, name: str) -> IO[bytes]:
        """A seekable binary handle on a member: in place if stored, else inflated to a temp file."""
        info = self._infos[name]
        self._check_sizes(info, self._limits.max_member_bytes)
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
            return cast(IO[bytes], MemberWindow(self._file, self._data_offset(info), info.file_size, self._lock))
        spool = tempfile.TemporaryFile(prefix="kerasweights-")  # noqa: SIM115 - returned open; deleted on close, even on crash
        try:
            with self._open_member(info) as member:
                shutil.copyfileobj(member, spool, _STEP)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def _open_member(self, info: zipfile.ZipInfo) -> IO[bytes]:
        """The member's data: a window on a stored member, else a bounded :class:`Inflater`."""
        if info.flag_bits & 0x1:
            raise UnsupportedFormatError(f"zip member {info.filename!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            return cast(IO[bytes], MemberWindow(self._file, self._data_offset(info), info.file_size, self._lock))
        if info.compress_type not in _METHODS:
            method = getattr(zipfile, "compressor_names", {}).get(info.compress_type, str(info.compress_type))
            raise UnsupportedFormatError(f"zip member {info.filename!r}: compression method {method} is not supported")
        compressed = MemberWindow(
            self._file, self._data_offset(info, info.compress_size), info.compress_size, self._lock
        )
        return cast(IO[bytes], Inflater(compressed, info))

    def _data_offset(self, info: zipfile.ZipInfo, size: int | None = None) -> int:
        """Where the member's (stored or compressed) data starts, once its ``size`` bytes fit in the file."""
        size = info.file_size if size is None else size
        with self._lock:
            self._file.seek(info.header_offset)
            header = self._file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != ZIP_SIGNATURE:
            raise CorruptFileError(f"zip member {info.filename!r} has a broken local header")
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = int(fields[-2]), int(fields[-1])
        offset = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        self._file.seek(0, os.SEEK_END)
        if offset + size > self._file.tell():
            raise CorruptFileError(f"zip member {info.filename!r} runs past the end of the archive (truncated file?)")
        return offset


def _read_upto(stream: IO[bytes], count: int) -> bytes:
    """Up to ``count`` bytes: as many reads as it takes (one read of a stream may return fewer)."""
    parts, left = [], count
    while left > 0:
        part = stream.read(min(left, _STEP))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


# -- compressed members, inflated in bounded steps -----------------------------------------------------
#
# zipfile inflates as much as one read of compressed data yields: bzip2, lzma and Deflate64 have
# no output bound at all (65 KB of Deflate64 back-references made 1.2 GB in one call), and only
# the CRC at the end notices a member that inflates past its declared size. Here every step
# yields at most _STEP bytes (Deflate64, whose decoder takes no output bound, is fed so little
# input per step that it cannot yield more than _DEFLATE64_BOUND), and production stops at the
# declared size.

_STEP = 1024 * 1024  # most bytes one step inflates (and the copy buffer)
_DEFLATE64_INPUT = 512  # bytes of Deflate64 input per step
_DEFLATE64_MAX_EXPANSION = 65538 * 8 // 18  # the longest match (65,538 bytes) in 18 bits at the least
_DEFLATE64_BOUND = (_DEFLATE64_INPUT + 8) * _DEFLATE64_MAX_EXPANSION  # (+8: bits carried over)
_METHODS = (zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, _DEFLATE64)


class Inflater(io.RawIOBase):
    """A compressed member's bytes, inflated in steps of at most ``_STEP`` (Deflate64: a few MB).

    Stops with :class:`CorruptFileError` when the data inflates past the member's declared
    size, ends short of it, or fails its CRC.
    """

    def __init__(self, compressed: MemberWindow, info: zipfile.ZipInfo) -> None:
        super().__init__()
        self._in = compressed
        self._name = info.filename
        self._size = info.file_size
        self._crc_expected = info.CRC
        self._crc = 0
        self._produced = 0
        self._pending = b""  # the last step's output, handed out from _offset on
        self._offset = 0
        self._done = False
        self._method = info.compress_type
        self._decoder: Any = None
        self._tail = b""  # deflate: input the decoder has not consumed yet

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while self._offset >= len(self._pending) and not self._done:
            self._pending, self._offset = self._step(min(len(view), _STEP) or 1), 0
        n = min(len(view), len(self._pending) - self._offset)
        view[:n] = memoryview(self._pending)[self._offset : self._offset + n]
        self._offset += n
        return n

    def _step(self, want: int) -> bytes:
        try:
            out = self._inflate(want)
        except KerasWeightsError:
            raise
        except Exception as exc:  # zlib.error, OSError, LZMAError, the deflate64 module's own errors
            raise CorruptFileError(f"cannot inflate zip member {self._name!r} ({exc})") from None
        self._produced += len(out)
        if self._produced > self._size:
            raise CorruptFileError(f"zip member {self._name!r} inflates past its declared size of {self._size:,} bytes")
        self._crc = zlib.crc32(out, self._crc)
        if self._done:
            if self._produced < self._size:
                raise CorruptFileError(
                    f"zip member {self._name!r} ends after {self._produced:,} of its declared {self._size:,} bytes"
                )
            if self._crc != self._crc_expected:
                raise CorruptFileError(f"cannot inflate zip member {self._name!r} (Bad CRC-32)")
        return out

    def _inflate(self, want: int) -> bytes:
        """At most ``want`` bytes (Deflate64: at most ``_DEFLATE64_BOUND``); sets ``_done`` at the end."""
        if self._decoder is None:
            self._decoder = self._make_decoder()
        decoder = self._decoder
        if self._method == zipfile.ZIP_DEFLATED:
            data = self._tail or self._in.read(_STEP)
            out: bytes = decoder.decompress(data, want)
            self._tail = decoder.unconsumed_tail
            self._done = decoder.eof or (not data and not out)
        elif self._method == _DEFLATE64:
            data = self._in.read(_DEFLATE64_INPUT)
            out = decoder.decompress(data)
            self._done = decoder.eof or not data
        else:  # bzip2, lzma
            data = self._in.read(_STEP) if decoder.needs_input else b""
            out = decoder.decompress(data, want)
            self._done = decoder.eof or (decoder.needs_input and not data and not out)
        return out

    def _make_decoder(self) -> Any:
        if self._method == zipfile.ZIP_DEFLATED:
            return zlib.decompressobj(-15)
        if self._method == zipfile.ZIP_BZIP2:
            return bz2.BZ2Decompressor()
        if self._method == zipfile.ZIP_LZMA:
            # zip's LZMA: a 4-byte header (version, size of properties), the properties, raw LZMA1
            header = self._in.read(4)
            if len(header) < 4:
                raise CorruptFileError(f"zip member {self._name!r} has a truncated LZMA header")
            props = self._in.read(struct.unpack("<H", header[2:4])[0])
            filters = [lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)]  # type: ignore[attr-defined]
            return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)
        from zipfile_deflate64 import deflate64  # (patches zipfile for Deflate64: harmless, and only here)

        return deflate64.Deflate64()

    def close(self) -> None:
        self._in.close()
        super().close()
