"""The single entry point: :func:`open`."""

from __future__ import annotations

import os
from typing import IO, Any

from . import formats
from .bind import build_model
from .errors import KerasWeightsError
from .limits import DEFAULT_LIMITS, Limits
from .model import Model


def open(
    source: str | os.PathLike[str] | IO[bytes],
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Model:
    """Open a Keras model file and return a lazy :class:`Model`.

    ``source`` is a path (file or ``save(zipped=False)`` directory), a URL read through
    fsspec (``s3://``, ``https://``...; needs ``kerasweights[remote]``) or a seekable
    binary file object. ``config`` is the JSON from ``model.to_json()`` (a path or a dict) for
    weights-only files. Nothing is executed; weights are read only when asked for.
    Raises :class:`KerasWeightsError` (with the file named) for anything unreadable.
    """
    handle = None
    if isinstance(source, str) and "://" in source:  # only such a string can be a URL: remote loads then
        source, handle = formats.remote.resolve(source)
    try:
        raw = formats.read(source, config=config, limits=limits)
    except BaseException:
        if handle is not None:
            handle.close()
        raise
    if handle is not None:  # the model reads through it until closed; h5py must close first
        raw.resources = formats.remote.closing_last(raw.resources, handle)
    try:
        return build_model(raw)
    except KerasWeightsError as exc:
        raw.close()
        raise exc.with_path(raw.path) from None
