"""Batch audit: scan model files for unsafe, broken and numerically bad content.

>>> from kerasweights.audit import audit_file
>>> report = audit_file("fixtures/k3/functional.keras")
>>> [(f.code, f.layer) for f in report.findings]
[('lambda-layer', 'double')]

Problems are values (:class:`Finding`), never exceptions: a file that cannot be read is an
``unreadable`` finding. Structure checks read no weight values; numeric checks read each
stored array once. Codes, severities and thresholds are documented in ``docs/audit.md``.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import h5py

from . import _audit_config, _audit_numeric, api, remote
from ._audit_numeric import EXTREME_MAGNITUDE, SATURATING_BIAS, SPECTRAL_NORM_LIMIT
from ._finding import SEVERITIES, Finding, severity_rank
from .errors import KerasWeightsError, LayoutError, UnsafeContentError
from .formats import _hdf5, legacy_h5, sniff
from .formats._json import load_json
from .formats._zip import ZipArchive
from .limits import DEFAULT_LIMITS, Limits
from .model import Model

__all__ = [
    "CHECKS",
    "EXTREME_MAGNITUDE",
    "SATURATING_BIAS",
    "SEVERITIES",
    "SPECTRAL_NORM_LIMIT",
    "Check",
    "FileReport",
    "Finding",
    "audit_file",
    "audit_paths",
    "enabled_codes",
    "iter_audit",
    "iter_model_files",
    "sarif_report",
    "severity_rank",
]


@dataclass(frozen=True)
class Check:
    """One audit check: its stable code, usual severity and what it looks for."""

    code: str
    severity: str
    summary: str
    reads_values: bool = False


CHECKS: dict[str, Check] = {
    c.code: c
    for c in (
        Check("unreadable", "error", "not a Keras model file, or truncated or corrupt"),
        Check("lambda-layer", "error", "a Lambda layer anywhere in the model, with or without Python bytecode"),
        Check("unsafe-config", "error", "config entries that make Keras import, call or read outside code or files"),
        Check("pickled-weights", "error", "a .keras archive whose weights are a pickled model.weights.npz"),
        Check(
            "external-link", "error", "HDF5 external links, external storage or virtual datasets (soft links: warning)"
        ),
        Check("non-finite", "error", "NaN or Inf in a weight", True),
        Check("custom-layer", "warning", "a layer class Keras does not ship"),
        Check("shape-mismatch", "error", "stored weights that do not fit the layer config"),
        Check("all-zero", "warning", "a matrix of zeros (info for biases)", True),
        Check("dead-units", "warning", "units or inputs whose weights are all zero", True),
        Check("extreme-magnitude", "warning", f"weights beyond ±{EXTREME_MAGNITUDE:g}", True),
        Check("saturating-gate-bias", "warning", f"LSTM/GRU sigmoid-gate biases beyond ±{SATURATING_BIAS:g}", True),
        Check(
            "large-spectral-norm", "info", f"recurrent matrices with spectral norm above {SPECTRAL_NORM_LIMIT:g}", True
        ),
        Check("optimizer-state", "info", "the file carries optimizer state"),
    )
}
"""Every check by code, in report order. Codes are stable; new checks get new codes."""

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras", ".weights.json")  # .weights.h5 ends in .h5
NPZ_MEMBER = "model.weights.npz"
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})  # git-lfs copies live in .git
_SHARD = re.compile(r"(.+)_\d{5}\.weights\.h5")


@dataclass
class FileReport:
    """The audit of one file: what it is and what was found, worst first."""

    path: str
    format: str | None = None
    keras_version: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def worst(self) -> str | None:
        """The highest severity found, or ``None`` when nothing was."""
        return max((f.severity for f in self.findings), key=severity_rank, default=None)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "keras_version": self.keras_version,
            "findings": [f.to_dict() for f in self.findings],
        }


def enabled_codes(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> frozenset[str]:
    """The codes to run: ``select`` (default: all) minus ``ignore``. Unknown codes raise ValueError."""
    chosen = list(select) if select is not None else list(CHECKS)
    dropped = list(ignore or ())
    unknown = [c for c in (*chosen, *dropped) if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check code {unknown[0]!r}; valid codes: {', '.join(CHECKS)}")
    return frozenset(chosen) - frozenset(dropped)


# -- one file -------------------------------------------------------------------------------------


@dataclass
class _Facts:
    """What the structure checks look at, from an open model or salvaged from a refused file."""

    format: str | None = None
    keras_version: str | None = None
    config: dict[str, Any] | None = None
    training_config: dict[str, Any] | None = None
    members: list[str] = field(default_factory=list)
    external_links: list[str] = field(default_factory=list)
    optimizer_bytes: int = 0


def audit_file(
    path: str | os.PathLike[str],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> FileReport:
    """Audit one model file, directory or URL. Never raises for anything in the file.

    ``select``/``ignore`` are check codes (see :data:`CHECKS`); an unknown code is a
    ValueError. Findings come worst first, then in check order.
    """
    codes = enabled_codes(select, ignore)
    source = os.fspath(path)
    report = FileReport(path=source)
    try:
        model = api.open(source, limits=limits)
    except Exception as exc:  # noqa: BLE001 - any failure to read is a finding
        problem = (
            exc.problem if isinstance(exc, KerasWeightsError) else " ".join(f"{type(exc).__name__}: {exc}".split())
        )
        facts = _salvage(source, limits)
        findings = _fact_findings(facts, codes) if facts else []
        explained = isinstance(exc, UnsafeContentError) and any(
            f.code in ("pickled-weights", "external-link") for f in findings
        )
        if not explained:
            findings.insert(0, Finding("unreadable", "error", problem))
        if facts:
            report.format, report.keras_version = facts.format, facts.keras_version
    else:
        with model:
            facts = _Facts(
                model.format,
                model.keras_version,
                model.config,
                model.training_config,
                model.members,
                model.external_links,
                model.optimizer_bytes,
            )
            report.format, report.keras_version = model.format, model.keras_version
            findings = _fact_findings(facts, codes, model) + _model_findings(model, facts, codes)
    order = list(CHECKS)
    kept = [f for f in findings if f.code in codes]
    report.findings = sorted(kept, key=lambda f: (-severity_rank(f.severity), order.index(f.code)))
    return report


def _guarded(code: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one check; a bug or odd file in it becomes a finding instead of stopping the scan."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return [Finding("unreadable", "error", f"the {code} check could not finish ({reason})")]


def _fact_findings(facts: _Facts, codes: frozenset[str], model: Model | None = None) -> list[Finding]:
    """Checks on the file's structure and config: no weight values are read."""
    out: list[Finding] = []
    if NPZ_MEMBER in facts.members:
        out.append(
            Finding(
                "pickled-weights",
                "error",
                f"weights are stored as {NPZ_MEMBER}, a pickle: Keras 3.0 to 3.8 load it with allow_pickle=True, "
                "which runs code (never unpickled here)",
            )
        )
    if "external-link" in codes:
        out += _guarded("external-link", lambda: _link_findings(facts.external_links, model))
    if codes & {"lambda-layer", "unsafe-config", "custom-layer"}:
        out += _guarded("config", lambda: _config_findings(facts, codes))
    if facts.optimizer_bytes:
        out.append(
            Finding("optimizer-state", "info", f"the file carries optimizer state ({facts.optimizer_bytes:,} bytes)")
        )
    return out


