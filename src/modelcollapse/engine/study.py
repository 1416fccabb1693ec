"""Run every (task, paradigm) of a study: each unit advances all replicate chains at once.

Units are independent and each replicate has its own random streams, so results are identical
whether units run in this process or in a pool of ``jobs`` worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from threadpoolctl import threadpool_limits

from ..config import Study
from ..registry import tasks
from ..results.store import COLUMNS, chain_frame
from ..rng import Streams
from .loop import run_chain

__all__ = ["run_study", "run_unit"]


def _build_task(study: Study, task_index: int):
    entry = study.tasks[task_index]
    spec = tasks.get(entry.task)
    streams = Streams(study.seed, range(study.n_seeds))
    task = spec.build(entry.params(), streams)
    task.name = entry.label
    return task, streams


def run_unit(study: Study, task_index: int, paradigm_index: int, task=None,
             on_iteration: Callable[[int], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """Run all replicate chains of one (task, paradigm) of ``study``.

    Returns the long results rows and the task's profile spec (``{"risk": metric, ...}``, see
    ``Task.profile``).
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
                          stop_when_collapsed=study.stop_when_collapsed)
    frame = chain_frame(chain.values, chain.status, streams.replicates, study=study.name,
                        task=task.name, family=task.family, paradigm=spec.label)
    return frame, {"risk": task.risk_metric, **task.profile}


def run_study(study: Study, *, jobs: int = 1,
              on_iteration: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Run a study and return its long results table (columns ``results.COLUMNS``).

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
    """
    units = [(i, j) for i in range(len(study.tasks)) for j in range(len(study.paradigms))]
    outputs: list[tuple[pd.DataFrame, dict]] = []
    if jobs <= 1:
        built = {}
        for i, j in units:
            if i not in built:
                built = {i: _build_task(study, i)[0]}
            outputs.append(run_unit(study, i, j, task=built[i], on_iteration=on_iteration))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_unit, study, i, j) for i, j in units]
            for fut in futures:
                outputs.append(fut.result())
                if on_iteration is not None:
                    for t in range(study.n_iterations):
                        on_iteration(t)
    frame = pd.concat([f for f, _ in outputs], ignore_index=True)[COLUMNS]
    frame.attrs["profile_specs"] = {study.tasks[i].label: spec
                                    for (i, _), (_, spec) in zip(units, outputs)}
    return frame
