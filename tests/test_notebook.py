"""Jupyter display: ``_repr_html_`` of Model, Layer, Matrix and Weight render real fixtures,
escape names from the file, and embed a heatmap only when matplotlib is there."""

from __future__ import annotations

import base64
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import FIXTURES, truth, truth_arrays

import kerasweights
from kerasweights.model import Layer


class Cells(HTMLParser):
    """The text of every table cell and the src of every image, to check what a notebook shows."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.images: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self._in_cell = tag in ("td", "th")
        if self._in_cell:
            self.cells.append("")
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def test_model_shows_the_summary_table():
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as model:
        html = model._repr_html_()
    cells = parse(html).cells
    assert cells[:4] == ["Layer", "Class", "Weight shapes", "Params"]
    for layer in truth("rnn_seq")["layers"]:
        if layer["weights"]:
            row = cells.index(layer["path"])
            assert cells[row + 1] == layer["class_name"]
            assert cells[row + 3] == f"{layer['count_params']:,}"
    assert "485 parameters" in html and "Keras 3.15.1" in html and "backend" not in html


def test_layer_shows_its_matrices_with_shapes_and_meanings():
    with kerasweights.open(FIXTURES / "tfk/rnn_seq.h5") as model:
        cells = parse(model.layer("lstm_last")._repr_html_()).cells
    assert cells[:5] == ["Matrix", "Shape", "Dtype", "Meaning", "Gate"]
    assert cells[5:10] == ["kernel_i", "4x3", "float32", "input gate, input weights", "i"]
    assert cells.count("float32") == 12


def test_matrix_shows_facts_statistics_and_a_heatmap():
    pytest.importorskip("matplotlib")
    keras = truth_arrays("rnn_seq")["_weights/enc_gru/1"][:, 5:10]  # recurrent kernel, reset gate
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as model:
        html = model.layer("enc_gru").matrix("recurrent_kernel_r")._repr_html_()
    parsed = parse(html)
    facts = dict(zip(parsed.cells[::2], parsed.cells[1::2]))
    assert facts["shape"] == "5x5" and facts["dtype"] == "float32" and facts["gate"] == "r"
    assert facts["meaning"] == "reset gate, recurrent weights"
    assert facts["source"] == "recurrent_kernel[:, 5:10] of layers/gru/cell/vars/1"
    assert float(facts["min"]) == pytest.approx(keras.min(), rel=1e-3)
    assert float(facts["max"]) == pytest.approx(keras.max(), rel=1e-3)
    assert float(facts["mean"]) == pytest.approx(keras.mean(), rel=1e-3)
    [image] = parsed.images
    assert image.startswith("data:image/png;base64,")
    png = base64.b64decode(image.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 20_000


def test_weight_renders_too():
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as model:
        cells = parse(model.layer("head").weight("kernel")._repr_html_()).cells
    assert dict(zip(cells[::2], cells[1::2]))["meaning"] == "stored array"


def test_no_matplotlib_no_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now raises ImportError
    with kerasweights.open(FIXTURES / "k3/rnn_seq.keras") as model:
        html = model.layer("enc_gru").matrix("kernel_z")._repr_html_()
    assert "<img" not in html and "update gate, input weights" in html


def test_big_matrices_are_subsampled():
    pytest.importorskip("matplotlib")
    from kerasweights.notebook.html import heatmap_png

    small = base64.b64decode(heatmap_png(np.zeros((3, 3))))
    big = base64.b64decode(heatmap_png(np.random.default_rng(0).standard_normal((2000, 3000))))
    assert len(big) < 30_000 and small[:4] == b"\x89PNG"


def test_names_from_the_file_are_escaped():
    layer = Layer("<script>alert(1)</script>", "x", "Dense<b>", {})
    html = layer._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "Dense&lt;b&gt;" in html


def test_a_wrapper_lists_its_halves():
    with kerasweights.open(FIXTURES / "k3/functional.keras") as model:
        cells = parse(model.layer("bi_g")._repr_html_()).cells
    assert "forward_g/kernel_z" in cells and "backward_g/recurrent_bias_h" in cells


def test_docs_show_a_real_notebook():
    from conftest import ROOT

    api = (ROOT / "docs" / "api.md").read_text()
    assert "](img/notebook.png)" in api
    png = (ROOT / "docs" / "img" / "notebook.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 150_000
    notebook = (ROOT / "docs" / "img" / "notebook.ipynb").read_text()
    assert 'model.layer(\\"enc_gru\\").matrix(\\"recurrent_kernel_r\\")' in notebook
