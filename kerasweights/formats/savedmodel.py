"""tf.keras SavedModel directories and TF-format weight checkpoints (no TensorFlow needed).

A SavedModel (``model.save("dir")``, TF 2.0-2.12) keeps every layer's Keras config in
``keras_metadata.pb`` (a ``SavedMetadata`` message: one node per object, ``node_path`` like
``root.layer_with_weights-0.cell`` and a JSON ``metadata`` string) and the variables in the
tensor bundle ``variables/variables``. ``saved_model.pb`` holds traced graphs: it is never
run or interpreted, only listed for the audit (:func:`graph_ops`).

A TF checkpoint (``model.save_weights("prefix")``) is a tensor bundle ``prefix.index`` +
``prefix.data-*``; a ``checkpoint`` text file in its folder names the latest save.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, CorruptFileError, UnsafeContentError, UnsupportedFormatError
from ..limits import Limits
from . import _protobuf
from ._files import inside, read_small_file
from ._json import load_json
from ._raw import ObjectStorage, RawModel, TrackedObject
from .tensor_bundle import TensorBundle
from .tf_objects import read_objects

SAVED_MODEL = "saved_model.pb"
KERAS_METADATA = "keras_metadata.pb"
CHECKPOINT_STATE = "checkpoint"
MODEL_CLASSES = ("Sequential", "Functional", "Model")


# -- recognition ----------------------------------------------------------------------------------


def is_savedmodel_dir(path: Path) -> bool:
    return (path / SAVED_MODEL).is_file() or (path / KERAS_METADATA).is_file()


def is_checkpoint_dir(path: Path) -> bool:
    return (path / CHECKPOINT_STATE).is_file()


def protobuf_kind(data: bytes, limits: Limits) -> str | None:
    """``"keras_metadata"`` or ``"saved_model"`` when ``data`` parses as one (and looks like it), else None."""
    if not data or len(data) > limits.max_protobuf_bytes:
        return None
    try:
        meta = _protobuf.decode("SavedMetadata", data, "file", limits.max_protobuf_bytes)
        if (
            meta.nodes
            and meta.nodes[0].node_path.startswith("root")
            and meta.nodes[0].identifier.startswith("_tf_keras")
        ):
            return "keras_metadata"
    except (CorruptFileError, UnicodeDecodeError):
        pass
    try:
        model = _protobuf.parse(_protobuf.SavedModel, data, "file", limits.max_protobuf_bytes)
        if model.meta_graphs and model.meta_graphs[0].HasField("graph_def"):
            return "saved_model"
    except (CorruptFileError, UnicodeDecodeError):
        pass
    return None


# -- SavedModel -----------------------------------------------------------------------------------


def keras_config(folder: Path, limits: Limits) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """(model config, training config, Keras version) from ``keras_metadata.pb`` alone."""
    raw = RawModel(path=str(folder), format="tf-savedmodel", storage=ObjectStorage(root=TrackedObject(0)))
    nodes = _metadata_nodes(folder, limits)
    if nodes:
        _apply_root(raw, nodes, limits)
    return raw.config, raw.training_config, raw.keras_version


def read_savedmodel(folder: Path, raw: RawModel, limits: Limits) -> None:
    """Fill ``raw`` from a tf.keras SavedModel directory."""
    raw.format = "tf-savedmodel"
    raw.members = sorted(p.name for p in folder.iterdir())
    nodes = _metadata_nodes(folder, limits)
    if nodes:
        _apply_root(raw, nodes, limits)
    else:
        raw.notes.append(
            f"the SavedModel has no Keras metadata ({KERAS_METADATA}, or in {SAVED_MODEL} before TF 2.5): "
            "layers are inferred from its object graph"
        )
    variables = inside(folder, "variables", "folder 'variables'")
    if not (variables / "variables.index").is_file():
        raise CorruptFileError("SavedModel has no variables/variables.index")
    bundle = TensorBundle(variables / "variables", variables, limits, label="variables/variables")
    raw.resources.callback(bundle.close)
    bundle.check_shards()
    storage, raw.optimizer_bytes = read_objects(bundle, limits)
    _name_nodes(storage, nodes, limits)
    raw.storage = storage


@dataclass(frozen=True)
class _Node:
    node_path: str
    metadata: str


def _metadata_nodes(folder: Path, limits: Limits) -> list[Any]:
    """Every Keras object's ``node_path`` and JSON metadata: from ``keras_metadata.pb`` (TF >= 2.5) or,
    before, from the ``SavedUserObject.metadata`` of ``saved_model.pb``'s object graph."""
    if (folder / KERAS_METADATA).is_file():
        inside(folder, KERAS_METADATA, KERAS_METADATA)
        data = read_small_file(folder / KERAS_METADATA, KERAS_METADATA, limits.max_protobuf_bytes)
        return list(_protobuf.decode("SavedMetadata", data, KERAS_METADATA, limits.max_protobuf_bytes).nodes)
    if not (folder / SAVED_MODEL).is_file():
        return []
    data = read_small_file(inside(folder, SAVED_MODEL, SAVED_MODEL), SAVED_MODEL, limits.max_protobuf_bytes)
    model = _protobuf.parse(_protobuf.SavedModel, data, SAVED_MODEL, limits.max_protobuf_bytes)
    if not model.meta_graphs:
        return []
    graph = list(model.meta_graphs[0].object_graph_def.nodes)
    if not graph:
        return []
    paths = {0: "root"}
    queue = [0]
    while queue:  # breadth first: the shortest path names each object, as keras_metadata.pb does
        node = queue.pop(0)
        for ref in graph[node].children:
            if 0 <= ref.node_id < len(graph) and ref.node_id not in paths:
                paths[ref.node_id] = f"{paths[node]}.{ref.local_name}"
                queue.append(ref.node_id)
    return [
        _Node(paths[i], graph[i].user_object.metadata)
        for i in sorted(paths)
        if graph[i].user_object.identifier.startswith("_tf_keras") and graph[i].user_object.metadata
    ]


