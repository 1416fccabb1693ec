"""Run every (task, paradigm) of a study: each unit advances all replicate chains at once.

A *unit* (``engine.unit``) is one (study, task, paradigm): all R replicate chains of it, a pure
function of those three (every replicate has its own counter-based random streams).  Units are
independent, so results are identical whether they run in this process, in a pool of worker
processes or on a Ray cluster (``engine.executors``), and whether or not the run was
interrupted and resumed (``results.checkpoint``).  A sweep (``engine.sweep``) is the same with several studies.

Blocks of replicates.  For many chains a unit's results do not fit in memory (10^6 chains x 100
model-fitting iterations x 13 metrics: 10 GB).  ``run_units(..., on_block=...)`` splits every
unit into consecutive blocks of ``block_size`` replicates (``block_size_for`` chooses it from a
memory budget) and hands each finished block to ``on_block`` in this process, in block order per
unit, without keeping it: at most ``workers + 1`` blocks are running or waiting to be handed
over at any time (blocks are submitted lazily).  A block's result is, byte for byte, the slice
of the whole unit's (every replicate has its own counter-based streams).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..config import Study
from ..results.store import COLUMNS, concat_frames
from .executors import LocalExecutor
from .unit import UnitJob, UnitResult, block_ranges, unit_label

__all__ = ["run_study", "run_units", "block_size_for", "n_blocks"]

Key = tuple[int, int, int]
#: ``on_block(key, block_index, n_blocks, result)`` (``result``: ``reduce_block``'s value with one)
OnBlock = Callable[[Key, int, int, Any], None]
#: ``reduce_block(job, result)``: what of a finished block travels back (run where it ran)
ReduceBlock = Callable[[UnitJob, UnitResult], Any]


def n_blocks(study: Study, block_size: int | None) -> int:
    """Blocks of ``block_size`` replicates in each unit of ``study`` (1 when None).

    Raises
    ------
    ValueError
        ``block_size`` is not an integer >= 1.
    """
    return len(block_ranges(study.n_seeds, block_size))


def block_size_for(study: Study | Sequence[Study], budget_bytes: "int | str", *,
                   jobs: int = 1, measure: bool = False) -> int:
    """Replicates per block (``run_units(block_size=...)``) so that running ``study`` block by
    block with ``jobs`` workers stays within ``budget_bytes`` (``engine.budget.block_size_for``:
    the largest block whose estimate fits); at most ``n_seeds`` (the largest of a sweep's
    points).  A function of the study, budget and jobs alone unless ``measure``.

    Raises
    ------
    engine.budget.MemoryBudgetError
        Not even one replicate at a time fits in the budget (one line).
    ValueError
        ``budget_bytes`` is not a size.
    """
    from .budget import block_size_for as _block_size_for

    return _block_size_for(study, budget_bytes, jobs=jobs, measure=measure)


class _InOrder:
    """Blocks finished in any order, handed to ``on_block`` in block order per unit; a handed
    over block is dropped (only blocks waiting for an earlier one are held)."""

    def __init__(self, sizes: dict[Key, int], starts: dict[Key, int], on_block: OnBlock,
                 done: Callable[[UnitJob], None]) -> None:
        self.sizes, self.next = sizes, dict(starts)
        self.on_block, self.done = on_block, done
        self.waiting: dict[Key, dict[int, tuple[UnitJob, UnitResult]]] = {}

    def held(self) -> int:
        """Blocks finished but waiting for an earlier block of their unit."""
        return sum(len(w) for w in self.waiting.values())

    def add(self, job: UnitJob, result: UnitResult) -> None:
        """Take a finished block (handed over by ``drain``, once the executor has dropped its
        own reference)."""
        self.waiting.setdefault(job.key, {})[job.block] = (job, result)

    def drain(self) -> None:
        """Hand over every block whose predecessors have been handed over; drop it."""
        for key in list(self.waiting):
            waiting = self.waiting[key]
            while self.next[key] in waiting:
                job, result = waiting.pop(self.next[key])
                self.on_block(key, job.block, self.sizes[key], result)
                del result  # not kept: the caller has it
                self.next[key] += 1
                self.done(job)
            if not waiting:
                del self.waiting[key]


def _run_blocks(studies: Sequence[Study], executor, checkpoints, on_iteration, on_unit,
                ship_checkpoints: bool, block_size: int | None, on_block: OnBlock,
                start_blocks: Mapping[Key, int] | None,
                reduce_block: ReduceBlock | None = None) -> None:
    """``run_units`` with ``on_block`` (see there)."""
    start_blocks = dict(start_blocks or {})
    owner = os.getpid()
    ship = checkpoints is not None and (ship_checkpoints or getattr(executor, "in_process",
                                                                    False))
    sizes: dict[Key, int] = {}
    starts: dict[Key, int] = {}
    pending: list[UnitJob] = []
    loaded: dict[Key, UnitResult] = {}
    for k, study in enumerate(studies):
        ranges = block_ranges(study.n_seeds, block_size)
        for i in range(len(study.tasks)):
            for j in range(len(study.paradigms)):
                key = (k, i, j)
                start = start_blocks.pop(key, 0)
                if isinstance(start, bool) or not isinstance(start, int) \
                        or not 0 <= start <= len(ranges):
                    raise ValueError(f"start_blocks[{key}]: {start!r} is not allowed; allowed: "
                                     f"an integer 0 .. {len(ranges)} (the unit's blocks "
                                     "already handed over)")
                sizes[key], starts[key] = len(ranges), start
    if start_blocks:
        raise ValueError(f"start_blocks: {sorted(start_blocks)[0]} is not a unit (point, task, "
                         "paradigm) of the run")
    for k, study in enumerate(studies):
        ranges = block_ranges(study.n_seeds, block_size)
        for i in range(len(study.tasks)):
            # block-major within a task: one in-process build serves every paradigm of a block
            for b, (lo, hi) in enumerate(ranges):
                for j in range(len(study.paradigms)):
                    key = (k, i, j)
                    if b < starts[key]:
                        continue
                    unit = None
                    if checkpoints is not None:
                        unit = checkpoints.unit(k, i, j, label=unit_label(study, i, j))
                        if b == starts[key]:
                            saved = unit.load_result()  # finished whole by an earlier run
                            if saved is not None:
                                loaded[key] = UnitResult.from_arrays(*saved)
                        if key in loaded:
                            continue
                    block_dir = str(unit.block(lo, hi).directory) if ship else None
                    pending.append(UnitJob(study, k, i, j, block_dir,
                                           checkpoints.max_overhead if checkpoints else 0.05,
                                           owner, replicates=(lo, hi), block=b,
                                           reduce=reduce_block))
    if checkpoints is not None:  # block directories no job of this run will use: stale
        runs = {job.checkpoint_dir for job in pending}
        for k, study in enumerate(studies):
            for i in range(len(study.tasks)):
                for j in range(len(study.paradigms)):
                    for block in checkpoints.unit(k, i, j).blocks():
                        if str(block.directory) not in runs:
                            block.remove()

    def advance(study: Study) -> None:
        if on_iteration is not None:
            for t in range(study.n_iterations):
                on_iteration(t)

    def done(job: UnitJob) -> None:
        if job.checkpoint_dir is not None:  # handed over: its chain state is not needed
            checkpoints.unit(*job.key).block(*job.replicates).remove()
        if job.block == sizes[job.key] - 1 and on_unit is not None:
            on_unit(job.key)

    for key, study in ((key, studies[key[0]]) for key in sizes):
        for _ in range(starts[key]):
            advance(study)
        if starts[key] == sizes[key] and on_unit is not None:
            on_unit(key)
    for key in list(loaded):  # a unit an earlier run finished whole: its slices
        whole = loaded.pop(key)
        ranges = block_ranges(studies[key[0]].n_seeds, block_size)
        for b in range(starts[key], len(ranges)):
            lo, hi = ranges[b]
            part = whole.take(lo, hi)
            if reduce_block is not None:
                part = reduce_block(UnitJob(studies[key[0]], *key, replicates=(lo, hi), block=b),
                                    part)
            on_block(key, b, len(ranges), part)
            advance(studies[key[0]])
        if on_unit is not None:
            on_unit(key)
        del whole
    order = _InOrder(sizes, starts, on_block, done)
    executor.run(pending, order.add, on_iteration=on_iteration, held=order.held,
                 drain=order.drain)


def run_units(studies: Sequence[Study], *, executor=None, checkpoints=None,
              on_iteration: Callable[[int], None] | None = None,
              on_unit: Callable[[tuple[int, int, int]], None] | None = None,
              ship_checkpoints: bool = True, block_size: int | None = None,
              on_block: OnBlock | None = None,
              start_blocks: Mapping[Key, int] | None = None,
              reduce_block: ReduceBlock | None = None) -> list[UnitResult]:
    """Run every unit (point, task, paradigm) of ``studies``; results in that order (an empty
    list with ``on_block``: the blocks were handed over).

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
    block_size : int, optional
        With ``on_block``: replicates per block (default: the whole unit, one block;
        ``block_size_for`` chooses one from a memory budget).
    on_block : callable, optional
        ``on_block(key, block_index, n_blocks, result)``: called in this process with each
        finished block of replicates ``[b * block_size, min((b + 1) * block_size, n_seeds))``
        of unit ``key`` (a ``UnitResult`` of shape (n_iterations, block replicates)), in block
        order per unit (a block finishing before an earlier one waits for it); the engine keeps
        no reference to it afterwards.  Blocks are submitted lazily: at most ``workers + 1``
        blocks are running or waiting at any time.  With it, ``checkpoints`` keep only each
        running block's chain state (``<unit>/block-<lo>-<hi>/``, removed once the block is
        handed over); the caller checkpoints what it merged (``UnitCheckpoint.save_partial``)
        and passes ``start_blocks`` on resume.  A unit whose ``result.npz`` an earlier,
        whole-unit run saved is handed over as slices of it.  ``on_iteration`` is called
        ``n_iterations`` times per block (``n_blocks`` x ``n_iterations`` per unit), and
        ``on_unit`` when a unit's last block has been handed over.
    start_blocks : dict, optional
        ``{key: b}``: blocks ``0 .. b-1`` of unit ``key`` were handed over before (a resumed
        run): they are not run again (only with ``on_block``; the same ``block_size``).
    reduce_block : callable, optional
        With ``on_block``: ``reduce_block(job, result)`` is run where the block ran (a worker
        process, a Ray task) and its value, not the block's rows, travels back and is what
        ``on_block`` gets (e.g. the block folded into aggregates: kilobytes instead of the
        block's ``n_iterations`` x metrics x replicates values).  Must be picklable (a
        module-level function) for other processes.

    Raises
    ------
    ValueError
        ``block_size`` or ``start_blocks`` without ``on_block``, or not allowed (one line);
        what ``compute_unit`` and the executor raise.
    """
    executor = executor or LocalExecutor(jobs=1)
    if on_block is None:
        if block_size is not None or start_blocks or reduce_block is not None:
            raise ValueError("block_size, start_blocks, reduce_block: only with on_block "
                             "(blocks of replicates are handed over, not collected)")
    else:
        block_ranges(1, block_size)  # checks it
        _run_blocks(studies, executor, checkpoints, on_iteration, on_unit, ship_checkpoints,
                    block_size, on_block, start_blocks, reduce_block)
        return []
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
