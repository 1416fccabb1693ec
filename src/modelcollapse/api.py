"""The Python API: run a study or a sweep into a run directory, and open a finished one.

>>> import modelcollapse as mc
>>> run = mc.run("kazdan2024-gaussian", overrides={"n_seeds": 20})   # doctest: +SKIP
>>> run.summary, run.profile, run.report()                           # doctest: +SKIP
>>> mc.open_run("runs/kazdan2024-gaussian")                          # doctest: +SKIP

A run directory (``modelcollapse run`` writes the same) holds ``results.parquet`` (the long
results table, ``results.store``), ``summary.csv`` (``report.summary.final_vs_initial``),
``profile.csv`` (``profile.collapse_profile``), ``report.html`` and ``plots/`` (unless
``plots=False``) and ``manifest.json`` (``results.manifest``: the resolved study, versions,
provenance, and the SHA-256 of every other file, sealed last).  Finished results are never
overwritten; while it runs, the directory is locked and checkpointed, so an interrupted run
continues with ``resume=True`` and gives the uninterrupted results.

A run directory is always in one of the states of ``results.store`` (``run_state``)::

    empty --start--> interrupted (.checkpoints/run.json; locked while computing)
          --results.parquet, manifest.json "sealed": false--> unsealed
          --.checkpoints removed, summary.csv, profile.csv, report, seal--> finished

Every file is written atomically, so a kill at any point leaves one of these states, and
``resume=True`` completes it: interrupted -> computes what the checkpoints lack (finished units
are loaded) and rewrites results.parquet byte for byte; unsealed -> checks results.parquet
against the manifest, rewrites summary, profile and report from it, removes the checkpoints
and seals; finished -> nothing to do (the returned ``Run`` says so: ``Run.note``).  A run
without ``resume`` into an interrupted or unsealed directory is refused with the hint to
resume.  Each run or resume first removes the stale ``.*.tmp`` files a kill left.

Errors are exceptions with one-line messages naming the field: ``config.StudyError`` (a bad
study), ``ValueError`` (a bad argument or a failed run), ``RunError`` (a run directory that
cannot be used or written: read-only, disk full -- with the resume hint --, modified files, a
missing optional dependency); ``RunInterrupted`` (a ``KeyboardInterrupt``) says where the
progress is.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

if TYPE_CHECKING:
    import pandas as pd

    from .config import Study

__all__ = ["run", "sweep", "open_run", "Run", "RunError", "RunInterrupted", "Progress",
           "load"]

SUMMARY_FILE, PROFILE_FILE, REPORT_FILE = "summary.csv", "profile.csv", "report.html"


class RunError(ValueError):
    """A run directory cannot be used (finished results there, another run writing there, not
    a run directory...); the message is one line."""


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C); ``directory`` holds its checkpoints: the same call with
    ``resume=True`` continues it."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        super().__init__(f"interrupted; {directory}/.checkpoints holds the progress: call again "
                         f"with resume=True and out={str(directory)!r} to continue")


@dataclass(frozen=True)
class Progress:
    """What a ``progress`` callback receives: model-fitting iterations done of all units
    (``iterations`` of ``total_iterations``) and, in a sweep, units = (point, task, paradigm)
    done (``units`` of ``total_units``; 0 of 0 in a run).  After the last iteration, ``stage``
    names what the run is finishing -- ``"analysis"`` (summary and collapse profile, 0 then 1
    of 1), ``"figures"`` (``done`` of ``total`` PNGs drawn or found unchanged), ``"report"``
    (0 then 1 of 1) -- and is ``""`` while iterations run."""

    name: str
    iterations: int
    total_iterations: int
    units: int = 0
    total_units: int = 0
    stage: str = ""
    done: int = 0
    total: int = 0


# -- studies and options ------------------------------------------------------------------

def _override_strings(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):  # {"n_seeds": 5} -> "n_seeds=5" (JSON is YAML)
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return [str(item) for item in overrides]


def load(study: "str | os.PathLike | dict | Study | None",
         overrides: Mapping[str, Any] | Sequence[str] | None = None) -> "Study":
    """The validated study: a preset name, a study YAML path, a dict of study fields, or a
    ``Study``; ``overrides`` as ``{"field.sub": value}`` or ``["field.sub=value", ...]`` (as
    ``--set``).  None is the ``default`` preset.

    Raises
    ------
    StudyError
        One line naming the field and the allowed values.
    """
    from .config import Study, StudyError, load_study

    sets = _override_strings(overrides)
    if isinstance(study, Study):
        if not sets:
            return study
        study = study.resolved()
    if isinstance(study, os.PathLike):
        study = os.fspath(study)
    if study is not None and not isinstance(study, (str, dict)):
        raise StudyError(f"study: a {type(study).__name__} is not allowed; allowed: a preset "
                         "name, a study file path, a dict of study fields, or a Study")
    return load_study(study, sets)


def _check(jobs: int, executor: Any, address: str | None) -> None:
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs (--jobs): {jobs!r} is not allowed; allowed: an integer >= 1")
    if isinstance(executor, str) or executor is None:
        if executor not in (None, "local", "ray"):
            raise ValueError(f"executor (--executor): {executor!r} is not allowed; allowed: "
                             "local, ray")
        if address is not None and executor != "ray":
            raise ValueError("address (--address): only with executor 'ray' (--executor ray)")
        if executor == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError("executor ray (--executor ray): Ray is not installed; pip install "
                             "'modelcollapse[ray]'")


def _executor(executor: Any, jobs: int, address: str | None):
    """An engine executor from "local" / "ray" / None, or the executor object given."""
    if executor is None or isinstance(executor, str):
        from .engine.executors import make_executor

        return make_executor(executor or "local", jobs=jobs, address=address)
    return executor


def _memory(studies, max_memory, jobs: int, block_size: int | None = None) -> None:
    """Refuse (``MemoryBudgetError``, nothing written) a run estimated to exceed the budget
    (run in blocks of ``block_size`` replicates when given)."""
    from .engine.budget import check

    check(studies, max_memory=max_memory, jobs=jobs if isinstance(jobs, int) else 1,
          block_size=block_size)


#: the memory budget (``engine.budget.block_size_for``: the process itself, ~200 MiB, included)
#: that sizes the blocks of a streamed run (``_block_size``); the Gaussian target study of issue
#: 15 (d = 1, n = 10, 100 iterations) gets blocks of ~10,000 chains and peaks at ~0.5 GB
STREAM_BLOCK_BYTES = 2**30
#: seconds between checkpoints of a streamed unit's merged state (``sink.StreamSink``)
STREAM_SAVE_SECONDS = 10.0


def _block_size(spec: "Study") -> int | None:
    """Replicates per block when ``spec`` has more seeds than it keeps rows for (None: the
    whole unit at once, as always).  A function of the study only -- not of this machine's
    memory or ``jobs`` -- because the aggregates' last bits depend on how chains are split
    into blocks (``profile.streaming``): the same study gives the same bytes anywhere."""
    if spec.n_seeds <= spec.keep_seeds:
        return None
    from .engine.budget import block_size_for

    return block_size_for(spec, STREAM_BLOCK_BYTES, jobs=1)


def _n_blocks(spec: "Study", block_size: int | None) -> int:
    return 1 if block_size is None else -(-spec.n_seeds // block_size)


def _stream(spec: "Study", block_size: int, executor, on_iteration, checkpoints,
            directory: Path):
    """Run ``spec`` in blocks of ``block_size`` replicates folded into aggregates
    (``sink.StreamSink``); write ``aggregates.npz`` and ``curves.csv``; return the kept
    replicates' results (``run_study``'s frame, with its attrs) and the manifest's
    ``streamed`` entry."""
    from threadpoolctl import threadpool_limits

    from .engine.study import run_units
    from .profile.streaming import curves_streamed
    from .results.store import (AGGREGATES_FILE, COLUMNS, CURVES_FILE, atomic_write,
                                concat_frames, write_arrays)
    from .sink import StreamSink, fold_block

    keys = [(0, i, j) for i in range(len(spec.tasks)) for j in range(len(spec.paradigms))]
    sink = StreamSink(checkpoints, save_every=STREAM_SAVE_SECONDS)
    start = sink.resume(keys)
    with threadpool_limits(limits=1, user_api="blas"):  # the same bits on any machine
        run_units([spec], executor=executor, checkpoints=checkpoints,
                  on_iteration=on_iteration, block_size=block_size, on_block=sink,
                  start_blocks=start, reduce_block=fold_block,
                  ship_checkpoints=getattr(executor, "shares_files", True))
        arrays, entries = sink.arrays(keys)
        atomic_write(directory / AGGREGATES_FILE, lambda p: write_arrays(p, arrays))
        curves = curves_streamed(sink.units(keys))
    atomic_write(directory / CURVES_FILE, lambda p: curves.to_csv(p, index=False))
    kept = [r for r in sink.results(keys) if r is not None]
    frame = concat_frames([r.frame() for r in kept])[COLUMNS]
    frame.attrs["profile_specs"] = {e["labels"]["task"]: e["profile_spec"] for e in entries}
    frame.attrs["provenance"] = {e["labels"]["task"]: e["provenance"] for e in entries}
    streamed = {"n_seeds": spec.n_seeds, "keep_seeds": spec.keep_seeds,
                "block_size": block_size, "units": [
                    {"key": e["key"], "labels": e["labels"], "aggregate": e["aggregate"]}
                    for e in entries]}
    return frame, streamed


# -- the run directory ------------------------------------------------------------------------

def _target(out: Path | None, name: str, resume: bool) -> Path:
    """The run directory: ``out``; else runs/<name> to resume, and for a new run the first of
    runs/<name>, runs/<name>-2, ... that holds no finished (or damaged) run."""
    from .results.store import DAMAGED, FINISHED, run_state

    if out is None:
        out = Path("runs") / name
        k = 1
        while not resume and run_state(out) in (FINISHED, DAMAGED):
            k += 1
            out = Path("runs") / f"{name}-{k}"
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: exists and is not a directory; choose a directory")
    return out


def _recorded_key(manifest: dict, kind: str) -> str | None:
    return manifest.get("study_hash" if kind == "run" else "sweep_hash")


def _admit(directory: Path, state: str, kind: str, digest: str, resume: bool) -> None:
    """Refuse (``RunError``, one line) a directory this call must not write: finished results
    (unless resuming them: complete), a stranded run without ``resume``, another study's run,
    a damaged directory."""
    from .results.store import DAMAGED, FINISHED, UNSEALED, ManifestError, load_manifest

    what = "study" if kind == "run" else "sweep"
    if state == DAMAGED:
        try:
            load_manifest(directory)
        except ManifestError as exc:
            raise RunError(str(exc)) from None
        except FileNotFoundError:
            pass
        raise RunError(f"--out {directory}: holds results.parquet but no manifest.json (not "
                       "left by a modelcollapse run, or its manifest was removed); choose "
                       "another --out")
    if state not in (FINISHED, UNSEALED):
        return
    if state == FINISHED and not resume:
        raise RunError(f"--out {directory}: already holds results (a finished run); choose "
                       "another directory (finished results are never overwritten)")
    if state == UNSEALED and not resume:
        raise RunError(f"{directory}: holds a run stopped while writing its results; complete "
                       "it with --resume (resume=True), or choose another --out")
    recorded = _recorded_key(load_manifest(directory), kind)
    if recorded != digest:
        raise RunError(f"{directory}: holds the results of a different {what} ({recorded}; "
                       f"this one: {digest}); resume with the same file and --set options, or "
                       "choose another --out")


def _checkpoints(checkpoints, resume: bool):
    """Check (resume) or start the checkpoints of a run directory (under its lock)."""
    from .results.checkpoint import CheckpointMismatch

    if checkpoints.exists():
        if not resume:
            run_dir = checkpoints.directory.parent
            raise RunError(f"{run_dir}: holds an interrupted run; continue it with --resume "
                           f"(resume=True), or choose another --out (or delete "
                           f"{run_dir}/.checkpoints to start over)")
        try:
            checkpoints.check()
        except CheckpointMismatch as exc:
            raise RunError(str(exc)) from None
    else:
        checkpoints.start()
    return checkpoints


@contextlib.contextmanager
def _run_dir(out, name: str, kind: str, digest: str, resume: bool) -> Iterator[tuple]:
    """Resolve the run directory (``out``, else runs/<name>), hold its lock, remove stale
    temporary files and admit its state (``_admit``); yield ``(directory, state)``.  An
    ``OSError`` of the body (disk full, read-only...) becomes a one-line ``RunError`` with the
    resume hint, a ``KeyboardInterrupt`` a ``RunInterrupted``."""
    from .results.store import RunLock, RunLocked, clean_temporary, run_state

    out = None if out is None else Path(out)
    directory = _target(out, name, resume)
    lock = RunLock(directory)
    try:
        lock.__enter__()
    except RunLocked as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"--out {directory}: cannot write there ({_why(exc)}); choose a "
                       "writable directory") from None
    try:
        try:
            clean_temporary(directory)
            state = run_state(directory)
            _admit(directory, state, kind, digest, resume)
            yield directory, state
        except RunInterrupted:
            raise
        except KeyboardInterrupt:
            raise RunInterrupted(directory) from None
        except OSError as exc:
            raise RunError(_os_failure(directory, exc)) from None
    finally:
        lock.__exit__(None, None, None)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


#: errors of a full disk or a file-size limit: free space (or raise the limit), then resume
NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _os_failure(directory: Path, exc: OSError) -> str:
    """One line for an ``OSError`` during a run: what, which file, and how to continue."""
    name = Path(exc.filename).name if exc.filename else ""
    if name.startswith(".") and name.endswith(".tmp"):  # atomic_write's temporary name
        name = name[1:].rsplit(".", 2)[0]
    where = f" writing {name}" if name else ""
    fix = ("free space (or raise the file-size limit)" if exc.errno in NO_SPACE
           else "fix that")
    return (f"{directory}: {_why(exc)}{where}; nothing was half-written: {fix}, then run the "
            f"same command with --resume --out {directory} (resume=True) to continue")


#: a module an optional feature needs -> the extra that installs it
EXTRAS = {"torch": "torch", "tokenizers": "text", "rdata": "text", "rdkit": "chem",
          "ray": "ray", "transformers": "llm", "peft": "llm", "gguf": "llm", "accelerate": "llm"}


def _missing_module(exc: ImportError) -> str:
    module = (exc.name or "").split(".")[0]
    if module in EXTRAS:
        return (f"{module} is not installed (needed by this study); pip install "
                f"'modelcollapse[{EXTRAS[module]}]'")
    return f"{exc} (a module this study needs; install it)"


def _computing(directory: Path, checkpoints, compute: Callable[[], "pd.DataFrame"]):
    """``compute()``; a failure (deterministic: resuming would fail the same way) removes the
    checkpoints, an interruption keeps them (``RunInterrupted``)."""
    from .config import StudyError

    try:
        return compute()
    except ImportError as exc:  # an optional dependency: resuming would fail the same way
        checkpoints.remove()
        raise RunError(_missing_module(exc)) from None
    except (ValueError, StudyError) as exc:
        if not getattr(exc, "resumable", False):  # a dead worker: finished units stay
            checkpoints.remove()
        raise
    except KeyboardInterrupt:
        raise RunInterrupted(directory) from None


def _analyse(results: "pd.DataFrame | None", manifest: dict,
             directory: Path | None = None) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(summary, collapse profile) of a run or sweep store, as its manifest says to read it: a
    streamed run's (``manifest["streamed"]``) from the aggregates of all its seeds in
    ``directory``, not from the rows it kept (``results`` is not read: None will do)."""
    from .profile import collapse_profile
    from .report.summary import final_vs_initial
    from .results.manifest import point_maps, profile_settings

    from threadpoolctl import threadpool_limits

    point_specs, point_risk = point_maps(manifest)
    if manifest.get("streamed") and directory is not None:
        from .profile.stored import analyse_stored

        return analyse_stored(directory, manifest, profile_settings(manifest))
    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: the same bits anywhere
        summary = final_vs_initial(results, manifest.get("risk_metrics") or {},
                                   point_risk=point_risk)
        profile = collapse_profile(results, manifest.get("profile_specs") or {},
                                   profile_settings(manifest), point_specs=point_specs)
    return summary, profile


