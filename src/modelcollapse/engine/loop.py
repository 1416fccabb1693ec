"""The model-fitting loop for R replicate chains of one (task, paradigm).

    for t in 0 .. n_iterations-1:
        training set <- paradigm(t)            (parts of: real pool, latest batch, accumulated pool)
        fit model t                            (on data, or on merged sufficient statistics)
        record metrics, provenance, status
        synthetic batch t <- sample(model t)   (n_synthetic samples; not after the last iteration)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..families.base import STATUS_OK
from ..rng import Role, Streams
from ..tasks.base import Task
from .paradigms import ChainView, Part

__all__ = ["ChainResult", "run_chain"]


@dataclass
class ChainResult:
    """Metrics of R chains: ``values[name]`` has shape (n_iterations, R); ``status`` too (str)."""

    values: dict[str, np.ndarray]
    status: np.ndarray


def _gather(array: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    if rows is None:
        return array
    return array[np.arange(array.shape[0])[:, None], rows]


class _Pool:
    """The accumulated pool: real rows first, then synthetic batches in order.

    Keeps the rows only when a paradigm or family needs them (preallocated once), and the running
    sufficient statistics only when the family has them.
    """

    def __init__(self, real: np.ndarray, capacity: int, keep_rows: bool, stats) -> None:
        self.n_real = self.size = real.shape[1]
        self.rows = None
        if keep_rows:
            self.rows = np.empty((real.shape[0], capacity) + real.shape[2:], dtype=real.dtype)
            self.rows[:, :self.n_real] = real
        self.stats = stats

    def append(self, batch: np.ndarray | None, size: int, combine, batch_stats) -> None:
        if self.rows is not None:
            if batch.dtype != self.rows.dtype:
                self.rows = self.rows.astype(np.result_type(self.rows, batch))
            self.rows[:, self.size:self.size + size] = batch
        if self.stats is not None:
            self.stats = combine(self.stats, batch_stats)
        self.size += size

    def data(self) -> np.ndarray:
        return self.rows[:, :self.size]


def run_chain(task: Task, paradigm, *, n_iterations: int, n_synthetic: int | None = None,
              streams: Streams, on_iteration: Callable[[int], None] | None = None) -> ChainResult:
    """Run R chains (one per replicate stream) of one paradigm on one task.

    Parameters
    ----------
    task : Task
        Built for the same replicates as ``streams``.
    paradigm : Replace | Accumulate | AccumulateSubsample | Mix | any object with ``parts(view)``
    n_iterations : int
        Model-fitting iterations 0 .. n_iterations-1.
    n_synthetic : int, optional
        Synthetic samples drawn from each model (default: the real sample size n).
    streams : Streams
        Random streams, one per replicate.
    on_iteration : callable, optional
        Called with t after each model-fitting iteration (progress bars).

    Returns
    -------
    ChainResult with every metric of ``task.evaluate`` plus ``n_train``, ``n_real``,
    ``n_synthetic`` and ``synthetic_to_real_ratio`` (inf when no real data is trained on).
    """
    n_real = task.n_real
    m = n_real if n_synthetic is None else int(n_synthetic)
    R = task.n_replicates
    model = task.make_model()
    use_stats = hasattr(model, "statistics")
    stats_of = model.statistics if use_stats else None
    combine = getattr(model, "combine", None)
    real_stats = stats_of(task.real) if use_stats else None
    pool_kind = getattr(paradigm, "pool", None)
    pool = None
    if pool_kind is not None:
        pool = _Pool(task.real, n_real + m * max(n_iterations - 1, 0),
                     keep_rows=pool_kind == "rows" or not use_stats,
                     stats=real_stats if use_stats and pool_kind == "stats" else None)
    # when the paradigm never selects synthetic rows, a family that can draw the sufficient
    # statistics of a sample directly (same distribution, O(d^2) instead of O(n d)) does so
    stats_only = (use_stats and hasattr(model, "sample_statistics")
                  and not getattr(paradigm, "needs_rows", True) and pool_kind != "rows")
    latest = latest_stats = None
    latest_size = 0
    values: dict[str, list[np.ndarray]] = {}
    status = np.empty((n_iterations, R), dtype=object)

    for t in range(n_iterations):
        view = ChainView(t, n_real, n_real if pool is None else pool.size, latest_size, streams,
                         task.sample_real)
        parts = paradigm.parts(view)
        n_from_real = n_from_synthetic = 0
        pieces = []  # (data or None, stats or None)
        for part in parts:
            if part.source == "real":
                source, cached = task.real, real_stats
            elif part.source == "latest":
                if use_stats and latest_stats is None and part.rows is None:
                    latest_stats = stats_of(latest)
                source, cached = latest, latest_stats
            elif part.source == "pool":
                source, cached = (pool.data() if pool.rows is not None else None), pool.stats
            else:
                source, cached = part.data, None
            if part.rows is not None:
                k = part.rows.shape[1]
            elif part.source == "pool":
                k = pool.size
            elif part.source == "latest":
                k = latest_size
            else:
                k = source.shape[1]
            n_real_part = k
            if part.source == "pool":  # pool rows below n_real are real (per replicate)
                n_real_part = n_real if part.rows is None else (part.rows < n_real).sum(1)
            if part.source in ("real", "fresh", "pool"):
                n_from_real += n_real_part
                n_from_synthetic += k - n_real_part
            else:
                n_from_synthetic += k
            if use_stats and part.rows is None and cached is not None:
                pieces.append((None, cached))
            else:
                data = _gather(source, part.rows)
                pieces.append((data, stats_of(data) if use_stats else None))

        if use_stats:
            stats = pieces[0][1]
            for _, s in pieces[1:]:
                stats = combine(stats, s)
            model.fit_statistics(stats)
        else:
            X = np.concatenate([d for d, _ in pieces], axis=1) if len(pieces) > 1 else pieces[0][0]
            model.fit(X, rngs=streams(t, Role.FIT))

        metrics = dict(task.evaluate(model))
        n_from_real = np.broadcast_to(np.asarray(n_from_real, dtype=float), (R,))
        n_from_synthetic = np.broadcast_to(np.asarray(n_from_synthetic, dtype=float), (R,))
        metrics["n_train"] = n_from_real + n_from_synthetic
        metrics["n_real"] = n_from_real
        metrics["n_synthetic"] = n_from_synthetic
        with np.errstate(divide="ignore", invalid="ignore"):
            metrics["synthetic_to_real_ratio"] = np.where(
                n_from_real > 0, n_from_synthetic / np.where(n_from_real > 0, n_from_real, 1), np.inf)
        for name, v in metrics.items():
            values.setdefault(name, []).append(np.asarray(v, dtype=float))
        st = np.asarray(model.status_, dtype=object)
        bad = ~np.all([np.isfinite(v) | np.isinf(v) for v in metrics.values()], axis=0)
        status[t] = np.where((st == STATUS_OK) & bad, "nan_metric", st)

        if t < n_iterations - 1:
            rngs = streams(t, Role.SAMPLE)
            latest_size = m
            if stats_only:
                latest, latest_stats = None, model.sample_statistics(m, rngs=rngs)
            else:
                latest, latest_stats = model.sample(m, rngs=rngs), None
            if pool is not None:
                if pool.stats is not None and latest_stats is None:
                    latest_stats = stats_of(latest)
                pool.append(latest, m, combine, latest_stats)
        if on_iteration is not None:
            on_iteration(t)

    return ChainResult({k: np.stack(v) for k, v in values.items()}, status)
