"""Audit checks that read only the model config JSON: Lambda layers, unsafe entries, custom classes.

The config is walked as raw JSON as well as through the layer tree, because Lambda layers
own no weights and code references can sit anywhere (activations, losses, nested configs).
Nothing found here is ever decoded, unmarshalled, imported or called.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..config import LayerSpec, parse_model
from ..errors import ConfigError
from ..layouts.builtins import KERAS_PACKAGES, is_builtin_layer, is_keras_module
from ..layouts.keras import layer_path
from .finding import Finding

LOOKUP_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
# Keras's own non-modelling functions (keras/src/saving/serialization_lib.py NON_MODELING_APIS, plus
# the global_state setter of CVE-2025-9906): a config calling them changes loading or touches files.
GADGET_FUNCTIONS = frozenset(
    {
        "clear_session",
        "enable_unsafe_deserialization",
        "load_model",
        "model_from_json",
        "save_model",
        "image_dataset_from_directory",
        "text_dataset_from_directory",
        "audio_dataset_from_directory",
        "load_img",
        "save_img",
        "deserialize_keras_object",
        "serialize_keras_object",
        "load_weights",
        "save_weights",
        "register_keras_serializable",
        "get_file",
        "set_global_attribute",
    }
)
# Classes from these modules are attacks, not custom code.
DANGEROUS_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "builtins",
        "__builtin__",
        "shutil",
        "socket",
        "pickle",
        "marshal",
        "importlib",
        "runpy",
        "code",
        "codeop",
        "ctypes",
        "pty",
        "webbrowser",
        "urllib",
        "http",
        "requests",
        "multiprocessing",
        "signal",
        "tempfile",
        "pathlib",
        "io",
        "types",
        "operator",
        "functools",
    }
)
# Keras 3 imports these packages itself (serialization_lib); their objects are Keras's family.
KERAS_FAMILY = KERAS_PACKAGES | {"keras_hub", "keras_cv", "keras_nlp"}
# Keras 3 writes built-in losses and activations as {"module": "builtins", "class_name": "function"}
# and looks the name up in keras.losses etc.; only Python's own builtins (eval, exec...) are a danger.
PYTHON_BUILTINS = frozenset(dir(builtins))
LEGACY_H5_FORMATS = ("h5-full", "h5-weights")

_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_VERSION = re.compile(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?")

Version = tuple[int, int, int]
Paths = dict[int, str]


def parse_version(text: str | None) -> Version | None:
    """``(2, 2, 4)`` from ``"2.2.4-tf"``; ``None`` when there is no leading number."""
    match = _VERSION.match(text or "")
    if not match:
        return None
    major, minor, patch = (int(g) if g else 0 for g in match.groups())
    return (major, minor, patch)


# -- layer paths ------------------------------------------------------------------------------


def layer_tree(config: dict[str, Any]) -> list[tuple[LayerSpec, str]]:
    """Every layer spec of the config with the path :class:`kerasweights.Model` gives it.

    The root comes first with path ``""`` when it is a model (Sequential, Functional, a
    subclass); a bare custom layer or subclassed model is itself the only top-level layer.
    """
    try:
        root = parse_model(config)
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return []
    out: list[tuple[LayerSpec, str]] = []

    def visit(spec: LayerSpec, path: str) -> None:
        out.append((spec, path))
        for child in spec.children:
            visit(child, layer_path(path, child.name))

    visit(root, "" if root.is_model else root.name)
    return out


def _paths(tree: list[tuple[LayerSpec, str]]) -> Paths:
    # Specs keep the JSON's own config dicts, so their ids find the layer of any JSON object.
    return {id(spec.config): path for spec, path in tree}


def _objects(
    node: Any, layer: str, keys: tuple[str, ...], paths: Paths
) -> Iterator[tuple[dict[str, Any], str, tuple[str, ...]]]:
    """Every JSON object below ``node`` with the layer path it sits in and the keys leading to it."""
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(node.get("class_name"), str) and isinstance(config, dict) and id(config) in paths:
            layer, keys = paths[id(config)], ()
        yield node, layer, keys
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from _objects(value, layer, keys if key == "config" else (*keys, str(key)), paths)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                yield from _objects(value, layer, keys, paths)


@dataclass
class ConfigView:
    """A config walked once: its layer tree, layer paths by config id, and every JSON object."""

    document: dict[str, Any]
    tree: list[tuple[LayerSpec, str]]
    paths: Paths
    objects: list[tuple[dict[str, Any], str, tuple[str, ...]]]

    @classmethod
    def of(cls, document: dict[str, Any] | None, layers: bool = True) -> ConfigView | None:
        """``None`` for a missing config; ``layers=False`` for documents without layers (training_config)."""
        if not isinstance(document, dict):
            return None
        tree = layer_tree(document) if layers else []
        paths = _paths(tree)
        return cls(document, tree, paths, list(_objects(document, "", (), paths)))


# -- bytecode recognition (text only: never decoded) -------------------------------------------


def code_kind(code: Any) -> str:
    """What a stored code string looks like: base64 text or raw marshal text, never decoded."""
    if not isinstance(code, str) or not code:
        return "Python bytecode"
    compact = "".join(code.split())
    if len(compact) >= 8 and len(compact) % 4 == 0 and _BASE64.fullmatch(compact):
        return "base64-encoded marshalled Python bytecode"
    # Keras 1/2 func_dump: marshal bytes as raw_unicode_escape text; code objects start with c / \xe3.
    if code[:1] in ("c", "\xe3") and any((ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) > 126 for ch in code):
        return "marshalled Python bytecode"
    return "a Python code string"


def _lambda_code(value: Any) -> Any:
    """The code string of a Keras 3 ``{"class_name": "__lambda__"}`` object, or ``None``."""
    inner = value.get("config") if isinstance(value, dict) else None
    if not isinstance(inner, dict):
        return None
    if "code" in inner:
        return inner["code"]
    stored = inner.get("value")
    return stored[0] if isinstance(stored, list) and stored else None


def describe_function(config: dict[str, Any], key: str = "function") -> tuple[bool, str]:
    """``(carries bytecode, what it is)`` for a Lambda config's ``function`` or ``output_shape``."""
    value = config.get(key)
    kind = config.get(f"{key}_type")
    module = config.get("module" if key == "function" else "output_shape_module")
    if isinstance(value, dict):
        class_name = value.get("class_name")
        if class_name == "__lambda__":
            return True, code_kind(_lambda_code(value))
        if class_name == "function":
            return False, f"calls the function {value.get('module')}.{value.get('config')} by name"
        return False, f"calls a {class_name} object"
    if isinstance(value, list) and value and isinstance(value[0], str) and kind in (None, "lambda"):
        return True, code_kind(value[0])
    if isinstance(value, str) and kind == "lambda":
        return True, code_kind(value)
    if isinstance(value, str):
        where = f"{module}." if module else ""
        return False, f"calls the function {where}{value} by name"
    return False, "holds no function"


