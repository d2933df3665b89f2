"""How many small model files per second `kerasweights audit` gets through (target: 100/s on 2 cores).

Copies every fixture model file (Keras 3 and tf_keras .keras/.h5/.weights.h5, the variants)
``--copies`` times into a temporary folder, then audits the folder with every check:

- in this process through ``kerasweights.audit.audit_paths(jobs=N)`` (walk + worker pool), and
- as a whole command, ``python -m kerasweights audit DIR --json -j N`` (interpreter start-up and
  imports included), output thrown away.

Each is repeated ``--repeat`` times; the median wall time is reported, and the CPU time the
run used (this process and its workers), whose files per CPU-second stay meaningful on a
machine that other work keeps busy. No TensorFlow needed.

    python3 bench/audit_throughput.py                 # 2 workers, ~1,000 files
    python3 bench/audit_throughput.py --jobs 1 --copies 5
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TARGET = 100.0  # files per second on a 2-core machine (issue 5)


def fixture_models() -> list[Path]:
    """Every fixture model file or folder (not truth files or configs)."""
    out = []
    for folder in ("k3", "tfk", "variants"):
        for path in sorted((FIXTURES / folder).iterdir()):
            name = path.name
            if name.endswith((".keras", ".h5", ".weights.json")) or (path.is_dir() and (path / "config.json").exists()):
                out.append(path)
    return out


def populate(target: Path, copies: int) -> None:
    for i in range(copies):
        folder = target / f"copy_{i:03}"
        folder.mkdir()
        for path in fixture_models():
            if path.is_dir():
                shutil.copytree(path, folder / path.name)
            else:
                shutil.copy(path, folder / path.name)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=16, help="copies of the fixture set (default 16: ~1,000 files)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kw-audit-bench-") as tmp:
        folder = Path(tmp)
        populate(folder, args.copies)
        in_process(folder, args.jobs)  # warm the page cache
        library = [in_process(folder, args.jobs) for _ in range(args.repeat)]
        command = [whole_command(folder, args.jobs) for _ in range(args.repeat)]
    files = library[0][2]
    print(f"{files:,} files, {args.jobs} worker{'s' if args.jobs != 1 else ''}, median of {args.repeat} runs")
    rates = []
    for label, runs in (("audit_paths (in process)", library), ("kerasweights audit (command)", command)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rates.append(files / wall)
        print(f"  {label:30} {files / wall:7,.0f} files/s   {files / cpu:7,.0f} files per CPU-second")
    met = min(rates) >= TARGET
    print(
        f"target {TARGET:,.0f} files/s: {'met' if met else 'NOT met'} "
        f"(load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
