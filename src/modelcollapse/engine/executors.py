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

An executor has ``run(jobs, finished, on_iteration, held=None, drain=None)``: it runs each
``UnitJob`` and calls ``finished(job, result)`` in this process as each completes (any order),
then drops its own reference to the result and calls ``drain()`` (if given: the caller hands
over what it can, holding the only reference).  Without ``held`` every job is submitted at once;
with it (blocks of replicates, ``engine.study.run_units(on_block=...)``) jobs are submitted
lazily, in their order: at most ``workers`` running, and at most ``workers + 1`` running or
held by the caller (``held()``: results it received but still keeps), so that memory does not
grow with the number of jobs.

Worker processes never outlive the run (``_worker_init``): on Linux the kernel kills a worker
when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and everywhere a daemon thread in
the worker exits it within a second of being re-parented; workers ignore SIGINT, so Ctrl-C
interrupts only the parent, which stops the pool and raises ``KeyboardInterrupt`` once.  A
worker that dies (killed, out of memory) raises ``WorkerDied`` (a ``ValueError`` with a
one-line message; ``resumable``: the units finished before are checkpointed).

A local Ray instance started here is offline (``_ray_offline_env``, ``RayExecutor``): usage
stats off, no cloud-metadata or public-resolver probes, every server on 127.0.0.1, no
dashboard; it is shut down with the driver (``ray.shutdown`` in ``finally``, and Ray's own
processes exit when the driver's raylet socket closes).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .unit import UnitJob, UnitResult, build_task

__all__ = ["LocalExecutor", "RayExecutor", "WorkerDied", "make_executor", "worker_pool"]

Finished = Callable[[UnitJob, UnitResult], None]

#: seconds between a worker's checks that its parent is still alive (portable fallback)
PARENT_POLL_S = 0.5


class WorkerDied(ValueError):
    """A worker process died (killed, out of memory) while running a unit.  The message is one
    line; ``resumable`` is True: finished units are checkpointed, so the run directory must be
    kept for ``--resume`` (``api`` does not remove the checkpoints of such a failure)."""

    resumable = True


def _run_job(job: UnitJob) -> UnitResult:
    return job.run()


def _set_parent_death_signal() -> bool:
    """Linux: ask the kernel to SIGKILL this process when its parent exits (``prctl``
    ``PR_SET_PDEATHSIG``).  False where unavailable (other systems, no libc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as its parent ``parent`` is gone (re-parented to init or a
    subreaper): the portable fallback of ``PR_SET_PDEATHSIG``."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(PARENT_POLL_S)


def _worker_init(parent: int) -> None:
    """Initializer of every pool worker: ignore SIGINT (Ctrl-C is the parent's to handle), die
    with the parent (``PR_SET_PDEATHSIG`` + a watcher thread)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="modelcollapse-parent-watch").start()


def _unit_name(job: UnitJob) -> str:
    """``(task, paradigm)`` of a job, with ``point k`` in a sweep."""
    study = job.study
    task, paradigm = study.tasks[job.task_index], study.paradigms[job.paradigm_index]
    where = f"point {job.point} " if job.point else ""
    return f"{where}({task.label}, {paradigm.label})"


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and kill the workers now (their unit's last mid-unit
    checkpoint stays; finished units were saved by this process)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        try:
            proc.kill()
        except (OSError, ValueError, AttributeError):
            pass
    for proc in processes:
        try:
            proc.join(5)
        except (OSError, ValueError, AssertionError, AttributeError):
            pass


@contextmanager
def deferred_interrupt() -> Iterator[Callable[[], None]]:
    """Take Ctrl-C (SIGINT) at safe points while waiting on worker processes: yields
    ``check()``, which raises ``KeyboardInterrupt`` if SIGINT arrived since the block began (and
    leaving the block raises it if it arrived after the last check).

    A ``KeyboardInterrupt`` raised asynchronously inside ``concurrent.futures`` can leave one
    of its locks held (e.g. between the acquisitions of ``wait``'s futures), and the pool's
    shutdown then waits on it forever: a Ctrl-C that hung a ``--jobs 2`` run on a loaded
    machine.  Here the handler only records the signal; the waiting loop (``wait`` with a short
    timeout) calls ``check()``.  Outside the main thread, or where SIGINT is ignored, nothing
    changes.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() \
            or previous in (signal.SIG_IGN, None):
        yield lambda: None
        return
    hit: list[int] = []

    def check() -> None:
        if hit:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)
    check()


#: seconds between checks for a deferred Ctrl-C while waiting on workers
POLL_S = 0.1


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes that ignore Ctrl-C and die with this process
    (``_worker_init``); leaving the block waits for them, an exception (or Ctrl-C) kills them
    at once (``_stop_pool``)."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                               initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _advance(on_iteration, job: UnitJob) -> None:
    if on_iteration is not None:
        for t in range(job.study.n_iterations):
            on_iteration(t)


class _Feed:
    """Jobs submitted in order: all at once (``held`` None), or lazily while fewer than
    ``workers`` run and fewer than ``workers + 1`` run or are held by the caller."""

    def __init__(self, jobs: Sequence[UnitJob], workers: int,
                 held: Callable[[], int] | None) -> None:
        self.jobs, self.next = jobs, 0
        self.workers, self.held = max(1, int(workers)), held

    def ready(self, running: int) -> list[UnitJob]:
        """The jobs to submit now, given ``running`` jobs in flight."""
        if self.held is None:
            out, self.next = list(self.jobs[self.next:]), len(self.jobs)
            return out
        out = []
        while self.next < len(self.jobs) and running + len(out) < self.workers \
                and running + len(out) + self.held() < self.workers + 1:
            out.append(self.jobs[self.next])
            self.next += 1
        return out


class LocalExecutor:
    """Units in this process (``jobs=1``) or in a pool of ``jobs`` worker processes."""

    shares_files = True

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs: {jobs}; allowed: an integer >= 1")
        self.jobs = int(jobs)
        self.in_process = self.jobs == 1

    def run(self, jobs: Sequence[UnitJob], finished: Finished,
            on_iteration: Callable[[int], None] | None = None,
            held: Callable[[], int] | None = None,
            drain: Callable[[], None] | None = None) -> None:
        if not jobs:
            return
        if self.in_process:
            built: dict = {}
            for job in jobs:
                key = job.task_key
                if key not in built:  # one task build serves all its paradigms
                    built.clear()  # the previous task is not alive while the next is built
                    built[key] = build_task(job.study, job.task_index, job.replicates)[0]
                result = job.run(task=built[key], on_iteration=on_iteration)
                finished(job, result)
                del result  # not alive while the next job runs
                if drain is not None:
                    drain()
            return
        feed = _Feed(jobs, min(self.jobs, len(jobs)), held)
        with deferred_interrupt() as check, worker_pool(min(self.jobs, len(jobs))) as pool:
            futures = {pool.submit(_run_job, job): job for job in feed.ready(0)}
            while futures:
                done, _ = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
                check()
                batch = sorted(done, key=lambda f: futures[f].order, reverse=True)
                del done
                while batch:
                    fut = batch.pop()
                    job = futures.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise WorkerDied(
                            f"a worker process died (killed or out of memory) while running "
                            f"unit {_unit_name(job)}; the finished units are checkpointed: "
                            "run the same command with --resume") from None
                    del fut  # the future holds its result
                    finished(job, result)
                    del result
                    if drain is not None:
                        drain()
                    _advance(on_iteration, job)
                for job in feed.ready(len(futures)):
                    futures[pool.submit(_run_job, job)] = job


LOOPBACK = "127.0.0.1"

#: the environment of a local Ray instance's processes (inherited from the driver at
#: ``ray.init``): usage stats off; no public-resolver UDP connect to find the node's IP (Ray
#: uses the loopback address when "clusters" are off); the cloud-metadata probes that Ray's
#: dashboard process makes whatever the usage-stats setting (``get_cluster_config_to_report``,
#: 169.254.169.254 and metadata.google.internal) go to a closed loopback port as their HTTP
#: proxy, so they neither resolve a name nor leave the machine.  Ray's own gRPC traffic reads
#: only the lower-case proxy variables, which are removed.  A killed driver takes the instance
#: down: GCS, raylet and Ray workers exit at once; Ray's dashboard and runtime-env agents about
#: 60 s later (Ray 2.x waits that long to report the raylet's death to the dead GCS).
RAY_OFFLINE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
}
RAY_UNSET_ENV = ("http_proxy", "https_proxy", "grpc_proxy", "all_proxy", "ALL_PROXY",
                 "no_proxy", "no_grpc_proxy")


@contextmanager
def _ray_offline_env() -> Iterator[None]:
    """``RAY_OFFLINE_ENV`` in ``os.environ`` (and in Ray's constants, if Ray was imported
    already) while a local instance starts; everything restored afterwards."""
    saved = {k: os.environ.get(k) for k in (*RAY_OFFLINE_ENV, *RAY_UNSET_ENV)}
    constants = sys.modules.get("ray._private.ray_constants")
    cluster = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ.update(RAY_OFFLINE_ENV)
    for key in RAY_UNSET_ENV:
        os.environ.pop(key, None)
    if cluster is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if cluster is not None:
            constants.ENABLE_RAY_CLUSTER = cluster


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
            on_iteration: Callable[[int], None] | None = None,
            held: Callable[[], int] | None = None,
            drain: Callable[[], None] | None = None) -> None:
        if not jobs:
            return
        try:
            if self.shares_files:
                with _ray_offline_env():  # read by ray's constants at import
                    import ray
            else:
                import ray
        except ImportError:
            raise ValueError("--executor ray: Ray is not installed; pip install "
                             "'modelcollapse[ray]' (or 'ray[default]')") from None
        started = not ray.is_initialized()
        if started:
            if self.shares_files:
                with _ray_offline_env():
                    ray.init(num_cpus=self.num_cpus, include_dashboard=False,
                             dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK,
                             logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(address=self.address, logging_level="WARNING")
        try:
            remote = ray.remote(num_cpus=1)(_run_job)
            workers = len(jobs) if held is None else \
                max(1, int(ray.cluster_resources().get("CPU", 1)))
            feed = _Feed(jobs, workers, held)
            refs = {remote.remote(job): job for job in feed.ready(0)}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    job = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # re-raise the unit's own error
                        cause = getattr(exc, "cause", None)
                        raise (cause if isinstance(cause, Exception) else exc) from None
                    del ref  # the object store frees the result with its last reference
                    finished(job, result)
                    del result
                    if drain is not None:
                        drain()
                    _advance(on_iteration, job)
                del done
                for job in feed.ready(len(refs)):
                    refs[remote.remote(job)] = job
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