def cve_labels(keras_version: str | None, file_format: str | None) -> list[str]:
    """Known Keras CVEs that make Lambda bytecode run when loading, given the writer's version."""
    version = parse_version(keras_version)
    labels = []
    if version is not None and version < (2, 13, 0):
        labels.append("Keras before 2.13 runs it on load, with no safe_mode to stop it (CVE-2024-3660)")
    if version is not None and (3, 0, 0) <= version < (3, 11, 3) and file_format in LEGACY_H5_FORMATS:
        labels.append("Keras 3.0 to 3.11.2 ignore safe_mode for legacy .h5 files (CVE-2025-9905)")
    return labels


# -- the checks ----------------------------------------------------------------------------------


def lambda_findings(view: ConfigView | None, keras_version: str | None, file_format: str | None) -> list[Finding]:
    """``lambda-layer``: every Lambda layer in the config, nested models and wrappers included."""
    if view is None:
        return []
    out = []
    for obj, layer, _ in view.objects:
        inner = obj.get("config")
        if obj.get("class_name") != "Lambda" or not isinstance(inner, dict):
            continue
        name = str(inner.get("name", obj.get("name", "lambda")))
        path = view.paths.get(id(inner), layer_path(layer, name))
        bytecode, what = describe_function(inner)
        shape_code, _ = describe_function(inner, "output_shape") if inner.get("output_shape") else (False, "")
        if bytecode or shape_code:
            where = "its function" if bytecode else "its output_shape function"
            if bytecode and shape_code:
                where += " and output_shape"
            kind = what if bytecode else "Python bytecode"
            runs = "which Keras runs when loading the model (never decoded here)"
            message = f"Lambda layer {name!r}: {where} is {kind}, {runs}"
            message = "; ".join([message, *cve_labels(keras_version, file_format)])
        else:
            message = f"Lambda layer {name!r} carries no bytecode; it {what}"
        out.append(Finding("lambda-layer", "error", message, path or None))
    return out


def unsafe_findings(*views: ConfigView | None) -> list[Finding]:
    """``unsafe-config``: entries that make Keras import, call or read something outside the model."""
    out: list[Finding] = []
    for view in views:
        if view is None:
            continue
        owned: set[int] = set()  # Lambda functions: reported by lambda-layer
        for obj, layer, keys in view.objects:
            for message in _unsafe(obj, keys, owned):
                out.append(Finding("unsafe-config", "error", message, layer or None))
    return out


