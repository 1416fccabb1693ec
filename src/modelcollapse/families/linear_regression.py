"""Ordinary least squares as a generative model of labels on a fixed design.

The setting of Dohmatob, Feng & Kempe 2024 and Gerstgrasser et al. 2024 (Sec. 3): a fixed design
X (T x d); each model-fitting iteration draws new labels y = X w_hat + noise from the previous fit
and refits OLS.  A data array holds rows ``[x_1 .. x_d, y]``, shape (R, n_samples, d + 1).

Sufficient statistics (count, X^T W X, X^T W y, y^T W y) make an accumulating pool O(d^2) per
iteration to update and O(d^3) to fit.
"""

from __future__ import annotations

import numpy as np

from ..rng import Batch
from ._linalg import spd_factor
from .base import STATUS_OK, Stats, stack_draws

__all__ = ["LinearRegression"]

LOG_2PI = float(np.log(2 * np.pi))


class LinearRegression:
    """OLS fit of y on x; samples labels at the rows of a fixed design.

    Parameters
    ----------
    design : ndarray of shape (R, T, d)
        The fixed design per replicate; ``sample(n)`` uses rows ``i mod T``, i = 0..n-1, so
        ``sample(T)`` returns exactly the design with new labels.
    noise_variance : float or None
        Variance of the label noise used when sampling.  A float is the known noise variance
        sigma^2 of the theory (Gerstgrasser et al. 2024); ``None`` uses the fitted residual
        variance (maximum likelihood), i.e. a full Gaussian generative model of y | x.

    Attributes
    ----------
    coef_ : ndarray of shape (R, d)
    noise_variance_ : ndarray of shape (R,)
    status_ : ndarray of shape (R,) of str; ``"singular_covariance"`` when X^T X is rank deficient
        (the minimum-norm solution is used), ``"zero_variance"`` when the fitted noise is 0.
    """

    #: what the family models (``families.plugin``)
    data_kind = "supervised"
    #: advances all replicates at once (the batched protocol, ``families.base``)
    batched = True

    #: a fit reads nothing left by an earlier fit: checkpoints need no model state (families.base)
    stateless_fit = True
    #: ``sample`` / ``sample_statistics`` accept an ``rng.Batch`` (block draws: one call for all
    #: replicates) as well as per-replicate generators (families.base)
    block_draws = True

    def __init__(self, design: np.ndarray, *, noise_variance: float | None = None) -> None:
        self.design = np.asarray(design, dtype=float)
        self.noise_variance = noise_variance

    @staticmethod
    def statistics(data: np.ndarray, sample_weight: np.ndarray | None = None) -> Stats:
        X, y = data[..., :-1], data[..., -1]
        w = np.ones(y.shape) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        Xw = X * w[..., None]
        return {
            "count": w.sum(1),
            "xtx": np.swapaxes(Xw, 1, 2) @ X,
            "xty": (np.swapaxes(Xw, 1, 2) @ y[..., None])[..., 0],
            "yty": ((w * y) * y).sum(1),
        }

    @staticmethod
    def combine(a: Stats, b: Stats) -> Stats:
        return {k: a[k] + b[k] for k in a}

    def fit_statistics(self, stats: Stats) -> "LinearRegression":
        xtx, xty = stats["xtx"], stats["xty"]
        status = np.full(len(xtx), STATUS_OK, dtype=object)
        # OLS; the minimum-norm solution (pseudo-inverse) where X^T X is rank deficient.  Under
        # replace every fit sees the same X^T X object (the fixed design's Gram matrix,
        # ``sample_statistics``): its factor is reused (the array is kept alive and never
        # written to, so identity means equal values)
        cached = self.__dict__.get("_factor")
        if cached is not None and cached[0] is xtx:
            factor = cached[1]
        else:
            factor = spd_factor(xtx)
            self._factor = (xtx, factor)
        coef = (factor.precision @ xty[..., None])[..., 0]
        status[factor.singular] = "singular_covariance"
        rss = stats["yty"] - 2 * np.einsum("rd,rd->r", coef, xty) + np.einsum(
            "rd,rde,re->r", coef, xtx, coef)
        self.coef_ = coef
        self.residual_variance_ = np.clip(rss, 0.0, None) / stats["count"]
        if self.noise_variance is None:
            self.noise_variance_ = self.residual_variance_
            status[self.noise_variance_ <= 0.0] = "zero_variance"
        else:
            self.noise_variance_ = np.full(len(coef), float(self.noise_variance))
        status[~np.isfinite(coef).all(1)] = "non_finite"
        self.status_ = status
        return self

    def fit(self, data, *, sample_weight=None, rngs=None) -> "LinearRegression":
        """Fit on data of shape (R, n_samples, d + 1), rows ``[x, y]``."""
        return self.fit_statistics(self.statistics(np.asarray(data, dtype=float), sample_weight))

    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        """Rows ``[x, y]`` of shape (R, n_samples, d + 1): design rows with labels X coef_ + noise.

        ``rngs``: one generator per replicate, or an ``rng.Batch`` (block draws)."""
        T = self.design.shape[1]
        X = self.design[:, np.arange(n_samples) % T]
        if isinstance(rngs, Batch):  # one call for all replicates (rng.Batch)
            noise = rngs.normal(n_samples)
        else:
            noise = stack_draws(rngs, lambda g: g.standard_normal(n_samples))
        y = (X @ self.coef_[..., None])[..., 0] + noise * np.sqrt(self.noise_variance_)[:, None]
        return np.concatenate([X, y[..., None]], axis=-1)

    def _design_factor(self, n_samples: int):
        """(Gram X^T X, its Cholesky factor or None if singular) of the first n design rows."""
        cache = self.__dict__.setdefault("_gram_cache", {})
        if n_samples not in cache:
            X = self.design[:, np.arange(n_samples) % self.design.shape[1]]
            gram = np.swapaxes(X, 1, 2) @ X
            try:
                factor = np.linalg.cholesky(gram) if n_samples >= gram.shape[-1] else None
            except np.linalg.LinAlgError:
                factor = None
            cache[n_samples] = (gram, factor)
        return cache[n_samples]

    def sample_statistics(self, n_samples: int, *, rngs) -> Stats:
        """Sufficient statistics of ``sample(n)`` drawn directly: O(d^2) per replicate.

        With G = X^T X = L L^T and y = X c + sigma eps: X^T y = G c + sigma L z,
        y^T y = c^T G c + 2 sigma c^T L z + sigma^2 (|z|^2 + chi^2_{n-d}), z ~ N(0, I_d)
        (the projection of eps on the column space and its independent orthogonal remainder).
        Same distribution as ``statistics(sample(n))``; falls back to it for a singular design.
        """
        gram, L = self._design_factor(n_samples)
        if L is None:
            return self.statistics(self.sample(n_samples, rngs=rngs))
        R, d = self.coef_.shape
        z = np.empty((R, d))
        chi = np.zeros(R)
        if isinstance(rngs, Batch):  # one call per draw for all replicates (rng.Batch)
            z = rngs.normal(d)
            if n_samples > d:
                chi = rngs.chisquare(n_samples - d)
        elif n_samples > d:
            dof = n_samples - d
            for r, g in enumerate(rngs):
                g.standard_normal(out=z[r])
                chi[r] = g.chisquare(dof)
        else:
            for r, g in enumerate(rngs):
                g.standard_normal(out=z[r])
        sigma = np.sqrt(self.noise_variance_)
        Gc = (gram @ self.coef_[..., None])[..., 0]
        Lz = (L @ z[..., None])[..., 0]
        return {
            "count": np.full(R, float(n_samples)),
            "xtx": gram,
            "xty": Gc + sigma[:, None] * Lz,
            "yty": (self.coef_ * Gc).sum(1) + 2 * sigma * (self.coef_ * Lz).sum(1)
            + self.noise_variance_ * ((z**2).sum(1) + chi),
        }

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions X coef_, X of shape (R, m, d) -> (R, m)."""
        return (X @ self.coef_[..., None])[..., 0]

    def score_samples(self, data: np.ndarray) -> np.ndarray:
        """Gaussian log-likelihood (nats) of y given x under the fit, (R, m, d+1) -> (R, m)."""
        resid = data[..., -1] - self.predict(data[..., :-1])
        var = self.noise_variance_[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -0.5 * (LOG_2PI + np.log(var) + resid**2 / var)
        return np.where(np.isnan(out), -np.inf, out)
