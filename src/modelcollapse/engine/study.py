"""Run every (task, paradigm) of a study: each unit advances all replicate chains at once.

A *unit* (``engine.unit``) is one (study, task, paradigm): all R replicate chains of it, a pure
function of those three (every replicate has its own counter-based random streams).  Units are
independent, so results are identical whether they run in this process, in a pool of worker
processes or on a Ray cluster (``engine.executors``), and whether or not the run was
interrupted and resumed (``results.checkpoint``).  A sweep (``engine.sweep``) is the same with several studies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pandas as pd

from ..config import Study
from ..results.store import COLUMNS, concat_frames
from .executors import LocalExecutor
from .unit import UnitJob, UnitResult, unit_label

__all__ = ["run_study", "run_units"]


def run_units(studies: Sequence[Study], *, executor=None, checkpoints=None,
              on_iteration: Callable[[int], None] | None = None,
              on_unit: Callable[[tuple[int, int, int]], None] | None = None,
              ship_checkpoints: bool = True) -> list[UnitResult]:
    """Run every unit (point, task, paradigm) of ``studies``; results in that order.

    Parameters
    ----------
    executor : LocalExecutor | RayExecutor, optional
        Where units run (default: ``LocalExecutor(jobs=1)``, this process).
    checkpoints : results.checkpoint.RunCheckpoints, optional
        Units finished there are loaded, not run; the others continue from their last
        checkpoint; each finished unit is saved there (by this process) as it arrives.
    on_iteration : callable, optional
        Called once per finished model-fitting iteration (in this process), or ``n_iterations``
        times when a unit run elsewhere finishes.
    on_unit : callable, optional
        Called with the unit's key when a unit finishes (or is loaded as finished).
    ship_checkpoints : bool
        Whether the executor's workers write mid-unit checkpoints themselves (False for workers
        that do not share this machine's file system).
    """
    executor = executor or LocalExecutor(jobs=1)
    owner = os.getpid()
    results: dict[tuple[int, int, int], UnitResult] = {}
    pending: list[UnitJob] = []
    for k, study in enumerate(studies):
        for i in range(len(study.tasks)):
            for j in range(len(study.paradigms)):
                unit_dir = None
                if checkpoints is not None:
                    saved = checkpoints.unit(k, i, j, label=unit_label(study, i, j)).load_result()
                    if saved is not None:
                        results[(k, i, j)] = UnitResult.from_arrays(*saved)
                        if on_iteration is not None:
                            for t in range(study.n_iterations):
                                on_iteration(t)
                        if on_unit is not None:
                            on_unit((k, i, j))
                        continue
                    if ship_checkpoints or getattr(executor, "in_process", False):
                        unit_dir = str(checkpoints.unit(k, i, j).directory)
                pending.append(UnitJob(study, k, i, j, unit_dir,
                                       checkpoints.max_overhead if checkpoints else 0.05, owner))

    def finished(job: UnitJob, result: UnitResult) -> None:
        if checkpoints is not None:
            checkpoints.unit(*job.key).save_result(*result.to_arrays())
        results[job.key] = result
        if on_unit is not None:
            on_unit(job.key)

    executor.run(pending, finished, on_iteration=on_iteration)
    return [results[(k, i, j)] for k, study in enumerate(studies)
            for i in range(len(study.tasks)) for j in range(len(study.paradigms))]


def run_study(study: Study, *, jobs: int = 1,
              on_iteration: Callable[[int], None] | None = None, executor=None,
              checkpoints=None) -> pd.DataFrame:
    """Run a study and return its long results table (columns ``results.COLUMNS``).

    ``frame.attrs["provenance"]`` maps each task label to ``Task.provenance``.
    ``frame.attrs["profile_specs"]`` maps each task label to its profile spec: ``"risk"``, the
    metric that is its population risk (or the test-set estimate of it), and the metrics the
    collapse profile reads for each definition (``Task.profile``).

    Parameters
    ----------
    study : Study
    jobs : int
        Worker processes; 1 runs in this process.  Results do not depend on it.
    on_iteration : callable, optional
        Called once per finished model-fitting iteration of any unit (progress).
    executor : LocalExecutor | RayExecutor, optional
        Overrides ``jobs`` (``engine.executors``).  Results do not depend on it.
    checkpoints : results.checkpoint.RunCheckpoints, optional
        Checkpoint there, and resume what it holds (``run_units``).
    """
    executor = executor or LocalExecutor(jobs=jobs)
    outputs = run_units([study], executor=executor, checkpoints=checkpoints,
                        on_iteration=on_iteration,
                        ship_checkpoints=getattr(executor, "shares_files", True))
    frame = concat_frames([r.frame() for r in outputs])[COLUMNS]
    frame.attrs["profile_specs"] = {r.labels["task"]: r.profile_spec for r in outputs}
    frame.attrs["provenance"] = {r.labels["task"]: r.provenance for r in outputs}
    return frame
