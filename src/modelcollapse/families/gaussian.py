"""Multivariate Gaussian fitted by maximum likelihood or with the unbiased covariance.

Batched over R replicates.  Sufficient statistics are kept in centred form (count, mean, scatter
matrix) and merged with the pairwise update of Chan, Golub & LeVeque (1979), so an accumulating pool
is fitted in O(d^2) per model-fitting iteration and a collapsing covariance (variance -> 1e-30) is
not swamped by cancellation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .base import STATUS_OK, Stats, stack_draws

__all__ = ["Gaussian", "bures_wasserstein_squared", "psd_sqrt"]

LOG_2PI = float(np.log(2 * np.pi))


def psd_sqrt(S: np.ndarray) -> np.ndarray:
    """Symmetric square root of PSD matrices, shape (..., d, d); negative eigenvalues clipped to 0."""
    vals, vecs = np.linalg.eigh(S)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]) @ np.swapaxes(vecs, -1, -2)


def bures_wasserstein_squared(mean_a, cov_a, mean_b, cov_b, *, root_b=None) -> np.ndarray:
    """Squared 2-Wasserstein distance between Gaussians, split is ``mean term + covariance term``.

    W2^2 = ||m_a - m_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_b^1/2 S_a S_b^1/2)^1/2)
    (Dowson & Landau 1982; Schaeffer et al. 2025, Sec. 2.1).

    Parameters
    ----------
    mean_a, mean_b : ndarray of shape (..., d)
    cov_a, cov_b : ndarray of shape (..., d, d), positive semi-definite
    root_b : ndarray of shape (..., d, d), optional
        ``psd_sqrt(cov_b)`` if already known (saves an eigendecomposition per call).

    Returns
    -------
    ndarray of shape (...,), squared distance in squared data units.
    """
    root_b = psd_sqrt(cov_b) if root_b is None else root_b
    inner = np.linalg.eigvalsh(root_b @ cov_a @ root_b)
    cross = np.sqrt(np.clip(inner, 0.0, None)).sum(-1)
    cov_term = np.trace(cov_a, axis1=-2, axis2=-1) + np.trace(cov_b, axis1=-2, axis2=-1) - 2 * cross
    mean_term = ((np.asarray(mean_a) - mean_b) ** 2).sum(-1)
    return mean_term + np.clip(cov_term, 0.0, None)


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
    rel_tol : float
        An eigenvalue below ``rel_tol * largest`` marks the covariance singular.

    Attributes
    ----------
    mean_ : ndarray of shape (R, d)
    covariance_ : ndarray of shape (R, d, d)
    status_ : ndarray of shape (R,) of str
    """

    def __init__(self, *, covariance_estimator: Literal["mle", "unbiased"] = "mle",
                 sampling_scale: float = 1.0, rel_tol: float = 1e-12) -> None:
        self.covariance_estimator = covariance_estimator
        self.sampling_scale = sampling_scale
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
        mean = (w[:, None, :] @ X)[:, 0] / count[:, None]
        Xc = X - mean[:, None, :]
        scatter = np.swapaxes(Xc * w[..., None], 1, 2) @ Xc
        return {"count": count, "mean": mean, "scatter": scatter}

    @staticmethod
    def combine(a: Stats, b: Stats) -> Stats:
        """Merge two sets of statistics (Chan, Golub & LeVeque 1979 pairwise update)."""
        count = a["count"] + b["count"]
        delta = b["mean"] - a["mean"]
        frac = (b["count"] / count)[:, None]
        mean = a["mean"] + delta * frac
        outer = delta[:, :, None] * delta[:, None, :]
        scatter = a["scatter"] + b["scatter"] + outer * (a["count"] * b["count"] / count)[:, None, None]
        return {"count": count, "mean": mean, "scatter": scatter}

    def fit_statistics(self, stats: Stats) -> "Gaussian":
        count = stats["count"]
        denom = count - 1.0 if self.covariance_estimator == "unbiased" else count
        self.mean_ = stats["mean"].copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            self.covariance_ = stats["scatter"] / np.maximum(denom, 1e-300)[:, None, None]
        self.covariance_ = 0.5 * (self.covariance_ + np.swapaxes(self.covariance_, -1, -2))
        self._factorise()
        return self

    def fit(self, X, *, sample_weight=None, rngs=None) -> "Gaussian":
        """Fit on X of shape (R, n_samples, n_features)."""
        return self.fit_statistics(self.statistics(np.asarray(X, dtype=float), sample_weight))

    def _factorise(self) -> None:
        vals, vecs = np.linalg.eigh(self.covariance_)
        # round-off leaves "zero" eigenvalues at +-1e-18: make them exactly 0, so a singular fit
        # has an infinite NLL rather than a huge finite one
        vals = np.where(vals <= self.rel_tol * vals[:, -1:], 0.0, vals)
        self.eigenvalues_, self.eigenvectors_ = vals, vecs
        top = vals[:, -1]
        status = np.full(len(vals), STATUS_OK, dtype=object)
        status[vals[:, 0] <= self.rel_tol * top] = "singular_covariance"
        status[top <= 0.0] = "zero_variance"
        bad = ~(np.isfinite(self.mean_).all(1) & np.isfinite(self.covariance_).all((1, 2)))
        status[bad] = "non_finite"
        self.status_ = status

    # -- protocol ----------------------------------------------------------------------------
    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        """Draw (R, n_samples, d) samples, one stream per replicate."""
        d = self.mean_.shape[1]
        z = stack_draws(rngs, lambda g: g.standard_normal((n_samples, d)))
        root = self.eigenvectors_ * np.sqrt(self.sampling_scale * self.eigenvalues_)[:, None, :]
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
        V, vals = self.eigenvectors_, self.eigenvalues_
        proj_mean = ((mean - self.mean_)[:, None, :] @ V)[:, 0]            # (R, d)
        proj_cov = np.einsum("rdi,rde,rei->ri", V, covariance, V)          # diag(V^T C V)
        with np.errstate(divide="ignore", invalid="ignore"):
            quad = ((proj_cov + proj_mean**2) / vals).sum(-1)
            logdet = np.log(vals).sum(-1)
            out = 0.5 * (vals.shape[1] * LOG_2PI + logdet + quad)
        return np.where(np.isnan(out), np.inf, out)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-density (nats) of X, shape (R, m, d) -> (R, m); -inf off a singular support."""
        proj = (X - self.mean_[:, None, :]) @ self.eigenvectors_
        vals = self.eigenvalues_
        with np.errstate(divide="ignore", invalid="ignore"):
            maha = (proj**2 / vals[:, None, :]).sum(-1)
            logdet = np.log(vals).sum(-1)
            out = -0.5 * (vals.shape[1] * LOG_2PI + logdet[:, None] + maha)
        return np.where(np.isnan(out), -np.inf, out)
