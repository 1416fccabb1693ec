"""The curated data pool: the engine's data sources when a paradigm has curation policies or
ecosystem settings (real arrivals, scraping).  The policies themselves are in
``modelcollapse.curation``."""

from __future__ import annotations

import numpy as np

from ..curation.base import Batch, Context, Curation
from ..rng import Role

__all__ = ["CuratedPool"]


class CuratedPool:
    """The engine's data sources when a paradigm has curation or ecosystem settings.

    Rows are always kept, with per-row weights (R, cap), true origin (cap,) -- -1 for real
    rows, k for rows sampled from model k -- and believed provenance (R, cap).  The pool is real
    rows first (``initial_real`` of them), then per iteration the incoming block: the synthetic
    batch of the latest model followed by the real rows arriving at that iteration.  ``latest``
    is the latest incoming block; ``real`` the real rows that have arrived so far.
    """

    def __init__(self, task, model, curation: Curation, capacity: int, n_iterations: int,
                 streams) -> None:
        self.task, self.curation, self.streams = task, curation, streams
        R, n = task.real.shape[:2]
        k = curation.real_arrival
        n0 = curation.initial_real if curation.initial_real is not None else n - k * max(
            n_iterations - 1, 0)
        if n0 < 2 or n0 + k * max(n_iterations - 1, 0) > n:
            raise ValueError(f"initial_real / real_arrival: {n0} initial real rows plus {k} per "
                             f"iteration for {n_iterations} iterations exceed the {n} real rows "
                             "of the task (or leave fewer than 2 to start from)")
        self.n0, self.next_real = n0, n0
        capacity = n0 + capacity - n + k * max(n_iterations - 1, 0)
        self.rows = np.empty((R, capacity) + task.real.shape[2:], dtype=task.real.dtype)
        self.weight = np.zeros((R, capacity))
        self.origin = np.full(capacity, -1, dtype=np.int64)
        self.believed = np.zeros((R, capacity), dtype=bool)
        self.rows[:, :n0] = task.real[:, :n0]
        self.weight[:, :n0] = 1.0
        ctx = Context(0, task, streams, labelled=not curation.scraping)
        for policy in curation.policies:
            policy.prepare(ctx)
        self.real_metrics: dict[str, np.ndarray] = {}
        for policy in curation.stage("real"):
            batch = Batch(task.real[:, :n0], self.weight[:, :n0], np.zeros(n0, bool),
                          np.zeros((R, n0), bool))
            self.weight[:, :n0], got = policy.apply(batch, ctx)
            self.real_metrics.update(got)
        self.size, self.latest = n0, slice(n0, n0)
        self.incoming_metrics: dict[str, np.ndarray] = {}

    @property
    def real_index(self) -> np.ndarray:
        return np.flatnonzero(self.origin[:self.size] == -1)

    @property
    def n_available_real(self) -> int:
        return int((self.origin[:self.size] == -1).sum())

    def add_batch(self, model, m: int, t: int) -> None:
        """Sample model t's batch, add the arriving real rows, curate, append to the pool."""
        # the same draws as an uncurated chain's batch t (block draws where the family has them)
        rngs = (self.streams.batch(t, Role.SAMPLE) if getattr(model, "block_draws", False)
                else self.streams(t, Role.SAMPLE))
        X = np.asarray(model.sample(m, rngs=rngs))
        k = self.curation.real_arrival
        arriving = self.task.real[:, self.next_real:self.next_real + k]
        self.next_real += k
        block = np.concatenate([X.astype(self.rows.dtype, copy=False), arriving], axis=1)
        synthetic = np.r_[np.ones(m, bool), np.zeros(k, bool)]
        R = block.shape[0]
        batch = Batch(block, np.ones((R, m + k)), synthetic,
                      np.broadcast_to(synthetic, (R, m + k)).copy() if not self.curation.scraping
                      else np.zeros((R, m + k), bool))
        ctx = Context(t, self.task, self.streams, model, labelled=not self.curation.scraping)
        metrics: dict[str, np.ndarray] = {}
        for policy in self.curation.stage("incoming"):
            batch.weight, got = policy.apply(batch, ctx)
            metrics.update(got)
        a, b = self.size, self.size + m + k
        self.rows[:, a:b], self.weight[:, a:b] = block, batch.weight
        self.origin[a:b] = np.where(synthetic, t, -1)
        self.believed[:, a:b] = batch.believed
        self.size, self.latest = b, slice(a, b)
        self.incoming_metrics = metrics

    def view_sizes(self) -> tuple[int, int, int]:
        """(n_real available, pool size, latest size) for the paradigm's ChainView."""
        return self.n_available_real, self.size, self.latest.stop - self.latest.start

    def _index(self, part) -> tuple[np.ndarray, np.ndarray | None]:
        """Pool indices of a part: (R, k) or (k,) for all replicates."""
        base = {"real": self.real_index, "latest": np.arange(self.latest.start, self.latest.stop),
                "pool": np.arange(self.size)}[part.source]
        return base if part.rows is None else base[part.rows]

    def training_set(self, parts, t: int):
        """Resolve the paradigm's parts and apply the training-stage policies.

        Returns X (R, N, ...), weights (R, N), from_real (R,), from_synthetic (R,) -- live rows
        (weight > 0) by true provenance -- and the metrics of this iteration's curation and
        provenance ledger (``synthetic_from_<k>``: live rows sampled from model k)."""
        R = self.rows.shape[0]
        Xs, ws, origins, believed = [], [], [], []
        for part in parts:
            if part.source == "fresh":
                k = part.data.shape[1]
                Xs.append(part.data)
                ws.append(np.full((R, k), part.weight))
                origins.append(np.full((R, k), -1))
                believed.append(np.zeros((R, k), bool))
                continue
            idx = self._index(part)
            idx = np.broadcast_to(idx, (R, idx.shape[-1]))
            take = (np.arange(R)[:, None], idx)
            Xs.append(self.rows[take])
            ws.append(self.weight[take] * part.weight)
            origins.append(self.origin[idx])
            believed.append(self.believed[take])
        X, w = np.concatenate(Xs, axis=1), np.concatenate(ws, axis=1)
        origin, bel = np.concatenate(origins, axis=1), np.concatenate(believed, axis=1)
        ctx = Context(t, self.task, self.streams, labelled=not self.curation.scraping)
        metrics = dict(self.real_metrics)
        if t > 0:
            metrics.update(self.incoming_metrics)
        for policy in self.curation.stage("training"):
            batch = Batch(X, w, None, bel)
            w, got = policy.apply(batch, ctx)
            metrics.update(got)
        live = w > 0
        from_real = (live & (origin < 0)).sum(1).astype(float)
        from_synthetic = (live & (origin >= 0)).sum(1).astype(float)
        for k in range(t):  # every batch so far, 0 once it has left the training set
            metrics[f"synthetic_from_{int(k)}"] = (live & (origin == k)).sum(1).astype(float)
        if self.curation.scraping:
            metrics["believed_synthetic"] = (live & bel).sum(1).astype(float)
        metrics["real_weight_share"] = (np.where(origin < 0, w, 0).sum(1)
                                        / np.maximum(w.sum(1), 1e-300))
        return X, w, from_real, from_synthetic, metrics
