"""Hostile inputs, round 2 (issue 13): what is not a regular file, links out of a model's folder.

Every case is built here by script and checks the contract of ``docs/security.md``: one
:class:`KerasWeightsError` whose message is ``<file>: <problem>``, exit code 3 on the command
line, no hang (a named pipe is never waited on), nothing read outside the model's folder.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, truth

import kerasweights
from kerasweights import ConfigError, KerasWeightsError, UnsafeContentError, UnsupportedFormatError
from kerasweights.cli import main

VARIANTS = FIXTURES / "variants"
posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """A blocked open() cannot be interrupted: dump the stacks and fail the run instead of hanging."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def assert_refused(path: Path, error: type[KerasWeightsError], fragment: str, config: Path | None = None) -> None:
    with pytest.raises(error) as info:
        kerasweights.open(path, config=config)
    message = str(info.value)
    assert "\n" not in message and message == f"{path}: {info.value.problem}"
    assert fragment in info.value.problem, message


def assert_cli_refuses(path: Path, fragment: str, capsys: pytest.CaptureFixture[str], *extra: str) -> None:
    for argv in (["summary", str(path), *extra], ["weights", str(path), "--stats", *extra]):
        assert main(argv) == 3
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"kerasweights: error: {path}: ") and err.count("\n") == 1
        assert fragment in err and "Traceback" not in err


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def copy_dir(tmp: Path) -> Path:
    folder = tmp / "model_dir"
    shutil.copytree(VARIANTS / "rnn_seq_dir", folder)
    return folder


def copy_shards(tmp: Path) -> Path:
    folder = tmp / "shards"
    folder.mkdir()
    for shard in VARIANTS.glob("rnn_seq*.weights.*"):
        shutil.copy(shard, folder / shard.name)
    return folder / "rnn_seq.weights.json"


# -- not a regular file -------------------------------------------------------------------------------


def model_fifo(tmp: Path) -> tuple[Path, None]:
    return fifo(tmp / "model.keras"), None


def model_dev_zero(tmp: Path) -> tuple[Path, None]:
    return Path("/dev/zero"), None


def model_link_to_dev_zero(tmp: Path) -> tuple[Path, None]:
    (tmp / "model.h5").symlink_to("/dev/zero")
    return tmp / "model.h5", None


def model_socket(tmp: Path) -> tuple[Path, None]:
    path = tmp / "model.h5"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # (the socket file stays after the socket object is collected)
    server.close()
    return path, None


def dir_member_fifo(member: str) -> Callable[[Path], tuple[Path, None]]:
    def build(tmp: Path) -> tuple[Path, None]:
        folder = copy_dir(tmp)
        (folder / member).unlink()
        fifo(folder / member)
        return folder, None

    return build


def dir_weights_dev_zero(tmp: Path) -> tuple[Path, None]:
    folder = copy_dir(tmp)
    (folder / "model.weights.h5").unlink()
    (folder / "model.weights.h5").symlink_to("/dev/zero")
    return folder, None


def shard_fifo(tmp: Path) -> tuple[Path, Path]:
    index = copy_shards(tmp)
    shard = index.parent / "rnn_seq_00001.weights.h5"
    shard.unlink()
    fifo(shard)
    return index, FIXTURES / "k3/rnn_seq.json"


def config_fifo(tmp: Path) -> tuple[Path, Path]:
    return FIXTURES / "k3/rnn_seq.weights.h5", fifo(tmp / "config.json")


NOT_REGULAR = [
    pytest.param(
        model_fifo,
        UnsupportedFormatError,
        "not a regular file but a named pipe (FIFO); refusing to read it",
        id="model-is-a-fifo",
    ),
    pytest.param(
        model_dev_zero, UnsupportedFormatError, "not a regular file but a character device", id="model-is-dev-zero"
    ),
    pytest.param(
        model_link_to_dev_zero,
        UnsupportedFormatError,
        "not a regular file but a character device",
        id="model-links-to-dev-zero",
    ),
    pytest.param(model_socket, UnsupportedFormatError, "not a regular file but a socket", id="model-is-a-socket"),
    pytest.param(
        dir_member_fifo("config.json"),
        UnsupportedFormatError,
        "config.json is a named pipe (FIFO)",
        id="dir-config-is-a-fifo",
    ),
    pytest.param(
        dir_member_fifo("metadata.json"),
        UnsupportedFormatError,
        "metadata.json is a named pipe (FIFO)",
        id="dir-metadata-is-a-fifo",
    ),
    pytest.param(
        dir_member_fifo("model.weights.h5"),
        UnsupportedFormatError,
        "model.weights.h5 is a named pipe (FIFO)",
        id="dir-weights-is-a-fifo",
    ),
    pytest.param(
        dir_weights_dev_zero,
        UnsafeContentError,
        "model.weights.h5 is a symbolic link to /dev/zero, outside the model's folder",
        id="dir-weights-links-to-dev-zero",
    ),
    pytest.param(
        shard_fifo,
        UnsupportedFormatError,
        "shard name 'rnn_seq_00001.weights.h5' is a named pipe (FIFO)",
        id="shard-is-a-fifo",
    ),
    pytest.param(config_fifo, ConfigError, "is a named pipe (FIFO), not a regular file", id="config-option-is-a-fifo"),
]