def _config_findings(facts: _Facts, codes: frozenset[str]) -> list[Finding]:
    view = _audit_config.ConfigView.of(facts.config)  # walked once for the three checks
    out = []
    if "lambda-layer" in codes:
        out += _guarded("lambda-layer", lambda: _audit_config.lambda_findings(view, facts.keras_version, facts.format))
    if "unsafe-config" in codes:
        training = _audit_config.ConfigView.of(facts.training_config, layers=False)
        out += _guarded("unsafe-config", lambda: _audit_config.unsafe_findings(view, training))
    if "custom-layer" in codes:
        out += _guarded("custom-layer", lambda: _audit_config.custom_findings(view))
    return out


def _link_findings(links: list[str], model: Model | None) -> list[Finding]:
    owners = {w.array.key: w.layer_path for w in model.weights()} if model is not None else {}
    out = []
    for text in links:
        severity = "warning" if " is a soft link to " in text else "error"
        key = text.split(" ", 1)[0].lstrip("/")
        out.append(Finding("external-link", severity, f"{text} (never followed)", owners.get(key)))
    return out


def _model_findings(model: Model, facts: _Facts, codes: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    if "shape-mismatch" in codes:
        out += _guarded("shape-mismatch", lambda: _shape_findings(model))
    numeric = codes & _audit_numeric.NUMERIC_CODES
    if numeric:
        skip = {text.split(" ", 1)[0].lstrip("/") for text in facts.external_links}
        out += _guarded("numeric", lambda: _audit_numeric.numeric_findings(model, numeric, skip))
    return out


def _shape_findings(model: Model) -> list[Finding]:
    out = []
    for layer in model.walk():
        if layer.inferred:  # no config to disagree with: its class and config are guesses
            if model.has_config and layer.weights:
                out.append(
                    Finding(
                        "shape-mismatch",
                        "error",
                        f"stored weights of {layer.path!r} belong to no layer of the model config",
                        layer.path,
                    )
                )
            continue
        problems = list(layer.problems)
        if not problems and layer.weights:
            try:
                layer.matrices()  # shapes only: no values are read
            except LayoutError as exc:
                problems.append(exc.problem)
        out += [Finding("shape-mismatch", "error", p, layer.path) for p in problems]
    return out


# -- what is left to check when kerasweights refuses a file ------------------------------------------


def _salvage(source: str, limits: Limits) -> _Facts | None:
    """Member list, links and config of a file that did not open (pickled weights, links...)."""
    try:
        if not remote.is_url(source) and os.path.isdir(source):
            return _salvage_dir(Path(source), limits)
        handle = remote.open_url(source) if remote.is_url(source) else open(source, "rb")  # noqa: SIM115
        with handle:
            kind = sniff(handle)
            if kind == "zip":
                return _salvage_zip(handle, limits)
            if kind == "hdf5":
                return _salvage_h5(handle, limits)
    except Exception:  # noqa: BLE001 - salvage is best effort; the unreadable finding stands
        return None
    return None


def _salvage_zip(handle: Any, limits: Limits) -> _Facts:
    archive = ZipArchive(handle, limits)
    try:
        facts = _Facts(format="keras-zip", members=archive.names())
        if "config.json" in facts.members:
            facts.config = load_json(archive.read_bytes("config.json", limits.max_json_bytes), "config.json", limits)
        if "metadata.json" in facts.members:
            facts.keras_version = _version_of(
                load_json(archive.read_bytes("metadata.json", limits.max_json_bytes), "metadata.json", limits)
            )
        return facts
    finally:
        archive.close()


def _salvage_dir(path: Path, limits: Limits) -> _Facts:
    facts = _Facts(format="keras-dir", members=sorted(p.name for p in path.iterdir()))
    for name in ("config.json", "metadata.json"):
        if (path / name).is_file():
            with open(path / name, "rb") as f:
                document = load_json(f.read(limits.max_json_bytes + 1), name, limits)
            if name == "config.json":
                facts.config = document
            else:
                facts.keras_version = _version_of(document)
    return facts


def _salvage_h5(handle: Any, limits: Limits) -> _Facts:
    with _hdf5.open_h5(handle) as h5:
        facts = _Facts(external_links=_hdf5.links_outside(h5))
        config = _hdf5.attr_str(h5, "model_config")
        if config is not None:
            facts.config = load_json(config, "model_config attribute", limits)
        facts.format = "h5-full" if config is not None else "h5-weights" if legacy_h5.is_legacy(h5) else "weights-h5"
        weights = _hdf5.get(h5, "model_weights")
        facts.keras_version = _hdf5.attr_str(h5, "keras_version") or (
            _hdf5.attr_str(weights, "keras_version") if isinstance(weights, h5py.Group) else None
        )
        return facts


def _version_of(metadata: Any) -> str | None:
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return str(version) if version is not None else None


# -- many files --------------------------------------------------------------------------------------


def iter_model_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The model files named by ``paths``, sorted, each once.

    Directories are walked recursively for ``.h5``, ``.hdf5``, ``.keras``, ``.weights.h5``,
    ``.weights.json`` and any other file that is HDF5, or a zip with a ``config.json``
    member, by its content; version-control folders are skipped; a ``save(zipped=False)``
    folder counts as one model, and shards listed by a ``.weights.json`` beside them are not
    repeated. Files and URLs named directly are always kept (a missing one becomes an
    ``unreadable`` finding).
    """
    found: set[str] = set()
    for item in paths:
        path = os.fspath(item)
        if remote.is_url(path) or not os.path.isdir(path) or _is_keras_dir(path):
            found.add(path)
        else:
            found.update(_walk(path))
    return sorted(found)


def _is_keras_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json")) and any(
        os.path.exists(os.path.join(path, m)) for m in ("model.weights.h5", "variables.h5", NPZ_MEMBER)
    )


def _walk(root: str) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        models = [d for d in dirs if _is_keras_dir(os.path.join(folder, d))]
        yield from (os.path.join(folder, d) for d in models)
        dirs[:] = [d for d in dirs if d not in models and d not in _SKIP_DIRS]
        names = set(files)
        for name in files:
            shard = _SHARD.fullmatch(name)
            if shard and f"{shard.group(1)}.weights.json" in names:
                continue  # read through its index
            full = os.path.join(folder, name)
            if name.lower().endswith(MODEL_SUFFIXES) or _looks_like_model(full):
                yield full


def _looks_like_model(path: str) -> bool:
    """HDF5 (signature at 0 or after a 512/1024/2048-byte user block), or a zip holding config.json.

    Every Keras archive has ``config.json``; other zips (``.npz`` arrays, documents, wheels)
    are not model files and would only add ``unreadable`` noise.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(2056)
            if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                with zipfile.ZipFile(f) as archive:
                    return "config.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return any(head[o : o + 8] == _hdf5.HDF5_SIGNATURE for o in (0, 512, 1024, 2048))


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def iter_audit(
    files: Iterable[str],
    *,
    jobs: int | None = None,
    scheduler: Any = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[FileReport]:
    """Audit ``files`` (as given, no walking) and yield their reports in the same order.

    ``jobs``: worker processes (``None``/0: every CPU; 1: in this process). ``scheduler``: a
    Dask scheduler address or ``distributed.Client`` (needs ``kerasweights[dask]``); the
    workers must see the same paths or URLs.
    """
    files = list(files)
    select = list(select) if select is not None else None
    ignore = list(ignore or ())
    enabled_codes(select, ignore)  # fail on unknown codes before starting any worker
    task = partial(audit_file, select=select, ignore=ignore, limits=limits)
    if scheduler is not None:
        yield from _on_dask(files, task, scheduler)
        return
    workers = min(jobs or default_jobs(), len(files))
    if workers <= 1:
        yield from map(task, files)
        return
    chunk = max(1, min(16, len(files) // (workers * 8)))
    done = 0
    try:
        with ProcessPoolExecutor(workers) as pool:
            for report in pool.map(task, files, chunksize=chunk):
                done += 1
                yield report
    except BrokenProcessPool:  # a file crashed a worker (HDF5 can, on crafted input): find it alone
        for path in files[done:]:
            yield _isolated(task, path)


def _isolated(task: Callable[[str], FileReport], path: str) -> FileReport:
    """Audit one file in a fresh process; a crash there is that file's finding."""
    try:
        with ProcessPoolExecutor(1) as pool:
            return pool.submit(task, path).result()
    except BrokenProcessPool:
        return FileReport(
            path, findings=[Finding("unreadable", "error", "reading the file crashed the audit worker process")]
        )


def _on_dask(files: list[str], task: Callable[[str], FileReport], scheduler: Any) -> Iterator[FileReport]:
    from ._optional import require

    distributed = require("distributed", "dask")
    try:
        client = scheduler if isinstance(scheduler, distributed.Client) else distributed.Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        raise KerasWeightsError(
            f"cannot reach the Dask scheduler {scheduler!r} ({type(exc).__name__}: {exc})"
        ) from None
    try:
        futures = client.map(task, files, pure=False)
        for future in futures:
            yield future.result()
    finally:
        if client is not scheduler:
            client.close()


def audit_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    jobs: int | None = 1,
    scheduler: Any = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[FileReport]:
    """Audit every model file under ``paths`` (see :func:`iter_model_files`), sorted by path."""
    files = iter_model_files(paths)
    return list(iter_audit(files, jobs=jobs, scheduler=scheduler, select=select, ignore=ignore, limits=limits))


# -- SARIF ---------------------------------------------------------------------------------------------

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _artifact_uri(path: str) -> str:
    if remote.is_url(path):
        return path
    if os.path.isabs(path):
        return Path(path).as_uri()
    return quote(Path(path).as_posix())


def sarif_report(reports: Iterable[FileReport], version: str = "") -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``reports`` for code-scanning dashboards (one run, one rule per check)."""
    order = list(CHECKS)
    rules = [
        {
            "id": check.code,
            "name": "".join(part.title() for part in check.code.split("-")),
            "shortDescription": {"text": check.summary},
            "defaultConfiguration": {"level": _SARIF_LEVEL[check.severity]},
        }
        for check in CHECKS.values()
    ]
    results = []
    for report in reports:
        for finding in report.findings:
            location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": _artifact_uri(report.path)}}}
            if finding.layer:
                location["logicalLocations"] = [
                    {
                        "name": finding.layer.rsplit("/", 1)[-1],
                        "fullyQualifiedName": finding.layer,
                        "kind": "member",
                    }
                ]
            results.append(
                {
                    "ruleId": finding.code,
                    "ruleIndex": order.index(finding.code),
                    "level": _SARIF_LEVEL[finding.severity],
                    "message": {"text": finding.message},
                    "locations": [location],
                }
            )
    driver = {"name": "kerasweights", "rules": rules}
    if version:
        driver["version"] = version
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
