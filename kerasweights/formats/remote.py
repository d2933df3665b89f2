"""Model files behind URLs (``s3://``, ``gs://``, ``http(s)://``, ``memory://``...) read through fsspec.

Needs the optional extra ``kerasweights[remote]`` (fsspec, aiohttp; s3fs or gcsfs for those
schemes). Files open as seekable binary objects with a block cache, so h5py and zipfile
fetch only the byte ranges they touch, each block once, when the filesystem supports
ranged reads (HTTP servers that honour ``Range``, object stores).
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from .._optional import require
from ..errors import KerasWeightsError, MissingFileError

DEFAULT_BLOCK_SIZE = 256 * 1024
"""Bytes per ranged request: small enough to skip unread weights, big enough for HDF5 metadata."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

__all__ = ["DEFAULT_BLOCK_SIZE", "RemoteFile", "closing_last", "is_url", "open_url", "resolve"]


def is_url(source: object) -> bool:
    """True for a string with a ``scheme://`` other than ``file://``."""
    if not isinstance(source, str):
        return False
    match = _SCHEME.match(source)
    return match is not None and match.group(1).lower() != "file"


class RemoteFile(io.RawIOBase):
    """A read-only, seekable view of an fsspec file that names its URL in errors."""

    def __init__(self, inner: Any, url: str) -> None:
        super().__init__()
        self._inner = inner
        self.name = url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return int(self._inner.tell())

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return int(self._inner.seek(pos, whence))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view))
        except OSError:
            raise
        except Exception as exc:
            raise OSError(f"cannot read {self.name} ({type(exc).__name__}: {exc})") from None
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def open_url(url: str, block_size: int = DEFAULT_BLOCK_SIZE) -> RemoteFile:
    """Open ``url`` for reading through fsspec with a block cache.

    Raises :class:`KerasWeightsError` naming the URL when fsspec (or the scheme's own
    package) is missing or the file cannot be opened.
    """
    try:
        fsspec = require("fsspec", "remote")
    except KerasWeightsError as exc:
        raise exc.with_path(url) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
        inner = fs.open(path, "rb", block_size=block_size, cache_type="blockcache")
    except ImportError as exc:  # e.g. s3fs / gcsfs for s3:// and gs://
        raise KerasWeightsError(f"cannot open this URL scheme: {exc}", url) from None
    except FileNotFoundError:
        raise MissingFileError("no such file or directory", url) from None
    except (ValueError, TypeError) as exc:
        raise KerasWeightsError(f"cannot open URL ({exc})", url) from None
    except Exception as exc:
        raise KerasWeightsError(f"cannot open URL ({type(exc).__name__}: {exc})", url) from None
    return RemoteFile(inner, url)


def resolve(source: Any) -> tuple[Any, RemoteFile | None]:
    """``(what to read, handle to close)``: URLs opened, ``file://`` made a path, the rest as is."""
    if isinstance(source, str) and source.lower().startswith("file://"):
        return unquote(urlsplit(source).path), None
    if is_url(source):
        handle = open_url(source)
        return handle, handle
    return source, None


def closing_last(resources: contextlib.ExitStack, handle: RemoteFile) -> contextlib.ExitStack:
    """A stack that closes ``resources`` (h5py files first) and then ``handle`` under them."""
    outer = contextlib.ExitStack()
    outer.callback(handle.close)
    outer.enter_context(resources)
    return outer