@posix_only
@pytest.mark.parametrize(("build", "error", "fragment"), NOT_REGULAR)
def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path, capsys, build, error, fragment):
    path, config = build(tmp_path)
    assert_refused(path, error, fragment, config)
    assert_cli_refuses(path, fragment, capsys, *(["--config", str(config)] if config else []))


# -- links out of the model's folder --------------------------------------------------------------------


def secret(tmp: Path, source: Path) -> Path:
    """A file outside the model's folder (a copy of a real member: following the link would work)."""
    outside = tmp / "outside"
    outside.mkdir(exist_ok=True)
    shutil.copy(source, outside / source.name)
    return outside / source.name


def dir_member_links_out(member: str) -> Callable[[Path], tuple[Path, None]]:
    def build(tmp: Path) -> tuple[Path, None]:
        folder = copy_dir(tmp)
        target = secret(tmp, folder / member)
        (folder / member).unlink()
        (folder / member).symlink_to(target)
        return folder, None

    return build


def dir_weights_links_out_relative(tmp: Path) -> tuple[Path, None]:
    folder = copy_dir(tmp)
    secret(tmp, folder / "model.weights.h5")
    (folder / "model.weights.h5").unlink()
    (folder / "model.weights.h5").symlink_to("../outside/model.weights.h5")
    return folder, None


def shard_links_out(tmp: Path) -> tuple[Path, Path]:
    index = copy_shards(tmp)
    shard = index.parent / "rnn_seq_00002.weights.h5"
    target = secret(tmp, shard)
    shard.unlink()
    shard.symlink_to(target)
    return index, FIXTURES / "k3/rnn_seq.json"


def shard_folder_link_out(tmp: Path) -> tuple[Path, Path]:
    """A shard the index names explicitly, a relative link (``../outside/...``) out of the folder."""
    index = copy_shards(tmp)
    data = json.loads(index.read_text())
    data["weight_map"]["/layers/dense/vars"] = ["rnn_seq_00002.weights.h5"]
    index.write_text(json.dumps(data))
    shard = index.parent / "rnn_seq_00002.weights.h5"
    target = secret(tmp, shard)
    shard.unlink()
    (index.parent / "rnn_seq_00002.weights.h5").symlink_to(os.path.relpath(target, index.parent))
    return index, FIXTURES / "k3/rnn_seq.json"


LINKS_OUT = [
    pytest.param(
        dir_member_links_out("model.weights.h5"),
        "model.weights.h5 is a symbolic link to ",
        id="dir-weights-absolute-link",
    ),
    pytest.param(
        dir_weights_links_out_relative, "model.weights.h5 is a symbolic link to ", id="dir-weights-relative-link"
    ),
    pytest.param(dir_member_links_out("config.json"), "config.json is a symbolic link to ", id="dir-config-link"),
    pytest.param(dir_member_links_out("metadata.json"), "metadata.json is a symbolic link to ", id="dir-metadata-link"),
    pytest.param(
        shard_links_out, "shard name 'rnn_seq_00002.weights.h5' is a symbolic link to ", id="shard-absolute-link"
    ),
    pytest.param(
        shard_folder_link_out, "shard name 'rnn_seq_00002.weights.h5' is a symbolic link to ", id="shard-relative-link"
    ),
]


@pytest.mark.parametrize(("build", "fragment"), LINKS_OUT)
def test_links_leaving_the_models_folder_are_refused(tmp_path, capsys, build, fragment):
    path, config = build(tmp_path)
    assert_refused(path, UnsafeContentError, fragment, config)
    assert _problem(path, config).endswith(
        "outside the model's folder; such links are never followed"
    ) or "index's folder" in _problem(path, config)
    assert_cli_refuses(path, fragment, capsys, *(["--config", str(config)] if config else []))
    assert (
        main(["export", str(path), "-o", str(tmp_path / "out.npz"), *(["--config", str(config)] if config else [])])
        == 3
    )
    assert not (tmp_path / "out.npz").exists()


def _problem(path: Path, config: Path | None) -> str:
    try:
        kerasweights.open(path, config=config).close()
    except KerasWeightsError as exc:
        return exc.problem
    return ""


