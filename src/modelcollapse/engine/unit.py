"""One unit of a study: all R replicate chains of one (study, task, paradigm).

A unit is a pure function of those three (every replicate has its own counter-based random
streams), so its result does not depend on where it runs (``engine.executors``) or on whether
it was interrupted and resumed (``results.checkpoint``).  This module is what both sides of
running a study share -- ``engine.study`` (which units to run, collecting their results) and
``engine.executors`` (where they run) -- and imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..config import Study
from ..results.store import chain_frame
from ..rng import Streams
from .loop import run_chain

__all__ = ["build_task", "compute_unit", "run_unit", "UnitJob", "UnitResult"]


def build_task(study: Study, task_index: int):
    """The task ``study.tasks[task_index]`` built for the study's replicates, and their streams.

    Returns
    -------
    (Task, rng.Streams)
        The task is labelled with the entry's label (``task.name``).

    Raises
    ------
    RegistryError
        The task name is not registered.
    """
    streams = Streams(study.seed, range(study.n_seeds))
    # one BLAS thread, as the chains: the same bits on any machine, and a per-replicate PCA of
    # a small table is 100x slower with threads contending on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        return study.tasks[task_index].build(streams), streams


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
        task, streams = build_task(study, task_index)
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


def unit_label(study: Study, task_index: int, paradigm_index: int) -> str:
    """How notices name a unit: "<task label>, <paradigm label>"."""
    return f"{study.tasks[task_index].label}, {study.paradigms[paradigm_index].label}"


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
                              owner_pid=self.owner_pid,
                              label=unit_label(self.study, self.task_index, self.paradigm_index))

    def run(self, task=None, on_iteration: Callable[[int], None] | None = None) -> UnitResult:
        """The unit's result (a pure function of study, task and paradigm)."""
        return compute_unit(self.study, self.task_index, self.paradigm_index, task=task,
                            on_iteration=on_iteration, checkpoint=self.checkpoint())