def _drop_checkpoints(directory: Path) -> None:
    """Remove ``.checkpoints`` entry by entry (test hook ``.checkpoints`` after each)."""
    from .results.checkpoint import CHECKPOINT_DIR
    from .results.store import kill_point

    root = directory / CHECKPOINT_DIR
    if root.is_dir() and not root.is_symlink():
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
            kill_point(CHECKPOINT_DIR)
    shutil.rmtree(root, ignore_errors=True)


def _stages(progress: Callable[[Progress], None] | None, name: str, total: int, units: int):
    """``stage(kind, done, total)`` reporting a finishing stage to ``progress`` (a no-op
    without it); iterations (and units) show as all done."""
    if progress is None:
        return lambda *a: None
    return lambda kind, done, of: progress(Progress(name, total, total, units, units,
                                                    stage=kind, done=done, total=of))


def _complete(directory: Path, *, plots: bool, jobs: int = 1,
              progress: Callable[[Progress], None] | None = None, name: str = "",
              total: int = 0, units: int = 0, pool=None, pending=()) -> "Run":
    """Take an unsealed run directory (results.parquet + unsealed manifest) to finished: check
    the results against the manifest, drop the checkpoints, write the summary, profile and
    report (figures drawn by ``jobs`` processes, or by ``pool``: ``_figure_workers``) from the
    results on disk, and seal the
    manifest with the checksums of every file.  ``progress`` hears each stage."""
    from .results.store import (atomic_write, load_manifest, load_results, seal_run,
                                verify_run, without_attrs)

    problems = verify_run(directory)
    if problems:
        raise RunError(f"{directory}: {'; '.join(problems)}; the run was modified (run the "
                       "study again into a new --out)")
    _drop_checkpoints(directory)
    manifest = load_manifest(directory)
    stage = _stages(progress, name, total, units)
    stage("analysis", 0, 1)
    # as written: the same bytes whether resumed or not (attrs: in the manifest); a streamed
    # run is analysed from its aggregates, not its kept rows
    results = None if manifest.get("streamed") else without_attrs(load_results(directory))
    summary, profile = _analyse(results, manifest, directory)
    atomic_write(directory / SUMMARY_FILE, lambda p: summary.to_csv(p, index=False))
    atomic_write(directory / PROFILE_FILE, lambda p: profile.to_csv(p, index=False))
    stage("analysis", 1, 1)
    if plots:
        from .report.html import write_report

        # a streamed run's summary comes from its aggregates, as the report's would
        write_report(directory, profile=profile, jobs=jobs, pool=pool, pending=pending,
                     summary=summary if manifest.get("streamed") else None,
                     progress=lambda done, of: stage("figures", done, of))
        stage("report", 1, 1)
    else:  # what an interrupted finish with plots left: not this run's output
        (directory / REPORT_FILE).unlink(missing_ok=True)
        shutil.rmtree(directory / "plots", ignore_errors=True)
    seal_run(directory)
    return Run(directory, verify=False)