def test_links_inside_the_folder_are_fine(tmp_path):
    """A link to a file in the same folder (as some download caches make) stays allowed."""
    index = copy_shards(tmp_path)
    shard = index.parent / "rnn_seq_00001.weights.h5"
    shard.rename(index.parent / "blob")
    shard.symlink_to("blob")
    folder = copy_dir(tmp_path)
    (folder / "model.weights.h5").rename(folder / "weights.blob")
    (folder / "model.weights.h5").symlink_to(folder / "weights.blob")
    for path, config in ((index, FIXTURES / "k3/rnn_seq.json"), (folder, None)):
        with kerasweights.open(path, config=config) as model:
            assert model.total_params == truth("rnn_seq")["count_params"]
            for weight in model.weights():
                weight.read()


def test_the_model_itself_may_be_a_link(tmp_path):
    """The file the user names may be a link anywhere: the user chose it."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "model.keras").symlink_to(FIXTURES / "k3/rnn_seq.keras")
    with kerasweights.open(tmp_path / "elsewhere" / "model.keras") as model:
        assert model.total_params == truth("rnn_seq")["count_params"]


# -- folder walks: skipped with a finding, never opened --------------------------------------------------


@posix_only
def test_audit_of_a_folder_reports_pipes_and_devices_without_blocking(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(FIXTURES / "k3/rnn_seq.keras", folder / "good.keras")
    fifo(folder / "pipe.h5")
    fifo(folder / "notes.json")
    fifo(folder / "unnamed")
    (folder / "zero.keras").symlink_to("/dev/zero")
    code = main(["audit", str(folder), "--format", "json"])
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # one JSON line per file
    files = {Path(r["path"]).name: r for r in reports}
    assert set(files) == {"good.keras", "pipe.h5", "notes.json", "unnamed", "zero.keras"}
    for name, kind in (
        ("pipe.h5", "a named pipe (FIFO)"),
        ("notes.json", "a named pipe (FIFO)"),
        ("unnamed", "a named pipe (FIFO)"),
        ("zero.keras", "a character device"),
    ):
        (finding,) = files[name]["findings"]
        assert (finding["code"], finding["message"]) == (
            "unreadable",
            f"not a regular file but {kind}; refusing to read it",
        ), finding
    assert files["good.keras"]["findings"] == [] and code == 1


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        pytest.param("shard.bin", True, id="plain"),
        pytest.param("weights/shard.bin", True, id="subfolder"),
        pytest.param("../shard.bin", False, id="parent"),
        pytest.param("weights/../../shard.bin", False, id="parent-inside"),
        pytest.param("/etc/passwd", False, id="absolute"),
        pytest.param("\\\\server\\share", False, id="unc"),
        pytest.param("..\\shard.bin", False, id="backslash-parent"),
        pytest.param("C:shard.bin", False, id="drive"),
        pytest.param("shard\x00.bin", False, id="nul"),
        pytest.param("", False, id="empty"),
        pytest.param(".", False, id="the-folder"),
        pytest.param("weights/", False, id="a-folder"),
    ],
)
def test_names_a_model_gives_its_files_stay_in_its_folder(tmp_path, name, allowed):
    """One rule for every file a model names (Keras shards and folder members, TF.js shards,
    checkpoint files): a relative path that stays in the folder, links resolved."""
    from kerasweights.formats._files import inside

    (tmp_path / "weights").mkdir()
    if allowed:
        assert inside(tmp_path, name, f"shard {name!r}") == tmp_path / name
    else:
        with pytest.raises(UnsafeContentError, match=r"points outside the model's folder$"):
            inside(tmp_path, name, f"shard {name!r}")


@pytest.mark.parametrize("target", ["../outside.bin", "/etc/hostname"], ids=["relative", "absolute"])
def test_a_link_out_of_the_folder_is_named_with_its_target(tmp_path, target):
    from kerasweights.formats._files import inside

    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    (tmp_path / "outside.bin").write_bytes(b"x")
    (folder / "weights" / "shard.bin").symlink_to(target if target.startswith("/") else "../" + target)
    (folder / "inner.bin").write_bytes(b"x")
    (folder / "weights" / "ok.bin").symlink_to("../inner.bin")  # a link that stays inside is fine
    assert inside(folder, "weights/ok.bin", "shard") == folder / "weights/ok.bin"
    with pytest.raises(UnsafeContentError) as info:
        inside(folder, "weights/shard.bin", "shard 'weights/shard.bin'")
    assert info.value.problem.startswith("shard 'weights/shard.bin' is a symbolic link to /")
    assert info.value.problem.endswith(", outside the model's folder; such links are never followed")
