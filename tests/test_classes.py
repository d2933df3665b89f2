"""Every weighted built-in Keras 3.15 layer class and wrapper (fixtures/classes/all.*) and the
tf_keras spellings of generic RNN cells (fixtures/classes/cells.*): Keras's own variable names and
parameter counts, identical .keras and .h5, clean audits, and every recurrent layer's and
wrapper's output reproduced through trace, export and export --to pytorch."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch_reference
from conftest import FIXTURES, truth, truth_arrays
from test_layouts_recurrent import reference_sequences

import kerasweights
from kerasweights import UnsupportedLayerError
from kerasweights.audit import audit_file
from kerasweights.cli import main
from kerasweights.compare import compare
from kerasweights.export.torch import to_torch
from kerasweights.trace import trace

LAYERS = FIXTURES / "classes"
FILES = [
    pytest.param(LAYERS / "all.keras", None, "all", id="all.keras"),
    pytest.param(LAYERS / "all.h5", None, "all", id="all.h5"),
    pytest.param(LAYERS / "cells.h5", None, "cells", id="cells.h5"),
    pytest.param(LAYERS / "cells.keras", None, "cells", id="cells.keras"),
    pytest.param(LAYERS / "cells_weights.h5", LAYERS / "cells.json", "cells", id="cells_weights.h5"),
]
REPEATED_NAMES = {"MultiHeadAttention", "GroupedQueryAttention"}  # Keras names them kernel/bias x4
MERGE = {
    "concat": lambda a, b: np.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
    None: lambda a, b: a,  # Keras's first output: the forward layer's
}


def t(model: str):
    return truth(model, "classes")


def arrays(model: str):
    return truth_arrays(model, "classes")


def expected_names(entry) -> list[str]:
    if entry["class_name"] in REPEATED_NAMES:  # the sublayer's name says which: mha/query/kernel
        return sorted(w["path"].split(":")[0].removeprefix(entry["path"] + "/") for w in entry["weights"])
    return sorted(w["name"] for w in entry["weights"])


@pytest.mark.parametrize(("path", "config", "model"), FILES)
def test_names_and_counts_are_keras_own(path, config, model):
    with kerasweights.open(path, config=config) as kw:
        assert kw.total_params == t(model)["count_params"]
        assert not [n for n in kw.notes if "not matched" in n or "custom" in n or "inferred" in n]
        for entry in t(model)["layers"]:
            if entry["class_name"] == "InputLayer":
                continue
            layer = kw.layer(entry["path"])
            assert layer.class_name == entry["class_name"], entry["path"]
            assert layer.params == entry["count_params"], entry["path"]
            assert sorted(w.name for w in layer.all_weights()) == expected_names(entry), entry["path"]
            assert sorted(w.trainable for w in layer.all_weights()) == sorted(w["trainable"] for w in entry["weights"])


def test_every_weighted_keras_class_is_in_the_fixture():
    classes = {e["class_name"] for e in t("all")["layers"] if e["weights"]}
    assert {
        "RNN",
        "Bidirectional",
        "TimeDistributed",
        "SpectralNormalization",
        "GroupedQueryAttention",
        "MultiHeadAttention",
        "ReversibleEmbedding",
        "STFTSpectrogram",
        "ConvLSTM1D",
        "ConvLSTM3D",
        "EinsumDense",
        "Conv3DTranspose",
        "DepthwiseConv1D",
        "RMSNormalization",
        "Normalization",
    } <= classes
    assert len(classes) == 35


@pytest.mark.parametrize("model", ["all", "cells"])
def test_keras_and_h5_of_one_model_are_identical(model):
    with kerasweights.open(LAYERS / f"{model}.keras") as a, kerasweights.open(LAYERS / f"{model}.h5") as b:
        result = compare(a, b)
    assert result.same, result.as_dict()


@pytest.mark.parametrize(("path", "config", "model"), FILES)
def test_audit_reports_no_error(path, config, model):
    report = audit_file(path, config=config) if config else audit_file(path)
    assert [f for f in report.findings if f.severity == "error"] == []


@pytest.mark.parametrize(
    ("layer", "names"),
    [
        ("rnn_lstm", ["kernel_i", "kernel_f", "kernel_c", "kernel_o", "recurrent_kernel_o", "bias_f"]),
        ("rnn_gru", ["kernel_z", "recurrent_kernel_h", "bias_r"]),
        ("rnn_simple", ["kernel", "recurrent_kernel", "bias"]),
        ("rnn_stacked/cell_a", ["kernel_i", "bias_o"]),
        ("rnn_stacked/cell_b", ["kernel_z", "recurrent_bias_h"]),
        ("bi_rnn/forward_rnn", ["kernel_z", "recurrent_bias_z"]),
        ("sn", ["vector_u"]),
        ("sn/snd", ["kernel", "bias"]),
        ("gqa", ["query/kernel", "query/bias", "attention_output/bias"]),
        ("remb", ["embeddings"]),
        ("stft", ["real_kernel", "imag_kernel"]),
    ],
)
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_generic_rnn_and_wrapper_matrices(layer, names, suffix):
    values = arrays("all")
    with kerasweights.open(LAYERS / f"all{suffix}") as kw:
        matrices = kw.layer(layer).matrices()
        assert set(names) <= set(matrices)
        if layer == "rnn_lstm":  # gate f is Keras's second block
            np.testing.assert_array_equal(matrices["kernel_f"].read(), values["_weights/rnn_lstm/0"][:, 3:6])


def _entries(model):
    return [pytest.param(e, id=e["path"]) for e in t(model)["recurrent"]]


def _traced(file, entry, config=None):
    x = arrays(_model_of(file))[entry["input"]]
    with kerasweights.open(file, config=config) as kw:
        return trace(kw.layer(entry["path"]), x)


def _model_of(file) -> str:
    return "all" if file.name.startswith("all") else "cells"


RECURRENT_ENTRIES = [
    pytest.param(f, c, e, id=f"{f.name}:{e['path']}")
    for f, c in [
        (LAYERS / "all.keras", None),
        (LAYERS / "all.h5", None),
        (LAYERS / "cells.h5", None),
        (LAYERS / "cells.keras", None),
        (LAYERS / "cells_weights.h5", LAYERS / "cells.json"),
    ]
    for e in t("all" if f.name.startswith("all") else "cells")["recurrent"]
    if e["class_name"] not in ("TimeDistributed", "SpectralNormalization")
]


@pytest.mark.parametrize(("file", "config", "entry"), RECURRENT_ENTRIES)
def test_traced_output_is_keras_output(file, config, entry):
    values = arrays(_model_of(file))
    got = _traced(file, entry, config)
    np.testing.assert_allclose(got["output"], values[entry["output"]], atol=1e-5, rtol=0)
    if entry["class_name"] != "Bidirectional":  # the final h Keras returns as a state
        final = values[entry["state_output"][-2 if "c" in got else -1]]
        final = final if final.shape == got["h"][:, -1].shape else final[0]  # stacked: last cell [h(, c)]
        np.testing.assert_allclose(got["h"][:, -1], final, atol=1e-5, rtol=0)


def _effective(config):
    cell = config.get("cell")
    if isinstance(cell, dict) and cell.get("class_name") != "StackedRNNCells":
        return {**cell["config"], **{k: v for k, v in config.items() if k != "cell"}}, cell["class_name"].removesuffix(
            "Cell"
        )
    return config, None


class _Exported:
    """A layer as the exported .npz shows it: matrices by name, Keras's config."""

    def __init__(self, tensors, prefix, class_name, config):
        self.tensors, self.prefix, self.class_name, self.config = tensors, prefix, class_name, config

    def matrix(self, name):
        value = self.tensors[f"{self.prefix}/{name}"]
        return type("M", (), {"read": lambda self: value, "shape": value.shape})()


