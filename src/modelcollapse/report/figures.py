"""Drawing a report's figures: each figure once per change of what it shows, in parallel with
``jobs`` worker processes.

A figure is a ``FigureJob``: a module-level function that returns a matplotlib ``Figure`` from
small, picklable arguments (aggregates, not the results table), and the PNG path.  Its *digest*
is a SHA-256 of the function's name, the versions of modelcollapse and matplotlib, and its
arguments (DataFrames by ``pandas.util.hash_pandas_object``, arrays by their bytes); it is
written into the PNG's ``Description`` text chunk.  ``draw_figures`` skips a figure whose PNG
already carries its digest -- rewriting a report (``modelcollapse report``, a resumed finish)
redraws only what changed -- and draws the rest in this process (``jobs=1``) or in a pool of
``min(jobs, figures)`` processes (the engine's workers: they ignore Ctrl-C and die with this
process).  The PNG bytes do not depend on ``jobs``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FigureJob", "draw_figures", "digest", "figure_workers", "png_stamp",
           "submit_figures"]

#: the PNG text chunk holding a figure's digest
STAMP_KEY = "Description"
STAMP_PREFIX = "modelcollapse-figure-sha256:"


@dataclass(frozen=True)
class FigureJob:
    """``draw(*args, **kwargs) -> matplotlib Figure``, written to ``path`` as a PNG."""

    path: Path
    draw: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def _feed(h, value) -> None:
    """Hash ``value`` into ``h`` by content (type-tagged; dict order kept as given)."""
    if isinstance(value, pd.DataFrame):
        h.update(b"frame" + repr((list(map(str, value.columns)),
                                  [str(t) for t in value.dtypes], value.shape)).encode())
        h.update(pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
    elif isinstance(value, np.ndarray):
        h.update(b"array" + repr((value.dtype.str, value.shape)).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        h.update(b"dict%d" % len(value))
        for key, item in value.items():
            _feed(h, key)
            _feed(h, item)
    elif isinstance(value, (list, tuple)):
        h.update(b"seq%d" % len(value))
        for item in value:
            _feed(h, item)
    else:
        h.update(b"repr" + repr(value).encode())


@lru_cache(maxsize=None)
def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def digest(job: FigureJob) -> str:
    """The hex SHA-256 of what ``job`` draws (function, versions, arguments)."""
    h = hashlib.sha256()
    _feed(h, (f"{job.draw.__module__}.{job.draw.__qualname__}", _version("modelcollapse"),
              _version("matplotlib"), job.args, job.kwargs))
    return h.hexdigest()


def png_stamp(path: Path) -> str | None:
    """The digest a PNG written by ``draw_figures`` carries (None: no such PNG or stamp).
    Reads only the chunks before the image data."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                size, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind in (b"IDAT", b"IEND") or size > 1 << 20:
                    return None
                body = f.read(size + 4)[:size]  # + CRC
                if kind == b"tEXt" and b"\0" in body:
                    key, text = body.split(b"\0", 1)
                    if key.decode("latin-1") == STAMP_KEY:
                        text = text.decode("latin-1")
                        return text[len(STAMP_PREFIX):] if text.startswith(STAMP_PREFIX) \
                            else None
    except OSError:
        return None


def _draw(job: FigureJob, stamp: str) -> Path:
    from .plots import save_figure

    return save_figure(job.draw(*job.args, **job.kwargs), job.path,
                       stamp=STAMP_PREFIX + stamp)


def _warm() -> None:
    """Import what drawing needs (matplotlib's Figure and Agg canvas: ~0.25 s)."""
    from . import plots  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401
    from matplotlib import figure  # noqa: F401


@contextmanager
def figure_workers(workers: int = 1) -> Iterator[object | None]:
    """Processes that will draw a report's figures (``draw_figures(pool=...)``), started now
    and importing matplotlib at once, so that the import runs beside the caller's work (the
    chains, the analysis) instead of after it (``benchmarks/bench_end_to_end.py`` measures
    the whole command).

    Yields None -- draw in this process -- when this process has already imported matplotlib
    (a notebook): there is nothing to hide.  The workers are the engine's (``worker_pool``:
    they ignore Ctrl-C and die with this process); leaving the block waits for them, an
    exception kills them.
    """
    if "matplotlib.figure" in sys.modules:
        yield None
        return
    from ..engine.executors import worker_pool

    with worker_pool(max(1, int(workers))) as pool:
        for _ in range(max(1, int(workers))):
            pool.submit(_warm)
        yield pool


def submit_figures(jobs: Sequence[FigureJob], pool) -> list:
    """Start drawing ``jobs`` (those whose PNG does not carry their digest) in ``pool``
    without waiting; the futures.  ``draw_figures`` on the same jobs after they are done finds
    every PNG stamped and draws nothing."""
    futures = []
    for job in jobs:
        stamp = digest(job)
        if png_stamp(Path(job.path)) != stamp:
            Path(job.path).parent.mkdir(parents=True, exist_ok=True)
            futures.append(pool.submit(_draw, job, stamp))
    return futures


def draw_figures(jobs: Sequence[FigureJob], *, workers: int = 1,
                 progress: Callable[[int, int], None] | None = None,
                 pool=None) -> list[Path]:
    """Write every job's PNG (skipping those already stamped with their digest); return the
    paths in the order of ``jobs``.  ``progress(done, total)`` is called before the first and
    after each figure.  ``workers`` > 1 draws in that many processes (at most one per figure
    to draw); ``pool`` (from ``figure_workers``) draws in those processes instead.

    Raises whatever a drawing function raises (in a worker: re-raised here); ``KeyboardInterrupt``
    stops the workers at once.  A PNG is written atomically: an interrupted report leaves each
    figure whole or absent.
    """
    stamps = [digest(job) for job in jobs]
    todo = [k for k, (job, stamp) in enumerate(zip(jobs, stamps))
            if png_stamp(Path(job.path)) != stamp]
    total, done = len(jobs), len(jobs) - len(todo)
    if progress is not None:
        progress(done, total)
    for job in jobs:
        Path(job.path).parent.mkdir(parents=True, exist_ok=True)
    if pool is not None and todo:
        _collect([pool.submit(_draw, jobs[k], stamps[k]) for k in todo], done, total,
                 progress)
    elif workers <= 1 or len(todo) <= 1:
        for k in todo:
            _draw(jobs[k], stamps[k])
            done += 1
            if progress is not None:
                progress(done, total)
    else:
        from ..engine.executors import worker_pool

        with worker_pool(min(workers, len(todo))) as own:
            _collect([own.submit(_draw, jobs[k], stamps[k]) for k in todo], done, total,
                     progress)
    return [Path(job.path) for job in jobs]


def _collect(futures, done: int, total: int, progress) -> None:
    """Wait for the figures' ``futures`` (re-raising a failure after cancelling the rest; a
    Ctrl-C taken between waits: ``engine.executors.deferred_interrupt``)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from ..engine.executors import POLL_S, deferred_interrupt

    pending = set(futures)
    try:
        with deferred_interrupt() as check:
            while pending:
                finished, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                check()
                for future in finished:
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(done, total)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
