"""How many small model files per second `kerasweights audit` gets through (target: 100/s on 2 cores).

Copies every fixture model file (Keras 3 and tf_keras .keras/.h5/.weights.h5, the variants)
``--copies`` times into a temporary folder, then audits the folder with every check:

- in this process through ``kerasweights.audit.audit_paths(jobs=N)`` (walk + worker pool), and
- as a whole command, ``python -m kerasweights audit DIR --json -j N`` (interpreter start-up and
  imports included), output thrown away.

Each is repeated ``--repeat`` times; the median wall time is reported, and the CPU time the
run used (this process and its workers), whose files per CPU-second stay meaningful on a
machine that other work keeps busy. No TensorFlow needed.

Peers: when ``modelscan`` (protectai, PyPI ``modelscan[h5py]``) and ``modelaudit``
(promptfoo, PyPI ``modelaudit``) are installed (in ``--peers-venv``, default
``$KW_PEERS_VENV`` or ``/work/kw-peers``, or on ``PATH``), each scans the same folder as a
whole command with JSON output, ``--peer-repeat`` times, and the ratio of kerasweights's
command rate to the fastest peer's is printed (target: at least 2x). Install them outside
the repository, e.g. ``python3 -m venv /work/kw-peers && /work/kw-peers/bin/pip install
modelscan modelaudit h5py``.

    python3 bench/audit_throughput.py                 # 2 workers, ~1,000 files
    python3 bench/audit_throughput.py --jobs 1 --copies 5
    python3 bench/audit_throughput.py --copies 2 --no-peers
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TARGET = 100.0  # files per second on a 2-core machine (issue 5)
PEER_RATIO = 2.0  # kerasweights at least twice as fast as the fastest peer (issue 15)
PEERS: dict[str, Callable[[str, Path, Path], list[str]]] = {
    "modelscan": lambda exe, folder, out: [exe, "-p", str(folder), "-r", "json", "-o", str(out)],
    "modelaudit": lambda exe, folder, out: [exe, "scan", str(folder), "--format", "json", "-o", str(out), "--no-cache"],
}


def fixture_models() -> list[Path]:
    """Every fixture model file or folder (not truth files or configs)."""
    out = []
    for folder in ("k3", "tfk", "variants"):
        for path in sorted((FIXTURES / folder).iterdir()):
            name = path.name
            if name.endswith((".keras", ".h5", ".weights.json")) or (path.is_dir() and (path / "config.json").exists()):
                out.append(path)
    return out


def populate(target: Path, copies: int, limit: int | None = None) -> None:
    for i in range(copies):
        folder = target / f"copy_{i:03}"
        folder.mkdir()
        for path in fixture_models()[:limit]:
            if path.is_dir():
                shutil.copytree(path, folder / path.name)
            else:
                shutil.copy(path, folder / path.name)
        if limit is None:
            for shard in (FIXTURES / "variants").glob("rnn_seq_0000*.weights.h5"):  # read through their index
                shutil.copy(shard, folder / shard.name)


def cpu_seconds() -> float:
    """User + system time of this process and of every child it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def in_process(folder: Path, jobs: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, files) of one audit_paths run; the pool is joined inside."""
    from kerasweights.audit import audit_paths

    cpu, start = cpu_seconds(), time.perf_counter()
    reports = audit_paths([folder], jobs=jobs)
    return time.perf_counter() - start, cpu_seconds() - cpu, len(reports)


def whole_command(folder: Path, jobs: int) -> tuple[float, float]:
    cpu, start = cpu_seconds(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kerasweights", "audit", str(folder), "--json", "-j", str(jobs)],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - start, cpu_seconds() - cpu


def find_peer(name: str, venv: Path) -> str | None:
    candidate = venv / "bin" / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def peer_command(name: str, exe: str, folder: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one peer scan of ``folder``."""
    with tempfile.TemporaryDirectory(prefix="kw-peer-") as tmp:
        env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}
        start = time.perf_counter()
        child = subprocess.Popen(
            PEERS[name](exe, folder, Path(tmp) / "out.json"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
        )
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0  # reaped by wait4
        wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def kw_command_rss(folder: Path, jobs: int) -> int:
    """Peak RSS (MiB) of the largest process of ``kerasweights audit`` (the parent; workers are similar)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "kerasweights", "audit", str(folder), "--json", "-j", str(jobs)],
        stdout=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(child.pid, 0)
    child.returncode = 0
    return usage.ru_maxrss // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=16, help="copies of the fixture set (default 16: ~1,000 files)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument(
        "--peers-venv",
        type=Path,
        default=Path(os.environ.get("KW_PEERS_VENV", "/work/kw-peers")),
        help="venv holding modelscan and modelaudit (else looked up on PATH)",
    )
    parser.add_argument("--peer-repeat", type=int, default=1, help="runs of each peer (default 1: they are slow)")
    parser.add_argument(
        "--peer-files",
        type=int,
        default=24,
        help="fixture model files the peers and kerasweights both scan (default 24; modelaudit is slow)",
    )
    parser.add_argument("--no-peers", action="store_true", help="do not run modelscan or modelaudit")
    args = parser.parse_args()
    peers = {} if args.no_peers else {n: e for n in PEERS if (e := find_peer(n, args.peers_venv))}
    peer_runs: dict[str, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="kw-audit-bench-") as tmp:
        folder = Path(tmp)
        populate(folder, args.copies)
        in_process(folder, args.jobs)  # warm the page cache
        library = [in_process(folder, args.jobs) for _ in range(args.repeat)]
        command = [whole_command(folder, args.jobs) for _ in range(args.repeat)]
        kw_rss = kw_command_rss(folder, args.jobs)
    if peers:
        with tempfile.TemporaryDirectory(prefix="kw-audit-peers-") as tmp:
            small = Path(tmp)
            populate(small, 1, limit=args.peer_files)
            peer_files = in_process(small, args.jobs)[2]
            for name, exe in peers.items():
                peer_runs[name] = [peer_command(name, exe, small) for _ in range(args.peer_repeat)]
            peer_runs["kerasweights audit"] = [(*whole_command(small, args.jobs), kw_rss) for _ in range(args.repeat)]
    files = library[0][2]
    print(f"{files:,} files, {args.jobs} worker{'s' if args.jobs != 1 else ''}, median of {args.repeat} runs")
    rates = []
    for label, runs in (("audit_paths (in process)", library), ("kerasweights audit (command)", command)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rates.append(files / wall)
        print(f"  {label:30} {files / wall:7,.0f} files/s   {files / cpu:7,.0f} files per CPU-second")
    print(f"  {'':30} peak RSS of the command: {kw_rss:,} MiB")
    met = min(rates) >= TARGET
    print(
        f"target {TARGET:,.0f} files/s: {'met' if met else 'NOT met'} "
        f"(load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    if not peer_runs:
        print("peers: none found (install modelscan and modelaudit, see --help)")
        return 0 if met else 1
    print(
        f"peers and kerasweights on the same {peer_files:,} files "
        f"(whole commands; peers in one process, median of {args.peer_repeat}; kerasweights -j {args.jobs}):"
    )
    peer_rates = {}
    for name, runs in peer_runs.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        peer_rates[name] = (peer_files / wall, peer_files / cpu)
        print(
            f"  {name:30} {peer_files / wall:7,.1f} files/s   {peer_files / cpu:7,.1f} files per CPU-second   {rss:,} MiB"
        )
    ours = peer_rates.pop("kerasweights audit")
    fastest = max(peer_rates, key=lambda n: peer_rates[n][0])
    ratio, cpu_ratio = ours[0] / peer_rates[fastest][0], ours[1] / max(r[1] for r in peer_rates.values())
    ahead = ratio >= PEER_RATIO
    print(
        f"kerasweights audit is {ratio:,.1f}x the fastest peer ({fastest}) in files/s and {cpu_ratio:,.1f}x the "
        f"best peer in files per CPU-second: target {PEER_RATIO:g}x {'met' if ahead else 'NOT met'}"
    )
    return 0 if met and ahead else 1


if __name__ == "__main__":
    raise SystemExit(main())