def _figure_workers(plots: bool, jobs: int):
    """The processes that will draw a run's figures, started (and importing matplotlib) before
    the chains run (``report.figures.figure_workers``); nothing without plots."""
    if not plots:
        return contextlib.nullcontext()
    from .report.figures import figure_workers

    return figure_workers(jobs)


def _start_figures(directory: Path, results, manifest: dict, pool) -> list:
    """Figures drawn by ``pool`` from the results in memory while ``_complete`` checks,
    reloads and analyses them (``report.html.start_figures``); nothing without a pool."""
    if pool is None:
        return []
    from .report.html import start_figures

    return start_figures(directory, results, manifest, pool)


def _finished(directory: Path) -> "Run":
    """A finished run that ``resume`` found: verified, with the note that it was complete."""
    run = Run(directory)
    run.note = f"{directory}: already complete (nothing to resume)"
    return run


# -- running ---------------------------------------------------------------------------------

def run(study: "str | os.PathLike | dict | Study | None" = None, *,
        out: str | os.PathLike | None = None,
        overrides: Mapping[str, Any] | Sequence[str] | None = None, jobs: int = 1,
        resume: bool = False, executor: Any = None, plots: bool = True,
        progress: Callable[[Progress], None] | None = None,
        max_memory: int | str | None = None, address: str | None = None) -> "Run":
    """Run a study into a run directory and return it as a ``Run``.

    Parameters
    ----------
    study : preset name, study YAML path, dict of study fields, or ``config.Study``
        None: the ``default`` preset.
    out : path, optional
        The run directory (created); default ``runs/<study name>`` (``-2``, ``-3``... when that
        holds finished results: finished results are never overwritten).
    overrides : {"field.sub": value} or ["field.sub=value", ...], optional
        Study fields to set (as ``modelcollapse run --set``).
    jobs : int >= 1
        Worker processes; the results do not depend on it.
    resume : bool
        Continue the interrupted run in ``out`` (default runs/<study name>) from its
        checkpoints, or finish one stopped while writing its results (the same study and
        overrides are required); a finished run there is returned as is (``Run.note`` says it
        was complete); nothing there: run normally.
    executor : "local" | "ray" | an engine executor, optional
        Overrides ``jobs`` when an executor object (``engine.executors``).  ``"ray"``: units
        (or a streamed run's blocks) as Ray tasks, on a local instance with ``jobs`` CPUs or
        on the cluster at ``address``; the results do not depend on it.
    plots : bool
        Write ``report.html`` and ``plots/*.png``.
    progress : callable(Progress), optional
        Called at the start and after each model-fitting iteration.
    max_memory : int (bytes) or str ("4GiB", "512MB"), optional
        Memory budget (default: 80% of physical memory): a run whose estimated peak
        (``engine.budget.estimate``) exceeds it is refused before anything is written.
    address : str, optional
        With ``executor="ray"``: the cluster to attach to (``auto``, ``HOST:6379``,
        ``ray://HOST:10001``; default ``$RAY_ADDRESS``, else a local instance).

    Raises
    ------
    StudyError
        A bad study or override (before anything is written).
    engine.budget.MemoryBudgetError
        (a ValueError) The estimated peak memory exceeds ``max_memory`` (nothing written).
    RunError
        ``out`` holds finished results (and ``resume`` is False), is a file or cannot be
        written, holds another study's run (or an unfinished run and ``resume`` is False), is
        damaged, or another process is writing there; a write failed (disk full, file too
        large: the message says to resume); an optional dependency is missing (the message
        names the extra; the checkpoints are removed).
    ValueError
        A bad argument, or the run failed (its checkpoints are removed).
    RunInterrupted
        Interrupted (Ctrl-C): the checkpoints are kept; ``resume=True`` continues.
    """
    from .config import study_hash
    from .engine import run_study
    from .results.manifest import run_manifest

    from .results.checkpoint import RunCheckpoints
    from .results.store import FINISHED, UNSEALED, write_run

    _check(jobs, executor, address)
    spec = load(study, overrides)
    block_size = _block_size(spec)
    _memory([spec], max_memory, getattr(executor, "jobs", jobs), block_size)
    total = len(spec.tasks) * len(spec.paradigms) * spec.n_iterations * _n_blocks(spec, block_size)
    digest = study_hash(spec)
    with _run_dir(out, spec.name, "run", digest, resume) as (directory, state):
        if state == FINISHED:
            return _finished(directory)
        jobs = getattr(executor, "jobs", jobs)
        pending = ()
        with _figure_workers(plots, jobs) as pool:
            if state != UNSEALED:
                checkpoints = _checkpoints(RunCheckpoints(directory, "run", digest), resume)
                on_iteration, _ = _counter(progress, spec.name, total)
                start = time.time()
                if block_size is None:
                    results = _computing(directory, checkpoints, lambda: run_study(
                        spec, executor=_executor(executor, jobs, address),
                        on_iteration=on_iteration, checkpoints=checkpoints))
                    streamed = None
                else:
                    results, streamed = _computing(directory, checkpoints, lambda: _stream(
                        spec, block_size, _executor(executor, jobs, address), on_iteration,
                        checkpoints, directory))
                manifest = run_manifest(spec.resolved(), digest, results.attrs,
                                        elapsed=time.time() - start)
                if streamed is not None:
                    manifest["streamed"] = streamed
                write_run(directory, results, manifest)
                pending = _start_figures(directory, results, manifest, pool)
            return _complete(directory, plots=plots, jobs=jobs, progress=progress,
                             name=spec.name, total=total, pool=pool, pending=pending)


