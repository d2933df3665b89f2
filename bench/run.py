"""Benchmark kerasweights against Keras and a bare h5py loop; print medians and ratios.

    python3 bench/run.py                      # everything (~5 minutes, ~2.5 GB in bench/work)
    python3 bench/run.py --repeat 3 --skip-huge --skip-keras

Models come from ``bench/make_models.py`` (real Keras, run with ``--tf-python``) and, for the
memory check, a ~1 GB stored ``.keras`` built here with h5py + zipfile. Every comparison runs
each side as a whole process, interleaved round by round (one warm-up round discarded), and
reports the median wall time and the median CPU time (user + system) of the children.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
JOBS = str(HERE / "jobs.py")
PY = sys.executable
GiB = 1024**3
MiB = 1024**2


# -- running and timing ------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def run_once(case: Case) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(case.argv, env=case.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{case.name} failed ({' '.join(case.argv)}):\n{done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def interleaved(cases: list[Case], repeat: int) -> None:
    """Run every case once per round, rotating the order; the first round only warms caches."""
    for round_ in range(repeat + 1):
        shift = round_ % len(cases)
        for case in cases[shift:] + cases[:shift]:
            wall, cpu = run_once(case)
            if round_:
                case.wall.append(wall)
                case.cpu.append(cpu)
        print(f"  round {round_}/{repeat}" + (" (warm-up)" if not round_ else ""), file=sys.stderr)


def compile_bytecode() -> None:
    """Byte-compile this checkout's kerasweights, as ``pip install`` does for an installed copy.

    With ``PYTHONDONTWRITEBYTECODE`` set (as on the machine the figures come from) nothing
    else writes ``__pycache__``, and every timed process would compile the package's source
    again (about 60 ms), which no installed copy pays.
    """
    compileall.compile_dir(REPO / "kerasweights", quiet=1)


def kerasweights_cli() -> list[str]:
    """The installed console script (not a pyenv/venv shim, whose own start-up would be timed)."""
    script = Path(sysconfig.get_path("scripts")) / "kerasweights"
    return [str(script)] if script.exists() else [PY, "-m", "kerasweights"]


# -- models -------------------------------------------------------------------------------------------


def ensure_keras_models(work: Path, tf_python: str, rebuild: bool, savedmodel_only: bool = False) -> None:
    wanted = [] if savedmodel_only else [work / f"{s}{x}" for s in ("big", "small") for x in (".keras", ".h5")]
    wanted += [work / "big_savedmodel" / "keras_metadata.pb", work / "big_tfk.h5"]
    if rebuild or not all(p.exists() for p in wanted):
        print(f"building Keras models with {tf_python} ...", file=sys.stderr)
        only = ["--savedmodel-only"] if savedmodel_only else []
        subprocess.run([tf_python, str(HERE / "make_models.py"), "--out", str(work), *only], check=True, cwd=REPO)


def savedmodel_results(work: Path, tf_python: str, repeat: int, skip_keras: bool) -> list[Result]:
    """(f) summary of the big model as a tf.keras SavedModel: vs tf_keras's loader and vs its .h5."""
    cli = kerasweights_cli()
    warm([work / "big_tfk.h5", *sorted(p for p in (work / "big_savedmodel").rglob("*") if p.is_file())])
    ours = Case("kerasweights summary big_savedmodel", [*cli, "summary", str(work / "big_savedmodel")])
    h5 = Case("kerasweights summary big_tfk.h5", [*cli, "summary", str(work / "big_tfk.h5")])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    load = Case(
        "tf_keras load_model big_savedmodel",
        [tf_python, JOBS, "tfkeras-load", str(work / "big_savedmodel")],
        env,
    )
    interleaved([ours, h5] if skip_keras else [ours, h5, load], repeat)
    results = [Result("(f) SavedModel summary vs its .h5 summary", ours, h5, "ratio", 1.0)]
    if not skip_keras:
        results.insert(0, Result("(f) SavedModel summary vs tf_keras load_model", ours, load, "speedup", 20))
    return results