def _apply_root(raw: RawModel, nodes: list[Any], limits: Limits) -> None:
    root = next((n for n in nodes if n.node_path == "root"), None)
    if root is None:
        raise CorruptFileError(f"{KERAS_METADATA} has no root node")
    document = load_json(root.metadata, f"{KERAS_METADATA} root metadata", limits)
    if not isinstance(document, dict):
        raise ConfigError(f"{KERAS_METADATA} root metadata is not a JSON object")
    document = untuple(document)
    config = document.get("config")
    class_name = document.get("class_name")
    if isinstance(class_name, str) and isinstance(config, dict) and (class_name in MODEL_CLASSES or "layers" in config):
        raw.config = {"class_name": class_name, "config": config}
    else:  # a subclassed model: its config does not list its layers; the object graph does
        raw.notes.append(
            f"the model is a {class_name}, not Sequential or Functional: its layers are inferred from the object graph"
        )
    if isinstance(document.get("training_config"), dict):
        raw.training_config = document["training_config"]
    version = document.get("keras_version")
    raw.keras_version = str(version) if isinstance(version, str) else None


def _name_nodes(storage: ObjectStorage, nodes: list[Any], limits: Limits) -> None:
    """Attach layer names and classes from ``keras_metadata.pb`` to the object graph's nodes."""
    for node in nodes:
        parts = node.node_path.split(".")
        if parts[0] != "root" or len(parts) < 2:
            continue
        target = storage.root
        for part in parts[1:]:
            found = target.child(part)
            if found is None:
                break
            target = found
        else:
            try:
                meta = json.loads(node.metadata) if len(node.metadata) <= limits.max_json_bytes else {}
            except (ValueError, RecursionError):
                meta = {}
            if isinstance(meta, dict):
                name, cls = meta.get("name"), meta.get("class_name")
                target.name = name if isinstance(name, str) else None
                target.class_name = cls if isinstance(cls, str) else None


