"""Write named matrices (or stored arrays) to ``.npz`` or ``.safetensors``.

Keys are ``<layer path>/<matrix name>`` (``enc_gru/kernel_z``); with ``raw`` they are
``<layer path>/<weight name>`` (``enc_gru/kernel``), the stored arrays unsplit, named by
their Keras variable name rather than the file's internal name (``vars/0`` in Keras 3).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._optional import require
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
) -> int:
    """Write ``arrays`` to ``path`` in ``fmt``; returns the number of values written.

    The file appears only when complete (written beside it, then renamed), so a failure never
    leaves a truncated export behind. ``progress`` is called with each key as it is written.
    """
    items = _values(arrays, progress)
    if fmt == "npz":
        return _atomic(path, lambda tmp: write_npz(tmp, items))
    if fmt == "safetensors":
        numpy_api = require("safetensors.numpy", "safetensors")  # checked before anything is read
        return _atomic(path, lambda tmp: write_safetensors(tmp, items, metadata, numpy_api))
    raise ValueError(f"unknown export format {fmt!r}")


def write_npz(path: str | os.PathLike[str], items: Iterable[tuple[str, np.ndarray]]) -> int:
    """A NumPy ``.npz`` (what ``np.savez`` writes), one array at a time so only one is in memory."""
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in items:
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            total += value.size
    return total


def write_safetensors(
    path: str | os.PathLike[str],
    items: Iterable[tuple[str, np.ndarray]],
    metadata: dict[str, str] | None = None,
    numpy_api: object | None = None,
) -> int:
    """A ``.safetensors`` file through the ``safetensors`` package's numpy API (extra ``safetensors``)."""
    api = numpy_api or require("safetensors.numpy", "safetensors")
    tensors = {key: np.ascontiguousarray(value) for key, value in items}
    api.save_file(tensors, os.fspath(path), metadata=metadata)  # type: ignore[attr-defined]
    return sum(t.size for t in tensors.values())


def _values(
    arrays: Mapping[str, Matrix | Weight | np.ndarray], progress: Progress | None
) -> Iterator[tuple[str, np.ndarray]]:
    for key, item in arrays.items():
        value = item if isinstance(item, np.ndarray) else item.read()
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
