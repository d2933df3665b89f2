"""Shared test helpers: where the fixtures and the third-party corpus live, and Keras's truth."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"

K3_MODELS = sorted(p.name.removesuffix(".truth.json") for p in (FIXTURES / "k3").glob("*.truth.json"))
TFK_MODELS = sorted(p.name.removesuffix(".truth.json") for p in (FIXTURES / "tfk").glob("*.truth.json"))


@cache
def truth(model: str, runtime: str = "k3") -> dict[str, Any]:
    """What Keras itself said about a fixture model (``fixtures/<runtime>/<model>.truth.json``)."""
    return json.loads((FIXTURES / runtime / f"{model}.truth.json").read_text())


@cache
def truth_arrays(model: str, runtime: str = "k3") -> dict[str, np.ndarray]:
    """Inputs and layer outputs Keras computed for a fixture (``<model>.truth.npz``)."""
    with np.load(FIXTURES / runtime / f"{model}.truth.npz") as data:
        return {k: data[k] for k in data.files}


def model_files(model: str, runtime: str = "k3") -> list[tuple[Path, Path | None]]:
    """Every saved form of a fixture model as (file, config-or-None)."""
    base = FIXTURES / runtime / model
    config = base.with_name(f"{model}.json")
    out: list[tuple[Path, Path | None]] = []
    for suffix, needs_config in ((".keras", False), (".h5", False), (".weights.h5", True), ("_weights.h5", True)):
        path = base.with_name(model + suffix)
        if path.exists():
            out.append((path, config if needs_config else None))
    return out


def all_model_files() -> list[Any]:
    """pytest params (file, config, model, runtime) over every fixture model in every format."""
    params = []
    for runtime, models in (("k3", K3_MODELS), ("tfk", TFK_MODELS)):
        for model in models:
            for path, config in model_files(model, runtime):
                params.append(pytest.param(path, config, model, runtime, id=f"{runtime}/{path.name}"))
    return params


def corpus_files(*formats: str) -> list[Any]:
    """pytest params over ``../shared/corpus`` files whose MANIFEST format is one of ``formats``."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason="../shared/corpus is absent"))]
    params = []
    for line in manifest.read_text().splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) > 5 and cols[5] in formats:
            params.append(pytest.param(CORPUS / cols[0], id=cols[0], marks=pytest.mark.corpus))
    return params
