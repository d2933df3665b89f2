"""kerasweights.layouts.shapes: configs that rule out the stored shapes, for every weighted built-in class.

Each case edits one value of a layer's config in a file Keras wrote (so the stored arrays no
longer fit it) and expects one ``shape-mismatch`` finding naming the variable; the same
files unedited have none (test_audit.test_fixture_findings_match_keras).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
from conftest import FIXTURES

import kerasweights
from kerasweights.audit import audit_file
from kerasweights.errors import LayoutError
from kerasweights.layouts import known_classes, shapes


def _layers(node: Any) -> Iterator[dict[str, Any]]:
    """Every layer entry ``{"class_name", "config": {"name"...}}`` anywhere in a config."""
    if isinstance(node, dict):
        if isinstance(node.get("config"), dict) and "name" in node["config"] and "class_name" in node:
            yield node
        for value in node.values():
            yield from _layers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _layers(value)


def _edit(config: dict[str, Any], layer: str, changes: dict[str, Any]) -> None:
    entry = next(l for l in _layers(config) if l["config"]["name"] == layer)
    entry["config"].update(changes)


def edited(tmp_path: Path, source: str, layer: str, changes: dict[str, Any]) -> Path:
    """A copy of fixture ``source`` (.h5 or .keras) whose config of ``layer`` takes ``changes``."""
    target = tmp_path / Path(source).name
    if source.endswith(".keras"):
        with zipfile.ZipFile(FIXTURES / source) as old, zipfile.ZipFile(target, "w") as new:
            for info in old.infolist():
                data = old.read(info)
                if info.filename == "config.json":
                    config = json.loads(data)
                    _edit(config, layer, changes)
                    data = json.dumps(config).encode()
                new.writestr(info, data)
        return target
    shutil.copy(FIXTURES / source, target)
    with h5py.File(target, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        _edit(config, layer, changes)
        f.attrs["model_config"] = json.dumps(config)
    return target


CASES = [
    ("k3/functional.keras", "head", {"units": 16}, "kernel has shape (3, 2), expected (?, 16) for units=16"),
    ("tfk/functional.h5", "proj", {"units": 5}, "kernel has shape (6, 4), expected (?, 5) for units=5"),
    (
        "tfk/functional.h5",
        "conv",
        {"filters": 4},
        "kernel has shape (2, 4, 3), expected (2, ?, 4) for filters=4, kernel_size=[2]",
    ),
    (
        "tfk/functional.h5",
        "conv",
        {"kernel_size": [3]},
        "kernel has shape (2, 4, 3), expected (3, ?, 3) for filters=3, kernel_size=[3]",
    ),
    (
        "k3/misc.keras",
        "conv2d",
        {"kernel_size": [3, 3]},
        "kernel has shape (2, 2, 2, 3), expected (3, 3, ?, 3) for filters=3, kernel_size=[3, 3]",
    ),
    ("k3/misc.keras", "dw", {"depth_multiplier": 3}, "kernel has shape (2, 2, 3, 2), expected (..., ?, 3)"),
    (
        "k3/misc.keras",
        "sep",
        {"filters": 5},
        "pointwise_kernel has shape (1, 6, 4), expected (..., ?, 5) for filters=5, depth_multiplier=1",
    ),
    (
        "tfk/functional.h5",
        "embed",
        {"input_dim": 30},
        "embeddings has shape (20, 4), expected (30, 4) for input_dim=30, output_dim=4",
    ),
    (
        "k3/functional.keras",
        "mha",
        {"num_heads": 3},
        "query/kernel has shape (3, 2, 2), expected (..., 3, 2) for num_heads=3, key_dim=2, value_dim=2",
    ),
]


@pytest.mark.parametrize(
    ("source", "layer", "changes", "problem"), CASES, ids=[f"{c[0]}:{c[1]}:{next(iter(c[2]))}" for c in CASES]
)
def test_config_that_rules_out_the_stored_shapes(
    tmp_path: Path, source: str, layer: str, changes: dict[str, Any], problem: str
) -> None:
    report = audit_file(edited(tmp_path, source, layer, changes), select=["shape-mismatch"])
    [finding] = report.findings
    assert (finding.code, finding.severity, finding.layer.rsplit("/", 1)[-1]) == ("shape-mismatch", "error", layer)
    assert finding.message.startswith(f"layer '{finding.layer}': {problem}")


@pytest.mark.parametrize(
    ("layer", "variable", "shape"),
    [("encoder/enc_bn", "moving_variance", (5,)), ("ln", "beta", (4,))],
    ids=["batchnorm", "layernorm"],
)
def test_normalization_statistics_must_agree(tmp_path: Path, layer: str, variable: str, shape: tuple[int]) -> None:
    target = tmp_path / "functional.h5"
    shutil.copy(FIXTURES / "tfk" / "functional.h5", target)
    with kerasweights.open(target) as model:
        key = model.layer(layer).weight(variable).array.key
    with h5py.File(target, "r+") as f:
        del f[key]
        f[key] = [0.5] * shape[0]
    [finding] = audit_file(target, select=["shape-mismatch"]).findings
    assert (finding.layer, finding.code) == (layer, "shape-mismatch")
    assert f"{variable} has shape {shape}, expected" in finding.message


def test_every_expectation_is_for_a_class_with_a_rule() -> None:
    assert set(shapes.EXPECTATIONS) <= set(known_classes())


@pytest.mark.parametrize(
    ("actual", "expected", "fits"),
    [
        ((4, 8), (None, 8), True),
        ((4, 8), (None, 16), False),
        ((2, 3, 4), (..., 4), True),
        ((4,), (..., 3, 4), False),
        ((2, 3, 9), (2, 3, ...), True),
        ((3,), (3, 1), False),
    ],
)
def test_fits(actual: tuple[int, ...], expected: shapes.Spec, fits: bool) -> None:
    assert shapes.fits(actual, expected) is fits


def test_matrices_refuse_a_dense_whose_units_do_not_fit(tmp_path: Path) -> None:
    with (
        kerasweights.open(edited(tmp_path, "k3/functional.keras", "head", {"units": 16})) as model,
        pytest.raises(LayoutError, match=r"kernel has shape \(3, 2\), expected \(\?, 16\) for units=16"),
    ):
        model.layer("head").matrices()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"shared_axes": [1]}, "alpha has shape (15, 4), expected (1, ?) for shared_axes=[1]"),
        ({"shared_axes": [2]}, "alpha has shape (15, 4), expected (?, 1) for shared_axes=[2]"),
    ],
    ids=["axis1", "axis2"],
)
def test_prelu_shared_axes(tmp_path: Path, changes: dict[str, Any], problem: str) -> None:
    [finding] = audit_file(edited(tmp_path, "k3/misc.keras", "prelu", changes), select=["shape-mismatch"]).findings
    assert finding.message == f"layer 'prelu': {problem}"