_EXPORTED: dict[str, dict[str, np.ndarray]] = {}


def _exported(file: str, tmp_path) -> dict[str, np.ndarray]:
    """``kerasweights export FILE -o m.npz``, once per file."""
    if file not in _EXPORTED:
        out = tmp_path / "m.npz"
        assert main(["export", file, "-o", str(out)]) == 0
        with np.load(out) as data:
            _EXPORTED[file] = {k: data[k] for k in data.files}
    return _EXPORTED[file]


@pytest.mark.parametrize(("file", "config", "entry"), [p for p in RECURRENT_ENTRIES if p.values[0].name == "all.h5"])
def test_exported_matrices_reproduce_keras_output(tmp_path, capsys, file, config, entry):
    """Keras's equations (tests/test_layouts_recurrent.py) fed only with the exported .npz."""
    tensors = _exported(str(file), tmp_path)
    values = arrays("all")
    x = values[entry["input"]]
    cfg, cell = _effective(entry["config"])
    stacked_halves = entry["class_name"] == "Bidirectional" and cfg["layer"]["class_name"] == "RNN"
    if stacked_halves and _effective(cfg["layer"]["config"])[1] is None:
        pytest.skip("stacked cells: covered by trace")
    if entry["class_name"] == "Bidirectional":
        halves = []
        for half in ("forward", "backward"):
            inner_cfg, inner_cell = _effective(cfg["layer"]["config"])
            inner_cfg = {**inner_cfg, "go_backwards": half == "backward"}
            name = cfg["layer"]["config"]["name"].removeprefix("forward_")
            cls = inner_cell or cfg["layer"]["class_name"]
            layer = _Exported(tensors, f"{entry['path']}/{half}_{name}", cls, inner_cfg)
            halves.append(reference_sequences(layer, x, 3))
        sequences = inner_cfg.get("return_sequences", False)
        f, b = halves
        got = (
            MERGE[cfg.get("merge_mode")](f, b[:, ::-1])
            if sequences
            else MERGE[cfg.get("merge_mode")](f[:, -1], b[:, -1])
        )
    elif (cell is None and entry["class_name"] == "RNN") or entry["class_name"].startswith("ConvLSTM"):
        pytest.skip("stacked cells and ConvLSTM: covered by trace")
    else:
        layer = _Exported(tensors, entry["path"], cell or entry["class_name"], cfg)
        seq = reference_sequences(layer, x, 3)
        got = seq if cfg.get("return_sequences") else seq[:, -1]
    np.testing.assert_allclose(got, values[entry["output"]], atol=1e-5, rtol=0)


