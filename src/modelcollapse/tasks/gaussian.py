"""Multivariate Gaussian task: known truth N(0, variance I_d) (Kazdan et al. 2024, Sec. 2.1;
Shumailov et al. 2024, Thm 3.1) or real ``wine`` / ``digits`` features.

On real data the reference distribution (mu_0, Sigma_0) is the Gaussian fitted (MLE) to the
held-out real test set, so ``mean_sq_error``, ``cov_trace_ratio`` and ``w2_squared`` measure the
distance to the real data's moments; ``test_nll`` is measured on the held-out points themselves.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..families.gaussian import Gaussian
from ..metrics import bures_wasserstein_squared, cov_trace_ratio, psd_sqrt
from ..rng import Streams
from ._vector import (CURVE_SMALLEST, VECTOR_PROFILE, VectorParams, sample_metrics, vector_curve,
                      vector_data)
from .base import Task, reference_moments, tail_rows, take_rows

CURVE_REPEATS = 8  #: subsamples per size and replicate of the learning curve (cheap fits)


class GaussianTask:
    family = "gaussian"

    class Params(VectorParams):
        synthetic_n_features = 10
        covariance_estimator: Literal["mle", "unbiased"] = Field(
            "mle", description="divide the scatter by n (mle) or n - 1 (unbiased)")
        sampling_scale: float = Field(
            1.0, gt=0, le=1, description="sample from N(mu, scale * Sigma): MAD sampling bias lambda")
        variance: float = Field(1.0, gt=0, description="truth N(0, variance I) (synthetic)")
        known_covariance: bool = Field(
            False, description="estimate only the mean, covariance fixed at the truth's: the "
            "Gaussian location model of Dey & Donoho 2024 (synthetic only)")

        @model_validator(mode="after")
        def _known_needs_truth(self):
            if self.known_covariance and self.dataset != "synthetic":
                raise ValueError("known_covariance: needs a known truth (dataset: synthetic)")
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        d = p.n_features
        sd = np.sqrt(p.variance)
        def draw(g, n):  # sd * N(0, I): scaled in place (the same numbers, one array less)
            x = g.standard_normal((n, d))
            if sd != 1.0:
                x *= sd
            return x, None

        real, test, sample_real, labels = vector_data(p, streams, draw)
        R = real.shape[0]
        if p.dataset == "synthetic":
            mean0, cov0 = np.zeros((R, d)), np.broadcast_to(p.variance * np.eye(d), (R, d, d))
        else:
            mean0, cov0 = reference_moments(test)

        root0 = psd_sqrt(cov0)
        test_mean, test_cov = reference_moments(test)
        tail_mean, tail_cov = reference_moments(take_rows(test, tail_rows(test, mean0, cov0)))

        def mean_sq_error(model: Gaussian) -> np.ndarray:
            return ((model.mean_ - mean0) ** 2).sum(1)

        def test_nll(model: Gaussian) -> np.ndarray:
            return model.cross_entropy(test_mean, test_cov)

        def evaluate(model: Gaussian, iteration: int = 0) -> dict[str, np.ndarray]:
            return {
                **sample_metrics(model, test, labels, streams, iteration, p.sample_metrics),
                "mean_sq_error": mean_sq_error(model),
                "cov_trace_ratio": cov_trace_ratio(model.covariance_, cov0),
                "w2_squared": bures_wasserstein_squared(model.mean_, model.covariance_, mean0, cov0,
                                                        root_b=root0),
                # exactly the mean NLL of the test points, from their first two moments
                "test_nll": test_nll(model),
                # the 10% held-out points of lowest density under the reference (Def. 7)
                "tail_nll": model.cross_entropy(tail_mean, tail_cov),
            }

        # Def. 5: the real-data learning curve (known truth: of the mean estimate, whose closed
        # form is in the profile spec too)
        synthetic = p.dataset == "synthetic"
        reference = vector_curve("mean_sq_error" if synthetic else "test_nll",
                                 mean_sq_error if synthetic else test_nll, real.shape[1],
                                 CURVE_SMALLEST * (d + 1), CURVE_REPEATS)
        return Task(
            name=f"gaussian-{p.dataset_name()}", family=cls.family,
            make_model=lambda: Gaussian(covariance_estimator=p.covariance_estimator,
                                        sampling_scale=p.sampling_scale,
                                        known_covariance=cov0 if p.known_covariance else None),
            real=real, test=test, evaluate=evaluate,
            risk_metric="w2_squared" if p.dataset == "synthetic" else "test_nll",
            sample_real=sample_real, truth={"mean": mean0, "covariance": cov0},
            profile=_profile(p, reference), reference=reference,
            provenance=p.provenance(),
        )


def _profile(p, reference) -> dict:
    profile = dict(VECTOR_PROFILE)
    if p.dataset == "synthetic":  # E ||mu_hat - mu_0||^2 = tr(Sigma_0) / N for N real samples
        # (the Gaussian location model of Dey & Donoho 2024: their relative efficiency applies)
        profile["scaling"] = {"metric": "mean_sq_error", "a": float(p.variance * p.n_features),
                              "b": 0.0, "dey_donoho": True}
    else:
        profile["scaling"] = {"metric": "test_nll"}
    if reference is not None:
        profile["scaling"]["reference"] = reference.prefix
    return profile