def untuple(value: Any) -> Any:
    """SavedModel metadata writes tuples and TensorShapes as ``{"class_name": "__tuple__", "items": [...]}``
    (``"TensorShape"``); the ``.h5`` config of the same model has plain lists."""
    if isinstance(value, dict):
        if value.get("class_name") in ("__tuple__", "TensorShape") and isinstance(value.get("items"), list):
            return [untuple(v) for v in value["items"]]
        return {k: untuple(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untuple(v) for v in value]
    return value


# Ops whose kernels touch files or run Python. A traced Keras model has none of them; a
# SavedModel that does can read or write files, or run code, when TensorFlow loads and calls it.
RISKY_OPS = {
    "ReadFile": "reads a file",
    "WriteFile": "writes a file",
    "MatchingFiles": "lists files",
    "PyFunc": "runs Python code",
    "PyFuncStateless": "runs Python code",
    "EagerPyFunc": "runs Python code",
    "Save": "writes a checkpoint file",
    "SaveSlices": "writes a checkpoint file",
    "SaveV2": "writes a checkpoint file",
    "MergeV2Checkpoints": "writes checkpoint files",
    "DeleteFile": "deletes a file",
    "ImmutableConst": "maps a file into memory",
    "PrintV2": "prints (can write to a file)",
    "WriteSummary": "writes a summary file",
    "CreateSummaryFileWriter": "writes a summary file",
    "LoadAndRemapMatrix": "reads a checkpoint file",
    "DebugIdentityV2": "writes debug dump files",
    "ExperimentalSaveDataset": "writes a dataset to files",
    "SaveDataset": "writes a dataset to files",
    "SaveDatasetV2": "writes a dataset to files",
    "FixedLengthRecordDataset": "reads files",
    "TextLineDataset": "reads files",
    "TFRecordDataset": "reads files",
    "WholeFileReader": "reads files",
    "WholeFileReaderV2": "reads files",
}
# Ops every tf.keras SavedModel has: its own save/restore functions (on the variables folder).
EXPECTED_IO_OPS = {"SaveV2", "MergeV2Checkpoints", "RestoreV2", "ShardedFilename", "StringJoin"}
_SAVER_FUNCTION = re.compile(r"^__inference__traced_(save|restore)_\d+$")


def graph_ops(folder: Path, limits: Limits) -> Counter[tuple[str, str]]:
    """``(op, function)`` counts of every op in ``saved_model.pb`` (graph and function library).

    The ops are listed, never run. ``function`` is ``""`` for the top-level graph.
    """
    data = read_small_file(inside(folder, SAVED_MODEL, SAVED_MODEL), SAVED_MODEL, limits.max_protobuf_bytes)
    model = _protobuf.parse(_protobuf.SavedModel, data, SAVED_MODEL, limits.max_protobuf_bytes)
    found: Counter[tuple[str, str]] = Counter()
    for meta_graph in model.meta_graphs:
        graph = meta_graph.graph_def
        for node in graph.node:
            found[(node.op, "")] += 1
        for function in graph.library.function:
            for node in function.node_def:
                found[(node.op, function.signature.name)] += 1
    return found


def risky_ops(folder: Path, limits: Limits) -> list[tuple[str, str, str, int]]:
    """``(op, why, function, count)`` for every file/Python op outside tf.keras's own saver functions."""
    out = []
    for (op, function), count in sorted(graph_ops(folder, limits).items()):
        if op not in RISKY_OPS:
            continue
        if op in EXPECTED_IO_OPS and (function == "" or _SAVER_FUNCTION.match(function)):
            continue  # the variables' own save function, present in every SavedModel
        out.append((op, RISKY_OPS[op], function, count))
    return out


# -- checkpoints ----------------------------------------------------------------------------------

_STATE_LINE = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*$', re.MULTILINE)


def latest_checkpoint(folder: Path, limits: Limits) -> str:
    """The prefix named by a folder's ``checkpoint`` file (the last save, whatever its name)."""
    text = read_small_file(folder / CHECKPOINT_STATE, CHECKPOINT_STATE, limits.max_json_bytes).decode(
        "utf-8", errors="replace"
    )
    match = _STATE_LINE.search(text)
    if match is None:
        raise CorruptFileError(f"{CHECKPOINT_STATE} file names no model_checkpoint_path")
    name = re.sub(r"\\(.)", r"\1", match.group(1))
    path = Path(name)
    if path.is_absolute():
        # TF 1.x wrote absolute paths; accept one only when it is this folder.
        if Path(path.parent).resolve() != folder.resolve():
            raise UnsafeContentError(f"{CHECKPOINT_STATE} file points at {name!r}, outside the checkpoint's folder")
        name = path.name
    return name


def read_checkpoint(folder: Path, prefix: str, raw: RawModel, limits: Limits, named_by_state: bool = False) -> None:
    """Fill ``raw`` from the TF checkpoint ``folder/prefix`` (.index + .data shards)."""
    raw.format = "tf-checkpoint"
    index = inside(folder, prefix + ".index", f"checkpoint index {prefix + '.index'!r}")
    if not index.is_file():
        raise CorruptFileError(f"checkpoint {prefix!r} has no {prefix}.index")
    bundle = TensorBundle(folder / prefix, index.parent, limits, label=prefix)
    raw.resources.callback(bundle.close)
    bundle.check_shards()
    raw.members = [index.name, *bundle.shard_names()]
    storage, raw.optimizer_bytes = read_objects(bundle, limits)
    raw.storage = storage
    if named_by_state:
        raw.notes.append(
            f"read the checkpoint {prefix!r}, the latest one named by the folder's {CHECKPOINT_STATE} file"
        )
    if storage.arrays and not any(a.key.endswith("/.ATTRIBUTES/VARIABLE_VALUE") for a in storage.arrays):
        raise UnsupportedFormatError("the checkpoint's object graph holds no variables")