def _counter(progress, name: str, total: int, total_units: int = 0):
    """(on_iteration, on_unit) engine callbacks reporting ``Progress`` to ``progress`` (None,
    None without it)."""
    if progress is None:
        return None, None
    done = [0, 0]

    def report() -> None:
        progress(Progress(name, done[0], total, done[1], total_units))

    def on_iteration(_t) -> None:
        done[0] += 1
        report()

    def on_unit(_key) -> None:
        done[1] += 1
        report()

    report()
    return on_iteration, on_unit


def sweep(file: str | os.PathLike, *, out: str | os.PathLike | None = None,
          overrides: Mapping[str, Any] | Sequence[str] | None = None, jobs: int = 1,
          executor: str = "local", address: str | None = None, resume: bool = False,
          plots: bool = True, progress: Callable[[Progress], None] | None = None,
          max_memory: int | str | None = None) -> "Run":
    """Run a sweep (a study file with ``grid:``, ``engine.sweep``) into one run directory and
    return it as a ``Run``: ``results.parquet`` with ``point`` and ``grid.<key>`` columns,
    ``summary.csv`` and ``profile.csv`` by grid point, ``report.html`` (unless ``plots`` is
    False) and the manifest (every point's study and hash).

    Parameters are those of ``run``, plus ``executor`` = "local" (``jobs`` processes) or "ray"
    (``address``: the cluster to attach to; default $RAY_ADDRESS, else a local instance with
    ``jobs`` CPUs).  ``progress`` is also called after each finished unit.

    Raises
    ------
    StudyError, RunError, ValueError, RunInterrupted
        As ``run``; a StudyError names the grid key (and value) at fault.
    """
    from .engine import load_sweep, run_sweep
    from .results.checkpoint import RunCheckpoints
    from .results.manifest import sweep_manifest
    from .results.store import FINISHED, UNSEALED, write_run

    _check(jobs, executor, address)
    sets = _override_strings(overrides)
    grid = load_sweep(os.fspath(file), sets)
    _memory(grid.points, max_memory, jobs)
    units = sum(len(s.tasks) * len(s.paradigms) for s in grid.points)
    total = sum(len(s.tasks) * len(s.paradigms) * s.n_iterations for s in grid.points)
    with _run_dir(out, grid.name, "sweep", grid.hash, resume) as (directory, state):
        if state == FINISHED:
            return _finished(directory)
        with _figure_workers(plots, jobs) as pool:
            if state != UNSEALED:
                checkpoints = _checkpoints(RunCheckpoints(directory, "sweep", grid.hash),
                                           resume)
                on_iteration, on_unit = _counter(progress, grid.name, total, units)
                start = time.time()
                results = _computing(directory, checkpoints, lambda: run_sweep(
                    grid, executor=_executor(executor, jobs, address), checkpoints=checkpoints,
                    on_iteration=on_iteration, on_unit=on_unit))
                manifest = sweep_manifest(grid, results.attrs, file=os.fspath(file),
                                          overrides=sets, executor={"kind": executor,
                                                                    "jobs": jobs,
                                                                    "address": address},
                                          elapsed=time.time() - start)
                write_run(directory, results, manifest)
            return _complete(directory, plots=plots, jobs=jobs, progress=progress,
                             name=grid.name, total=total, units=units, pool=pool)