def _unsafe(obj: dict[str, Any], keys: tuple[str, ...], owned: set[int]) -> Iterator[str]:
    class_name = obj.get("class_name")
    inner = obj.get("config")
    where = f"{'.'.join(keys)!r}" if keys else "the config"
    if class_name == "Lambda" and isinstance(inner, dict):
        owned.update(id(inner.get(k)) for k in ("function", "output_shape"))
        yield from _lambda_by_name(inner)
    if class_name == "__lambda__" and id(obj) not in owned:
        yield f"{where} is a Python lambda ({code_kind(_lambda_code(obj))}), which Keras runs when loading the model"
    if class_name == "TFSMLayer" and isinstance(inner, dict):
        yield f"TFSMLayer loads and runs the TensorFlow SavedModel at {inner.get('filepath')!r}"
    if class_name == "TorchModuleWrapper":
        yield "TorchModuleWrapper stores a pickled PyTorch module; loading it unpickles (runs) code"
    if class_name in LOOKUP_LAYERS and isinstance(inner, dict) and isinstance(inner.get("vocabulary"), str):
        yield f"{class_name} vocabulary is the file path {inner['vocabulary']!r}; Keras reads that file when loading"
    module = obj.get("module")
    if class_name == "function" and isinstance(module, str) and isinstance(inner, str):
        yield from _function_reference(module, inner, where)
    elif isinstance(class_name, str) and isinstance(module, str) and module.split(".")[0] in DANGEROUS_MODULES:
        yield f"{where} references the class {module}.{class_name}; Keras imports {module!r} to rebuild it"


def _lambda_by_name(inner: dict[str, Any]) -> Iterator[str]:
    """Keras 2 / tf.keras Lambda functions looked up by name in a module outside Keras."""
    for key, module_key in (("function", "module"), ("output_shape", "output_shape_module")):
        value = inner.get(key)
        module = inner.get(module_key)
        if inner.get(f"{key}_type") == "function" and isinstance(value, str) and not is_keras_module(module):
            yield f"Lambda {key} {value!r} is looked up by name in module {module!r} and called when the model runs"


def _function_reference(module: str, name: str, where: str) -> Iterator[str]:
    """Keras 3 ``{"class_name": "function", "module": ..., "config": name}`` references."""
    top = module.split(".")[0]
    if top in KERAS_FAMILY:
        if name.rsplit(".", 1)[-1] in GADGET_FUNCTIONS:
            yield f"{where} calls the Keras function {module}.{name}, which changes loading or touches files"
    elif module == "builtins":
        if name in PYTHON_BUILTINS:
            yield f"{where} names the Python builtin {name!r}, which Keras before 3.9 resolves and calls"
    else:
        yield f"{where} references the function {module}.{name}; Keras imports {module!r} and calls it"


def custom_findings(view: ConfigView | None) -> list[Finding]:
    """``custom-layer``: classes Keras does not ship (the model needs their code to load).

    One finding per custom layer, and one per distinct custom class used elsewhere in the
    config (quantizers, initializers, losses) at its first use.
    """
    if view is None:
        return []
    out = []
    for spec, path in view.tree:
        if is_builtin_layer(spec.class_name, spec.module):
            continue
        origin = f" from module {spec.module!r}" if spec.module else ""
        if spec.registered_name and spec.registered_name != spec.class_name:
            origin += f" (registered as {spec.registered_name!r})"
        what = "layer" if path else "model"
        out.append(
            Finding(
                "custom-layer",
                "warning",
                f"{what} {spec.name!r} is a {spec.class_name}{origin}, "
                "a class Keras does not ship; loading needs its code",
                path or None,
            )
        )
    seen: set[str] = set()
    for obj, layer, keys in view.objects:
        class_name, module, inner = obj.get("class_name"), obj.get("module"), obj.get("config")
        if not (isinstance(class_name, str) and isinstance(module, str)) or class_name in ("function", "__lambda__"):
            continue
        top = module.split(".")[0]
        if top in KERAS_FAMILY or top in DANGEROUS_MODULES or (isinstance(inner, dict) and id(inner) in view.paths):
            continue  # Keras's, an unsafe-config finding, or a layer (above)
        name = f"{module}.{class_name}"
        if name in seen:
            continue
        seen.add(name)
        where = f" in {'.'.join(keys)!r}" if keys else ""
        out.append(
            Finding(
                "custom-layer",
                "warning",
                f"{name}{where} is a class Keras does not ship; loading needs its code",
                layer or None,
            )
        )
    return out
