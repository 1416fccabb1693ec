"""Density-estimation metrics: held-out negative log-likelihood, variance kept, and the
Gaussian (Bures-)Wasserstein distance; used by the gaussian, kde, gmm and vae tasks."""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric, register_metric

__all__ = ["mean_nll", "cov_trace_ratio", "psd_sqrt", "bures_wasserstein_squared"]


@metric(test_nll=MetricInfo(False, "nats per sample", "negative log-likelihood of held-out "
                            "real data", "mean"),
        tail_nll=MetricInfo(False, "nats per sample", "NLL of the 10% held-out real points of "
                            "lowest reference density (Def. 7)", "mean"))
def mean_nll(log_density: np.ndarray) -> np.ndarray:
    """Mean negative log-likelihood in nats per sample, (R, m) -> (R,); +inf if any point is -inf."""
    return -np.mean(log_density, axis=-1)


@metric(cov_trace_ratio=MetricInfo(None, "ratio", "tr(Sigma_model) / tr(Sigma_0): variance kept",
                                   "ratio"))
def cov_trace_ratio(cov: np.ndarray, cov_ref: np.ndarray) -> np.ndarray:
    """tr(cov) / tr(cov_ref), (..., d, d) -> (...)."""
    return np.trace(cov, axis1=-2, axis2=-1) / np.trace(cov_ref, axis1=-2, axis2=-1)


def psd_sqrt(S: np.ndarray) -> np.ndarray:
    """Symmetric square root of PSD matrices, shape (..., d, d); negative eigenvalues clipped to 0."""
    vals, vecs = np.linalg.eigh(S)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]) @ np.swapaxes(vecs, -1, -2)


@metric(w2_squared=MetricInfo(False, "squared data units", "squared Bures-Wasserstein distance "
                              "to the reference Gaussian", "functional"))
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


# computed by the gaussian task from the fitted mean (a parameter of the model)
register_metric("mean_sq_error", MetricInfo(False, "squared data units", "||mu_hat - mu_0||^2",
                                            "functional"))