# -- finished runs ----------------------------------------------------------------------------

def open_run(directory: str | os.PathLike) -> "Run":
    """The finished run (or sweep) in ``directory``, its files verified against the checksums
    in its manifest.

    Raises
    ------
    RunError
        One line: ``directory`` holds no finished run (no results.parquet or manifest.json, an
        unfinished run -- resume it --, a manifest that is not valid JSON), or a file differs
        from its checksum in manifest.json (the run was modified).
    """
    return Run(directory)


class Run:
    """A finished run or sweep directory; its tables are read when first used.

    Attributes
    ----------
    directory : Path
    results : DataFrame -- the long results table (``results.store.COLUMNS``; a sweep adds
        ``point`` and ``grid.<key>``), one row per (task, paradigm, seed, iteration, metric)
    summary : DataFrame -- per (task, paradigm): risk at iteration 0 and at the last iteration
        with 95% CIs and their contrast (``summary.csv``; computed if absent)
    profile : DataFrame -- per (task, paradigm, definition): the collapse-profile verdict
        (``profile.csv``; computed if absent)
    manifest : dict -- ``manifest.json`` (``results.manifest``)

    note : str or None -- set when ``run(..., resume=True)`` found the run already complete

    Parameters
    ----------
    verify : bool
        Check every file the manifest lists against its checksum first (default).

    Raises
    ------
    RunError
        One line, if ``directory`` is not a finished run directory (no results.parquet or
        manifest.json, an unfinished run, a manifest that is not valid JSON) or ``verify``
        finds a file that differs from its checksum in manifest.json.
    """

    note: str | None = None

    def __init__(self, directory: str | os.PathLike, *, verify: bool = True) -> None:
        from .results.store import (FINISHED, INTERRUPTED, UNSEALED, ManifestError, run_state,
                                    verify_run)

        self.directory = Path(directory)
        missing = [n for n in ("results.parquet", "manifest.json")
                   if not (self.directory / n).is_file()]
        state = run_state(self.directory)
        if state in (INTERRUPTED, UNSEALED):
            when = "while writing its results" if state == UNSEALED else "while computing"
            raise RunError(f"{directory}: not finished (a run was stopped {when}); complete it "
                           f"with the same command and --resume --out {directory}")
        if missing:
            raise RunError(f"{directory}: not a finished modelcollapse run directory (no "
                           f"{' or '.join(missing)})")
        try:
            self.manifest  # noqa: B018 -- read (one line if it is not valid JSON)
            problems = verify_run(self.directory) if verify and state == FINISHED else []
        except ManifestError as exc:
            raise RunError(str(exc)) from None
        if problems:
            raise RunError(f"{directory}: {'; '.join(problems)}; the run was modified")

    @cached_property
    def manifest(self) -> dict:
        from .results.store import ManifestError, load_manifest

        try:
            return load_manifest(self.directory)
        except ManifestError as exc:
            raise RunError(str(exc)) from None

    @cached_property
    def results(self) -> "pd.DataFrame":
        from .results.store import load_results

        return load_results(self.directory)

    def _table(self, name: str, which: int) -> "pd.DataFrame":
        import pandas as pd

        path = self.directory / name
        if path.is_file():
            return pd.read_csv(path)
        results = None if self.manifest.get("streamed") else self.results  # (not read)
        return _analyse(results, self.manifest, self.directory)[which]

    @cached_property
    def summary(self) -> "pd.DataFrame":
        return self._table(SUMMARY_FILE, 0)

    @cached_property
    def profile(self) -> "pd.DataFrame":
        return self._table(PROFILE_FILE, 1)

    @property
    def is_sweep(self) -> bool:
        return "points" in self.manifest

    @property
    def name(self) -> str:
        m = self.manifest
        return str((m.get("sweep") or m.get("study") or {}).get("name", self.directory.name))

    def _studies(self) -> list[dict]:
        m = self.manifest
        return [p.get("study") or {} for p in m["points"]] if self.is_sweep else [
            m.get("study") or {}]

    def _size(self, field: str) -> str:
        values = sorted({str(s.get(field, "?")) for s in self._studies()}, key=str)
        return "/".join(values)

    def report(self, *, jobs: int = 1, all_figures: bool = False) -> Path:
        """Write ``report.html`` and ``plots/*.png`` (``report.html.write_report``: ``jobs``
        processes draw the figures; a figure whose data did not change is not redrawn; the
        profile is the run's profile.csv; a sweep's per-point figures for its first 12 grid
        points, or all with ``all_figures``), record their checksums in the manifest, and
        return the report's path (under the run's lock: ``RunError`` if another process is
        writing there)."""
        from .report.html import MAX_POINT_FIGURES, write_report
        from .results.store import RunLock, RunLocked, run_files, seal_run

        try:
            with RunLock(self.directory):
                path = write_report(self.directory, profile=self.profile, jobs=jobs,
                                    summary=self.summary if self.manifest.get("streamed")
                                    else None,
                                    max_point_figures=None if all_figures
                                    else MAX_POINT_FIGURES)
                seal_run(self.directory, [n for n in run_files(self.directory)
                                          if n == REPORT_FILE or n.startswith("plots/")])
        except RunLocked as exc:
            raise RunError(str(exc)) from None
        except OSError as exc:
            raise RunError(f"{self.directory}: {_why(exc)} writing the report; nothing was "
                           "half-written: fix that and write it again") from None
        self.__dict__.pop("manifest", None)
        return path

    def __repr__(self) -> str:
        kind = f"sweep of {len(self.manifest['points'])} points" if self.is_sweep else "run"
        return (f"Run({str(self.directory)!r}: {kind} {self.name!r}, {self._size('n_seeds')} "
                f"seeds x {self._size('n_iterations')} iterations)")

    def _repr_html_(self) -> str:
        """A compact notebook view: name, seeds, iterations, the summary and the collapse
        profile's verdict grid as HTML tables."""
        import html

        head = (f"<p><b>{html.escape(self.name)}</b> &middot; "
                f"{html.escape(self._size('n_seeds'))} seeds &times; "
                f"{html.escape(self._size('n_iterations'))} model-fitting iterations &middot; "
                f"<code>{html.escape(str(self.directory))}</code></p>")
        return (head + _summary_html(self.summary) + _verdict_grid_html(self.profile)
                + "<p><small>&#10003; collapse occurs &middot; &#10007; does not occur "
                "&middot; ? inconclusive &middot; &ndash; not applicable; "
                "<code>.report()</code> writes the full report</small></p>")


