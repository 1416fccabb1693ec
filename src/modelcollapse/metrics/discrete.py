"""Metrics of categorical distributions, (..., K) probability vectors; used by the discrete task
(Wright-Fisher refitting, Shumailov et al. 2024)."""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric, register_metric

__all__ = ["entropy", "gini_simpson", "tv_distance", "sq_error"]


@metric(entropy=MetricInfo(None, "nats", "Shannon entropy of the fitted distribution",
                           "functional"))
def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of probability vectors, (..., K) -> (...), with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)


@metric(gini_simpson=MetricInfo(None, "probability", "1 - sum p^2", "functional"))
def gini_simpson(p: np.ndarray) -> np.ndarray:
    """Gini-Simpson diversity 1 - sum_i p_i^2, (..., K) -> (...)."""
    return 1.0 - (p**2).sum(-1)


@metric(tv_distance=MetricInfo(False, "probability", "total-variation distance to the truth",
                               "functional"))
def tv_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance 1/2 sum_i |p_i - q_i|, (..., K), (..., K) -> (...)."""
    return 0.5 * np.abs(p - q).sum(-1)


@metric(sq_error=MetricInfo(False, "probability^2", "||p_hat - p_0||^2", "functional"))
def sq_error(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance sum_i (p_i - q_i)^2, (..., K), (..., K) -> (...)."""
    return ((p - q) ** 2).sum(-1)


# recorded by the discrete task from masks of the truth's outcomes (see its docstring)
register_metric("support_size", MetricInfo(None, "outcomes", "outcomes with non-zero probability",
                                           "count"))
register_metric("hallucinated_mass", MetricInfo(False, "probability", "mass outside the real "
                                                "support", "functional"))
register_metric("tail_mass_recall", MetricInfo(True, "ratio", "mass on rarer-than-median real "
                                               "outcomes / its true mass", "ratio"))
register_metric("tail_support_recall", MetricInfo(True, "fraction", "rarer-than-median real "
                                                  "outcomes still produced", "fraction"))
