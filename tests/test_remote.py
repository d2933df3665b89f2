"""kerasweights.formats.remote: model files behind URLs, through fsspec's memory filesystem and a local HTTP server."""

from __future__ import annotations

import http.server
import re
import shutil
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import FIXTURES, truth, truth_arrays

import kerasweights
from kerasweights.audit import audit_file
from kerasweights.cli import main
from kerasweights.formats import remote

PADDING = 8 * 1024 * 1024  # bytes no reader should fetch (format sniffing may probe a few blocks of them)


def leaf_weights_match_keras(model: kerasweights.Model, name: str = "rnn_seq") -> None:
    arrays = truth_arrays(name)
    for entry in truth(name)["layers"]:
        for index in range(len(entry["weights"])):
            np.testing.assert_array_equal(
                model.layer(entry["path"]).weights[index].read(), arrays[f"_weights/{entry['path']}/{index}"]
            )


@pytest.mark.parametrize(
    ("source", "url"),
    [
        pytest.param("s3://bucket/m.keras", True, id="s3"),
        pytest.param("https://host/m.h5", True, id="https"),
        pytest.param("memory://m.h5", True, id="memory"),
        pytest.param("file:///tmp/m.h5", False, id="file"),
        pytest.param("/tmp/m.h5", False, id="path"),
        pytest.param("C:\\models\\m.h5", False, id="windows-path"),
        pytest.param(Path("/tmp/m.h5"), False, id="pathlib"),
    ],
)
def test_is_url(source: Any, url: bool) -> None:
    assert remote.is_url(source) is url


@pytest.mark.parametrize(
    "source", ["k3/rnn_seq.keras", "k3/rnn_seq.h5", "tfk/rnn_seq.h5", "variants/rnn_seq.deflate.keras"]
)
def test_memory_url_reads_what_keras_wrote(source: str) -> None:
    fsspec = pytest.importorskip("fsspec")
    url = f"memory://remote-test/{source}"
    fsspec.filesystem("memory").pipe(url, (FIXTURES / source).read_bytes())
    with kerasweights.open(url) as model:
        assert model.path == url
        leaf_weights_match_keras(model)


def test_the_model_keeps_its_handle_open_until_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    fsspec = pytest.importorskip("fsspec")
    fsspec.filesystem("memory").pipe("/remote-test/handle.keras", (FIXTURES / "k3" / "rnn_seq.keras").read_bytes())
    handles: list[remote.RemoteFile] = []
    opener = remote.open_url

    def recording(url: str, *args: Any, **kwargs: Any) -> remote.RemoteFile:
        handles.append(opener(url, *args, **kwargs))
        return handles[-1]

    monkeypatch.setattr(remote, "open_url", recording)
    model = kerasweights.open("memory://remote-test/handle.keras")
    assert not handles[0].closed
    leaf_weights_match_keras(model)  # values are read after open() returned
    model.close()
    assert handles[0].closed
    fsspec.filesystem("memory").pipe("/remote-test/junk.h5", b"not a model")
    with pytest.raises(kerasweights.UnsupportedFormatError):
        kerasweights.open("memory://remote-test/junk.h5")
    assert handles[1].closed


def test_file_urls_are_paths() -> None:
    for path in (
        FIXTURES / "k3" / "rnn_seq.keras",
        FIXTURES / "variants" / "rnn_seq_dir",
        FIXTURES / "variants" / "rnn_seq.weights.json",
    ):
        with kerasweights.open(path.as_uri()) as model:
            leaf_weights_match_keras(model)


def test_missing_url() -> None:
    pytest.importorskip("fsspec")
    with pytest.raises(
        kerasweights.KerasWeightsError, match=r"^memory://remote-test/nothing\.h5: no such file or directory$"
    ):
        kerasweights.open("memory://remote-test/nothing.h5")


def test_without_fsspec_a_url_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now raises ImportError
    problem = "this needs fsspec, which is not installed; install it with: pip install 'kerasweights[remote]'"
    with pytest.raises(kerasweights.KerasWeightsError) as caught:
        kerasweights.open("s3://bucket/model.keras")
    assert str(caught.value) == f"s3://bucket/model.keras: {problem}"
    assert main(["summary", "s3://bucket/model.keras"]) == 3
    assert capsys.readouterr().err == f"kerasweights: error: s3://bucket/model.keras: {problem}\n"
    assert [(f.code, f.message) for f in audit_file("s3://bucket/model.keras").findings] == [("unreadable", problem)]


# -- a local HTTP server that honours Range, counting what it sends --------------------------------------


class _Served:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.sent = 0
        self.lock = threading.Lock()


def _handler(served: _Served) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 10  # a stuck client cannot hold a thread for long

        def log_message(self, *args: Any) -> None:
            pass

        def _file(self) -> bytes | None:
            data = served.files.get(self.path)
            if data is None:
                self.send_error(404)
            return data

        def do_HEAD(self) -> None:
            data = self._file()
            if data is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

        def do_GET(self) -> None:
            data = self._file()
            if data is None:
                return
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                start = int(match.group(1))
                end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
                body = data[start : end + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            else:
                body = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.write(body)
            with served.lock:
                served.sent += len(body)

    return Handler


@pytest.fixture
def http_files() -> Iterator[tuple[str, _Served]]:
    """(base URL, served files) of a server on 127.0.0.1 that shuts itself down after 60 s at most."""
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    served = _Served()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    deadline = threading.Timer(60, server.shutdown)
    deadline.daemon = True
    deadline.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _padded_h5(tmp_path: Path) -> bytes:
    path = tmp_path / "padded.h5"
    shutil.copy(FIXTURES / "k3" / "rnn_seq.h5", path)
    with h5py.File(path, "a") as f:  # an array no layer owns, after the model's own data
        f.create_dataset("padding", data=np.random.default_rng(0).random(PADDING // 8))
    return path.read_bytes()


def _padded_keras(tmp_path: Path) -> bytes:
    path = tmp_path / "padded.keras"
    with zipfile.ZipFile(FIXTURES / "k3" / "rnn_seq.keras") as old, zipfile.ZipFile(path, "w") as new:
        new.writestr("assets/padding.bin", np.random.default_rng(0).bytes(PADDING))  # stored, before the model
        for info in old.infolist():
            new.writestr(info, old.read(info))
    return path.read_bytes()


@pytest.mark.parametrize("make", [_padded_h5, _padded_keras], ids=["h5", "keras"])
def test_http_reads_only_the_ranges_it_needs(http_files: tuple[str, _Served], tmp_path: Path, make: Any) -> None:
    base, served = http_files
    data = make(tmp_path)
    served.files["/model"] = data
    with kerasweights.open(f"{base}/model") as model:
        leaf_weights_match_keras(model)
    assert served.sent < len(data) // 2
    served.sent = 0
    report = audit_file(f"{base}/model")
    assert report.findings == [] and report.keras_version == truth("rnn_seq")["runtime"]["keras"]
    assert served.sent < len(data) // 2


def test_http_missing_file_is_unreadable(http_files: tuple[str, _Served]) -> None:
    base, _ = http_files
    report = audit_file(f"{base}/nothing.h5")
    assert [(f.code, f.message) for f in report.findings] == [("unreadable", "no such file or directory")]