def _where(frame: "pd.DataFrame") -> list[str]:
    """The grid point columns of a sweep's table, then task and paradigm."""
    return [c for c in frame.columns if c == "point" or str(c).startswith("grid.")] + [
        "task", "paradigm"]


def _estimate(mean, low, high) -> str:
    if mean != mean:
        return ""
    return f"{mean:.3g}" if low != low else f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def _summary_html(summary: "pd.DataFrame") -> str:
    table = summary[_where(summary) + ["metric"]].copy()
    for col, label in (("initial", "iteration 0"), ("final", "last iteration"),
                       ("ratio", "last vs first")):
        table[label] = [_estimate(*r) for r in zip(summary[col], summary[f"{col}_low"],
                                                   summary[f"{col}_high"])]
    if "contrast" in summary:
        table["contrast"] = summary["contrast"]
    return table.to_html(index=False, border=0, classes="modelcollapse-summary")


def _verdict_grid_html(profile: "pd.DataFrame") -> str:
    from .report.html import SYMBOL

    keys = _where(profile)
    grid = (profile.assign(mark=profile.verdict.map(SYMBOL).fillna("?"))
            .pivot_table(index=keys, columns="definition", values="mark", aggfunc="first",
                         sort=False))
    grid.columns = [f"Def. {d}" for d in grid.columns]
    return grid.reset_index().fillna("–").to_html(index=False, border=0,
                                                  classes="modelcollapse-profile")
