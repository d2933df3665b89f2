"""kerasweights.audit.members and .pickles: every member of crafted .keras archives and folders."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from kerasweights.audit import audit_file, pickles
from kerasweights.limits import Limits


class Evil:
    """Pickles to a call of os.system (never unpickled by the tests either)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def crafted(tmp_path: Path, extra: dict[str, bytes], source: str = "k3/rnn_seq.keras", mode: int | None = None) -> Path:
    """A copy of a fixture .keras with ``extra`` members added (names kept exactly)."""
    target = tmp_path / "crafted.keras"
    with zipfile.ZipFile(FIXTURES / source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        for name, data in extra.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = ((mode or 0o100644) & 0xFFFF) << 16
            new.writestr(info, data)
    return target


def findings(path: Path, **options: object) -> list[tuple[str, str, str]]:
    member_codes = ("pickle-member", "member-path", "executable-member", "nested-archive", "unexpected-member")
    return [(f.code, f.severity, f.message) for f in audit_file(path, **options).findings if f.code in member_codes]  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1), ids=lambda p: f"protocol{p}")
def test_pickle_member_of_every_protocol_names_its_imports(tmp_path: Path, protocol: int) -> None:
    path = crafted(tmp_path, {"assets/evil.pkl": pickle.dumps(Evil(), protocol=protocol)})
    assert findings(path) == [
        (
            "pickle-member",
            "error",
            (
                f"member 'assets/evil.pkl' is a protocol {max(protocol, 0) if protocol >= 2 else 0} pickle that imports "
                f"{os.system.__module__}.system; unpickling it calls them (never unpickled here)"
            ),
        )
    ]


def test_pickle_of_plain_data_is_a_warning(tmp_path: Path) -> None:
    path = crafted(tmp_path, {"assets/data.pkl": pickle.dumps({"a": [1, 2.5, "x"]}, protocol=4)})
    assert findings(path) == [
        (
            "pickle-member",
            "warning",
            "member 'assets/data.pkl' is a protocol 4 pickle (imports nothing; never unpickled here)",
        )
    ]


def test_object_array_npy_is_a_pickle(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil()], dtype=object), allow_pickle=True)
    path = crafted(tmp_path, {"assets/table.npy": buffer.getvalue()})
    [(code, severity, message)] = findings(path)
    assert (code, severity) == ("pickle-member", "error")
    assert "(an object array of a .npy file) that imports" in message and "system" in message


def test_text_and_binary_assets_are_not_pickles() -> None:
    for data in (b"hello\nworld\n", b"\x00\x01\x02binary", b"N", b"{}", np.arange(10).tobytes(), b"\x80\x09junk"):
        assert pickles.scan(data) is None


def test_names_that_climb_out_or_are_absolute(tmp_path: Path) -> None:
    path = crafted(tmp_path, {"../../x.txt": b"x", "/etc/cron.d/job": b"x", "C:\\evil.txt": b"x"})
    assert findings(path) == [
        ("member-path", "error", "member '../../x.txt' climbs out of the archive (..); extracting it writes outside"),
        ("member-path", "error", "member '/etc/cron.d/job' is an absolute path; extracting it writes outside"),
        ("member-path", "error", "member 'C:\\\\evil.txt' is an absolute path; extracting it writes outside"),
    ]


def test_zip_symlink_member(tmp_path: Path) -> None:
    path = crafted(tmp_path, {"assets/link": b"../../../etc/passwd"}, mode=0o120777)
    assert findings(path) == [
        ("member-path", "error", "member 'assets/link' is a link to '../../../etc/passwd' (never followed)")
    ]


