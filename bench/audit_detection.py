"""What kerasweights audit, modelscan and modelaudit catch on the same crafted risky files, and what
they flag on files Keras wrote that hold no risk (false alarms).

Risky files come from ``risky_files.write_risky`` (zipfile/h5py/pickle, no TensorFlow); clean
ones are the fixture models without a Lambda layer or pickled weights. A file counts as caught
(or, when clean, as a false alarm) when the tool reports something at warning level or above:
kerasweights ``warning``/``error``; modelscan any issue; modelaudit ``warning``/``critical``.
Peers are found in ``--peers-venv`` (default ``$KW_PEERS_VENV`` or ``/work/kw-peers``) or on
``PATH``.

    python3 bench/audit_detection.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_throughput import FIXTURES, PEERS, find_peer
from risky_files import write_risky

RISKY_FIXTURES = {"functional", "rnn_seq.npz"}  # Lambda layers, pickled weights: not clean


def clean_fixtures(target: Path) -> list[str]:
    target.mkdir(parents=True)
    names = []
    for folder in ("k3", "tfk", "variants"):
        for path in sorted((FIXTURES / folder).iterdir()):
            stem = path.name.split(".")[0].removesuffix("_weights")
            if path.is_file() and path.name.endswith((".keras", ".h5")) and stem not in RISKY_FIXTURES:
                if path.name.startswith("rnn_seq.npz") or "_0000" in path.name:
                    continue
                name = f"{folder}_{path.name}"
                shutil.copy(path, target / name)
                names.append(name)
    return names


def flagged_by_kerasweights(folder: Path) -> set[str]:
    from kerasweights.audit import audit_paths

    return {Path(r.path).name for r in audit_paths([folder], jobs=2) if r.worst in ("warning", "error")}


def _owner(text: str, names: list[str]) -> str | None:
    text = text.replace("\\", "/")
    hits = [n for n in names if f"/{n}" in f"/{text}"]
    return max(hits, key=len) if hits else None


def flagged_by_peer(name: str, exe: str, folder: Path, names: list[str]) -> set[str]:
    with tempfile.TemporaryDirectory(prefix="kw-peer-") as tmp:
        out = Path(tmp) / "out.json"
        env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}
        subprocess.run(
            PEERS[name](exe, folder, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
            check=False,
        )
        if not out.exists():
            return set()
        report = json.loads(out.read_text())
    found = set()
    for issue in report.get("issues", []):
        if name == "modelaudit" and str(issue.get("severity", "")).lower() not in ("warning", "critical"):
            continue
        where = issue.get("source") or issue.get("location") or ""
        owner = _owner(str(where), names)
        if owner:
            found.add(owner)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers-venv", type=Path, default=Path(os.environ.get("KW_PEERS_VENV", "/work/kw-peers")))
    args = parser.parse_args()
    peers = {n: e for n in PEERS if (e := find_peer(n, args.peers_venv))}
    with tempfile.TemporaryDirectory(prefix="kw-detect-") as tmp:
        risky_dir, clean_dir = Path(tmp) / "risky", Path(tmp) / "clean"
        risks = write_risky(risky_dir)
        clean = clean_fixtures(clean_dir)
        tools = ["kerasweights", *peers]
        caught = {"kerasweights": flagged_by_kerasweights(risky_dir)}
        alarms = {"kerasweights": flagged_by_kerasweights(clean_dir)}
        for name, exe in peers.items():
            caught[name] = flagged_by_peer(name, exe, risky_dir, list(risks))
            alarms[name] = flagged_by_peer(name, exe, clean_dir, clean)
    print("| risk | " + " | ".join(tools) + " |")
    print("|---|" + "---|" * len(tools))
    for file, risk in sorted(risks.items(), key=lambda kv: kv[1]):
        print(f"| {risk} (`{file}`) | " + " | ".join("yes" if file in caught[t] else "**no**" for t in tools) + " |")
    print(f"| **caught, of {len(risks)}** | " + " | ".join(str(len(caught[t] & set(risks))) for t in tools) + " |")
    print(
        f"| **false alarms, of {len(clean)} clean files** | "
        + " | ".join(str(len(alarms[t] & set(clean))) for t in tools)
        + " |"
    )
    for tool in tools:
        if alarms[tool]:
            print(f"{tool} flags clean files: {', '.join(sorted(alarms[tool]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
