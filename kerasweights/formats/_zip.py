"""Zip archives (``.keras``) read safely, with stored members opened in place.

This is the only module that imports ``zipfile_deflate64``, and only when an
archive actually holds a Deflate64 member, because importing it patches
``zipfile`` for the whole process.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import threading
import zipfile
from typing import IO, cast

from ..errors import CorruptFileError, LimitExceededError, UnsupportedFormatError
from ..limits import Limits, MiB

ZIP_SIGNATURE = b"PK\x03\x04"
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
        if any(info.compress_type == _DEFLATE64 for info in infos):
            import zipfile_deflate64  # noqa: F401  (registers Deflate64 with zipfile)

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
        """A small member (JSON) read whole, within ``max_bytes``."""
        info = self._infos[name]
        self._check_sizes(info, max_bytes)
        with self._open_member(info) as member:
            # (RawIOBase.read(n) allocates n bytes up front: ask for no more than the member holds)
            data = member.read(min(max_bytes, info.file_size) + 1)
        if len(data) > max_bytes:
            raise LimitExceededError(f"zip member {name!r} is over the limit of {max_bytes:,} bytes")
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
                shutil.copyfileobj(member, spool, 1024 * 1024)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def _open_member(self, info: zipfile.ZipInfo) -> IO[bytes]:
        try:
            return cast(IO[bytes], _Checked(self._zip.open(info), info.filename))
        except NotImplementedError as exc:
            raise UnsupportedFormatError(f"zip member {info.filename!r}: {exc}") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
            raise CorruptFileError(f"cannot read zip member {info.filename!r} ({exc})") from None

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        with self._lock:
            self._file.seek(info.header_offset)
            header = self._file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != ZIP_SIGNATURE:
            raise CorruptFileError(f"zip member {info.filename!r} has a broken local header")
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = int(fields[-2]), int(fields[-1])
        offset = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        self._file.seek(0, os.SEEK_END)
        if offset + info.file_size > self._file.tell():
            raise CorruptFileError(f"zip member {info.filename!r} runs past the end of the archive (truncated file?)")
        return offset


class _Checked(io.RawIOBase):
    """Wraps a zip member stream so decompression errors become CorruptFileError."""

    def __init__(self, inner: IO[bytes], name: str) -> None:
        super().__init__()
        self._inner = inner
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
            raise CorruptFileError(f"cannot inflate zip member {self._name!r} ({exc})") from None
        except Exception as exc:  # zlib.error and the deflate64 module's own errors
            raise CorruptFileError(f"cannot inflate zip member {self._name!r} ({exc})") from None
        n = len(data)
        memoryview(buffer)[:n] = data
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()
