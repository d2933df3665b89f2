"""``kerasweights audit``: scan files or folders for unsafe, broken or numerically bad models."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from .. import __version__
from ..audit import CHECKS, SEVERITIES, FileReport, iter_audit, iter_model_files, sarif_report, severity_rank
from ._progress import Progress

EXIT_USAGE = 2

WIDTH = 80
_PLURAL = {"error": "errors", "warning": "warnings", "info": "info"}


def _codes(text: str) -> list[str]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    for code in codes:
        if code not in CHECKS:
            raise argparse.ArgumentTypeError(f"unknown check code {code!r}; valid codes: {', '.join(CHECKS)}")
    return codes


def _jobs(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("--jobs must be 0 (every CPU) or more")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "audit",
        help="scan files or folders for unsafe, broken or numerically bad models",
        description="Audit Keras model files without loading them: Lambda layers, unsafe configs, pickled "
        "weights, HDF5 links, NaN/Inf, custom layers, shape mismatches and numeric health. "
        f"Check codes: {', '.join(CHECKS)} (see docs/audit.md).",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="model file, folder (searched recursively) or URL (needs kerasweights[remote])",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text: one line per file and a tally; json: one object per line per file; sarif: SARIF 2.1.0",
    )
    parser.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    parser.add_argument("-v", "--verbose", action="store_true", help="text: list every finding under its file")
    parser.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=0,
        metavar="N",
        help="worker processes (default 0: every CPU; 1: no workers)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("warning", "error"),
        default="error",
        help="exit 1 when a finding is at least this severe (default: error)",
    )
    parser.add_argument(
        "--select", type=_codes, action="extend", metavar="CODES", help="run only these checks (comma-separated codes)"
    )
    parser.add_argument(
        "--ignore",
        type=_codes,
        action="extend",
        metavar="CODES",
        default=None,
        help="skip these checks (comma-separated codes)",
    )
    parser.add_argument(
        "--config",
        metavar="JSON",
        help="model config from model.to_json() for weights-only files (default: X.json, X_config.json or "
        "X.config.json beside X.weights.h5)",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when a folder holds no model file (default: that is an error, exit 2)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster (needs kerasweights[dask]); workers must see the same paths",
    )
    parser.set_defaults(run=run)


def summary_line(report: FileReport) -> str:
    """``path: 1 error (lambda-layer); 1 info (optimizer-state)`` or ``path: ok``."""
    parts = []
    for severity in reversed(SEVERITIES):
        codes = list(dict.fromkeys(f.code for f in report.findings if f.severity == severity))
        count = report.count(severity)
        if count:
            word = severity if count == 1 else _PLURAL[severity]
            parts.append(f"{count} {word} ({', '.join(codes)})")
    return f"{report.path}: {'; '.join(parts) or 'ok'}"


def finding_lines(report: FileReport) -> list[str]:
    lines = []
    for f in report.findings:
        where = f" at {f.layer}" if f.layer else ""
        if f.file:  # read from the config beside the weights file
            where += f" ({f.file}, line {f.line})"
        text = f"{f.severity} {f.code}{where}: {f.message}"
        lines += textwrap.wrap(text, WIDTH, initial_indent="  ", subsequent_indent="      ")
    return lines


class _Tally:
    def __init__(self) -> None:
        self.files = {"error": 0, "warning": 0, "ok": 0}
        self.findings = dict.fromkeys(SEVERITIES, 0)

    def add(self, report: FileReport) -> None:
        worst = report.worst
        self.files[worst if worst in ("error", "warning") else "ok"] += 1
        for severity in SEVERITIES:
            self.findings[severity] += report.count(severity)

    def lines(self) -> list[str]:
        total = sum(self.files.values())
        files = (
            f"Audited {total:,} file{'s' if total != 1 else ''}: {self.files['error']:,} with errors, "
            f"{self.files['warning']:,} with warnings, {self.files['ok']:,} ok"
        )
        counts = ", ".join(
            f"{n:,} {s if n == 1 else _PLURAL[s]}"
            for s, n in sorted(self.findings.items(), key=lambda kv: -severity_rank(kv[0]))
        )
        return [files, f"Findings: {counts}"]


def run(args: argparse.Namespace) -> int:
    found = {path: iter_model_files([path]) for path in args.paths}
    empty = [path for path, files in found.items() if not files]
    if empty and not args.allow_empty:
        for path in empty:  # a CI gate pointed at the wrong folder must not pass silently
            print(f"kerasweights: error: {path}: no model files found", file=sys.stderr)
        return EXIT_USAGE
    files = iter_model_files(args.paths)
    reports = iter_audit(
        files, jobs=args.jobs, scheduler=args.scheduler, select=args.select, ignore=args.ignore, config=args.config
    )
    progress = Progress(len(files), "audit")
    tally = _Tally()
    collected: list[FileReport] = []
    threshold = severity_rank(args.fail_on)
    failed = False
    for report in reports:
        progress.clear()
        if args.format == "text":
            print(summary_line(report))
            if args.verbose and report.findings:
                print("\n".join(finding_lines(report)))
        elif args.format == "json":
            print(json.dumps(report.to_dict()))
        else:
            collected.append(report)
        tally.add(report)
        failed = failed or any(severity_rank(f.severity) >= threshold for f in report.findings)
        progress.advance()
    progress.close()
    if args.format == "sarif":
        print(json.dumps(sarif_report(collected, __version__), indent=2))
    elif args.format == "text":
        print("\n".join(tally.lines()))
    return 1 if failed else 0
