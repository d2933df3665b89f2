"""Many files: a process pool, or a Dask cluster, in input order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from ..errors import KerasWeightsError
from ..formats import remote
from ..limits import DEFAULT_LIMITS, Limits
from .checks import FileReport, enabled_codes
from .discovery import iter_model_files
from .finding import Finding
from .scan import audit_file


def absolute(path: str) -> str:
    """A local path made absolute (URLs as they are), for workers that run elsewhere."""
    return path if remote.is_url(path) else os.path.abspath(path)


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
    config: str | os.PathLike[str] | None = None,
) -> Iterator[FileReport]:
    """Audit ``files`` (as given, no walking) and yield their reports in the same order.

    ``jobs``: worker processes (``None``/0: every CPU; 1: in this process). ``scheduler``: a
    Dask scheduler address or ``distributed.Client`` (needs ``kerasweights[dask]``); the
    workers must see the same paths (local paths are sent absolute, reports keep the names
    given) or URLs. ``config``: a model config JSON for weights-only files.
    """
    files = list(files)
    select = list(select) if select is not None else None
    ignore = list(ignore or ())
    enabled_codes(select, ignore)  # fail on unknown codes before starting any worker
    if scheduler is not None:
        # Workers run in their own directories: a relative path would name another file there.
        config = absolute(os.fspath(config)) if config is not None else None
        task = partial(audit_file, select=select, ignore=ignore, limits=limits, config=config)
        yield from _on_dask(files, task, scheduler)
        return
    task = partial(audit_file, select=select, ignore=ignore, limits=limits, config=config)
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
    from .._optional import require

    distributed = require("distributed", "dask")
    try:
        client = scheduler if isinstance(scheduler, distributed.Client) else distributed.Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        raise KerasWeightsError(
            f"cannot reach the Dask scheduler {scheduler!r} ({type(exc).__name__}: {exc})"
        ) from None
    try:
        futures = client.map(task, [absolute(f) for f in files], pure=False)
        for given, future in zip(files, futures):
            report: FileReport = future.result()
            report.path = given  # reports name files as they were given
            yield report
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
    config: str | os.PathLike[str] | None = None,
) -> list[FileReport]:
    """Audit every model file under ``paths`` (see :func:`iter_model_files`), sorted by path."""
    files = iter_model_files(paths)
    return list(
        iter_audit(files, jobs=jobs, scheduler=scheduler, select=select, ignore=ignore, limits=limits, config=config)
    )
