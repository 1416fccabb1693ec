"""Gaussian kernel density estimator (the setting of Kazdan et al. 2024, Sec. 2.2).

The fitted model is the (weighted) training set plus a bandwidth h: a mixture of N(x_i, h^2 I).
Sampling picks a training point by weight and adds N(0, h^2 I) noise, drawn from the replicate's
own stream (scikit-learn's ``KernelDensity.sample`` takes only an integer/RandomState seed).
Scoring is the exact log-mixture density, computed with BLAS distances and a log-sum-exp in
chunks, so a large accumulated pool never allocates more than ~``chunk_size`` doubles.
"""

from __future__ import annotations

import numpy as np

from .base import STATUS_OK

__all__ = ["KernelDensity", "bandwidth_rule"]


def _log_sum_exp(a: np.ndarray) -> np.ndarray:
    """log sum_j exp(a[..., j]), shape a.shape[:-1]; ``a`` (a temporary) is overwritten.

    The max-shifted sum: m + log sum exp(a - m), m the row's maximum (0 where it is not
    finite: a row of -inf gives -inf, a NaN gives NaN).  Agrees with
    ``scipy.special.logsumexp`` to ~1e-14 (tests/test_families_contract.py) in a third of the
    time: scipy's array-API version makes ~4 more passes over the (chunk_size) array.
    """
    m = a.max(-1, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    np.subtract(a, m, out=a)
    np.exp(a, out=a)
    total = a.sum(-1)
    with np.errstate(divide="ignore"):
        return np.log(total) + m[..., 0]

LOG_2PI = float(np.log(2 * np.pi))


def bandwidth_rule(rule: str | float, n_effective: np.ndarray, n_features: int) -> np.ndarray:
    """Bandwidth h per replicate.

    ``"scott"``: h = n^(-1/(d+4)); ``"silverman"``: h = (n (d+2) / 4)^(-1/(d+4)) -- the
    definitions of scikit-learn's ``KernelDensity`` (Scott 1992; Silverman 1986, Eq. 4.14), applied
    to the data as given (standardise features first).  A float is a fixed bandwidth.
    """
    n = np.asarray(n_effective, dtype=float)
    if rule == "scott":
        return n ** (-1.0 / (n_features + 4))
    if rule == "silverman":
        return (n * (n_features + 2) / 4.0) ** (-1.0 / (n_features + 4))
    return np.full(n.shape, float(rule))


class KernelDensity:
    """Gaussian KDE batched over replicates (all replicates hold the same number of points).

    Parameters
    ----------
    bandwidth : {"scott", "silverman"} or float
    chunk_size : int
        Maximum number of (test point, training point) pairs scored at once.

    Attributes
    ----------
    data_ : ndarray of shape (R, n, d); weights_ : (R, n) summing to 1; bandwidth_ : (R,)
    """

    #: what the family models (``families.plugin``)
    data_kind = "vector"
    #: advances all replicates at once (the batched protocol, ``families.base``)
    batched = True

    #: a fit reads nothing left by an earlier fit: checkpoints need no model state (families.base)
    stateless_fit = True

    def __init__(self, *, bandwidth: str | float = "scott", chunk_size: int = 4_000_000) -> None:
        self.bandwidth = bandwidth
        self.chunk_size = chunk_size

    def fit(self, X, *, sample_weight=None, rngs=None) -> "KernelDensity":
        X = np.asarray(X, dtype=float)
        R, n, d = X.shape
        w = np.ones((R, n)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.weights_ = w / w.sum(1, keepdims=True)
        n_eff = 1.0 / (self.weights_**2).sum(1)  # Kish effective sample size
        self.data_ = X
        self.bandwidth_ = bandwidth_rule(self.bandwidth, n_eff, d)
        spread = X.var(1).sum(1)
        self.status_ = np.where(spread > 0, STATUS_OK, "zero_variance").astype(object)
        return self

    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        R, n, d = self.data_.shape
        out = np.empty((R, n_samples, d))
        for r, g in enumerate(rngs):
            idx = g.choice(n, size=n_samples, p=self.weights_[r])
            out[r] = self.data_[r, idx] + self.bandwidth_[r] * g.standard_normal((n_samples, d))
        return out

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-density (nats) of X, (R, m, d) -> (R, m).

        Blocks of replicates at once (a stacked matrix product and one ``logsumexp`` per block
        of at most ``chunk_size`` kernel evaluations): each replicate's numbers are those of
        scoring it alone, whatever the block.
        """
        R, m, d = X.shape
        n = self.data_.shape[1]
        out = np.empty((R, m))
        rows = min(m, max(1, self.chunk_size // max(n, 1)))  # rows of X per replicate and block
        block = max(1, self.chunk_size // max(rows * n, 1))  # replicates per block
        for r0 in range(0, R, block):
            part = slice(r0, r0 + block)
            h2 = self.bandwidth_[part] ** 2
            with np.errstate(divide="ignore"):  # a dropped row (weight 0) has log weight -inf
                data, logw = self.data_[part], np.log(self.weights_[part])
            sq_data = (data**2).sum(-1)
            data_t = data.transpose(0, 2, 1)
            for s in range(0, m, rows):
                x = X[part, s:s + rows]
                dist2 = (x**2).sum(-1)[:, :, None] + sq_data[:, None, :] - 2 * (x @ data_t)
                out[part, s:s + rows] = _log_sum_exp(
                    logw[:, None, :] - 0.5 * np.clip(dist2, 0, None) / h2[:, None, None])
            out[part] -= (0.5 * d * (LOG_2PI + np.log(h2)))[:, None]
        return out

    def covariance(self) -> np.ndarray:
        """Covariance of the fitted mixture, (R, d, d): weighted data covariance + h^2 I."""
        mean = np.einsum("rn,rnd->rd", self.weights_, self.data_)
        Xc = self.data_ - mean[:, None]
        cov = np.einsum("rn,rnd,rne->rde", self.weights_, Xc, Xc)
        return cov + (self.bandwidth_**2)[:, None, None] * np.eye(Xc.shape[-1])