HUGE_WIDTH = 4096  # two LSTM(4096) on 4096 inputs + Dense(4096): 1.07 GiB of float32


def build_huge_archive(path: Path) -> None:
    """A ~1 GB ``.keras`` as Keras 3 lays it out (stored members), written with h5py + zipfile."""
    import h5py
    import numpy as np

    w = HUGE_WIDTH
    rng = np.random.default_rng(0)
    layers = [
        ("lstm", "lstm_a", [(w, 4 * w), (w, 4 * w), (4 * w,)]),
        ("lstm_1", "lstm_b", [(w, 4 * w), (w, 4 * w), (4 * w,)]),
        ("dense", "head", [(w, w), (w,)]),
    ]
    weights = path.with_name(path.name + ".weights.h5.tmp")
    with h5py.File(weights, "w") as h5:
        for key, name, shapes in layers:
            h5.create_group(f"layers/{key}/vars").attrs["name"] = name
            vars_path = f"layers/{key}/cell/vars" if key.startswith("lstm") else f"layers/{key}/vars"
            group = h5.require_group(vars_path)
            for i, shape in enumerate(shapes):
                ds = group.create_dataset(str(i), shape, "float32")
                for start in range(0, shape[0], 256):  # 16 MiB at a time
                    block = rng.random((min(256, shape[0] - start), *shape[1:]), dtype=np.float32)
                    ds[start : start + len(block)] = block - 0.5
        h5.create_group("vars").attrs["name"] = "huge"
    layer_configs: list[dict[str, Any]] = [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 8, w]}}
    ]
    layer_configs += [
        {
            "module": "keras.layers",
            "class_name": "LSTM",
            "config": {"name": "lstm_a", "units": w, "return_sequences": True},
        },
        {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "lstm_b", "units": w}},
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "head", "units": w}},
    ]
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "huge", "layers": layer_configs}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.write(weights, "model.weights.h5")
    weights.unlink()


