"""Write named matrices (or stored arrays) to ``.npz`` or ``.safetensors``.

Keys are ``<layer path>/<matrix name>`` (``enc_gru/kernel_z``); with ``raw`` they are
``<layer path>/<weight name>`` (``enc_gru/kernel``), the stored arrays unsplit, named by
their Keras variable name rather than the file's internal name (``vars/0`` in Keras 3).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KerasWeightsError, LayoutError
from ..model import Matrix, Model, Weight

__all__ = ["FORMATS", "Selection", "format_for", "select", "write", "write_npz", "write_safetensors"]

FORMATS = {".npz": "npz", ".safetensors": "safetensors"}

Progress = Callable[[str], None]


@dataclass
class Selection:
    """What to export: arrays by key (read when written) and why some layers were not split."""

    arrays: dict[str, Matrix | Weight]
    warnings: list[str] = field(default_factory=list)


def select(model: Model, *, raw: bool = False, layer: str | None = None) -> Selection:
    """Named matrices (or stored weights with ``raw``) of every layer, or of ``layer`` and its
    children. A layer whose weights do not fit its rule is exported unsplit, with a warning."""
    layers = list(model.layer(layer).walk()) if layer else list(model.walk())
    out = Selection({})
    for each in layers:
        if raw:
            out.arrays.update((w.key, w) for w in each.weights)
            continue
        try:
            out.arrays.update((m.key, m) for m in each.matrices().values())
        except LayoutError as exc:
            out.warnings.append(f"{exc.problem}; exported its stored arrays unsplit")
            out.arrays.update((w.key, w) for w in each.weights)
    return out


def format_for(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``fmt`` if given, else the format ``path``'s extension names."""
    suffix = Path(path).suffix.lower()
    if fmt:
        if fmt not in FORMATS.values():
            raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS.values())}")
        if suffix in FORMATS and FORMATS[suffix] != fmt:  # a .npz name holding safetensors misleads
            raise ValueError(
                f"format {fmt} does not match the name {os.fspath(path)!r}; name it {Path(path).stem}.{fmt}"
            )
        return fmt
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot tell the export format from {os.fspath(path)!r}; name it .npz or .safetensors, or pass fmt="
        )
    return FORMATS[suffix]


def write(
    path: str | os.PathLike[str],
    arrays: Mapping[str, Matrix | Weight | np.ndarray],
    fmt: str,
    *,
    metadata: dict[str, str] | None = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> int:
    """Write ``arrays`` to ``path`` in ``fmt``; returns the number of values written.

    Every array's dtype is checked against the format from metadata before anything is
    read or written; then arrays are read and written one at a time, so memory holds the
    largest one, not the model. The file appears only when complete (written beside it,
    then renamed), so a failure never leaves a truncated export behind. ``progress`` is
    called with each key as it is written; ``source`` (the model file) is named in errors.
    """
    if fmt not in FORMATS.values():
        raise ValueError(f"unknown export format {fmt!r}")
    try:
        plan = [(key, *_declared(key, item, fmt)) for key, item in arrays.items()]
        items = _values(arrays, plan, progress)
        if fmt == "npz":
            return _atomic(path, lambda tmp: write_npz(tmp, items))
        return _atomic(path, lambda tmp: _write_safetensors(tmp, plan, items, metadata))
    except KerasWeightsError as exc:
        raise exc.with_path(source) if source is not None else exc from None


def write_npz(path: str | os.PathLike[str], items: Iterable[tuple[str, np.ndarray]]) -> int:
    """A NumPy ``.npz`` (what ``np.savez`` writes), one array at a time so only one is in memory."""
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in items:
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            total += value.size
    return total


# What safetensors holds, by numpy dtype name (https://github.com/huggingface/safetensors, format)
SAFETENSORS_DTYPES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
}


def write_safetensors(
    path: str | os.PathLike[str],
    items: Iterable[tuple[str, np.ndarray]],
    metadata: dict[str, str] | None = None,
) -> int:
    """A ``.safetensors`` file of arrays already in memory (see :func:`write` to stream a model's)."""
    arrays = [(key, np.asarray(value)) for key, value in items]
    plan = [(key, *_declared(key, value, "safetensors")) for key, value in arrays]
    return _write_safetensors(path, plan, iter(arrays), metadata)


def _write_safetensors(
    path: str | os.PathLike[str],
    plan: list[tuple[str, np.dtype, tuple[int, ...]]],
    items: Iterator[tuple[str, np.ndarray]],
    metadata: dict[str, str] | None,
) -> int:
    """The safetensors format, written one tensor at a time: an 8-byte header length, a JSON
    header of every tensor's dtype, shape and byte range (known from metadata), then the data."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for key, dtype, shape in plan:
        size = math.prod(shape) * dtype.itemsize  # (exact: int64 would wrap for a hostile shape)
        header[key] = {
            "dtype": SAFETENSORS_DTYPES[dtype.name],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer does
    total = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for (key, dtype, shape), (_, value) in zip(plan, items, strict=True):
            if value.dtype != dtype or value.shape != shape:
                raise KerasWeightsError(
                    f"{key} read as {value.dtype} {value.shape}, not the {dtype} {shape} its metadata declares"
                )
            data = np.ascontiguousarray(value, dtype=dtype.newbyteorder("<"))  # (no copy when it already is)
            f.write(data.reshape(-1).view(np.uint8).data)  # the array's own memory, not a bytes copy
            total += value.size
    return total


def _declared(key: str, item: Matrix | Weight | np.ndarray, fmt: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape ``item`` will be read as (from metadata), refused unless ``fmt`` holds it."""
    name = str(item.dtype)
    try:
        dtype = np.dtype("float32" if name == "bfloat16" else name)  # bfloat16 is read as float32, exactly
    except TypeError:
        dtype = None
    if fmt == "safetensors":
        if dtype is None or dtype.name not in SAFETENSORS_DTYPES:
            raise KerasWeightsError(f"{key} has dtype {name}, which .safetensors files do not hold")
    elif dtype is None or dtype.kind not in "biuf":
        raise KerasWeightsError(f"{key} has dtype {name}, which .npz/.safetensors exports do not hold")
    return dtype, tuple(int(n) for n in item.shape)


def _values(
    arrays: Mapping[str, Matrix | Weight | np.ndarray],
    plan: list[tuple[str, np.dtype, tuple[int, ...]]],
    progress: Progress | None,
) -> Iterator[tuple[str, np.ndarray]]:
    for (key, item), _declared_as in zip(arrays.items(), plan, strict=True):
        value = (
            item
            if isinstance(item, np.ndarray)
            else item.read(cache=False)
            if isinstance(item, Weight)
            else item.read()
        )
        if value.dtype.kind not in "biuf":
            raise KerasWeightsError(f"{key} has dtype {value.dtype}, which .npz/.safetensors exports do not hold")
        yield key, value
        if progress is not None:
            progress(key)


def _atomic(path: str | os.PathLike[str], writer: Callable[[str], int]) -> int:
    target = Path(path)
    # A plain name, not mkstemp: the export should get the usual permissions, not 0600.
    tmp = str(target.with_name(f".{target.name}.{os.getpid()}.part"))
    try:
        count = writer(tmp)
        _usual_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def _usual_mode(path: str) -> None:
    """Give a written file the mode a new file gets (0644 under umask 022): the safetensors
    writer creates its files 0600, which would make exports unreadable to the group."""
    if os.name != "posix":
        return
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
