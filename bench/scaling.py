"""How time grows with the number of layers, and memory with the largest array (issue 13).

    python3 bench/scaling.py                  # ~5 minutes once the models exist
    python3 bench/scaling.py --repeat 3 --json bench/work/scaling.json

Models (built once with real Keras by ``bench/make_models.py`` in the TensorFlow venv):
``dense{100,1000,4000}.{keras,h5}`` (that many Dense(8) layers), ``big.keras`` (151 MB, 4 LSTM
+ Dense) and ``mem.keras`` (168 MB, largest array a 64 MiB Dense kernel).

(s) ``kerasweights summary`` of each dense model against the floor, ``bench/jobs.py
h5py-floor``: a bare script that imports h5py, parses the config and lists every dataset's
shape (the ``.keras`` weights member in place). Target: 4,000 layers within 1.5x.
(j) ``summary --json big.keras`` against the same floor on ``big.keras``. Target: 1.2x. Each
process takes about 0.2 s, so this pair runs four times as many rounds.
(m) peak resident set of ``weights --stats``, ``diff`` (the file against itself), ``audit``
and ``export`` (``.npz``, ``.safetensors``) of ``mem.keras``, each a fresh process (``wait4``).
Target: 2x the largest array + 64 MiB = 192 MiB.

Time comparisons run both sides as whole processes, interleaved round by round (first round
discarded), and report median wall and CPU (user + system) times; the ratio of CPU times is
the steadier one on a shared machine. The package is byte-compiled first, as ``pip install``
leaves it (see ``run.compile_bytecode``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PY, REPO, Case, compile_bytecode, interleaved  # noqa: E402

JOBS = str(HERE / "jobs.py")
MiB = 1024**2
LARGEST = 64  # MiB: mem.keras's Dense(4096 -> 4096) kernel


def time_pair(label: str, ours: list[str], floor: list[str], repeat: int, target: float | None) -> dict[str, object]:
    a, b = Case(label, ours), Case(f"floor {label}", floor)
    interleaved([a, b], repeat)
    row = {
        "label": label,
        "ours_wall": a.median,
        "floor_wall": b.median,
        "ours_cpu": a.median_cpu,
        "floor_cpu": b.median_cpu,
        "ratio_wall": a.median / b.median,
        "ratio_cpu": a.median_cpu / b.median_cpu,
        "target": target,
    }
    verdict = "" if target is None else ("  met" if row["ratio_cpu"] <= target else "  MISSED") + f" (<= {target}x)"
    print(
        f"{label:<34} {a.median:6.2f} s / {b.median:6.2f} s = {row['ratio_wall']:.2f}x wall, "
        f"cpu {a.median_cpu:5.2f} / {b.median_cpu:5.2f} = {row['ratio_cpu']:.2f}x{verdict}"
    )
    return row


def peak(argv: list[str]) -> float:
    done = subprocess.run([PY, JOBS, "peak", *argv], capture_output=True, text=True, check=True, cwd=REPO)
    result = json.loads(done.stdout)
    if result["exit"] not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {result['stderr']}")
    return float(result["peak_mib"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work: Path = args.work
    compile_bytecode()
    # run from the repository (cwd): this checkout's kerasweights, not an installed one
    cli = [PY, "-m", "kerasweights"]
    floor = [PY, JOBS, "h5py-floor"]
    report: dict[str, object] = {"loadavg_start": os.getloadavg(), "time": [], "memory": []}
    times: list[dict[str, object]] = report["time"]  # type: ignore[assignment]
    print("(s) summary against the bare h5py floor", file=sys.stderr)
    for count in (100, 1000, 4000):
        for suffix in (".keras", ".h5"):
            model = work / f"dense{count}{suffix}"
            if model.exists():
                target = 1.5 if count == 4000 else None
                times.append(
                    time_pair(
                        f"summary dense{count}{suffix}",
                        [*cli, "summary", str(model)],
                        [*floor, str(model)],
                        args.repeat,
                        target,
                    )
                )
    big = work / "big.keras"
    if big.exists():
        print("(j) summary --json of the 151 MB model", file=sys.stderr)
        times.append(
            time_pair(
                "summary --json big.keras",
                [*cli, "summary", str(big), "--json"],
                [*floor, str(big)],
                4 * args.repeat,
                1.2,
            )
        )
    mem = work / "mem.keras"
    if mem.exists():
        print("(m) peak resident set on mem.keras", file=sys.stderr)
        budget = 2 * LARGEST + 64
        with tempfile.TemporaryDirectory() as tmp:
            for name, argv in [
                ("weights --stats", ["weights", str(mem), "--stats"]),
                ("diff (itself)", ["diff", str(mem), str(mem)]),
                ("audit", ["audit", str(mem)]),
                ("export .npz", ["export", str(mem), "-o", f"{tmp}/o.npz"]),
                ("export .safetensors", ["export", str(mem), "-o", f"{tmp}/o.safetensors"]),
                ("summary", ["summary", str(mem)]),
            ]:
                values = [peak([*cli, *argv]) for _ in range(max(1, args.repeat // 2))]
                for leftover in Path(tmp).iterdir():
                    leftover.unlink()
                value = statistics.median(values)
                met = "met" if value <= budget else "MISSED"
                print(f"{name:<22} peak RSS {value:6.1f} MiB  (<= {budget} MiB: {met})")
                report["memory"].append({"command": name, "peak_mib": value, "budget_mib": budget})  # type: ignore[attr-defined]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
