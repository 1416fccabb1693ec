"""Multivariate Gaussian fitted by maximum likelihood or with the unbiased covariance.

Batched over R replicates.  Sufficient statistics are kept in centred form (count, mean, scatter
matrix) and merged with the pairwise update of Chan, Golub & LeVeque (1979), so an accumulating pool
is fitted in O(d^2) per model-fitting iteration and a collapsing covariance (variance -> 1e-30) is
not swamped by cancellation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..rng import Batch
from ._linalg import SPDFactor, spd_factor
from .base import STATUS_OK, Stats, stack_draws

__all__ = ["Gaussian"]

LOG_2PI = float(np.log(2 * np.pi))


class Gaussian:
    """Multivariate Gaussian N(mean_, covariance_), batched over replicates.

    Parameters
    ----------
    covariance_estimator : {"mle", "unbiased"}
        ``"mle"`` divides the scatter matrix by the (weighted) count W, ``"unbiased"`` by W - 1
        (sample weights are frequency weights).  Shumailov et al. 2024 (Thm 3.1) use the unbiased
        estimator, Kazdan et al. 2024 the MLE.
    sampling_scale : float, default 1.0
        Sample from N(mean_, sampling_scale * covariance_): the sampling bias lambda of
        Alemohammad et al. 2023, Sec. 2.3 (1 = unbiased sampling).
    known_covariance : ndarray of shape (R, d, d), optional
        Fix the covariance and estimate only the mean: the Gaussian location model of Dey &
        Donoho 2024 (and of He, Xu & Cheng 2025).
    rel_tol : float
        An eigenvalue below ``rel_tol * largest`` marks the covariance singular.

    Attributes
    ----------
    mean_ : ndarray of shape (R, d)
    covariance_ : ndarray of shape (R, d, d)
    status_ : ndarray of shape (R,) of str
        ``"zero_variance"`` when tr(covariance_) < (1e-8 * max(1, max|mean_|))^2 (samples agree
        to ~8 significant digits; the fit is then treated as a point mass);
        ``"singular_covariance"`` when the smallest eigenvalue is below ``rel_tol`` * largest.
    """

    #: what the family models (``families.plugin``)
    data_kind = "vector"
    #: advances all replicates at once (the batched protocol, ``families.base``)
    batched = True
    #: ``fit`` never draws from its ``rngs`` (``tasks.base.LearningCurve`` batches subsamples)
    fit_uses_rngs = False
    #: ``sample`` / ``sample_statistics`` accept an ``rng.Batch`` (``families.base``); their
    #: numbers still come from each replicate's own stream, as with a list of generators
    #: (``rng.Streams.normals_chisquares``: the same numbers, without a call per replicate)
    block_draws = True

    def __init__(self, *, covariance_estimator: Literal["mle", "unbiased"] = "mle",
                 sampling_scale: float = 1.0, known_covariance: np.ndarray | None = None,
                 rel_tol: float = 1e-12) -> None:
        self.covariance_estimator = covariance_estimator
        self.sampling_scale = sampling_scale
        self.known_covariance = known_covariance
        self.rel_tol = rel_tol

    # -- sufficient statistics ---------------------------------------------------------------
    @staticmethod
    def statistics(X: np.ndarray, sample_weight: np.ndarray | None = None) -> Stats:
        """Centred statistics of X, shape (R, n, d): count (R,), mean (R, d), scatter (R, d, d)."""
        if sample_weight is None:
            w = np.full(X.shape[:2], 1.0)
        else:
            w = np.asarray(sample_weight, dtype=float)
        count = w.sum(1)
        mean = (w[:, None, :] @ X)[:, 0] / np.where(count > 0, count, 1.0)[:, None]
        Xc = X - mean[:, None, :]
        scatter = np.swapaxes(Xc * w[..., None], 1, 2) @ Xc
        return {"count": count, "mean": mean, "scatter": scatter}

    @staticmethod
    def combine(a: Stats, b: Stats) -> Stats:
        """Merge two sets of statistics (Chan, Golub & LeVeque 1979 pairwise update)."""
        count = a["count"] + b["count"]
        delta = b["mean"] - a["mean"]
        frac = (b["count"] / np.where(count > 0, count, 1.0))[:, None]
        mean = a["mean"] + delta * frac
        outer = delta[:, :, None] * delta[:, None, :]
        scatter = a["scatter"] + b["scatter"] + outer * (
            a["count"] * b["count"] / np.where(count > 0, count, 1.0))[:, None, None]
        return {"count": count, "mean": mean, "scatter": scatter}

    def fit_statistics(self, stats: Stats) -> "Gaussian":
        count = stats["count"]
        denom = count - 1.0 if self.covariance_estimator == "unbiased" else count
        self.mean_ = stats["mean"].copy()
        if self.known_covariance is not None:
            if getattr(self, "factor_", None) is None:
                self.covariance_ = np.array(self.known_covariance, dtype=float)
                self._factorise()
            else:  # the factor of the fixed covariance is reused; the mean's status is new
                base = np.where(self.status_ == "non_finite", STATUS_OK, self.status_)
                self.status_ = np.where(np.isfinite(self.mean_).all(1), base,
                                        "non_finite").astype(object)
            return self
        with np.errstate(divide="ignore", invalid="ignore"):
            self.covariance_ = stats["scatter"] / np.maximum(denom, 1e-300)[:, None, None]
        self.covariance_ = 0.5 * (self.covariance_ + np.swapaxes(self.covariance_, -1, -2))
        self._factorise()
        return self

    def fit(self, X, *, sample_weight=None, rngs=None) -> "Gaussian":
        """Fit on X of shape (R, n_samples, n_features)."""
        return self.fit_statistics(self.statistics(np.asarray(X, dtype=float), sample_weight))

    def _factorise(self) -> None:
        f = spd_factor(self.covariance_, self.rel_tol)
        status = np.full(len(f.logdet), STATUS_OK, dtype=object)
        status[f.singular] = "singular_covariance"
        # total variance so small that samples agree to ~8 significant digits: numerically a
        # point mass, made exact (root 0, infinite NLL)
        scale = np.maximum(1.0, np.abs(self.mean_).max(1))
        point = np.trace(self.covariance_, axis1=1, axis2=2) <= (1e-8 * scale) ** 2
        status[point] = "zero_variance"
        f.root[point] = 0.0
        f.logdet[point] = -np.inf
        f.singular |= point
        bad = ~(np.isfinite(self.mean_).all(1) & np.isfinite(self.covariance_).all((1, 2)))
        status[bad] = "non_finite"
        self.factor_, self.status_ = f, status

    # -- checkpoints (families.base) ---------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state (exact round trip with ``set_state``): ``mean_`` (R, d),
        ``covariance_`` (R, d, d), ``status_`` (R,) and the factorisation ``factor.root`` /
        ``factor.precision`` (R, d, d), ``factor.logdet`` / ``factor.singular`` (R,).  (With
        ``known_covariance`` the factorisation of the first fit is reused by later fits.)"""
        f = self.factor_
        return {"mean_": self.mean_, "covariance_": self.covariance_,
                "status_": np.asarray(self.status_).astype(str), "factor.root": f.root,
                "factor.precision": f.precision, "factor.logdet": f.logdet,
                "factor.singular": f.singular}

    def set_state(self, state: dict[str, np.ndarray]) -> "Gaussian":
        """Restore ``get_state()``; returns self."""
        self.mean_, self.covariance_ = state["mean_"], state["covariance_"]
        self.status_ = np.asarray(state["status_"]).astype(object)
        self.factor_ = SPDFactor(state["factor.root"], state["factor.precision"],
                                 state["factor.logdet"], state["factor.singular"])
        return self

    # -- protocol ----------------------------------------------------------------------------
    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        """Draw (R, n_samples, d) samples, one stream per replicate (``rngs``: a generator per
        replicate, or an ``rng.Batch`` of their streams)."""
        if isinstance(rngs, Batch):
            rngs = rngs.generators
        d = self.mean_.shape[1]
        z = stack_draws(rngs, lambda g: g.standard_normal((n_samples, d)))
        root = np.sqrt(self.sampling_scale) * self.factor_.root
        return self.mean_[:, None, :] + z @ np.swapaxes(root, -1, -2)

    def cross_entropy(self, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
        """E_q[-log N(x; mean_, covariance_)] in nats for any q with the given moments.

        With ``mean``, ``covariance`` = the sample mean and MLE covariance of a test set this is
        exactly the mean negative log-likelihood of the test set, in O(d^3) instead of
        O(m d^2): 1/2 [d log 2 pi + log det S + tr(S^-1 C) + (m - mu)^T S^-1 (m - mu)].
        +inf when the fitted covariance is singular.

        Parameters
        ----------
        mean : ndarray of shape (R, d); covariance : ndarray of shape (R, d, d)

        Returns
        -------
        ndarray of shape (R,), nats per sample.
        """
        f = self.factor_
        delta = mean - self.mean_
        quad = (f.precision * covariance).sum((1, 2)) + (delta[:, None, :] @ f.precision
                                                        @ delta[..., None])[:, 0, 0]
        out = 0.5 * (mean.shape[1] * LOG_2PI + f.logdet + quad)
        return np.where(f.singular, np.inf, out)

    def sample_statistics(self, n_samples: int, *, rngs) -> Stats:
        """Sufficient statistics of ``n_samples`` draws, drawn directly: O(d^2), not O(n d).

        The sample mean is N(mean_, S / n) and, independently, the scatter matrix is
        Wishart(S, n - 1) (S = sampling_scale * covariance_), drawn by the Bartlett decomposition
        (Bartlett 1933; Anderson 2003, Thm 7.2.1): scatter = R A A^T R^T with R R^T = S, A lower
        triangular, A_ij ~ N(0, 1) for i > j and A_ii^2 ~ chi^2(n - 1 - i), drawn as
        chi^2(n - d) + chi^2(d - 1 - i), the second as a sum of squared normals (one normal and one
        scalar chi-square call per replicate).  Same distribution as ``statistics(sample(n))``;
        falls back to it when n <= d (rank-deficient scatter).  ``rngs``: a generator per
        replicate, or an ``rng.Batch`` of their streams (the same numbers).
        """
        R, d = self.mean_.shape
        if n_samples <= d:
            return self.statistics(self.sample(n_samples, rngs=rngs))
        n_off = d * (d - 1) // 2
        if isinstance(rngs, Batch):  # each replicate's g.standard_normal(.), g.chisquare(.)
            z, chi = rngs.streams.normals_chisquares(rngs.iteration, rngs.role,
                                                     d + n_off + d * (d - 1), n_samples - d, d)
        elif d == 1:  # one normal and one chi-square each: scalar calls (no array per call)
            z = np.array([g.standard_normal() for g in rngs]).reshape(R, 1)
            chi = np.array([g.chisquare(n_samples - 1) for g in rngs]).reshape(R, 1)
        else:
            z = np.empty((R, d + n_off + d * (d - 1)))
            chi = np.empty((R, d))
            for r, g in enumerate(rngs):
                z[r] = g.standard_normal(z.shape[1])
                chi[r] = g.chisquare(n_samples - d, size=d)
        # chi^2(d - 1 - i): squares of the first d - 1 - i of row i's d - 1 extra normals
        extra = z[:, d + n_off:].reshape(R, d, d - 1) ** 2
        keep = np.arange(d - 1)[None, :] < (d - 1 - np.arange(d))[:, None]
        chi += (extra * keep).sum(-1)
        root = np.sqrt(self.sampling_scale) * self.factor_.root
        A = np.zeros((R, d, d))
        rows, cols = np.tril_indices(d, -1)
        A[:, rows, cols] = z[:, d:d + n_off]
        A[:, np.arange(d), np.arange(d)] = np.sqrt(chi)
        RA = root @ A
        mean = self.mean_ + (root @ z[:, :d, None])[..., 0] / np.sqrt(n_samples)
        return {"count": np.full(R, float(n_samples)), "mean": mean,
                "scatter": RA @ np.swapaxes(RA, 1, 2)}

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-density (nats) of X, shape (R, m, d) -> (R, m); -inf off a singular support."""
        f = self.factor_
        Xc = X - self.mean_[:, None, :]
        maha = ((Xc @ f.precision) * Xc).sum(-1)
        out = -0.5 * (X.shape[-1] * LOG_2PI + f.logdet[:, None] + maha)
        return np.where(f.singular[:, None], -np.inf, out)
