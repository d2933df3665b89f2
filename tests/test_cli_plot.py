"""``kerasweights plot`` and kerasweights.plot: one row of panels per gate, one colour scale."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import FIXTURES, truth_arrays

import kerasweights
from kerasweights.cli import main
from kerasweights.layouts import GATES
from kerasweights.plot import panel_grid, plot_layer

RNN = str(FIXTURES / "k3/rnn_seq.keras")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figures(monkeypatch):
    """The figures plot_layer saves, kept open for inspection (matplotlib is installed here)."""
    import matplotlib.figure
    import matplotlib.pyplot as plt

    saved = []
    original = matplotlib.figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        saved.append(fig)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    yield saved
    for fig in saved:
        plt.close(fig)


def test_default_output_name_and_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(FIXTURES / "k3/functional.keras"), "bi_g/backward_g"]) == 0
    assert capsys.readouterr().out == "wrote bi_g_backward_g.png (12 panels: 3 rows of up to 4)\n"
    assert (tmp_path / "bi_g_backward_g.png").read_bytes().startswith(PNG)


def test_output_option_and_format(tmp_path, capsys):
    out = tmp_path / "lstm.svg"
    assert main(["plot", RNN, "lstm_last", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out} (12 panels: 4 rows of up to 3)\n"
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("layer", "rows"),
    [
        pytest.param(
            "enc_gru",
            [[f"{p}_{g}" for p in ("kernel", "recurrent_kernel", "bias", "recurrent_bias")] for g in GATES["GRU"]],
            id="gru-reset-after",
        ),
        pytest.param(
            "gru_ra_false",
            [[f"{p}_{g}" for p in ("kernel", "recurrent_kernel", "bias")] for g in GATES["GRU"]],
            id="gru-reset-before",
        ),
        pytest.param(
            "lstm_last",
            [[f"{p}_{g}" for p in ("kernel", "recurrent_kernel", "bias")] for g in GATES["LSTM"]],
            id="lstm",
        ),
        pytest.param("my_rnn", [["kernel", "recurrent_kernel", "bias"]], id="simple-rnn"),
    ],
)
def test_one_row_per_gate_kernel_and_recurrent_kernel_side_by_side(layer, rows):
    with kerasweights.open(RNN) as model:
        assert [[m.name for m in row] for row in panel_grid(model.layer(layer))] == rows


def test_layers_without_gates_wrap_at_four_panels():
    with kerasweights.open(FIXTURES / "k3/functional.keras") as model:
        grid = panel_grid(model.layer("mha"))
    assert [len(row) for row in grid] == [4, 4]
    assert grid[0][0].name == "query/kernel" and grid[1][3].name == "attention_output/bias"


def test_panels_share_one_symmetric_colour_scale_and_have_titles(tmp_path, figures):
    stored = truth_arrays("rnn_seq")
    limit = max(float(np.abs(stored[f"_weights/lstm_last/{i}"]).max()) for i in range(3))
    with kerasweights.open(RNN) as model:
        plot_layer(model.layer("lstm_last"), tmp_path / "l.png")
    [fig] = figures
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 12
    assert [im.get_clim() for im in images] == [pytest.approx((-limit, limit))] * 12
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles[:3] == ["kernel_i 4x3", "recurrent_kernel_i 3x3", "bias_i 3"]
    assert fig.axes[1].get_xlabel() == "input gate, recurrent weights"
    assert fig.get_suptitle() == "lstm_last (LSTM)"
    kernel_f = next(im for ax in fig.axes for im in ax.get_images() if ax.get_title() == "kernel_f 4x3")
    np.testing.assert_array_equal(kernel_f.get_array(), stored["_weights/lstm_last/0"][:, 3:6])


def test_layer_without_own_weights_exit_2(tmp_path, capsys):
    assert main(["plot", str(FIXTURES / "k3/functional.keras"), "bi_g", "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == (
        f"kerasweights: error: {FIXTURES / 'k3/functional.keras'}: layer 'bi_g' has no weights of its own; plot one of: bi_g/forward_g, bi_g/backward_g\n"
    )
    assert not (tmp_path / "x.png").exists()


def test_unknown_image_extension_exit_2(capsys):
    assert main(["plot", RNN, "head", "-o", "head.bmp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kerasweights: error: cannot tell the image format of 'head.bmp'; end it with one of: ")
    assert ".png" in err and ".svg" in err


def test_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    monkeypatch.chdir(tmp_path)
    assert main(["plot", RNN, "enc_gru"]) == 3
    assert capsys.readouterr().err == (
        "kerasweights: error: this needs matplotlib, which is not installed; "
        "install it with: pip install 'kerasweights[plot]'\n"
    )
    assert list(tmp_path.iterdir()) == []
    # Said before the file is even opened.
    assert main(["plot", str(tmp_path / "missing.keras"), "enc_gru"]) == 3
    assert "pip install 'kerasweights[plot]'" in capsys.readouterr().err