def _ported(layer) -> bool:
    """Recurrent layers torch.nn.RNN/GRU/LSTM holds (ConvLSTM, stacked cells in a wrapper: no)."""
    from kerasweights.layouts import runs_as

    if layer.class_name == "Bidirectional":
        return all(_ported(child) for child in layer.children)
    found = runs_as(layer.class_name, layer.config)
    return found is not None and not found[0].startswith("ConvLSTM")


@pytest.mark.parametrize("model", ["all", "cells"])
def test_torch_port_reproduces_keras_output(model):
    values = arrays(model)
    with kerasweights.open(LAYERS / f"{model}.h5") as kw:
        paths = [e["path"] for e in t(model)["recurrent"] if _ported(kw.layer(e["path"]))]
        modules = {path: to_torch(kw, layer=path, force=True)[0] for path in paths}
    checked = 0
    for entry in t(model)["recurrent"]:
        module = modules.get(entry["path"])
        if module is None or any("will not reproduce" in w for w in module.warnings):
            continue
        x = values[entry["input"]]
        config = entry["config"]
        if config.get("go_backwards") and entry["class_name"] != "Bidirectional":
            x = x[:, ::-1].copy()  # what the forced export's warning says to do
        out, h_n, _ = torch_reference.run(module.module, module.kwargs, module.state_dict(), x)
        expected = values[entry["output"]]
        if entry["class_name"] == "Bidirectional":
            hidden = module.kwargs["hidden_size"]
            merge = MERGE[config.get("merge_mode", "concat")]
            got = merge(out[..., :hidden], out[..., hidden:]) if expected.ndim == 3 else merge(h_n[0], h_n[1])
        else:
            got = out if expected.ndim == 3 else h_n[0]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0, err_msg=entry["path"])
        checked += 1
    assert checked == {"all": 11, "cells": 4}[model]


