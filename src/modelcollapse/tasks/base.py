"""The ``Task`` a study runs, and the base of every task's parameter model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = ["Task", "TaskParams"]


class TaskParams(BaseModel):
    """Base of each task's ``task_params`` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Task:
    """Everything the engine needs to run chains of one task for R replicates.

    Attributes
    ----------
    name : str
        Label in the results (e.g. ``"gaussian-wine"``).
    family : str
        Model-family name.
    make_model : callable () -> BatchedModel
        A fresh, unfitted model with the task's hyperparameters.
    real : ndarray of shape (R, n_real, ...)
        The real training pool of each replicate; iteration 0 is fitted on it.
    test : ndarray of shape (R, n_test, ...)
        Held-out **real** data, never trained on.
    evaluate : callable (model, iteration) -> dict[str, ndarray of shape (R,)]
        The task's metrics of a fitted model (``iteration`` positions the EVAL random streams of
        metrics that sample from the model).
    risk_metric : str
        The metric that summaries use as population risk (or its test-set estimate).
    sample_real : callable (n, rngs) -> ndarray, optional
        Fresh draws from the true distribution (known-truth tasks only); used by ``mix`` with
        ``fresh_real``.  Real-data tasks resample their real pool instead.
    truth : dict
        Parameters of the truth or reference distribution (for theory and reports).
    profile : dict
        Which recorded metric measures what for the collapse profile (``modelcollapse.profile``):
        ``variance`` (Def. 4), ``modes`` (Def. 6), ``tail`` and ``tail_base`` (Def. 7: tail risk
        relative to overall risk), ``tail_recall`` (Def. 7), ``hallucination`` (Def. 8), and
        ``scaling`` = {"metric", "a", "b"}: the real-data-only reference curve
        E[metric](N) = a / (N - b) used for the effective sample size (Def. 5).
    """

    name: str
    family: str
    make_model: Callable[[], Any]
    real: np.ndarray
    test: np.ndarray
    evaluate: Callable[[Any], dict[str, np.ndarray]]
    risk_metric: str
    sample_real: Callable[[int, list], np.ndarray] | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def n_replicates(self) -> int:
        return self.real.shape[0]

    @property
    def n_real(self) -> int:
        return self.real.shape[1]


TAIL_FRACTION = 0.1  #: share of held-out real points that form the tail (Def. 7)


def tail_rows(X: np.ndarray, mean: np.ndarray, covariance: np.ndarray,
              fraction: float = TAIL_FRACTION) -> np.ndarray:
    """Rows of the held-out set in the tail of a reference Gaussian, shape (R, k).

    The ``fraction`` of points with the largest Mahalanobis distance under N(mean, covariance)
    (equivalently the lowest reference density), per replicate.

    Parameters
    ----------
    X : ndarray of shape (R, m, d)
    mean : ndarray of shape (R, d); covariance : ndarray of shape (R, d, d)
    """
    k = max(1, int(round(fraction * X.shape[1])))
    Xc = X - mean[:, None, :]
    maha = ((Xc @ np.linalg.pinv(covariance)) * Xc).sum(-1)
    return np.argsort(-maha, axis=1, kind="stable")[:, :k]


def take_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[r, rows[r]]`` for every replicate r: (R, m, ...) and (R, k) -> (R, k, ...)."""
    return X[np.arange(X.shape[0])[:, None], rows]


def reference_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (R, d) and MLE covariance (R, d, d) of a held-out set X of shape (R, m, d)."""
    mean = X.mean(1)
    Xc = X - mean[:, None]
    return mean, np.swapaxes(Xc, 1, 2) @ Xc / X.shape[1]
