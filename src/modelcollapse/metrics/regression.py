"""Supervised-regression metrics of a linear model's coefficients, from moments of the
evaluation rows (exact, O(d^2) per replicate); used by the linear_regression task."""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric, register_metric

__all__ = ["moment_mse", "excess_risk", "predictive_variance"]


def _quadratic(v: np.ndarray, M: np.ndarray) -> np.ndarray:
    """v^T M v, (R, d), (R, d, d) -> (R,)."""
    return (v * (M @ v[..., None])[..., 0]).sum(-1)


@metric(test_loss=MetricInfo(False, "squared label units", "mean squared error on held-out real "
                             "data", "mean"),
        tail_loss=MetricInfo(False, "squared label units", "MSE on the 10% highest-leverage "
                             "held-out real rows (Def. 7)", "mean"))
def moment_mse(moments: dict[str, np.ndarray], coef: np.ndarray) -> np.ndarray:
    """Mean squared error of the predictions x^T coef on rows summarised by their moments,
    (y^T y - 2 c^T X^T y + c^T X^T X c) / m, clipped at 0.

    moments : {"yty": (R,), "xty": (R, d), "xtx": (R, d, d), "count": (R,)} (as
        ``families.linear_regression.LinearRegression.statistics``); coef : (R, d) -> (R,),
        in squared label units."""
    sse = moments["yty"] - 2 * (coef * moments["xty"]).sum(-1) + _quadratic(coef, moments["xtx"])
    return np.clip(sse, 0.0, None) / moments["count"]


@metric(population_risk=MetricInfo(False, "squared label units", "E_x[(x^T(w_hat - w*))^2], "
                                   "exact (known truth only)", "functional"),
        tail_risk=MetricInfo(False, "squared label units", "excess risk on the 10% "
                             "highest-leverage x (known truth, Def. 7)", "functional"))
def excess_risk(delta: np.ndarray, second_moment: np.ndarray | None = None) -> np.ndarray:
    """E_x[(x^T delta)^2] = delta^T E[x x^T] delta for delta = w_hat - w*, (R, d) -> (R,);
    ``second_moment`` (R, d, d) of x, default the identity (isotropic x: ||delta||^2)."""
    return (delta**2).sum(-1) if second_moment is None else _quadratic(delta, second_moment)


@metric(predictive_variance=MetricInfo(None, "squared label units", "variance of the model's "
                                       "labels: noise + Var_x(x^T w_hat)", "functional"))
def predictive_variance(noise_variance: np.ndarray, coef: np.ndarray,
                        x_cov: np.ndarray) -> np.ndarray:
    """Variance of the labels the model samples: sigma_hat^2 + coef^T Cov(x) coef, (R,), (R, d),
    (R, d, d) -> (R,)."""
    return noise_variance + _quadratic(coef, x_cov)


# the fitted label-noise variance (an attribute of the model)
register_metric("residual_variance", MetricInfo(None, "squared label units",
                                                "fitted label-noise variance", "functional"))
