"""Run every (task, paradigm) of a study: each unit advances all replicate chains at once.

A *unit* is one (study, task, paradigm): all R replicate chains of it, a pure function of those
three (every replicate has its own counter-based random streams).  Units are independent, so
results are identical whether they run in this process, in a pool of worker processes or on a
Ray cluster (``engine.executors``), and whether or not the run was interrupted and resumed
(``results.checkpoint``).  A sweep (``engine.sweep``) is the same with several studies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..config import Study
from ..registry import tasks
from ..results.store import COLUMNS, chain_frame
from ..rng import Streams
from .loop import run_chain

__all__ = ["run_study", "run_unit", "run_units", "compute_unit", "UnitJob", "UnitResult"]


def _build_task(study: Study, task_index: int):
    entry = study.tasks[task_index]
    spec = tasks.get(entry.task)
    streams = Streams(study.seed, range(study.n_seeds))
    task = spec.build(entry.params(), streams)
    task.name = entry.label
    return task, streams


@dataclass
class UnitResult:
    """The chains of one unit: ``values[metric]`` and ``status`` of shape (n_iterations, R)."""

    values: dict[str, np.ndarray]
    status: np.ndarray
    replicates: np.ndarray
    labels: dict[str, str]  #: study, task, family, paradigm
    profile_spec: dict = field(default_factory=dict)
    #: the task's provenance (``Task.provenance``: dataset files and checksums, family origin)
    provenance: dict = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The long results rows (``results.COLUMNS``)."""
        return chain_frame(self.values, self.status, self.replicates, **self.labels)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """Plain arrays + JSON-able meta (for ``UnitCheckpoint.save_result``; no pickle)."""
        names = list(self.values)
        arrays = {"values": np.stack([self.values[k] for k in names]),
                  "status": np.asarray(self.status).astype(str), "replicates": self.replicates}
        return arrays, {"metrics": names, "labels": self.labels,
                        "profile_spec": self.profile_spec, "provenance": self.provenance}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> "UnitResult":
        values = dict(zip(meta["metrics"], arrays["values"]))
        return cls(values, arrays["status"].astype(object), arrays["replicates"],
                   meta["labels"], meta["profile_spec"], meta.get("provenance", {}))


def compute_unit(study: Study, task_index: int, paradigm_index: int, *, task=None,
                 on_iteration: Callable[[int], None] | None = None,
                 checkpoint=None) -> UnitResult:
    """Run all replicate chains of one (task, paradigm) of ``study``.

    Parameters
    ----------
    task : Task, optional
        The built task (saves rebuilding it for each paradigm).
    on_iteration : callable, optional
        Called with t after each model-fitting iteration.
    checkpoint : results.checkpoint.UnitCheckpoint, optional
        Save the chain state there as it runs, and continue from it if it holds one.
    """
    if task is None:
        task, streams = _build_task(study, task_index)
    else:
        streams = Streams(study.seed, range(study.n_seeds))
    spec = study.paradigms[paradigm_index]
    # many small matrices: multi-threaded BLAS only adds overhead and contention (several
    # units may run side by side with --jobs); results do not depend on it
    with threadpool_limits(limits=1, user_api="blas"):
        m = study.n_synthetic or task.n_real
        growth = spec.synthetic_growth or study.synthetic_growth
        chain = run_chain(task, spec.build(), n_iterations=study.n_iterations,
                          n_synthetic=growth.sizes(m, study.n_iterations),
                          streams=streams, on_iteration=on_iteration,
                          stop_when_collapsed=study.stop_when_collapsed, checkpoint=checkpoint)
    labels = {"study": study.name, "task": task.name, "family": task.family,
              "paradigm": spec.label}
    return UnitResult(chain.values, chain.status, streams.replicates, labels,
                      {"risk": task.risk_metric, **task.profile}, dict(task.provenance))


def run_unit(study: Study, task_index: int, paradigm_index: int, task=None,
             on_iteration: Callable[[int], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """Run all replicate chains of one (task, paradigm) of ``study``.

    Returns the long results rows and the task's profile spec (``{"risk": metric, ...}``, see
    ``Task.profile``).
    """
    result = compute_unit(study, task_index, paradigm_index, task=task,
                          on_iteration=on_iteration)
    return result.frame(), result.profile_spec


@dataclass
class UnitJob:
    """One unit to run: ``study`` (of sweep point ``point``), task and paradigm indices, and
    where to checkpoint (``checkpoint_dir``: a unit directory, or None)."""

    study: Study
    point: int
    task_index: int
    paradigm_index: int
    checkpoint_dir: str | None = None
    max_overhead: float = 0.05
    owner_pid: int | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.point, self.task_index, self.paradigm_index)

    def checkpoint(self):
        if self.checkpoint_dir is None:
            return None
        from ..results.checkpoint import UnitCheckpoint

        return UnitCheckpoint(self.checkpoint_dir, max_overhead=self.max_overhead,
                              owner_pid=self.owner_pid)

    def run(self, task=None, on_iteration: Callable[[int], None] | None = None) -> UnitResult:
        """The unit's result (a pure function of study, task and paradigm)."""
        return compute_unit(self.study, self.task_index, self.paradigm_index, task=task,
                            on_iteration=on_iteration, checkpoint=self.checkpoint())


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
    from .executors import LocalExecutor

    executor = executor or LocalExecutor(jobs=1)
    owner = os.getpid()
    results: dict[tuple[int, int, int], UnitResult] = {}
    pending: list[UnitJob] = []
    for k, study in enumerate(studies):
        for i in range(len(study.tasks)):
            for j in range(len(study.paradigms)):
                unit_dir = None
                if checkpoints is not None:
                    saved = checkpoints.unit(k, i, j).load_result()
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
    from .executors import LocalExecutor

    executor = executor or LocalExecutor(jobs=jobs)
    outputs = run_units([study], executor=executor, checkpoints=checkpoints,
                        on_iteration=on_iteration,
                        ship_checkpoints=getattr(executor, "shares_files", True))
    frame = pd.concat([r.frame() for r in outputs], ignore_index=True)[COLUMNS]
    frame.attrs["profile_specs"] = {r.labels["task"]: r.profile_spec for r in outputs}
    frame.attrs["provenance"] = {r.labels["task"]: r.provenance for r in outputs}
    return frame
