"""Shared data building for vector-density tasks (gaussian, kde, gmm): truth or real dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from ..data.sklearn_datasets import VECTOR_DATASETS, vector_split
from ..rng import Role, Streams
from .base import TaskParams, reference_moments  # noqa: F401  (re-exported)


#: collapse-profile roles of the density tasks' metrics (see ``Task.profile``)
VECTOR_PROFILE = {"variance": "cov_trace_ratio", "tail": "tail_nll", "tail_base": "test_nll",
                  "tail_mode": "difference"}


class VectorParams(TaskParams):
    synthetic_n_features: ClassVar[int] = 2

    dataset: Literal["synthetic", "wine", "digits"] = Field(
        "synthetic", description="'synthetic' = known truth; 'wine' or 'digits' = scikit-learn data")
    n_features: int | None = Field(
        None, ge=1, description="dimension (synthetic) or principal components kept (real data)")
    n_samples: int | None = Field(
        None, ge=2, description="real training samples (synthetic default 100; real default: "
        "the whole training split)")
    n_test: int = Field(1000, ge=1, description="held-out test samples (synthetic)")
    test_size: float = Field(0.25, gt=0, lt=1, description="held-out fraction (real data)")

    @model_validator(mode="after")
    def _resolve_sizes(self):
        if self.dataset == "synthetic":
            self.n_samples = 100 if self.n_samples is None else self.n_samples
            self.n_features = self.n_features or self.synthetic_n_features
        else:
            self.n_features = self.n_features or VECTOR_DATASETS[self.dataset]
            if self.dataset == "wine" and self.n_features > 13:
                raise ValueError("n_features: wine has 13 features; allowed: 1..13")
            if self.dataset == "digits" and self.n_features > 61:
                raise ValueError("n_features: digits has 61 non-constant pixels; allowed: 1..61")
        return self


def vector_data(p: VectorParams, streams: Streams,
                draw_truth: Callable[[np.random.Generator, int], np.ndarray] | None):
    """(real (R, n, d), test (R, m, d), sample_real or None) for a vector task."""
    if p.dataset == "synthetic":
        gens = streams(0, Role.DATA)
        real = np.stack([draw_truth(g, p.n_samples) for g in gens])
        test = np.stack([draw_truth(g, p.n_test) for g in gens])

        def sample_real(n, rngs):
            return np.stack([draw_truth(g, n) for g in rngs])

        return real, test, sample_real
    real, test = vector_split(p.dataset, n_features=p.n_features, n_samples=p.n_samples,
                              test_size=p.test_size, streams=streams)
    return real, test, None
