"""Kernel density estimation task (Kazdan et al. 2024, Sec. 2.2): known truth N(0, I_d) or real
``wine`` / ``digits`` features.  Metrics: ``test_nll`` on held-out real data and the diversity
``cov_trace_ratio`` = tr Cov(KDE) / tr Cov(reference), Cov(KDE) = weighted data covariance + h^2 I
(reference: the truth, or the held-out real test set)."""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from ..families.kde import KernelDensity
from ..metrics import cov_trace_ratio, mean_nll
from ..rng import Streams
from ._vector import (VECTOR_PROFILE, VectorParams, sample_metrics, vector_curve,
                      vector_data)
from .base import Task, reference_moments, tail_rows, take_rows

CURVE_REPEATS = 8  #: subsamples per size and replicate of the learning curve (cheap fits)
CURVE_SMALLEST_KDE = 1  #: smallest learning-curve subsample: this many times (n_features + 1)


class KDETask:
    family = "kde"

    class Params(VectorParams):
        bandwidth: float | str = Field(
            "scott", description="'scott', 'silverman' or a fixed bandwidth h > 0")

        @field_validator("bandwidth")
        @classmethod
        def _check_bandwidth(cls, v):
            if isinstance(v, str) and v not in ("scott", "silverman"):
                raise ValueError(f"{v!r} is not allowed; allowed: 'scott', 'silverman' or a "
                                 "number > 0")
            if not isinstance(v, str) and v <= 0:
                raise ValueError("must be > 0 (or 'scott', 'silverman')")
            return v

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        d = p.n_features
        real, test, sample_real, labels = vector_data(
            p, streams, lambda g, n: (g.standard_normal((n, d)), None))
        R = real.shape[0]
        cov0 = (np.broadcast_to(np.eye(d), (R, d, d)) if p.dataset == "synthetic"
                else reference_moments(test)[1])

        mean0 = np.zeros((R, d)) if p.dataset == "synthetic" else reference_moments(test)[0]
        tail = tail_rows(test, mean0, cov0)

        def test_nll(model: KernelDensity) -> np.ndarray:
            return mean_nll(model.score_samples(test))

        # Def. 5: the real-data learning curve (the bandwidth rule adapts to each subsample); a
        # KDE is defined from one sample, so the curve starts low, at d + 1 samples, where
        # collapsed chains land (a KDE's risk falls slowly, ~N^(-4/(d+4)))
        reference = vector_curve("test_nll", test_nll, real.shape[1], CURVE_SMALLEST_KDE * (d + 1),
                                 CURVE_REPEATS)
        profile = dict(VECTOR_PROFILE, scaling={"metric": "test_nll"})
        if reference is not None:
            profile["scaling"]["reference"] = reference.prefix

        def evaluate(model: KernelDensity, iteration: int = 0) -> dict[str, np.ndarray]:
            scores = model.score_samples(test)
            return {**sample_metrics(model, test, labels, streams, iteration, p.sample_metrics),
                    "test_nll": mean_nll(scores),
                    "tail_nll": mean_nll(take_rows(scores, tail)),
                    "cov_trace_ratio": cov_trace_ratio(model.covariance(), cov0)}

        return Task(
            name=f"kde-{p.dataset_name()}", family=cls.family,
            make_model=lambda: KernelDensity(bandwidth=p.bandwidth),
            real=real, test=test, evaluate=evaluate, risk_metric="test_nll",
            sample_real=sample_real, truth={"covariance": cov0}, profile=profile,
            reference=reference,
            provenance=p.provenance(),
        )
