"""Format readers: recognise a Keras file by its content and read it into a :class:`RawModel`.

Formats (``RawModel.format``):

- ``h5-full``: legacy HDF5 full model (Keras 1/2, tf.keras, Keras 3 legacy writer)
- ``h5-weights``: legacy HDF5 weights only (``save_weights`` to ``.h5``)
- ``keras-zip``: ``.keras`` archive (Keras 3, tf.keras 2.10+)
- ``keras-dir``: the same layout unzipped into a directory
- ``weights-h5``: Keras 3 ``*.weights.h5``
- ``weights-sharded``: Keras 3 sharded weights (``*.weights.json`` + shards)
- ``tf-savedmodel``: tf.keras SavedModel directory (``keras_metadata.pb`` + ``variables/``)
- ``tf-checkpoint``: TF-format weight checkpoint (``prefix.index`` + ``prefix.data-*``)
- ``tfjs-layers``: TensorFlow.js Layers model (``model.json`` + weight shards)
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import h5py

from ..errors import ConfigError, CorruptFileError, KerasWeightsError, MissingFileError, UnsupportedFormatError
from ..limits import DEFAULT_LIMITS, Limits
from ..store import Index, Reader, StoredArray
from . import _hdf5, _zip, keras_v3, legacy_h5
from ._files import kind_of, open_inside, open_regular, read_small_file
from ._h5guard import HDF5_SIGNATURE
from ._hdf5 import attr_str, links_outside, open_h5
from ._hdf5 import get as h5_get
from ._json import load_json
from ._raw import LegacyStorage, ObjectStorage, RawModel, Storage, TrackedObject, VarsStorage
from ._zip import ZipArchive

# The TensorFlow readers (savedmodel, tensor_bundle, tfjs) and remote are imported where they are
# used: opening a .keras or .h5 never needs them, and they cost ~6 ms of start-up (PEP 562).
if TYPE_CHECKING:
    from . import remote as remote
    from . import savedmodel as savedmodel
    from . import tensor_bundle as tensor_bundle
    from . import tf_objects as tf_objects
    from . import tfjs as tfjs
    from .tensor_bundle import TABLE_MAGIC

_LAZY_MODULES = {"remote", "savedmodel", "tensor_bundle", "tf_objects", "tfjs"}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "TABLE_MAGIC":
        return importlib.import_module(".tensor_bundle", __name__).TABLE_MAGIC
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TABLE_MAGIC",
    "LegacyStorage",
    "ObjectStorage",
    "RawModel",
    "Storage",
    "TrackedObject",
    "VarsStorage",
    "ZipArchive",
    "attr_str",
    "h5_get",
    "hdf5_superblock",
    "kind_of",
    "links_outside",
    "load_json",
    "open_h5",
    "open_inside",
    "open_regular",
    "read",
    "sniff",
]

Source = str | os.PathLike[str] | IO[bytes]
ConfigSource = str | os.PathLike[str] | dict[str, Any] | None

# What h5py, zipfile and the parsers raise on damaged bytes (h5py alone can raise most of these).
BAD_CONTENT = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ArithmeticError,
    RuntimeError,
    SystemError,
    EOFError,
    zipfile.BadZipFile,
)


def sniff(file: IO[bytes]) -> str:
    """``"hdf5"``, ``"zip"``, ``"json"`` or ``"unknown"``, from the bytes alone."""
    file.seek(0)
    head = file.read(8)
    superblock = hdf5_superblock(file)
    hdf5 = superblock is not None
    try:
        is_zip = _zip.is_archive(file)
    except OSError:
        is_zip = False
    file.seek(0)
    if (
        superblock is not None
        and is_zip
        and not (superblock > 0 and _zip.stored_member_at(file, superblock) in keras_v3.WEIGHT_MEMBERS)
    ):
        # (a .keras whose stored weights member happens to start at 512, 1024... is fine)
        raise UnsupportedFormatError("file is both an HDF5 file and a zip archive; refusing an ambiguous file")
    file.seek(0)
    if is_zip:
        return "zip"
    if hdf5:
        return "hdf5"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"


def hdf5_superblock(file: IO[bytes]) -> int | None:
    """Where the HDF5 signature is: at 0 or after a user block of 512, 1024, 2048... bytes, as libhdf5 looks."""
    return next((off for off in _superblock_offsets(file) if _at(file, off) == HDF5_SIGNATURE), None)


def _at(file: IO[bytes], offset: int) -> bytes:
    file.seek(offset)
    return file.read(8)


def _superblock_offsets(file: IO[bytes]) -> Iterator[int]:
    end = file.seek(0, io.SEEK_END)
    offset = 0
    while offset + 8 <= end:
        yield offset
        offset = offset * 2 if offset else 512


def read(source: Source, config: ConfigSource = None, limits: Limits = DEFAULT_LIMITS) -> RawModel:
    """Read a model file (path, directory or binary file object) into a :class:`RawModel`.

    Any failure is a :class:`KerasWeightsError` naming the file.
    """
    name = _display_name(source)
    raw = RawModel(path=name, format="unknown", storage=VarsStorage(groups={}))
    try:
        _read_into(source, raw, limits)
        if config is not None:
            raw.config = _load_config(config, limits)
            raw.notes.append("config given separately (not stored in the model file)")
        _check_config(raw)
        _guard_readers(raw)
    except KerasWeightsError as exc:
        raw.close()
        raise exc.with_path(name) from None
    except BAD_CONTENT as exc:
        raw.close()
        if isinstance(exc, FileNotFoundError):
            raise MissingFileError("no such file or directory", name) from None
        if isinstance(exc, IsADirectoryError | PermissionError):
            raise KerasWeightsError(exc.strerror or str(exc), name) from None
        raise CorruptFileError(f"cannot read file ({type(exc).__name__}: {exc})", name) from None
    except BaseException:
        raw.close()
        raise
    return raw


def _guard_readers(raw: RawModel) -> None:
    """Make every later weight read fail as a KerasWeightsError naming the file."""
    storage = raw.storage
    if isinstance(storage, ObjectStorage):
        lists: Any = [storage.arrays]
    else:
        lists = storage.layers.values() if isinstance(storage, LegacyStorage) else storage.groups.values()
    for arrays in lists:
        for array in arrays:
            array._reader = _guarded(array, raw.path)


def _guarded(array: StoredArray, path: str) -> Reader:
    inner = array._reader

    def read(index: Index) -> Any:
        try:
            return inner(index)
        except KerasWeightsError as exc:
            raise exc.with_path(path) from None
        except BAD_CONTENT as exc:
            raise CorruptFileError(f"cannot read {array.key} ({type(exc).__name__}: {exc})", path) from None

    return read


def _display_name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _read_into(source: Source, raw: RawModel, limits: Limits) -> None:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            _read_directory(path, raw, limits)
            return
        prefix = _index_prefix(path)
        if prefix is not None and not path.exists():  # a checkpoint prefix: "ckpt" for ckpt.index
            from . import savedmodel

            savedmodel.read_checkpoint(path.parent, prefix.name, raw, limits)
            return
        file: IO[bytes] = open_regular(path)  # owned by raw.resources
        raw.resources.callback(file.close)
    else:
        path = None
        file = source
        if not (hasattr(file, "seek") and hasattr(file, "read")):
            raise TypeError("source must be a path or a binary file object with read() and seek()")
    kind = sniff(file)
    if kind == "zip":
        keras_v3.read_archive(file, raw, limits)
    elif kind == "hdf5":
        h5 = _hdf5.open_h5(path if path is not None else file)
        raw.resources.callback(h5.close)
        _read_hdf5(h5, raw, limits)
    elif kind == "json":
        from . import tfjs

        document = load_json(file.read(limits.max_json_bytes + 1), "JSON file", limits)
        if isinstance(document, dict) and "weight_map" in document and path is not None:
            keras_v3.read_sharded(path, document, raw, limits)
        elif tfjs.is_tfjs(document) and path is not None:
            tfjs.read_tfjs(path, document, raw, limits)
        elif tfjs.is_tfjs(document):
            raise UnsupportedFormatError(
                "a TensorFlow.js model.json needs its weight shards: pass its path, not a stream"
            )
        elif isinstance(document, dict) and "class_name" in document:
            raise UnsupportedFormatError(
                "this is a model config (JSON) without weights: give it to a weights file as config=; "
                "kerasweights audit checks it on its own"
            )
        else:
            raise UnsupportedFormatError("JSON file is neither a sharded-weights index nor a Keras model")
    else:
        size = file.seek(0, io.SEEK_END)
        if size == 0:
            raise UnsupportedFormatError("file is empty")
        file.seek(0)
        if file.read(4) in _zip.ZIP_STARTS:  # a zip whose directory did not read: damaged, not foreign
            raise CorruptFileError(
                "truncated or corrupt zip archive: it starts like one (a .keras file?) but its member "
                "directory at the end cannot be read"
            )
        _read_tf_file(file, path, size, raw, limits)


def _index_prefix(path: Path) -> Path | None:
    """The bundle prefix for a path given by the user: ``ckpt`` (when ``ckpt.index`` exists) or ``ckpt.index``."""
    if path.name.endswith(".index") and path.is_file():
        return path.with_name(path.name[: -len(".index")])
    if not path.exists() and path.with_name(path.name + ".index").is_file():
        return path
    return None


def _read_directory(path: Path, raw: RawModel, limits: Limits) -> None:
    """A folder is a SavedModel, a checkpoint folder, a TF.js model or a Keras 3 directory, by what it holds."""
    from . import savedmodel

    if savedmodel.is_savedmodel_dir(path):
        savedmodel.read_savedmodel(path, raw, limits)
    elif (path / "config.json").is_file():
        keras_v3.read_directory(path, raw, limits)
    elif savedmodel.is_checkpoint_dir(path):
        prefix = savedmodel.latest_checkpoint(path, limits)
        savedmodel.read_checkpoint(path, prefix, raw, limits, named_by_state=True)
    elif (path / "model.json").is_file():
        from . import tfjs

        document = load_json(
            read_small_file(path / "model.json", "model.json", limits.max_json_bytes), "model.json", limits
        )
        if not tfjs.is_tfjs(document):
            raise UnsupportedFormatError("directory holds a model.json that is not a TensorFlow.js model")
        tfjs.read_tfjs(path / "model.json", document, raw, limits)
    else:
        keras_v3.read_directory(path, raw, limits)  # explains what a Keras directory needs


def _read_tf_file(file: IO[bytes], path: Path | None, size: int, raw: RawModel, limits: Limits) -> None:
    """A tensor bundle index (by its table footer) or a SavedModel's protocol buffers (by parsing)."""
    from . import savedmodel, tensor_bundle

    file.seek(max(size - 8, 0))
    if size >= 48 and file.read(8) == tensor_bundle.TABLE_MAGIC:
        if path is None:
            raise UnsupportedFormatError(
                "a TensorFlow checkpoint index needs its data files: pass its path, not a stream"
            )
        name = path.name.removesuffix(".index")
        savedmodel.read_checkpoint(path.parent, name, raw, limits)
        return
    if path is not None and size <= limits.max_protobuf_bytes:
        file.seek(0)
        kind = savedmodel.protobuf_kind(file.read(size), limits)
        if kind is not None:
            savedmodel.read_savedmodel(path.parent, raw, limits)
            return
    raise UnsupportedFormatError("not a Keras model file (neither HDF5, zip archive nor JSON)")


