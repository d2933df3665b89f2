"""Test helper: a copy of a legacy ``.h5`` fixture with its config or stored arrays edited."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def edited_h5(
    src: Path,
    dest: Path,
    *,
    config: Callable[[dict[str, Any]], None] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Copy ``src`` to ``dest``; ``config`` edits the ``model_config`` dict in place, ``arrays``
    replaces datasets by their path in the file (shape and dtype may change)."""
    shutil.copy(src, dest)
    with h5py.File(dest, "r+") as f:
        if config is not None:
            document = json.loads(f.attrs["model_config"])
            config(document)
            f.attrs["model_config"] = json.dumps(document)
        for path, value in (arrays or {}).items():
            del f[path]
            f.create_dataset(path, data=value)
    return dest


def layer_config(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The config dict of the top-level layer called ``name`` in a model_config document."""
    for layer in document["config"]["layers"]:
        if layer["config"].get("name") == name:
            return layer["config"]
    raise KeyError(name)
