"""What is left to check when kerasweights refuses a file: members, links, config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import h5py

from ..formats import (
    ZipArchive,
    attr_str,
    h5_get,
    legacy_h5,
    links_outside,
    load_json,
    open_h5,
    open_inside,
    open_regular,
    remote,
    savedmodel,
    sniff,
)
from ..limits import Limits


@dataclass
class Facts:
    """What the structure checks look at, from an open model or salvaged from a refused file."""

    format: str | None = None
    keras_version: str | None = None
    config: dict[str, Any] | None = None
    training_config: dict[str, Any] | None = None
    members: list[str] = field(default_factory=list)
    external_links: list[str] = field(default_factory=list)
    optimizer_bytes: int = 0


# -- what is left to check when kerasweights refuses a file ------------------------------------------


def salvage(source: str, limits: Limits) -> Facts | None:
    """Member list, links and config of a file that did not open (pickled weights, links...)."""
    try:
        if not remote.is_url(source) and os.path.isdir(source):
            return _salvage_dir(Path(source), limits)
        handle = remote.open_url(source) if remote.is_url(source) else open_regular(source)
        with handle:
            kind = sniff(cast(IO[bytes], handle))
            if kind == "zip":
                return _salvage_zip(handle, limits)
            if kind == "hdf5":
                return _salvage_h5(handle, limits)
    except Exception:
        return None
    return None


def _salvage_zip(handle: Any, limits: Limits) -> Facts:
    archive = ZipArchive(handle, limits)
    try:
        facts = Facts(format="keras-zip", members=archive.names())
        if "config.json" in facts.members:
            facts.config = load_json(archive.read_bytes("config.json", limits.max_json_bytes), "config.json", limits)
        if "metadata.json" in facts.members:
            facts.keras_version = _version_of(
                load_json(archive.read_bytes("metadata.json", limits.max_json_bytes), "metadata.json", limits)
            )
        return facts
    finally:
        archive.close()


def _salvage_dir(path: Path, limits: Limits) -> Facts:
    if savedmodel.is_savedmodel_dir(path):  # its Keras config, when only the variables are broken
        facts = Facts(format="tf-savedmodel", members=sorted(p.name for p in path.iterdir()))
        facts.config, facts.training_config, facts.keras_version = savedmodel.keras_config(path, limits)
        return facts
    facts = Facts(format="keras-dir", members=sorted(p.name for p in path.iterdir()))
    for name in ("config.json", "metadata.json"):
        if (path / name).is_file():
            with open_inside(path, name, name) as f:
                document = load_json(f.read(limits.max_json_bytes + 1), name, limits)
            if name == "config.json":
                facts.config = document
            else:
                facts.keras_version = _version_of(document)
    return facts


def _salvage_h5(handle: Any, limits: Limits) -> Facts:
    with open_h5(handle) as h5:
        facts = Facts(external_links=links_outside(h5))
        config = attr_str(h5, "model_config")
        if config is not None:
            facts.config = load_json(config, "model_config attribute", limits)
        facts.format = "h5-full" if config is not None else "h5-weights" if legacy_h5.is_legacy(h5) else "weights-h5"
        weights = h5_get(h5, "model_weights")
        facts.keras_version = attr_str(h5, "keras_version") or (
            attr_str(weights, "keras_version") if isinstance(weights, h5py.Group) else None
        )
        return facts


def _version_of(metadata: Any) -> str | None:
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return str(version) if version is not None else None