def _read_hdf5(h5: h5py.File, raw: RawModel, limits: Limits) -> None:
    if legacy_h5.is_legacy(h5):
        legacy_h5.read_legacy(h5, raw, limits)
        raw.link_finders.append(lambda: _hdf5.links_outside(h5))
    elif keras_v3.is_vars_tree(h5):
        keras_v3.read_weights_file(h5, raw, limits)
    else:
        raise UnsupportedFormatError(
            "HDF5 file holds no Keras model (no model_config, layer_names or layers/vars groups)"
        )


def _load_config(config: ConfigSource, limits: Limits) -> dict[str, Any]:
    if isinstance(config, dict):
        document: Any = config
    else:
        path = Path(config)  # type: ignore[arg-type]
        try:
            with open_regular(path, f"config {path}") as f:
                data = f.read(limits.max_json_bytes + 1)
        except UnsupportedFormatError as exc:
            raise ConfigError(exc.problem) from None
        except OSError as exc:
            raise ConfigError(f"cannot read config {path} ({exc.strerror or exc})") from None
        try:
            document = load_json(data, f"config {path}", limits)
        except KerasWeightsError as exc:
            raise type(exc)(exc.problem) from None
    if isinstance(document, dict) and "model_config" in document and isinstance(document["model_config"], dict):
        document = document["model_config"]
    return cast(dict[str, Any], document)


def _check_config(raw: RawModel) -> None:
    config = raw.config
    if config is None:
        return
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ConfigError("model config is not a JSON object with a class_name")
    if "config" in config and not isinstance(config["config"], (dict, list)):
        raise ConfigError(
            f"model config of class {config['class_name']!r} has a config of type {type(config['config']).__name__}"
        )