def test_custom_cell_stays_unsplit_with_the_reason(tmp_path):
    path = tmp_path / "custom.h5"
    path.write_bytes((LAYERS / "cells.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        rnn = next(l for l in config["config"]["layers"] if l["config"]["name"] == "rnn_lstm")
        rnn["config"]["cell"].update(class_name="MinimalCell", module="mypkg.cells")
        f.attrs["model_config"] = json.dumps(config)
    with kerasweights.open(path) as kw:
        layer = kw.layer("rnn_lstm")
        assert set(layer.matrices()) == {"kernel", "recurrent_kernel", "bias"}
        assert (
            "layer 'rnn_lstm' is an RNN with the custom cell mypkg.cells.MinimalCell: "
            "its weights are kept as stored, not split into gates"
        ) in kw.notes
        with pytest.raises(UnsupportedLayerError, match="is not a recurrent layer"):
            trace(layer, arrays("cells")["rnn_lstm/input"])


def test_audit_gate_checks_see_generic_rnn_gates(tmp_path):
    path = tmp_path / "saturated.h5"
    path.write_bytes((LAYERS / "cells.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        bias = f["model_weights/rnn_lstm/rnn_lstm/lstm_cell/bias:0"]
        values = bias[()]
        values[3:6] = 20.0  # the forget gate (Keras's second block) stuck open
        bias[...] = values
    report = audit_file(path)
    found = [(f.code, f.layer) for f in report.findings if f.code == "saturating-gate-bias"]
    assert found == [("saturating-gate-bias", "rnn_lstm")]


def _fixture_entries():
    from conftest import all_model_files

    out = []
    for param in all_model_files():
        path, config, model, runtime = param.values
        for entry in truth(model, runtime)["recurrent"]:
            if "/" not in entry["path"]:  # halves are traced as part of their wrapper
                out.append(pytest.param(path, config, model, runtime, entry, id=f"{param.id}:{entry['path']}"))
    return out


@pytest.mark.parametrize(("path", "config", "model", "runtime", "entry"), _fixture_entries())
def test_traced_output_of_every_fixture_layer(path, config, model, runtime, entry):
    values = truth_arrays(model, runtime)
    mask = values[entry["mask"]] if entry["mask"] else None
    with kerasweights.open(path, config=config) as kw:
        got = trace(kw.layer(entry["path"]), values[entry["input"]], mask=mask)
    atol = 2e-3 if model == "float16" else 1e-5
    np.testing.assert_allclose(got["output"], values[entry["output"]].astype(np.float32), atol=atol, rtol=0)


@pytest.mark.parametrize("model", ["all", "cells"])
def test_stacked_cells_port_to_one_torch_module_per_cell(model):
    values = arrays(model)
    with kerasweights.open(LAYERS / f"{model}.h5") as kw:
        cells = [layer.path for layer in kw.layer("rnn_stacked").children]
        modules = [m for path in cells for m in to_torch(kw, layer=path)]
    assert [m.warnings for m in modules] == [[], []]
    x = values["rnn_stacked/input"]
    for module in modules:  # cell k feeds cell k + 1
        x, _, _ = torch_reference.run(module.module, module.kwargs, module.state_dict(), x)
    np.testing.assert_allclose(x, values["rnn_stacked/output"], atol=1e-5, rtol=0)
