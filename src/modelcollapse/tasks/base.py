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
    evaluate : callable (model) -> dict[str, ndarray of shape (R,)]
        The task's metrics of a fitted model.
    risk_metric : str
        The metric that summaries use as population risk (or its test-set estimate).
    sample_real : callable (n, rngs) -> ndarray, optional
        Fresh draws from the true distribution (known-truth tasks only); used by ``mix`` with
        ``fresh_real``.  Real-data tasks resample their real pool instead.
    truth : dict
        Parameters of the truth or reference distribution (for theory and reports).
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

    @property
    def n_replicates(self) -> int:
        return self.real.shape[0]

    @property
    def n_real(self) -> int:
        return self.real.shape[1]
