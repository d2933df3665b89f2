"""The error hierarchy and its one map to exit codes: the same kind of error, the same code, everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, ROOT

import kerasweights
from kerasweights import errors
from kerasweights.cli import EXIT_CODES, exit_code, main

RNN = str(FIXTURES / "k3/rnn_seq.keras")


@pytest.fixture
def x_npy(tmp_path: Path) -> str:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 3, 6), np.float32))
    return str(path)


def _commands(tmp: Path, x: str, model: str, layer: str, out_dir: str) -> dict[str, list[str]]:
    """Every command that reads one model, given ``model``, ``layer`` and outputs in ``out_dir``."""
    return {
        "summary": ["summary", model],
        "weights": ["weights", model, "--layer", layer],
        "show": ["show", model, f"{layer}/kernel", "-o", f"{out_dir}/k.npy"],
        "export": ["export", model, "--layer", layer, "-o", f"{out_dir}/e.npz"],
        "torch": ["export", model, "--to", "pytorch", "--layer", layer, "-o", f"{out_dir}/t.npz"],
        "diff": ["diff", model, RNN],
        "plot": ["plot", model, layer, "-o", f"{out_dir}/p.png"],
        "trace": ["trace", model, layer, "--input", x, "-o", f"{out_dir}/t.npz"],
    }


KINDS = {
    # kind: (model, layer, output folder exists, commands it applies to, exit code)
    "missing-file": ("missing.keras", "enc_gru", True, None, 3),
    "unknown-layer": (RNN, "nope", True, {"weights", "show", "export", "torch", "plot", "trace"}, 2),
    "unwritable-output": (RNN, "enc_gru", False, {"show", "export", "torch", "plot", "trace"}, 2),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("command", ["summary", "weights", "show", "export", "torch", "diff", "plot", "trace"])
def test_one_kind_of_error_one_exit_code_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], x_npy: str, kind: str, command: str
) -> None:
    model, layer, out_exists, applies, code = KINDS[kind]
    if applies is not None and command not in applies:
        pytest.skip(f"{command} has no {kind}")
    model = model if Path(model).is_absolute() else str(tmp_path / model)
    out_dir = str(tmp_path if out_exists else tmp_path / "no" / "such")
    argv = _commands(tmp_path, x_npy, model, layer, out_dir)[command]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("kerasweights: error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["plot", RNN, "enc_gru", "-o", "{tmp}/x.png"], "matplotlib"),
        (["trace", RNN, "enc_gru", "--input", "{x}", "-o", "{tmp}/t.npz", "--plot", "{tmp}/t.png"], "matplotlib"),
    ],
    ids=["plot", "trace-plot"],  # (.safetensors are written by kerasweights itself: no extra)
)
def test_a_missing_extra_exits_3_and_names_the_extra(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    x_npy: str,
    argv: list[str],
    module: str,
) -> None:
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert main([a.format(tmp=tmp_path, x=x_npy) for a in argv]) == 3
    err = capsys.readouterr().err
    assert err.startswith("kerasweights: error: ") and "pip install 'kerasweights[" in err


def test_every_error_class_has_one_exit_code() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.KerasWeightsError)]
    assert len(classes) >= 14
    for cls in classes:
        assert exit_code(cls("x")) in (2, 3), cls
    assert exit_code(errors.OutputError("x")) == exit_code(errors.NotFoundError("x")) == 2
    assert exit_code(errors.MissingExtraError("x")) == exit_code(errors.CorruptFileError("x")) == 3
    assert [code for _, code in EXIT_CODES] == [2, 3]


def test_a_missing_file_is_a_file_not_found_error_for_python_callers(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        kerasweights.open(tmp_path / "missing.h5")
    assert isinstance(caught.value, kerasweights.KerasWeightsError)
    assert str(caught.value) == f"{tmp_path / 'missing.h5'}: no such file or directory"


def test_missing_extra_error_is_exported_and_an_import_error() -> None:
    assert kerasweights.MissingExtraError is errors.MissingExtraError
    assert issubclass(errors.MissingExtraError, ImportError)


def test_a_bug_in_kerasweights_is_not_reported_as_a_config_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    import kerasweights.bind.configured as configured

    def broken(*args: object, **kwargs: object) -> None:
        raise AttributeError("a bug")

    monkeypatch.setattr(configured, "assign", broken)
    with pytest.raises(AttributeError, match="a bug"):
        kerasweights.open(RNN)


def test_a_malformed_config_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"class_name": "Sequential", "config": {"layers": [{"class_name": 7}]}}')
    with pytest.raises(kerasweights.ConfigError, match="class_name"):
        kerasweights.open(FIXTURES / "k3/rnn_seq.weights.h5", config=config)


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        pytest.param(["summary", RNN, "--json"], 0, "stdout", '"format": "keras-zip"', id="ok"),
        pytest.param(["summary", "missing.keras"], 3, "stderr", "missing.keras: no such file", id="unreadable"),
        pytest.param(["summary"], 2, "stderr", "the following arguments are required", id="usage"),
    ],
)
def test_the_process_entry_point_exits_with_the_commands_code(argv, code, stream, text):
    """``python -m kerasweights`` (and the console script, ``cli.run``) exits with :func:`main`'s code
    and loses no output (it skips shutdown's garbage collections, not its flushing)."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "kerasweights", *argv], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == code
    assert text in getattr(done, stream)


def test_the_console_script_is_the_process_entry_point():
    assert 'kerasweights = "kerasweights.cli:run"' in (ROOT / "pyproject.toml").read_text()
