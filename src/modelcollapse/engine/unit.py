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
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..config import Study
from ..results.store import chain_frame
from ..rng import Streams
from .loop import run_chain

__all__ = ["block_ranges", "build_task", "compute_unit", "run_unit", "UnitJob", "UnitResult"]


def replicate_range(study: Study, replicates: tuple[int, int] | None = None) -> range:
    """The replicates ``[lo, hi)`` of a unit's block (default: all, ``range(n_seeds)``).

    Raises
    ------
    ValueError
        Not ``0 <= lo < hi <= n_seeds`` (one line).
    """
    if replicates is None:
        return range(study.n_seeds)
    lo, hi = (int(x) for x in replicates)
    if not 0 <= lo < hi <= study.n_seeds:
        raise ValueError(f"replicates: [{lo}, {hi}) is not allowed; allowed: 0 <= lo < hi <= "
                         f"n_seeds ({study.n_seeds})")
    return range(lo, hi)


def block_ranges(n_seeds: int, block_size: int | None) -> list[tuple[int, int]]:
    """The consecutive replicate blocks ``[(lo, hi), ...]`` of a unit of ``n_seeds`` chains:
    ``block_size`` replicates each (the last one may be smaller); one block when None.

    Raises
    ------
    ValueError
        ``block_size`` is not an integer >= 1 (one line).
    """
    if block_size is None:
        return [(0, int(n_seeds))]
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise ValueError(f"block_size: {block_size!r} is not allowed; allowed: an integer >= 1 "
                         "(replicates per block), or None for whole units")
    size = int(block_size)
    return [(lo, min(lo + size, int(n_seeds))) for lo in range(0, int(n_seeds), size)]


def build_task(study: Study, task_index: int, replicates: tuple[int, int] | None = None):
    """The task ``study.tasks[task_index]`` built for the replicates ``[lo, hi)`` (default: all
    the study's), and their streams.

    A replicate's task (its real and test data) is a pure function of (study seed, replicate):
    building it for a block gives the same arrays as the block's slice of the whole build.

    Returns
    -------
    (Task, rng.Streams)
        The task is labelled with the entry's label (``task.name``).

    Raises
    ------
    RegistryError
        The task name is not registered.
    ValueError
        ``replicates`` is not a range of the study's replicates.
    """
    streams = Streams(study.seed, replicate_range(study, replicates))
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

    def take(self, start: int, stop: int) -> "UnitResult":
        """The chains in columns ``[start, stop)`` (positions, not replicate indices): a block
        of this result, whose arrays are views of this one's."""
        return UnitResult({k: v[:, start:stop] for k, v in self.values.items()},
                          self.status[:, start:stop], self.replicates[start:stop],
                          self.labels, self.profile_spec, self.provenance)

    @classmethod
    def concat(cls, parts: "list[UnitResult]") -> "UnitResult":
        """The chains of ``parts`` side by side (in that order), as new arrays (a copy even of
        one part); labels, profile spec and provenance are the first part's."""
        first = parts[0]
        return cls({k: np.concatenate([p.values[k] for p in parts], axis=1)
                    for k in first.values},
                   np.concatenate([np.asarray(p.status) for p in parts], axis=1),
                   np.concatenate([np.asarray(p.replicates) for p in parts]),
                   first.labels, first.profile_spec, first.provenance)

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
                 checkpoint=None, replicates: tuple[int, int] | None = None) -> UnitResult:
    """Run the replicate chains of one (task, paradigm) of ``study``: all of them, or the block
    ``replicates = (lo, hi)``.

    A block's result is, byte for byte, the slice ``[:, lo:hi]`` of the whole unit's
    ``values`` and ``status`` (every replicate has its own counter-based streams); its
    ``replicates`` are ``lo .. hi-1``.

    Parameters
    ----------
    task : Task, optional
        The task built for the same replicates (saves rebuilding it for each paradigm).
    replicates : (int, int), optional
        The block ``[lo, hi)`` of replicates to run (default: all ``n_seeds``).
    on_iteration : callable, optional
        Called with t after each model-fitting iteration.
    checkpoint : results.checkpoint.UnitCheckpoint, optional
        Save the chain state there as it runs, and continue from it if it holds one (it must
        be the checkpoint of these same replicates).

    Returns
    -------
    UnitResult
        ``values[metric]`` and ``status`` of shape (n_iterations, hi - lo).

    Raises
    ------
    ValueError
        ``replicates`` is not a range of the study's replicates, or ``task`` was built for a
        different number of replicates.
    """
    if task is None:
        task, streams = build_task(study, task_index, replicates)
    else:
        streams = Streams(study.seed, replicate_range(study, replicates))
        if task.n_replicates != len(streams):
            raise ValueError(f"task: built for {task.n_replicates} replicates, not the "
                             f"{len(streams)} of replicates {replicates}")
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


def unit_label(study: Study, task_index: int, paradigm_index: int,
               replicates: tuple[int, int] | None = None) -> str:
    """How notices name a unit: "<task label>, <paradigm label>" (plus ", replicates lo-hi"
    for a block of a unit, hi exclusive)."""
    label = f"{study.tasks[task_index].label}, {study.paradigms[paradigm_index].label}"
    if replicates is not None:
        label += f", replicates {replicates[0]}..{replicates[1] - 1}"
    return label


@dataclass
class UnitJob:
    """One unit to run: ``study`` (of sweep point ``point``), task and paradigm indices, and
    where to checkpoint (``checkpoint_dir``: a unit directory, or None); or one block of it:
    the replicates ``[lo, hi)`` (``replicates``; default None: all) and its index ``block``
    (0 for a whole unit).  ``reduce(job, result)``, if given, is what ``run`` returns instead
    of the result (``run_units(reduce_block=...)``)."""

    study: Study
    point: int
    task_index: int
    paradigm_index: int
    checkpoint_dir: str | None = None
    max_overhead: float = 0.05
    owner_pid: int | None = None
    replicates: tuple[int, int] | None = None
    block: int = 0
    reduce: Callable[["UnitJob", UnitResult], Any] | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        """The unit (point, task, paradigm); a block's job has its unit's key."""
        return (self.point, self.task_index, self.paradigm_index)

    @property
    def order(self) -> tuple[int, int, int, int]:
        """(point, task, paradigm, block): the order results are handed over in."""
        return (*self.key, self.block)

    @property
    def task_key(self) -> tuple:
        """What a built task depends on: (study, task index, replicates) -- one build serves
        every paradigm of the same block."""
        return (id(self.study), self.task_index, self.replicates)

    def checkpoint(self):
        if self.checkpoint_dir is None:
            return None
        from ..results.checkpoint import UnitCheckpoint

        return UnitCheckpoint(self.checkpoint_dir, max_overhead=self.max_overhead,
                              owner_pid=self.owner_pid,
                              label=unit_label(self.study, self.task_index, self.paradigm_index,
                                               self.replicates))

    def run(self, task=None, on_iteration: Callable[[int], None] | None = None):
        """The unit's (or block's) result (a pure function of study, task, paradigm and
        replicates), or ``reduce(self, result)``."""
        result = compute_unit(self.study, self.task_index, self.paradigm_index, task=task,
                              on_iteration=on_iteration, checkpoint=self.checkpoint(),
                              replicates=self.replicates)
        return result if self.reduce is None else self.reduce(self, result)
