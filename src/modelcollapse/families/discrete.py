"""Categorical distribution fitted by empirical frequencies (the Wright-Fisher chain).

Data are integer outcomes, shape (R, n_samples).  The sufficient statistic is the (weighted) count
vector, so an accumulating pool is O(K) per model-fitting iteration.  Under ``replace`` this is a
neutral haploid Wright-Fisher chain (Shumailov et al. 2024; Schaeffer et al. 2025, Sec. 4).
"""

from __future__ import annotations

import numpy as np

from .base import STATUS_OK, Stats

__all__ = ["Categorical"]


class Categorical:
    """Categorical distribution over outcomes 0..n_outcomes-1.

    Parameters
    ----------
    n_outcomes : int
        K, the number of outcomes.

    Attributes
    ----------
    probabilities_ : ndarray of shape (R, K)
    status_ : ndarray of shape (R,) of str; ``"single_outcome"`` when one outcome holds all mass.
    """

    #: what the family models (``families.plugin``)
    data_kind = "tokens"
    #: advances all replicates at once (the batched protocol, ``families.base``)
    batched = True

    #: a fit reads nothing left by an earlier fit: checkpoints need no model state (families.base)
    stateless_fit = True

    def __init__(self, n_outcomes: int) -> None:
        self.n_outcomes = int(n_outcomes)

    def statistics(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> Stats:
        """Counts of X, shape (R, n) int -> {"counts": (R, K)} (weighted if weights given)."""
        X = np.asarray(X)
        R, K = X.shape[0], self.n_outcomes
        flat = (X + K * np.arange(R)[:, None]).ravel()
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float).ravel()
        return {"counts": np.bincount(flat, weights=w, minlength=R * K).reshape(R, K).astype(float)}

    @staticmethod
    def combine(a: Stats, b: Stats) -> Stats:
        return {"counts": a["counts"] + b["counts"]}

    def fit_statistics(self, stats: Stats) -> "Categorical":
        counts = stats["counts"]
        self.probabilities_ = counts / counts.sum(1, keepdims=True)
        self._cdf = np.cumsum(self.probabilities_, axis=1)
        status = np.full(len(counts), STATUS_OK, dtype=object)
        status[(self.probabilities_ > 0).sum(1) == 1] = "single_outcome"
        self.status_ = status
        return self

    def fit(self, X, *, sample_weight=None, rngs=None) -> "Categorical":
        """Fit on outcomes of shape (R, n_samples)."""
        return self.fit_statistics(self.statistics(X, sample_weight))

    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        """Outcomes of shape (R, n_samples), int64; outcomes of probability 0 are never drawn."""
        out = np.empty((len(rngs), n_samples), dtype=np.int64)
        for r, g in enumerate(rngs):
            cdf = self._cdf[r]
            out[r] = cdf.searchsorted(g.random(n_samples) * cdf[-1], side="right")
        return out

    def sample_statistics(self, n_samples: int, *, rngs) -> Stats:
        """Counts of ``n_samples`` draws, drawn directly as Multinomial(n, p): O(K), not O(n)."""
        counts = np.empty(self.probabilities_.shape)
        for r, g in enumerate(rngs):
            counts[r] = g.multinomial(n_samples, self.probabilities_[r])
        return {"counts": counts}

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """log p(x) in nats, (R, m) -> (R, m); -inf for outcomes that disappeared."""
        with np.errstate(divide="ignore"):
            return np.log(np.take_along_axis(self.probabilities_, np.asarray(X), axis=1))
