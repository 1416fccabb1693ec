"""Where units run: this process, a local process pool, or a Ray cluster.

Every unit (point, task, paradigm) is a pure function of its study and indices
(``UnitJob.run``), so the executor changes only speed, never results.

* ``LocalExecutor(jobs=1)`` -- this process, one unit after another (per-iteration progress);
  ``jobs > 1`` -- a pool of ``jobs`` worker processes (``concurrent.futures``).
* ``RayExecutor(address=None)`` -- one Ray task per unit.  Without ``address`` it starts a
  local Ray instance (``num_cpus`` CPUs, default all) and shuts it down afterwards; with one
  (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``; or the ``RAY_ADDRESS`` environment
  variable) it attaches to a running cluster.  Ray is imported only here, only when used
  (``pip install 'modelcollapse[ray]'``).

An executor has ``run(jobs, finished, on_iteration)``: it runs each ``UnitJob`` and calls
``finished(job, result)`` in this process as each completes (any order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from .unit import UnitJob, UnitResult, build_task

__all__ = ["LocalExecutor", "RayExecutor", "make_executor"]

Finished = Callable[[UnitJob, UnitResult], None]


def _run_job(job: UnitJob) -> UnitResult:
    return job.run()


def _advance(on_iteration, job: UnitJob) -> None:
    if on_iteration is not None:
        for t in range(job.study.n_iterations):
            on_iteration(t)


class LocalExecutor:
    """Units in this process (``jobs=1``) or in a pool of ``jobs`` worker processes."""

    shares_files = True

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs: {jobs}; allowed: an integer >= 1")
        self.jobs = int(jobs)
        self.in_process = self.jobs == 1

    def run(self, jobs: Sequence[UnitJob], finished: Finished,
            on_iteration: Callable[[int], None] | None = None) -> None:
        if not jobs:
            return
        if self.in_process:
            built: dict = {}
            for job in jobs:
                key = (id(job.study), job.task_index)
                if key not in built:  # one task build serves all its paradigms
                    built = {key: build_task(job.study, job.task_index)[0]}
                finished(job, job.run(task=built[key], on_iteration=on_iteration))
            return
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(jobs))) as pool:
            futures = {pool.submit(_run_job, job): job for job in jobs}
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in done:
                        job = futures.pop(fut)
                        finished(job, fut.result())
                        _advance(on_iteration, job)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


class RayExecutor:
    """One Ray task per unit (see module docstring).

    Parameters
    ----------
    address : str, optional
        Ray cluster to attach to; default: ``RAY_ADDRESS`` if set, else start a local instance.
    num_cpus : int, optional
        CPUs of a local instance this executor starts (default: all of this machine's).
    """

    in_process = False

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus

    @property
    def shares_files(self) -> bool:
        """Whether Ray workers run on this machine (a local instance): only then do they write
        mid-unit checkpoints into the run directory (finished units are always saved here)."""
        return self.address is None and not os.environ.get("RAY_ADDRESS")

    def run(self, jobs: Sequence[UnitJob], finished: Finished,
            on_iteration: Callable[[int], None] | None = None) -> None:
        if not jobs:
            return
        try:
            import ray
        except ImportError:
            raise ValueError("--executor ray: Ray is not installed; pip install "
                             "'modelcollapse[ray]' (or 'ray[default]')") from None
        started = not ray.is_initialized()
        if started:
            if self.shares_files:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                         logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(address=self.address, logging_level="WARNING")
        try:
            remote = ray.remote(num_cpus=1)(_run_job)
            refs = {remote.remote(job): job for job in jobs}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    job = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # re-raise the unit's own error
                        cause = getattr(exc, "cause", None)
                        raise (cause if isinstance(cause, Exception) else exc) from None
                    finished(job, result)
                    _advance(on_iteration, job)
        finally:
            if started:
                ray.shutdown()


def make_executor(kind: str = "local", *, jobs: int = 1, address: str | None = None):
    """``LocalExecutor(jobs)`` or ``RayExecutor(address, num_cpus=jobs if jobs > 1)``.

    Raises
    ------
    ValueError
        For an unknown kind, or an address with the local executor.
    """
    if kind == "local":
        if address is not None:
            raise ValueError("--address: only with --executor ray")
        return LocalExecutor(jobs)
    if kind == "ray":
        return RayExecutor(address, num_cpus=jobs if jobs > 1 else None)
    raise ValueError(f"--executor: {kind!r} is not allowed; allowed: local, ray")
