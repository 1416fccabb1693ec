"""The model-fitting loop for R replicate chains of one (task, paradigm).

    for t in 0 .. n_iterations-1:
        training set <- paradigm(t)            (parts of: real pool, latest batch, accumulated pool)
        fit model t                            (on data, or on merged sufficient statistics)
        record metrics, provenance, status
        synthetic batch t <- sample(model t)   (n_synthetic samples; not after the last iteration)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..families.base import STATUS_OK
from ..rng import Role, Streams
from ..tasks.base import Task
from ..paradigms import ChainView, Part

__all__ = ["ChainResult", "run_chain"]


@dataclass
class ChainResult:
    """Metrics of R chains: ``values[name]`` has shape (n_iterations, R); ``status`` too (str)."""

    values: dict[str, np.ndarray]
    status: np.ndarray


class _Sources:
    """What training-set parts refer to: the real pool, the latest synthetic batch and the
    accumulated pool (real rows first, then synthetic batches in order).

    Rows are kept only when a paradigm selects rows or the family has no sufficient statistics
    (the pool buffer is preallocated once); otherwise only running statistics are kept, and a
    family that can draw the statistics of a sample directly (same distribution, O(d^2) instead
    of O(n d)) never materialises synthetic data at all.
    """

    def __init__(self, task: Task, model, paradigm, capacity: int) -> None:
        self.real, self.n_real = task.real, task.n_real
        self.stats_of = getattr(model, "statistics", None)
        self.combine = getattr(model, "combine", None)
        self.real_stats = self.stats_of(task.real) if self.stats_of else None
        pool_kind = getattr(paradigm, "pool", None)
        self.stats_only = (self.stats_of is not None and hasattr(model, "sample_statistics")
                           and not getattr(paradigm, "needs_rows", True) and pool_kind != "rows")
        self.latest = self.latest_stats = None
        self.latest_size = 0
        self.pool_size = self.n_real
        self.pool_rows = self.pool_stats = None
        if pool_kind is not None and (pool_kind == "rows" or self.stats_of is None):
            row_bytes = self.real[:, :1].nbytes
            if capacity * row_bytes > MAX_POOL_BYTES:
                raise ValueError(
                    f"the accumulated pool would hold {capacity} rows x {self.real.shape[0]} "
                    f"replicates = {capacity * row_bytes / 2**30:.1f} GiB (limit "
                    f"{MAX_POOL_BYTES / 2**30:.0f} GiB); lower n_seeds, n_iterations, "
                    "n_synthetic or the synthetic growth rate")
            self.pool_rows = np.empty((self.real.shape[0], capacity) + self.real.shape[2:],
                                      dtype=self.real.dtype)
            self.pool_rows[:, :self.n_real] = self.real
        if pool_kind == "stats" and self.stats_of is not None:
            self.pool_stats = self.real_stats

    def add_batch(self, model, m: int, rngs) -> None:
        """Draw the next synthetic batch (or just its statistics) and add it to the pool."""
        if self.stats_only:
            self.latest, self.latest_stats = None, model.sample_statistics(m, rngs=rngs)
        else:
            self.latest, self.latest_stats = model.sample(m, rngs=rngs), None
        self.latest_size = m
        if self.pool_rows is not None:
            if self.latest.dtype != self.pool_rows.dtype:
                self.pool_rows = self.pool_rows.astype(np.result_type(self.pool_rows, self.latest))
            self.pool_rows[:, self.pool_size:self.pool_size + m] = self.latest
        if self.pool_stats is not None:
            self.pool_stats = self.combine(self.pool_stats, self._latest_stats())
        self.pool_size += m

    def _latest_stats(self):
        if self.latest_stats is None:
            self.latest_stats = self.stats_of(self.latest)
        return self.latest_stats

    def resolve(self, part: Part):
        """(n_real, n_synthetic, data or None, statistics or None, weights or None) of a part."""
        if part.source == "real":
            data, stats, size = self.real, self.real_stats, self.n_real
        elif part.source == "latest":
            data, size = self.latest, self.latest_size
            stats = self._latest_stats() if self.stats_of and part.rows is None else None
        elif part.source == "pool":
            data, stats, size = None, self.pool_stats, self.pool_size
            if self.pool_rows is not None:
                data = self.pool_rows[:, :self.pool_size]
        else:  # fresh real data drawn by the paradigm
            data, stats, size = part.data, None, part.data.shape[1]
        k = size if part.rows is None else part.rows.shape[1]
        if part.source == "latest":
            n_real = 0
        elif part.source == "pool":  # pool rows below n_real are real (per replicate)
            n_real = self.n_real if part.rows is None else (part.rows < self.n_real).sum(1)
        else:
            n_real = k
        weights = None if part.weight == 1.0 else np.full((self.real.shape[0], k), part.weight)
        if part.rows is None and weights is None and (stats is not None or self.stats_of is None):
            return n_real, k - n_real, data, stats, None
        data = data[np.arange(data.shape[0])[:, None], part.rows] if part.rows is not None else data
        stats = self.stats_of(data, weights) if self.stats_of else None
        return n_real, k - n_real, data, stats, weights


#: statuses from which a chain cannot leave: a point mass refits to itself forever
ABSORBING = ("single_outcome", "zero_variance")
MAX_POOL_BYTES = 8 * 2**30


def run_chain(task: Task, paradigm, *, n_iterations: int,
              n_synthetic: int | Sequence[int] | None = None, streams: Streams,
              on_iteration: Callable[[int], None] | None = None,
              stop_when_collapsed: bool = False, checkpoint=None) -> ChainResult:
    """Run R chains (one per replicate stream) of one paradigm on one task.

    Parameters
    ----------
    task : Task
        Built for the same replicates as ``streams``.
    paradigm : Replace | Accumulate | AccumulateSubsample | Mix | any object with ``parts(view)``
    n_iterations : int
        Model-fitting iterations 0 .. n_iterations-1.
    n_synthetic : int or sequence of int, optional
        Synthetic samples drawn from each model (default: the real sample size n); a sequence
        gives the size of the batch drawn after each iteration 0 .. n_iterations-2 (synthetic
        growth schedules).
    stop_when_collapsed : bool
        End early, after the first iteration at which every replicate's status is absorbing
        (``ABSORBING``); the result then has fewer iterations.
    streams : Streams
        Random streams, one per replicate.
    on_iteration : callable, optional
        Called with t after each model-fitting iteration (progress bars); on resume, first for
        each iteration restored from the checkpoint.
    checkpoint : UnitCheckpoint, optional
        Where to save the chain state after model-fitting iterations (``due()`` decides when;
        ``modelcollapse.results.checkpoint``) and to resume from: if it holds a state, the chain
        continues after its last iteration, with results identical to an uninterrupted run.
        A model whose ``fit`` reads state left by its previous fit must offer ``get_state`` /
        ``set_state`` (see ``families.base``) to be checkpointed; otherwise (``get_state``
        raising ``NotImplementedError``) nothing is saved and a resumed unit starts again at
        iteration 0 (same results: the random streams are counter-based).

    Returns
    -------
    ChainResult with every metric of ``task.evaluate`` plus ``n_train``, ``n_real``,
    ``n_synthetic`` and ``synthetic_to_real_ratio`` (inf when no real data is trained on), and
    the task's real-data learning curve ``reference_<metric>_n<N>`` (``Task.learning_curve``;
    one value per chain, repeated at every iteration).
    """
    R, n_real = task.n_replicates, task.n_real
    if n_synthetic is None or np.ndim(n_synthetic) == 0:
        m = n_real if n_synthetic is None else int(n_synthetic)
        sizes = [m] * max(n_iterations - 1, 0)
    else:
        sizes = [int(k) for k in n_synthetic]
        if len(sizes) < n_iterations - 1:
            raise ValueError(f"n_synthetic: {len(sizes)} batch sizes for {n_iterations} "
                             f"iterations; need {n_iterations - 1}")
    model = task.make_model()
    capacity = n_real + sum(sizes[:max(n_iterations - 1, 0)])
    curation = getattr(paradigm, "curation", None)
    if curation is not None:
        from .curation import CuratedPool

        sources = CuratedPool(task, model, curation, capacity, n_iterations, streams)
        # a curated pool is not checkpointed: a resumed curated unit reruns from iteration 0,
        # with identical results (the random streams are counter-based)
        checkpoint = None
    else:
        sources = _Sources(task, model, paradigm, capacity=capacity)
    values: dict[str, list[np.ndarray]] = {}
    ledger: list[dict[str, np.ndarray]] = []  # curation and provenance metrics (may be NaN)
    status = np.empty((n_iterations, R), dtype=object)
    start, saveable = 0, True
    if checkpoint is not None:
        saved = checkpoint.load_state()
        if saved is not None:
            start = _restore(*saved, values, status, sources, model)
            for t in range(start):
                if on_iteration is not None:
                    on_iteration(t)

    for t in range(start, n_iterations):
        # 1. training set: the paradigm's parts, resolved to data or sufficient statistics
        if curation is not None:
            view = ChainView(t, *sources.view_sizes(), streams, task.sample_real)
            X, weights, from_real, from_synthetic, extra = sources.training_set(
                paradigm.parts(view), t)
            ledger.append(extra)
            # 2. fit (always on rows here: curation needs them)
            if hasattr(model, "fit_statistics") and hasattr(model, "statistics"):
                model.fit_statistics(model.statistics(X, weights))
            else:
                model.fit(X, sample_weight=weights, rngs=streams(t, Role.FIT))
        else:
            view = ChainView(t, n_real, sources.pool_size, sources.latest_size, streams,
                             task.sample_real)
            pieces = [sources.resolve(part) for part in paradigm.parts(view)]
            # 2. fit
            if sources.stats_of is not None:
                stats = pieces[0][3]
                for piece in pieces[1:]:
                    stats = sources.combine(stats, piece[3])
                model.fit_statistics(stats)
            else:
                X = np.concatenate([p[2] for p in pieces], axis=1)
                weights = None
                if any(p[4] is not None for p in pieces):
                    weights = np.concatenate([p[4] if p[4] is not None
                                              else np.ones(p[2].shape[:2]) for p in pieces], axis=1)
                model.fit(X, sample_weight=weights, rngs=streams(t, Role.FIT))
            from_real = np.sum([p[0] for p in pieces], axis=0, dtype=float)
            from_synthetic = np.sum([p[1] for p in pieces], axis=0, dtype=float)
        # 3. record metrics, provenance and status
        metrics = dict(task.evaluate(model, t))
        from_real = np.broadcast_to(from_real, (R,))
        from_synthetic = np.broadcast_to(from_synthetic, (R,))
        metrics["n_train"] = from_real + from_synthetic
        metrics["n_real"] = from_real
        metrics["n_synthetic"] = from_synthetic
        with np.errstate(divide="ignore", invalid="ignore"):
            metrics["synthetic_to_real_ratio"] = np.where(
                from_real > 0, from_synthetic / np.where(from_real > 0, from_real, 1), np.inf)
        nan = np.zeros(R, dtype=bool)
        for name, v in metrics.items():
            # a copy: a metric may be a view of the model's state, which the next fit updates
            # in place (a regressor family's noise_variance_ was recorded as its last value)
            v = np.array(v, dtype=float)
            values.setdefault(name, []).append(v)
            nan |= np.isnan(v)
        st = np.asarray(model.status_, dtype=object)
        status[t] = np.where((st == STATUS_OK) & nan, "nan_metric", st)
        if on_iteration is not None:
            on_iteration(t)
        if stop_when_collapsed and np.isin(status[t], ABSORBING).all():
            status = status[:t + 1]
            break
        # 4. sample the next synthetic batch (not after the last iteration)
        if t < n_iterations - 1:
            if curation is not None:
                sources.add_batch(model, sizes[t], t)
            elif getattr(model, "block_draws", False):  # one call for all replicates
                sources.add_batch(model, sizes[t], streams.batch(t, Role.SAMPLE))
            else:
                sources.add_batch(model, sizes[t], streams(t, Role.SAMPLE))
            if checkpoint is not None and checkpoint.due(
                    sources.pool_rows, n_real, sources.pool_size) and saveable:
                state = _capture(t + 1, values, status, sources, model)
                if state is None:  # the model cannot be checkpointed: never try again
                    saveable = False
                else:
                    checkpoint.save_state(state, sources.pool_rows, n_real, sources.pool_size)

    for name in dict.fromkeys(k for row in ledger for k in row):  # NaN where not applicable
        values[name] = [np.broadcast_to(np.asarray(row.get(name, np.nan), dtype=float), (R,))
                        for row in ledger]
    # the real-data learning curve (Def. 5): a property of each chain's real pool, the same value
    # at every iteration (the table stays complete); it never sets a status, and a resumed chain
    # recomputes it (same streams, same numbers)
    curve = task.learning_curve(streams) if hasattr(task, "learning_curve") else {}
    for name, v in curve.items():
        values[name] = [np.asarray(v, dtype=float)] * len(status)
    return ChainResult({k: np.stack(v) for k, v in values.items()}, status)


# -- checkpoints -------------------------------------------------------------------------------

def _model_state(model) -> dict[str, np.ndarray] | None:
    """What the next fit needs of the model: {} when its fit reads nothing left by an earlier
    fit (``stateless_fit``), its ``get_state()``, or None if it cannot be saved."""
    if getattr(model, "stateless_fit", False):
        return {}
    get_state = getattr(model, "get_state", None)
    if get_state is None:
        return None
    try:
        return get_state()
    except NotImplementedError:
        return None


def _capture(n_done: int, values, status, sources: _Sources, model) -> dict | None:
    """The chain state after ``n_done`` model-fitting iterations and the batch drawn after the
    last of them, as flat arrays (no objects: loadable without pickle)."""
    model_state = _model_state(model)
    if model_state is None:
        return None
    names = list(values)
    state = {
        "n_done": np.array(n_done),
        "metric_names": np.array(names, dtype=str),
        "values": np.stack([np.stack(values[k]) for k in names]),     # (M, n_done, R)
        "status": status[:n_done].astype(str),                          # (n_done, R)
        "latest_size": np.array(sources.latest_size),
        "pool_size": np.array(sources.pool_size),
    }
    if sources.pool_rows is not None:
        state["pool_dtype"] = np.array(sources.pool_rows.dtype.str)
    if sources.latest is not None:
        state["latest"] = sources.latest
    elif sources.latest_stats is not None:
        state.update({f"latest_stats.{k}": v for k, v in sources.latest_stats.items()})
    if sources.pool_stats is not None:
        state.update({f"pool_stats.{k}": v for k, v in sources.pool_stats.items()})
    state.update({f"model.{k}": np.asarray(v) for k, v in model_state.items()})
    return state


def _prefixed(state: dict, prefix: str) -> dict | None:
    out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return out or None


def _restore(state: dict, pool: np.ndarray | None, values, status, sources: _Sources,
             model) -> int:
    """Put a captured chain state back; returns the number of iterations done."""
    n_done = int(state["n_done"])
    for name, v in zip(state["metric_names"].tolist(), state["values"]):
        values[name] = list(v)
    status[:n_done] = state["status"].astype(object)
    sources.latest = state.get("latest")
    sources.latest_stats = _prefixed(state, "latest_stats.")
    sources.latest_size = int(state["latest_size"])
    sources.pool_size = int(state["pool_size"])
    pool_stats = _prefixed(state, "pool_stats.")
    if pool_stats is not None:
        sources.pool_stats = pool_stats
    if sources.pool_rows is not None:
        dtype = np.dtype(str(state["pool_dtype"]))
        if sources.pool_rows.dtype != dtype:
            sources.pool_rows = sources.pool_rows.astype(dtype)
        if pool is not None:
            sources.pool_rows[:, sources.n_real:sources.n_real + pool.shape[1]] = pool
    model_state = _prefixed(state, "model.")
    if model_state is not None:
        model.set_state(model_state)
    return n_done
