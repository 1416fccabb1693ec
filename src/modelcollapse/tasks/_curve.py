"""A real-data learning curve whose repeats are fitted as one batch (same numbers, fewer calls).

``tasks.base.LearningCurve.compute`` fits ``repeats`` models of R replicates per size, one after
the other.  For a family whose fit draws no randomness and whose fitted arrays can be split by
replicate (``take_replicates``), the ``repeats`` subsamples of every replicate can be drawn first
(each replicate's stream is used in the same order: its subsamples one after the other) and fitted
as one batch of ``repeats * R`` replicates.  Each matrix of the batch is factorised by its own
condition bound (``families._linalg.spd_factor``), so the numbers are identical to the
one-repeat-at-a-time fits -- except where one matrix of the batch is non-finite or not positive
definite (``SPDFactor.whole_batch_exact``): then the repeats are refitted one at a time, exactly
as ``LearningCurve.compute`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rng import Role
from .base import LearningCurve

__all__ = ["BatchedCurve"]


@dataclass
class BatchedCurve(LearningCurve):
    """``LearningCurve`` with the repeats of a size fitted as one batch (module docstring).

    The model of ``make_model`` must ignore ``rngs`` in ``fit``, expose its factorisation as
    ``factor_`` (``SPDFactor``) and offer ``take_replicates(index)`` (a fitted model of the
    replicates ``index``).

    With ``block_subsamples`` the subsamples come from one block draw per size instead of
    ``repeats x R`` ``Generator.choice`` calls: replicate r's ``repeats`` rows of ``n_real``
    uniform keys (``streams.batch(N, Role.REFERENCE)``, ``rng.Batch``), and each subsample is
    the N rows of smallest key, in key order -- a uniformly random ordered N-subset, as
    ``choice(n_real, N, replace=False)`` draws, from other random numbers.
    """

    block_subsamples: bool = False

    @classmethod
    def of(cls, curve: LearningCurve | None) -> "BatchedCurve | None":
        """The same curve, batched (None stays None)."""
        if curve is None:
            return None
        return cls(curve.metric, curve.risk, curve.sizes, curve.repeats)

    def _subsamples(self, streams, N: int, n_real: int) -> np.ndarray:
        """Rows (repeats, R, N) of the subsamples of size N."""
        if self.block_subsamples:
            keys = streams.batch(N, Role.REFERENCE).uniform((self.repeats, n_real))
            rows = np.argsort(keys, axis=-1, kind="stable")[..., :N]  # (R, repeats, N)
            return np.swapaxes(rows, 0, 1)
        gens = streams(N, Role.REFERENCE)
        # repeat k of replicate r: the (k+1)-th draw from r's stream, as in the base class
        return np.stack([np.stack([g.choice(n_real, size=N, replace=False) for g in gens])
                         for _ in range(self.repeats)])

    def compute(self, make_model: Callable[[], Any], real: np.ndarray,
                streams) -> dict[str, np.ndarray]:
        if self.repeats == 1:
            return super().compute(make_model, real, streams)
        R, n_real = real.shape[:2]
        out = {}
        for N in self.sizes:
            if not 1 <= N <= n_real:
                raise ValueError(f"learning-curve size {N} outside 1..{n_real} (the real pool)")
            rows = self._subsamples(streams, N, n_real)  # (repeats, R, N)
            data = real[np.arange(R)[None, :, None], rows]  # (repeats, R, N, ...)
            data = data.reshape((self.repeats * R,) + data.shape[2:])
            model = make_model()
            model.fit(data, rngs=None)
            if model.factor_.whole_batch_exact:  # a degenerate matrix: one repeat at a time
                parts = []
                for k in range(self.repeats):
                    single = make_model()
                    single.fit(data[k * R:(k + 1) * R], rngs=None)
                    parts.append(single)
            else:
                parts = [model.take_replicates(slice(k * R, (k + 1) * R))
                         for k in range(self.repeats)]
            total = np.zeros(R)
            for part in parts:
                with np.errstate(all="ignore"):
                    total = total + np.asarray(self.risk(part), dtype=float)
            out[f"{self.prefix}{N}"] = total / self.repeats
        return out
