"""Crafted risky Keras files (zipfile, h5py and pickle only: no TensorFlow) for the scanner comparison.

Every file holds one risk that a scanner should report; ``write_risky(folder)`` writes them
and returns ``{file name: risk}``. Used by ``audit_throughput.py --detection`` to count what
kerasweights, modelscan and modelaudit catch on the same files. The pickles call
``os.system``; nothing here unpickles or loads them.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class _Call:
    """Pickles to a call of ``os.system('true')``."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def _keras_with(target: Path, extra: dict[str, bytes], config_edit: object = None) -> None:
    with zipfile.ZipFile(FIXTURES / "k3" / "rnn_seq.keras") as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json" and callable(config_edit):
                config = json.loads(data)
                config_edit(config)
                data = json.dumps(config).encode()
            new.writestr(info, data)
        for name, data in extra.items():
            new.writestr(name, data)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _npy_object() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Call()], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _tar_gz(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tfsm(config: dict[str, object]) -> None:
    layers = config["config"]["layers"]  # type: ignore[index]
    layers.append(  # type: ignore[union-attr]
        {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "tfsm", "filepath": "/srv/saved"}}
    )


def write_risky(folder: Path) -> dict[str, str]:
    """Write the crafted risky files into ``folder``; ``{file name: the risk it holds}``."""
    folder.mkdir(parents=True, exist_ok=True)
    risks = {}

    def keras(name: str, risk: str, extra: dict[str, bytes], edit: object = None) -> None:
        _keras_with(folder / name, extra, edit)
        risks[name] = risk

    keras("pickle_p0.keras", "protocol 0 pickle member", {"assets/evil.pkl": pickle.dumps(_Call(), protocol=0)})
    keras("pickle_p2.keras", "protocol 2 pickle member", {"assets/evil.pkl": pickle.dumps(_Call(), protocol=2)})
    keras("pickle_p5.keras", "protocol 5 pickle member", {"assets/x.bin": pickle.dumps(_Call(), protocol=5)})
    keras("npy_object.keras", "object .npy member (pickle)", {"assets/table.npy": _npy_object()})
    keras("traversal.keras", "member climbing out (..)", {"../../x.sh": b"#!/bin/sh\ntrue\n"})
    keras("absolute.keras", "absolute member name", {"/etc/cron.d/job": b"* * * * * root true\n"})
    keras("elf.keras", "ELF executable member", {"assets/tool": b"\x7fELF\x02\x01\x01" + bytes(120)})
    keras("nested_zip.keras", "pickle in a nested zip", {"assets/b.zip": _zip({"d.pkl": pickle.dumps(_Call())})})
    keras("nested_tgz.keras", "pickle in a nested tar.gz", {"assets/b.tgz": _tar_gz("d.pkl", pickle.dumps(_Call()))})
    keras("tfsm.keras", "TFSMLayer (runs a SavedModel)", {}, _tfsm)
    for name, source, risk in (
        ("lambda_k3.keras", "k3/functional.keras", "Lambda bytecode (.keras)"),
        ("lambda_tfk.h5", "tfk/functional.h5", "Lambda bytecode (.h5)"),
        ("npz_weights.keras", "variants/rnn_seq.npz.keras", "pickled model.weights.npz"),
    ):
        shutil.copy(FIXTURES / source, folder / name)
        risks[name] = risk
    shutil.copy(FIXTURES / "tfk" / "functional.json", folder / "lambda_config.json")
    risks["lambda_config.json"] = "Lambda in a model config JSON alone"
    shutil.copy(FIXTURES / "tfk" / "rnn_seq.h5", folder / "external_link.h5")
    with h5py.File(folder / "external_link.h5", "r+") as f:
        f["model_weights"]["elink"] = h5py.ExternalLink("/etc/passwd", "/data")
    risks["external_link.h5"] = "HDF5 external link"
    return risks