@pytest.mark.parametrize(
    ("name", "data", "mode", "what"),
    [
        ("assets/run.sh", b"#!/bin/sh\nrm -rf ~\n", None, "a script (#!)"),
        ("assets/tool", b"\x7fELF\x02\x01\x01" + bytes(64), None, "an ELF executable or shared library"),
        ("assets/setup.exe", b"MZ\x90\x00" + bytes(64), None, "a Windows executable (PE)"),
        ("assets/helper.py", b"import os\n", None, "a script or program by its name"),
        ("assets/blob", b"plain bytes", 0o100755, "marked executable"),
    ],
    ids=["shebang", "elf", "pe", "py", "mode"],
)
def test_executable_members(tmp_path: Path, name: str, data: bytes, mode: int | None, what: str) -> None:
    path = crafted(tmp_path, {name: data}, mode=mode)
    assert findings(path) == [("executable-member", "warning", f"member {name!r} is {what}; Keras never writes one")]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_nested_archives_are_scanned_inside(tmp_path: Path) -> None:
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as tar:
        data = pickle.dumps(Evil(), protocol=2)
        info = tarfile.TarInfo("../up.pkl")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    inner = _zip({"torch/data.pkl": pickle.dumps(Evil(), protocol=2), "ok.txt": b"fine"})
    path = crafted(tmp_path, {"assets/bundle.zip": inner, "assets/more.tar.gz": tar_buffer.getvalue()})
    system = f"{os.system.__module__}.system"
    assert findings(path) == [
        (
            "pickle-member",
            "error",
            (
                f"member 'assets/bundle.zip!/torch/data.pkl' is a protocol 2 pickle that imports {system}; "
                "unpickling it calls them (never unpickled here)"
            ),
        ),
        (
            "pickle-member",
            "error",
            (
                f"member 'assets/more.tar.gz!/../up.pkl' is a protocol 2 pickle that imports {system}; "
                "unpickling it calls them (never unpickled here)"
            ),
        ),
        (
            "member-path",
            "error",
            "member 'assets/more.tar.gz!/../up.pkl' climbs out of the archive (..); extracting it writes outside",
        ),
        (
            "nested-archive",
            "warning",
            "member 'assets/bundle.zip' is a zip archive (2 members, scanned); Keras never nests archives",
        ),
        (
            "nested-archive",
            "warning",
            "member 'assets/more.tar.gz' is a gzip-compressed file (1 member, scanned); Keras never nests archives",
        ),
    ]


def test_nesting_stops_at_the_limit(tmp_path: Path) -> None:
    deepest = _zip({"evil.pkl": pickle.dumps(Evil())})
    for _ in range(2):
        deepest = _zip({"inner.zip": deepest})
    path = crafted(tmp_path, {"assets/deep.zip": deepest})
    got = findings(path, limits=Limits(max_nesting=2))
    assert got[-1] == (
        "nested-archive",
        "warning",
        "member 'assets/deep.zip!/inner.zip!/inner.zip' is a zip archive nested deeper than 2; not scanned",
    )
    assert not any(code == "pickle-member" for code, _, _ in got)
    assert any("evil.pkl" in message for _, _, message in findings(path))  # default limit reaches it


def test_members_keras_does_not_write(tmp_path: Path) -> None:
    path = crafted(tmp_path, {"notes.txt": b"hello", "assets/vocab.txt": b"a\nb\n"})
    assert findings(path) == [("unexpected-member", "warning", "member 'notes.txt' (5 bytes) is not one Keras writes")]


def test_pickled_npz_weights_report_only_foreign_imports(tmp_path: Path) -> None:
    assert findings(FIXTURES / "variants" / "rnn_seq.npz.keras") == []  # what Keras 3.0-3.8 pickle there
    with zipfile.ZipFile(FIXTURES / "variants" / "rnn_seq.npz.keras") as z:
        npz = z.read("model.weights.npz")
    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(io.BytesIO(npz)) as old:
        members = {n: old.read(n) for n in old.namelist()} | {"layers/evil.npy": buffer.getvalue()}
    target = tmp_path / "npz.keras"
    with zipfile.ZipFile(FIXTURES / "variants" / "rnn_seq.npz.keras") as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, _zip(members) if info.filename == "model.weights.npz" else old.read(info))
    codes = [(f.code, f.severity) for f in audit_file(target).findings]
    assert codes == [("pickled-weights", "error"), ("pickle-member", "error")]
    assert f"import {os.system.__module__}.system, beyond" in audit_file(target).findings[1].message


def test_directory_form_members(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    shutil.copytree(FIXTURES / "variants" / "rnn_seq_dir", folder)
    assert findings(folder) == []
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "evil.pkl").write_bytes(pickle.dumps(Evil(), protocol=5))
    (folder / "run.sh").write_bytes(b"#!/bin/sh\n")
    (folder / "assets" / "passwd").symlink_to("/etc/passwd")
    assert findings(folder) == [
        (
            "pickle-member",
            "error",
            (
                f"member 'assets/evil.pkl' is a protocol 5 pickle that imports {os.system.__module__}.system; "
                "unpickling it calls them (never unpickled here)"
            ),
        ),
        ("member-path", "error", "member 'assets/passwd' is a link to '/etc/passwd' (never followed)"),
        ("executable-member", "warning", "member 'run.sh' is a script (#!); Keras never writes one"),
    ]


def test_every_keras_fixture_archive_is_clean() -> None:
    archives = [*sorted(FIXTURES.glob("*/*.keras")), FIXTURES / "variants" / "rnn_seq_dir"]
    assert archives
    assert {str(p): findings(p) for p in archives} == {str(p): [] for p in archives}
