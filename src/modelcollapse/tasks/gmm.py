"""Gaussian-mixture task: known truth (``n_components`` unit Gaussians with means spread on a circle
of radius 4 in the first two dimensions) or real ``wine`` / ``digits`` features.  Fitted by
batched EM for all replicates at once (``families.gmm``), sampled from our own streams.  Metrics:
``test_nll`` on held-out real data and ``cov_trace_ratio`` (mixture covariance / reference)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..families.gmm import GaussianMixture
from ..metrics import cov_trace_ratio, mean_nll
from ..rng import Streams
from ._vector import (CURVE_SMALLEST, VECTOR_PROFILE, VectorParams, sample_metrics, vector_curve,
                      vector_data)
from .base import Task, reference_moments, tail_rows, take_rows

CURVE_REPEATS = 1  #: subsamples per size and replicate of the learning curve (an EM fit each)


def _circle_means(k: int, d: int, radius: float = 4.0) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    means = np.zeros((k, d))
    means[:, 0] = radius * np.cos(angles)
    if d > 1:
        means[:, 1] = radius * np.sin(angles)
    return means


class GMMTask:
    family = "gmm"

    class Params(VectorParams):
        synthetic_has_modes = True  # the truth's components are its modes (Def. 6)
        n_components: int = Field(3, ge=1, description="mixture components (fit and truth)")
        covariance_type: str = Field("full", pattern="^(full|diag|spherical|tied)$",
                                     description="'full', 'diag', 'spherical' or 'tied'")
        max_iter: int = Field(100, ge=1, description="EM iterations per fit")

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        d, k = p.n_features, p.n_components
        means = _circle_means(k, d)

        def draw(g, n):
            component = g.integers(k, size=n)
            return means[component] + g.standard_normal((n, d)), component

        real, test, sample_real, labels = vector_data(p, streams, draw)
        R = real.shape[0]
        if p.dataset == "synthetic":
            centred = means - means.mean(0)
            cov0 = np.broadcast_to(np.eye(d) + centred.T @ centred / k, (R, d, d))
        else:
            cov0 = reference_moments(test)[1]

        mean0 = (np.broadcast_to(means.mean(0), (R, d)) if p.dataset == "synthetic"
                 else reference_moments(test)[0])
        tail = tail_rows(test, mean0, cov0)

        def evaluate(model: GaussianMixture, iteration: int = 0) -> dict[str, np.ndarray]:
            cov = model.covariance()
            scores = model.score_samples(test)
            return {**sample_metrics(model, test, labels, streams, iteration, p.sample_metrics),
                    "test_nll": mean_nll(scores),
                    "tail_nll": mean_nll(take_rows(scores, tail)),
                    "cov_trace_ratio": cov_trace_ratio(cov, cov0)}

        def make_model():
            return GaussianMixture(n_components=k, covariance_type=p.covariance_type,
                                   max_iter=p.max_iter)

        def test_nll(model: GaussianMixture) -> np.ndarray:
            return mean_nll(model.score_samples(test))

        # Def. 5: the real-data learning curve, from 3 (d + 1) rows per component
        reference = vector_curve("test_nll", test_nll, real.shape[1],
                                 CURVE_SMALLEST * (d + 1) * k, CURVE_REPEATS)
        profile = dict(VECTOR_PROFILE, scaling={"metric": "test_nll"})
        if reference is not None:
            profile["scaling"]["reference"] = reference.prefix

        return Task(
            name=f"gmm-{p.dataset_name()}", family=cls.family, make_model=make_model,
            real=real, test=test, evaluate=evaluate, risk_metric="test_nll",
            sample_real=sample_real, truth={"means": means, "covariance": cov0},
            profile=profile, reference=reference,
            provenance=p.provenance(),
        )
