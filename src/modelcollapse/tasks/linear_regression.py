"""Linear regression on a fixed design: known truth (Gerstgrasser et al. 2024) or ``diabetes``.

Known truth: per replicate, x ~ N(0, I_d) design rows (T = ``n_samples`` of them), w* ~ N(0, I_d),
y = x^T w* + eps with eps ~ N(0, ``noise_variance``).  ``population_risk`` is exact:
E_x[(x^T(w_hat - w*))^2] = ||w_hat - w*||^2 for isotropic x (Gerstgrasser et al. 2024, Sec. 3;
the "test error" of Zhu et al. 2024, Eq. 4).

Real data (``dataset: diabetes``): the truth is only the held-out real test set, so population
risk cannot be computed; it is estimated by ``test_loss``, the mean squared error on held-out
real rows (standardised target, so 1.0 = predicting the mean).  ``test_loss`` is an unbiased
estimate of the population risk *plus* the irreducible noise, so its ratios across iterations
understate the relative growth of the excess risk.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..data.sklearn_datasets import regression_split
from ..families.linear_regression import LinearRegression
from ..metrics.regression import excess_risk, moment_mse, predictive_variance
from ..rng import Role, Streams
from ._curve import BlockCurve
from .base import Task, TaskParams, curve_sizes, reference_moments, tail_rows, take_rows

#: real-data learning curve (Def. 5): smallest subsample = this many times the design's columns
CURVE_SMALLEST = 3
CURVE_REPEATS = 8  #: subsamples per size and replicate (an OLS fit costs microseconds)


class LinearRegressionTask:
    family = "linear_regression"

    class Params(TaskParams):
        dataset: Literal["synthetic", "diabetes"] = Field(
            "synthetic", description="'synthetic' = known truth; 'diabetes' = scikit-learn data")
        n_features: int = Field(10, ge=1, description="d (synthetic only)")
        n_samples: int | None = Field(
            None, ge=2, description="T, rows of the fixed design (synthetic default 100; "
            "diabetes default: the whole training split)")
        noise_variance: float = Field(1.0, gt=0, description="sigma^2 of the label noise (synthetic)")
        label_noise: Literal["true", "fitted"] | None = Field(
            None, description="noise variance used to sample synthetic labels: the true sigma^2 "
            "(theory; synthetic default) or the fitted residual variance (diabetes: always)")
        n_test: int = Field(1000, ge=1, description="held-out test rows (synthetic)")
        test_size: float = Field(0.25, gt=0, lt=1, description="held-out fraction (real data)")
        data_scale: float = Field(
            1.0, gt=0, description="multiply the real features and target by this constant "
            "(other units of the same data; real data only)")

        @field_validator("label_noise", mode="before")
        @classmethod
        def _yaml_true(cls, value):
            # YAML reads an unquoted `label_noise: true` (as the guide writes it) as a boolean
            return "true" if value is True else value

        @model_validator(mode="after")
        def _resolve(self):
            if self.data_scale != 1.0 and self.dataset == "synthetic":
                raise ValueError("data_scale: only for real data (dataset: diabetes); the known "
                                 "truth's scale is noise_variance")
            if self.dataset == "synthetic":
                self.n_samples = 100 if self.n_samples is None else self.n_samples
                self.label_noise = self.label_noise or "true"
            else:
                if self.label_noise == "true":
                    raise ValueError("label_noise: 'true' needs a known truth; allowed for "
                                     "real data: 'fitted'")
                self.label_noise = "fitted"
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        if p.dataset == "synthetic":
            d, T = p.n_features, p.n_samples
            gens = streams(0, Role.DATA)
            w_star = np.stack([g.standard_normal(d) for g in gens])
            X = np.stack([g.standard_normal((T, d)) for g in gens])
            Xt = np.stack([g.standard_normal((p.n_test, d)) for g in gens])
            sd = np.sqrt(p.noise_variance)

            def rows(X, gens_):
                eps = np.stack([g.standard_normal(X.shape[1]) for g in gens_])
                y = np.einsum("rnd,rd->rn", X, w_star) + sd * eps
                return np.concatenate([X, y[..., None]], axis=-1)

            real, test = rows(X, gens), rows(Xt, gens)
            truth = {"coef": w_star, "noise_variance": p.noise_variance}

            def sample_real(n, rngs):
                Xn = np.stack([g.standard_normal((n, d)) for g in rngs])
                return rows(Xn, rngs)
        else:
            real, test = regression_split(p.dataset, n_samples=p.n_samples,
                                          test_size=p.test_size, streams=streams,
                                          data_scale=p.data_scale)
            truth, sample_real = {}, None

        design = real[..., :-1]
        noise = p.noise_variance if p.label_noise == "true" else None

        # test MSE = (y^T y - 2 c^T X^T y + c^T X^T X c) / m exactly, from the test set's moments;
        # the tail (Def. 7): the 10% highest-leverage test rows (largest Mahalanobis distance of x)
        x_test = test[..., :-1]
        if "coef" in truth:  # known truth: x ~ N(0, I) (the intercept-free synthetic design)
            R, d_x = x_test.shape[0], x_test.shape[-1]
            x_mean, x_cov = np.zeros((R, d_x)), np.broadcast_to(np.eye(d_x), (R, d_x, d_x))
        else:
            x_mean, x_cov = reference_moments(x_test)
        test_moments = LinearRegression.statistics(test)
        tail = take_rows(test, tail_rows(x_test, x_mean, x_cov))
        tail_moments = LinearRegression.statistics(tail)
        tail_second_moment = tail_moments["xtx"] / tail_moments["count"][:, None, None]

        def population_risk(model: LinearRegression) -> np.ndarray:
            return excess_risk(model.coef_ - truth["coef"])

        def test_loss(model: LinearRegression) -> np.ndarray:
            return moment_mse(test_moments, model.coef_)

        def evaluate(model: LinearRegression, iteration: int = 0) -> dict[str, np.ndarray]:
            c = model.coef_
            out = {}
            if "coef" in truth:
                out["population_risk"] = population_risk(model)
                # excess risk on the tail of x: E[(x^T delta)^2 | x in the 10% highest leverage]
                out["tail_risk"] = excess_risk(c - truth["coef"], tail_second_moment)
            out["test_loss"] = test_loss(model)
            out["tail_loss"] = moment_mse(tail_moments, c)
            out["residual_variance"] = model.residual_variance_
            # variance of the model's label distribution: noise + Var_x(x^T c)
            out["predictive_variance"] = predictive_variance(model.noise_variance_, c, x_cov)
            return out

        risk = "population_risk" if truth else "test_loss"
        # Def. 7 compares tail to overall risk: excess risks when the truth is known, else the
        # increments of held-out losses since iteration 0 (the noise floor cancels)
        # Def. 5: the real-data learning curve of OLS on real subsamples of 3d .. n rows
        d = design.shape[-1]
        # (subsamples from one block draw per size: tasks._curve)
        reference = BlockCurve(risk, population_risk if truth else test_loss,
                               curve_sizes(real.shape[1], CURVE_SMALLEST * d), CURVE_REPEATS)
        profile = {"variance": "predictive_variance", "tail": "tail_loss", "tail_base": "test_loss",
                   "tail_mode": "increment",
                   "scaling": {"metric": risk, "reference": reference.prefix}}
        if truth:  # E risk of OLS on N real rows of an isotropic Gaussian design
            profile.update(tail="tail_risk", tail_base="population_risk", tail_mode="ratio")
            profile["scaling"].update(a=p.noise_variance * d, b=d + 1.0)

        return Task(
            name=f"linear_regression-{p.dataset}", family=cls.family,
            make_model=lambda: LinearRegression(design, noise_variance=noise),
            real=real, test=test, evaluate=evaluate,
            risk_metric=risk, sample_real=sample_real, truth=truth, profile=profile,
            reference=reference if reference.sizes else None,
        )