def warm(paths: list[Path]) -> None:
    """Read files once so every measured run finds them in the page cache."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(64 * MiB):
                pass


# -- the comparisons ----------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    ours: Case
    baseline: Case
    kind: str  # "speedup" (baseline/ours >= target), "ratio" (ours/baseline <= target), "delta" (ours-baseline <= target s)
    target: float | None  # None: shown for information, no target

    def value(self, cpu: bool = False) -> float:
        ours = self.ours.median_cpu if cpu else self.ours.median
        base = self.baseline.median_cpu if cpu else self.baseline.median
        return {"speedup": base / ours, "ratio": ours / base, "delta": ours - base}[self.kind]

    @property
    def met(self) -> bool:
        if self.target is None:
            return True
        v = self.value()
        return v >= self.target if self.kind == "speedup" else v <= self.target

    def row(self) -> str:
        unit = {"speedup": "x faster", "ratio": "x", "delta": " s"}[self.kind]
        sign = ">=" if self.kind == "speedup" else "<="
        fmt = "+.3f" if self.kind == "delta" else ".2f"
        verdict = (
            "no target"
            if self.target is None
            else (
                f"target {sign} {self.target:g}{unit.strip() if self.kind != 'ratio' else 'x'}  {'met' if self.met else 'MISSED'}"
            )
        )
        return (
            f"{self.label:<44} {self.ours.median:7.3f} {self.baseline.median:7.3f}  "
            f"{format(self.value(), fmt)}{unit} (cpu {format(self.value(True), fmt)})  {verdict}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "target": self.target,
            "met": self.met,
            "value": self.value(),
            "value_cpu": self.value(True),
            "ours": {"name": self.ours.name, "argv": self.ours.argv, "wall": self.ours.wall, "cpu": self.ours.cpu},
            "baseline": {
                "name": self.baseline.name,
                "argv": self.baseline.argv,
                "wall": self.baseline.wall,
                "cpu": self.baseline.cpu,
            },
        }


def export_cases(work: Path) -> tuple[str, list[Case]]:
    """``kerasweights export`` when the CLI can do it, else the same through the library."""
    probe = work / "probe.npz"
    probe.unlink(missing_ok=True)
    cli = kerasweights_cli()
    done = subprocess.run([*cli, "export", str(work / "small.keras"), "-o", str(probe)], capture_output=True, cwd=REPO)
    use_cli = done.returncode == 0 and probe.exists()
    probe.unlink(missing_ok=True)
    cases = []
    for suffix in (".keras", ".h5"):
        model, out = str(work / f"big{suffix}"), str(work / f"out-kw{suffix}.npz")
        argv = [*cli, "export", model, "-o", out] if use_cli else [PY, JOBS, "kw-export", model, out]
        cases.append(Case(f"kerasweights export big{suffix}", argv))
        cases.append(
            Case(f"h5py + np.savez big{suffix}", [PY, JOBS, "h5py-export", model, str(work / f"out-h5py{suffix}.npz")])
        )
    how = (
        "kerasweights export (CLI)"
        if use_cli
        else "kerasweights library: model.matrices() + np.savez (export CLI not available)"
    )
    return how, cases


def machine() -> dict[str, Any]:
    import h5py
    import numpy

    cpu = next(
        (
            l.split(":", 1)[1].strip()
            for l in Path("/proc/cpuinfo").read_text().splitlines()
            if l.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")), "0")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(int(mem) / 1024**2, 1),
        "python": platform.python_version(),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": numpy.__version__,
        "commit": commit,
        "loadavg_start": os.getloadavg(),
        "command": " ".join(["python3", "bench/run.py", *sys.argv[1:]]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="measured rounds per comparison (default 7)")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="where models are built (git-ignored)")
    parser.add_argument(
        "--tf-python",
        default=os.environ.get("KW_TF_PYTHON", str(Path.home() / "kw-tfvenv/bin/python")),
        help="python of the venv with TensorFlow + Keras (builds models; the load_model baseline)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the Keras models even if present")
    parser.add_argument("--skip-keras", action="store_true", help="skip the keras.saving.load_model comparison")
    parser.add_argument("--skip-huge", action="store_true", help="skip the 1 GB memory check")
    parser.add_argument("--keep-huge", action="store_true", help="keep the 1 GB archive in --work afterwards")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--skip-savedmodel", action="store_true", help="skip the tf.keras SavedModel comparisons (f)")
    parser.add_argument("--savedmodel-only", action="store_true", help="run only the SavedModel comparisons (f)")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    facts = machine()
    print(json.dumps(facts, indent=1))
    compile_bytecode()

    ensure_keras_models(work, args.tf_python, args.rebuild, args.savedmodel_only)
    if args.savedmodel_only:
        return report_results(savedmodel_results(work, args.tf_python, args.repeat, args.skip_keras), args, facts)
    big, small = work / "big.keras", work / "small.keras"
    warm([big, small, work / "big.h5", work / "small.h5"])
    cli = kerasweights_cli()
    results: list[Result] = []
    report: dict[str, Any] = {
        "machine": facts,
        "models": {p.name: p.stat().st_size for p in sorted(work.glob("*.keras")) + sorted(work.glob("*.h5"))},
    }

    print("\n(d) import cost", file=sys.stderr)
    imp = Case("python -c 'import kerasweights'", [PY, "-c", "import kerasweights"])
    base = Case("python -c 'import numpy, h5py'", [PY, "-c", "import numpy, h5py"])
    interleaved([imp, base], args.repeat * 2)
    results.append(Result("(d) import kerasweights vs numpy+h5py", imp, base, "delta", 0.100))

    print("\n(a, b) summary", file=sys.stderr)
    summaries = {
        name: Case(f"kerasweights summary {name}", [*cli, "summary", str(work / name)])
        for name in ("big.keras", "small.keras", "big.h5", "small.h5")
    }
    keras_env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    loads = (
        {}
        if args.skip_keras
        else {
            name: Case(
                f"keras.saving.load_model {name}", [args.tf_python, JOBS, "keras-load", str(work / name)], keras_env
            )
            for name in ("big.keras", "big.h5")
        }
    )
    interleaved([*summaries.values(), *loads.values()], args.repeat)
    for name, load in loads.items():
        results.append(Result(f"(a) summary vs Keras load_model, {name}", summaries[name], load, "speedup", 20))
    for suffix in (".keras", ".h5"):
        results.append(
            Result(
                f"(b) summary 150 MB vs 20 KB, {suffix}",
                summaries[f"big{suffix}"],
                summaries[f"small{suffix}"],
                "ratio",
                1.5,
            )
        )

    print("\n(c) export every weight", file=sys.stderr)
    how, cases = export_cases(work)
    report["export_how"] = how
    interleaved(cases, args.repeat)
    for ours, bare in zip(cases[::2], cases[1::2]):
        name = ours.name.split()[-1]  # the target is for the .keras archive; .h5 is shown alongside
        results.append(
            Result(f"(c) export vs bare h5py, {name}", ours, bare, "ratio", 1.5 if name.endswith(".keras") else None)
        )
    for out in work.glob("out-*.npz"):
        out.unlink()

    if not args.skip_savedmodel:
        print("\n(f) tf.keras SavedModel summary", file=sys.stderr)
        results += savedmodel_results(work, args.tf_python, args.repeat, args.skip_keras)

    memory: list[dict[str, Any]] = []
    if not args.skip_huge:
        huge = work / "huge.keras"
        if not huge.exists():
            print("\n(e) building the 1 GB archive ...", file=sys.stderr)
            build_huge_archive(huge)
        warm([huge])
        print("(e) peak memory reading one matrix", file=sys.stderr)
        for key, mode in (
            ("lstm_b/kernel_i", "kerasweights"),
            ("head/kernel", "kerasweights"),
            ("lstm_b/kernel_i", "naive"),
        ):
            out = subprocess.run(
                [PY, JOBS, "memory", str(huge), key, mode], capture_output=True, text=True, check=True, cwd=REPO
            )
            row = json.loads(out.stdout)
            row["archive_bytes"] = huge.stat().st_size
            memory.append(row)
        if not args.keep_huge:
            huge.unlink()
    report["memory"] = memory

    facts["loadavg_end"] = os.getloadavg()
    print(f"\nmedians of {args.repeat} interleaved runs, whole processes, wall seconds (CPU ratio in brackets)")
    print(f"{'comparison':<44} {'ours':>7} {'base':>7}  value")
    for result in results:
        print(result.row())
    print(f"(c) measured with: {how}")
    for row in memory:
        peak = max(row["traced_peak_bytes"], row["rss_growth_bytes"])
        weight = f", stored weight {row['weight_bytes'] / MiB:,.0f} MiB" if row["weight_bytes"] else ""
        print(
            f"(e) {row['mode']:<12} {row['key']:<16} matrix {row['matrix_bytes'] / MiB:,.0f} MiB{weight}, archive "
            f"{row['archive_bytes'] / MiB:,.0f} MiB: traced peak {row['traced_peak_bytes'] / MiB:,.0f} MiB, RSS growth "
            f"{row['rss_growth_bytes'] / MiB:,.0f} MiB = {peak / row['matrix_bytes']:.2f}x the matrix"
        )
    print(f"load average at start {facts['loadavg_start']}, at end {facts['loadavg_end']}")
    report["results"] = [r.as_dict() for r in results]
    report["cases"] = {
        c.name: {"median": c.median, "median_cpu": c.median_cpu} for r in results for c in (r.ours, r.baseline)
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if all(r.met for r in results) else 1


def report_results(results: list[Result], args: argparse.Namespace, facts: dict[str, Any]) -> int:
    """Print and (with --json) write results of a partial run; exit status as for a full one."""
    facts["loadavg_end"] = os.getloadavg()
    print(f"\nmedians of {args.repeat} interleaved runs, whole processes, wall seconds (CPU ratio in brackets)")
    print(f"{'comparison':<44} {'ours':>7} {'base':>7}  value")
    for result in results:
        print(result.row())
    print(f"load average at start {facts['loadavg_start']}, at end {facts['loadavg_end']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "results": [r.as_dict() for r in results]}, indent=1))
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
