"""An up-front upper bound on a run's peak memory, checked against a budget before anything is
written (issue 12: bounded memory).

``estimate(studies, jobs=1)`` adds, in bytes (R = ``n_seeds``, T = ``n_iterations``, a *row* =
one sample of the task, e.g. d float64 = 8 d bytes; per unit = (point, task, paradigm)):

* ``real and test data`` -- R x (n_real + n_test) rows, the task's arrays (``Task.real``,
  ``Task.test``);
* ``accumulated pool`` -- R x (n_real + the synthetic batches of T - 1 iterations) rows, when
  the unit keeps the pool's rows (a paradigm that selects rows, a family without sufficient
  statistics, curation; plus 9 bytes a row of weights and provenance under curation);
* ``synthetic batch`` -- R x (the largest batch) rows, unless the family draws sufficient
  statistics directly;
* ``fit and evaluation working memory`` -- ``WORK_FACTOR`` x (the largest training set + the
  real and test data): the temporaries of fitting and of the metrics (calibrated below);
* ``results`` -- R x T x M x ``RESULT_ROW_BYTES`` for every unit (M metrics a unit records:
  counted by one model-fitting iteration of one replicate, ``METRICS_PER_UNIT`` for deep tasks):
  the per-unit arrays, the long table (22 bytes a row), its concatenation;
* ``processes`` -- ``BASE_BYTES`` for this process plus ``WORKER_BYTES`` for each worker
  (interpreter, NumPy, pandas, the family's libraries), each plus ``TORCH_BYTES`` when a task
  is a deep one (torch).

Units run one at a time in this process, or ``jobs`` at a time in workers, so the total is
processes + results + min(jobs, units) x the largest per-unit peak.

Blocks of replicates (``engine.study.run_units(on_block=..., block_size=B)``): every per-unit
term above is counted for B replicates instead of R, and ``results`` becomes the blocks'
arrays alive at once: ``2 jobs + 1`` blocks (a block being computed in each worker, its copy
arriving here, and the ``jobs + 1`` running or waiting to be handed over; 2 in this process
with ``jobs`` 1: the chain's values and their stacked copy) of
B x T x (8 M + 8) bytes (float64 values, one status pointer); and, since the results no longer
dominate, ``build and evaluation temporaries``: what building the task for a block and
running its chains need beyond the unit's other terms: the larger of the measured peak
(``_measured``: the traced peak of building and running 2 and 3 model-fitting iterations, per
replicate, from two small probes, extrapolated to T, plus ``MEASURE_MARGIN``) and
``BUILD_FACTOR`` x the data + ``BUILD_REPLICATE_BYTES`` a replicate (the task build alone: all
there is where nothing is measured).  ``block_size_for`` inverts this: the largest B whose
estimate fits a budget.  Torch models' parameters
and optimizer state are not counted (kilobytes to a few MB per replicate at the supported
sizes, next to their data).

The row counts come from building each task once for one replicate (exact shapes and dtypes;
data files are read), scaled by R; a task whose parameters alone say that one replicate would
exceed ``PROBE_LIMIT_BYTES`` (``n_samples: 1e9``) is not built: its rows are read from
``task_params`` (``n_samples``, ``n_test``, ``n_features``, ``context``, ``n_molecules`` x
``n_conformers``) as float64.

Calibration (``tests/test_budget.py``; measured on this code base): the estimate is at least
the tracemalloc peak of ``run_study`` and at most ~2x the peak resident memory of whole runs
(gaussian / kde / gmm / discrete studies, R = 20 .. 20,000).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Estimate", "MemoryBudgetError", "estimate", "check", "budget", "parse_size",
           "physical_memory", "format_bytes", "block_size_for", "DEFAULT_FRACTION"]

#: default budget: this share of the machine's physical memory
DEFAULT_FRACTION = 0.8
#: fitting and metric temporaries, as a multiple of the data they read (measured: <= 3.4)
WORK_FACTOR = 1.0
#: bytes per long-table row of the results while the run collects them (measured: ~60)
RESULT_ROW_BYTES = 100
#: building a task for R replicates (before its chains run) peaks at up to ``BUILD_FACTOR`` x
#: its real and test data + ``BUILD_REPLICATE_BYTES`` a replicate (random-stream state, the
#: per-replicate arrays before they are stacked).  Measured by tracemalloc on every non-torch
#: task at R = 512 and 4096 (same ratios at both): 2.4 .. 5.9 x the data (gaussian d=1, n=10:
#: 5.9), + ~1.8 KB a replicate (discrete, whose data is a few hundred bytes a replicate).
#: The fallback of ``_measured`` (which also sees the metrics' temporaries: k-NN sample
#: metrics take ~30-60 KB a replicate whatever the data size)
BUILD_FACTOR, BUILD_REPLICATE_BYTES = 6.0, 2048
#: replicates of the two probes whose traced peaks give the measured bytes per replicate
PROBE_REPLICATES = (16, 80)
#: the measured peak is taken this much larger (extrapolated runs peaked up to 6% above it)
MEASURE_MARGIN = 1.25
#: metrics a unit records when they cannot be counted (an upper bound; the built-in tasks
#: record 9 to 30), and what is added to a counted number (curation and paradigm metrics)
METRICS_PER_UNIT, METRIC_SLACK = 40, 6
#: this process, and each worker process
BASE_BYTES, WORKER_BYTES = 200 * 2**20, 150 * 2**20
#: what torch adds to each process running a deep task (``vae``, ``lm``, ``diffusion``:
#: their params have ``train_budget``; measured ~300 MiB)
TORCH_BYTES = 400 * 2**20
#: a task whose parameters give one replicate more than this is not built to measure it
PROBE_LIMIT_BYTES = 256 * 2**20

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}

#: what to reduce for each term (the study fields that scale it)
_REDUCE = {
    "real and test data": "n_seeds or task_params.n_samples / n_test",
    "accumulated pool": "n_seeds, n_iterations, n_synthetic or the synthetic growth",
    "synthetic batch": "n_seeds, n_synthetic or the synthetic growth",
    "fit and evaluation working memory": "n_seeds or task_params.n_samples / n_test",
    "results": "n_seeds, n_iterations or the number of tasks and paradigms",
    "processes": "--jobs",
    "build and evaluation temporaries": "the block size (or n_seeds) or "
                                        "task_params.n_samples / n_test",
}


class MemoryBudgetError(ValueError):
    """The estimated peak memory exceeds the budget (a one-line message; nothing was
    written)."""


@dataclass(frozen=True)
class Estimate:
    """An upper-bound estimate of a run's peak memory.

    Attributes
    ----------
    total : int
        Bytes.
    terms : dict[str, int]
        Bytes by term (see the module docstring); they add up to ``total``.
    detail : dict[str, str]
        For each term, how it was counted (for messages).
    """

    total: int
    terms: dict[str, int] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def largest(self) -> tuple[str, int]:
        """(name, bytes) of the largest term that the study or ``--jobs`` can reduce (not the
        interpreter of a single process)."""
        terms = {k: v for k, v in self.terms.items()
                 if k != "processes" or v > BASE_BYTES + TORCH_BYTES} or self.terms
        return max(terms.items(), key=lambda kv: kv[1])

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in
                          sorted(self.terms.items(), key=lambda kv: -kv[1]) if v)
        return f"about {format_bytes(self.total)} ({parts})"


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style (binary units)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def parse_size(value: "int | float | str") -> int:
    """Bytes from ``4GiB``, ``512 MB``, ``2g``, ``1.5GiB`` or a number of bytes.

    Raises
    ------
    ValueError
        One line: what is allowed.
    """
    if isinstance(value, bool):
        raise ValueError(f"max_memory (--max-memory): {value!r} is not allowed; allowed: a "
                         "size such as 4GiB, 512MB or a number of bytes")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*",
                             str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(f"max_memory (--max-memory): {value!r} is not allowed; allowed: "
                             "a size such as 4GiB, 512MB, 2GB or a number of bytes")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = number * _UNITS[unit]
    if not math.isfinite(size) or size < 1:
        raise ValueError(f"max_memory (--max-memory): {value!r} is not allowed; allowed: a "
                         "positive size such as 4GiB")
    return int(size)


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (psutil, else ``os.sysconf``); None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # not installed, or no reading on this system
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def budget(max_memory: "int | float | str | None" = None) -> tuple[int | None, str]:
    """(bytes, where it comes from): ``max_memory`` parsed, else ``DEFAULT_FRACTION`` of
    physical memory (None when that is unknown: no check)."""
    if max_memory is not None:
        size = parse_size(max_memory)
        return size, f"--max-memory {format_bytes(size)}"
    total = physical_memory()
    if total is None:
        return None, "unknown physical memory"
    return int(DEFAULT_FRACTION * total), (f"{DEFAULT_FRACTION:.0%} of the "
                                           f"{format_bytes(total)} of physical memory")


# -- task shapes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Shape:
    row: int          # bytes of one training row of one replicate
    n_real: int
    test: int         # bytes of one replicate's test set
    stats: bool       # the family has sufficient statistics (``statistics``)
    draws_stats: bool  # ... and can draw them directly (``sample_statistics``)
    metrics: int = METRICS_PER_UNIT  # metrics a unit records


def _guess(params: dict) -> _Shape | None:
    """Shape from task parameters alone (float64 rows), None when they say nothing."""
    def num(key, default=None):
        value = params.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else default

    n_real = num("n_samples")
    if n_real is None and num("n_molecules") is not None:
        n_real = num("n_molecules") * (num("n_conformers", 1) or 1)
    if n_real is None:
        return None
    width = num("n_features") or ((num("context") + 1) if num("context") else 1)
    n_test = num("n_test")
    if n_test is None and num("n_test_molecules") is not None:
        n_test = num("n_test_molecules") * (num("n_conformers", 1) or 1)
    n_test = n_real if n_test is None else n_test
    return _Shape(8 * width, n_real, 8 * width * n_test, False, False)


def _probe(study, task_index: int, cache: dict, count: bool = True) -> _Shape | None:
    """The shape of ``study.tasks[task_index]``: built for one replicate, or guessed."""
    entry = study.tasks[task_index]
    key = json.dumps([entry.task, entry.task_params, entry.family, entry.family_params],
                     sort_keys=True, default=str)
    if key in cache:
        return cache[key]
    guess = _guess(entry.task_params)
    shape = guess
    if guess is None or guess.row * guess.n_real + guess.test <= PROBE_LIMIT_BYTES:
        try:
            from ..rng import Streams

            task = entry.build(Streams(study.seed, range(1)))
            model = task.make_model()
            real, test = task.real, task.test
            shape = _Shape(int(real[0, :1].nbytes) if real.shape[1] else 8, int(real.shape[1]),
                           int(test[0].nbytes),
                           hasattr(model, "statistics"), hasattr(model, "sample_statistics"),
                           _count_metrics(study, entry, task) if count else METRICS_PER_UNIT)
        except Exception:  # the run reports its own error; estimate from the parameters
            shape = guess
    cache[key] = shape
    return shape


def _probe_peak(study, entry, spec, replicates: int, iterations: int) -> int:
    """The traced peak (bytes) of building ``entry`` for ``replicates`` and running
    ``iterations`` model-fitting iterations of ``spec`` (as ``engine.unit.compute_unit``)."""
    import tracemalloc

    from threadpoolctl import threadpool_limits

    from ..rng import Streams
    from .loop import run_chain

    streams = Streams(study.seed, range(replicates))
    tracemalloc.start()
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            task = entry.build(streams)
            m = study.n_synthetic or task.n_real
            growth = spec.synthetic_growth or study.synthetic_growth
            run_chain(task, spec.build(), n_iterations=iterations,
                      n_synthetic=growth.sizes(m, study.n_iterations), streams=streams)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _measured(study, task_index: int, paradigm_index: int, cache: dict) -> float | None:
    """Bytes a replicate adds to the traced peak (``tracemalloc``) of building the task and
    running its chains under the paradigm, measured: the slope between ``PROBE_REPLICATES``
    replicates (what is fixed -- caches, imports -- cancels) of runs of 2 and 3 model-fitting
    iterations, extrapolated to ``n_iterations`` in proportion to the training-set capacity
    (the pool, and what grows with it: a KDE scores its test set against every training row).
    None for deep tasks (a fit takes seconds), while something else traces allocations, for a
    task too large to probe, or when the probe fails."""
    import tracemalloc

    entry = study.tasks[task_index]
    spec = study.paradigms[paradigm_index]
    T = study.n_iterations
    key = json.dumps(["measured", entry.task, entry.task_params, entry.family,
                      entry.family_params, spec.model_dump(mode="json"), T,
                      study.n_synthetic, study.synthetic_growth.model_dump(mode="json")],
                     sort_keys=True, default=str)
    if key in cache:
        return cache[key]
    guess = _guess(entry.task_params)
    out = None
    if "train_budget" not in entry.task_params and not tracemalloc.is_tracing() and (
            guess is None or guess.row * guess.n_real + guess.test <= PROBE_LIMIT_BYTES):
        try:
            a, b = PROBE_REPLICATES
            slopes = {}
            for t in sorted({min(T, 2), min(T, 3)}):
                slopes[t] = max(0.0, (_probe_peak(study, entry, spec, b, t)
                                      - _probe_peak(study, entry, spec, a, t)) / (b - a))
            out = slopes[min(T, 3)]
            if T > 3:
                shape = _probe(study, task_index, cache, False)
                n_real = shape.n_real if shape is not None else 1
                growth = spec.synthetic_growth or study.synthetic_growth
                sizes = growth.sizes(study.n_synthetic or n_real, T)
                cap = [n_real + sum(sizes[:t - 1]) for t in (2, 3, T)]
                # the chain's values grow by an iteration's metrics (a list entry and its
                # stacked copy: the results term counts them); the rest of the growth follows
                # the training-set capacity
                values = 2 * 8 * (shape.metrics if shape is not None else METRICS_PER_UNIT) + 8
                per_row = max(0.0, slopes[3] - slopes[2] - values) / max(cap[1] - cap[0], 1)
                out = slopes[3] + per_row * (cap[2] - cap[1])
            out *= MEASURE_MARGIN
        except Exception:  # the run reports its own error
            out = None
    cache[key] = out
    return out


def _count_metrics(study, entry, task) -> int:
    """Metrics a unit of this task records: one model-fitting iteration of one replicate under
    the study's first paradigm, plus ``METRIC_SLACK`` (curation and paradigm metrics); the
    ``METRICS_PER_UNIT`` bound for deep tasks (a fit takes seconds) or when that fails."""
    if "train_budget" in entry.task_params:
        return METRICS_PER_UNIT
    try:
        from ..rng import Streams
        from .loop import run_chain

        chain = run_chain(task, study.paradigms[0].build(), n_iterations=1,
                          streams=Streams(study.seed, range(1)))
        return len(chain.values) + METRIC_SLACK
    except Exception:
        return METRICS_PER_UNIT


# -- the estimate ---------------------------------------------------------------------------

def _unit(study, shape: _Shape, paradigm_index: int, n_seeds: int | None = None,
          build: bool = False, measured: float | None = None) -> tuple[dict[str, int], int]:
    """(per-unit terms, long-table rows) of one (task, paradigm) unit (of ``n_seeds``
    replicates: default the study's; every term is linear in it); ``build``: with the task
    build's and the metrics' temporaries (module docstring), from ``measured`` bytes a
    replicate (``_measured``) when known."""
    R, T = study.n_seeds if n_seeds is None else int(n_seeds), study.n_iterations
    spec = study.paradigms[paradigm_index]
    try:
        paradigm = spec.build()
    except Exception:
        paradigm = None
    m = study.n_synthetic or shape.n_real
    growth = spec.synthetic_growth or study.synthetic_growth
    sizes = growth.sizes(m, T) or [0]
    capacity = shape.n_real + sum(sizes)
    pool_kind = getattr(paradigm, "pool", None)
    curated = getattr(paradigm, "curation", None) is not None
    rows_kept = curated or (pool_kind is not None and (pool_kind == "rows" or not shape.stats))
    stats_only = shape.draws_stats and not rows_kept and not getattr(paradigm, "needs_rows", True)
    data = R * (shape.n_real * shape.row + shape.test)
    pool = R * capacity * (shape.row + (9 if curated else 0)) if rows_kept else 0
    batch = 0 if stats_only else R * max(sizes) * shape.row
    train_rows = capacity if rows_kept or pool_kind is not None else max(shape.n_real,
                                                                          max(sizes))
    train = 0 if stats_only else R * train_rows * shape.row
    terms = {"real and test data": data, "accumulated pool": pool, "synthetic batch": batch,
             "fit and evaluation working memory": int(WORK_FACTOR * (train + data))}
    if build:
        peak = int(BUILD_FACTOR * data) + R * BUILD_REPLICATE_BYTES
        if measured is not None:  # (small probes can miss what a replicate's Python objects
            peak = max(peak, int(math.ceil(R * measured)))  # cost: never below the build's)
        terms["build and evaluation temporaries"] = max(0, peak - sum(terms.values()))
    return terms, R * T * shape.metrics


def _block_result_bytes(study, shape: _Shape) -> int:
    """Bytes of one replicate's arrays in a block's result: T x (8 M values + 8 status)."""
    return study.n_iterations * (8 * shape.metrics + 8)


def _blocks_alive(jobs: int, concurrent: int) -> int:
    """Blocks' results alive at once: in this process (``jobs`` 1), the block's values as the
    chain builds them and stacked; with workers, one in each worker, its copy arriving here
    and the ``jobs + 1`` running or waiting to be handed over."""
    return 2 if jobs <= 1 else 2 * concurrent + 1


def _processes(studies, concurrent: int, jobs: int) -> int:
    deep = any("train_budget" in entry.task_params for study in studies
               for entry in study.tasks)
    per_process = TORCH_BYTES if deep else 0
    return BASE_BYTES + per_process + (
        (WORKER_BYTES + per_process) * concurrent if jobs > 1 else 0)


def estimate(studies, *, jobs: int = 1, count_metrics: bool = True,
             block_size: int | None = None, measure: bool = True) -> Estimate:
    """An upper bound on the peak memory of running ``studies`` (a ``Study`` or the points of a
    sweep) with ``jobs`` units at a time (see the module docstring).  ``count_metrics=False``
    takes ``METRICS_PER_UNIT`` metrics a unit instead of counting them (faster, larger).
    ``block_size``: the units run in blocks of that many replicates, handed over, not
    collected (``run_units(on_block=...)``): the peak no longer grows with ``n_seeds`` (what
    the caller keeps of the blocks is not counted); ``measure``: the build and evaluation
    temporaries of blocks measured by small probes (``_measured``; a second or so), else from
    ``BUILD_FACTOR``.

    Raises nothing for a study that validates: a task that cannot be built is estimated from
    its parameters (the run then reports its error).
    """
    if not isinstance(studies, Sequence):
        studies = [studies]
    return _estimate(studies, jobs, count_metrics, block_size, {}, measure=measure)


def _estimate(studies, jobs: int, count_metrics: bool, block_size: int | None,
              cache: dict, measure: bool) -> Estimate:
    """``estimate`` with the probes' ``cache`` shared across calls; ``measure``: with the
    measured temporaries (``_measured``), else ``BUILD_FACTOR``'s."""
    peak_unit: dict[str, int] = {}
    rows = units = block = 0
    for study in studies:
        size = study.n_seeds if block_size is None else min(int(block_size), study.n_seeds)
        for i in range(len(study.tasks)):
            shape = _probe(study, i, cache, count_metrics)
            for j in range(len(study.paradigms)):
                units += 1 if block_size is None else -(-study.n_seeds // size)
                if shape is None:
                    continue
                measured = _measured(study, i, j, cache) \
                    if block_size is not None and measure else None
                terms, n_rows = _unit(study, shape, j, size, build=block_size is not None,
                                      measured=measured)
                rows += n_rows
                block = max(block, size * _block_result_bytes(study, shape))
                if sum(terms.values()) > sum(peak_unit.values()):
                    peak_unit = terms
    concurrent = max(1, min(int(jobs), units))
    terms = {k: concurrent * v for k, v in peak_unit.items()}
    terms["processes"] = _processes(studies, concurrent, jobs)
    if block_size is None:
        terms["results"] = rows * RESULT_ROW_BYTES
        detail = {"results": f"{rows:,} result rows x {RESULT_ROW_BYTES} B"}
    else:
        alive = _blocks_alive(jobs, concurrent)
        terms["results"] = alive * block
        detail = {"results": f"{alive} blocks of {format_bytes(block)} alive"}
    if concurrent > 1:
        detail.update({k: f"{concurrent} units at a time" for k in peak_unit})
    return Estimate(int(sum(terms.values())), terms, detail)


def block_size_for(studies, budget_bytes: "int | float | str", *, jobs: int = 1,
                   count_metrics: bool = True, measure: bool = False) -> int:
    """The largest block of replicates (``run_units(block_size=...)``) whose ``estimate(...,
    block_size=B, jobs=jobs)`` fits ``budget_bytes``, at most ``n_seeds`` (the largest of the
    studies').

    By default (``measure=False``) a function of the studies, ``budget_bytes`` and ``jobs``
    alone -- the same on every machine, traced or not: the task shapes and metric counts come
    from building and running one replicate, the build and evaluation temporaries from
    ``BUILD_FACTOR`` (which undercounts metrics whose temporaries do not scale with the data,
    e.g. k-NN sample metrics, ~30-60 KB a replicate).  ``measure=True`` uses the measured
    temporaries (``_measured``, as ``estimate`` does): tighter, but it depends on this
    machine's library versions and on whether ``tracemalloc`` is already tracing, so a block
    size that decides how results are merged must not use it.

    Each replicate of a block costs ``jobs`` x (its unit's data, pool, batch, working memory and
    build / evaluation temporaries) + (2 ``jobs`` + 1, or 2 in this process) x T x (8 M + 8)
    bytes of results (module docstring), on top of the processes' fixed bytes.

    Raises
    ------
    MemoryBudgetError
        Not even one replicate at a time fits (one line).
    ValueError
        ``budget_bytes`` is not a size (``parse_size``).
    """
    if not isinstance(studies, Sequence):
        studies = [studies]
    limit = parse_size(budget_bytes)
    jobs = max(1, int(jobs))
    cache: dict = {}

    def fits(b: int) -> bool:
        return _estimate(studies, jobs, count_metrics, b, cache, measure).total <= limit

    most = max(study.n_seeds for study in studies)
    if not fits(1):
        one = _estimate(studies, jobs, count_metrics, 1, cache, measure)
        raise MemoryBudgetError(
            f"memory: a block of one replicate needs {format_bytes(one.total)} at its peak "
            f"({one}), over the budget of {format_bytes(limit)}; raise --max-memory "
            "(max_memory=) or reduce --jobs")
    lo, hi = 1, most  # fits(lo); the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def check(studies, *, max_memory: "int | float | str | None" = None,
          jobs: int = 1, block_size: int | None = None) -> Estimate:
    """``estimate(studies, jobs=jobs, block_size=block_size)``, refused when over
    ``budget(max_memory)``.

    Raises
    ------
    MemoryBudgetError
        One line: the estimate, the budget, the largest term and what to reduce.
    ValueError
        ``max_memory`` is not a size.
    """
    limit, source = budget(max_memory)
    est = estimate(studies, jobs=jobs, count_metrics=False, block_size=block_size)
    if limit is not None and est.total > limit:  # count the metrics: a tighter bound
        est = estimate(studies, jobs=jobs, block_size=block_size)
    if limit is not None and est.total > limit:
        name, size = est.largest
        how = f" ({est.detail[name]})" if name in est.detail else ""
        raise MemoryBudgetError(
            f"memory: this run needs {format_bytes(est.total)} at its peak (an upper-bound "
            f"estimate), over the budget of {format_bytes(limit)} ({source}); the largest term "
            f"is {name}: {format_bytes(size)}{how}; reduce {_REDUCE[name]}, or raise "
            "--max-memory (max_memory=) if this machine has the memory")
    return est
