"""A scikit-learn-style regressor as a generative model of labels on a fixed design.

Any estimator with ``fit(X, y[, sample_weight])`` and ``predict(X)`` becomes the model
y | x ~ N(f_hat(x), sigma_hat^2), with sigma_hat^2 the (weighted) mean squared residual of the
fit -- the Gaussian label model of Gerstgrasser et al. 2024 (Sec. 3) with ``f_hat`` in place of
OLS.  Like ``LinearRegression``, ``sample(n)`` draws new labels at design rows ``i mod T``.
Data rows are ``[x_1 .. x_d, y]``, shape (R, n_samples, d + 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import STATUS_OK

__all__ = ["RegressorFamily"]

LOG_2PI = float(np.log(2 * np.pi))


class RegressorFamily:
    """R regressors (one per replicate) with Gaussian label noise, batched.

    Parameters
    ----------
    make_regressor : callable () -> regressor
        A fresh, unfitted estimator (``fit(X, y[, sample_weight])``, ``predict(X)``).  An
        estimator with a ``random_state`` parameter gets a seed from the fit's generator.
    design : ndarray of shape (R, T, d)
        The fixed design of each replicate.

    Attributes
    ----------
    models_ : list of R fitted estimators; noise_variance_ : ndarray (R,); status_ : (R,) of str
        ``"zero_variance"`` when the residuals vanish, ``"fit_failed"`` when ``fit`` raised (the
        previous fit is kept).
    """

    data_kind = "supervised"
    batched = True

    def __init__(self, make_regressor: Callable[[], Any], design: np.ndarray) -> None:
        self.make_regressor = make_regressor
        self.design = np.asarray(design, dtype=float)
        R = self.design.shape[0]
        self.models_: list[Any] = [None] * R
        self.noise_variance_ = np.full(R, np.nan)
        self.status_ = np.full(R, STATUS_OK, dtype=object)

    def fit(self, data: np.ndarray, *, sample_weight: np.ndarray | None = None,
            rngs=None) -> "RegressorFamily":
        """Fit each replicate's regressor on rows ``[x, y]`` of shape (R, n, d + 1)."""
        data = np.asarray(data, dtype=float)
        for r in range(data.shape[0]):
            X, y = data[r, :, :-1], data[r, :, -1]
            w = None if sample_weight is None else np.asarray(sample_weight[r], dtype=float)
            model = self.make_regressor()
            if rngs is not None and "random_state" in getattr(model, "get_params", dict)():
                model.set_params(random_state=int(rngs[r].integers(2**31 - 1)))
            try:
                model.fit(X, y, **({} if w is None else {"sample_weight": w}))
                residual = y - np.asarray(model.predict(X), dtype=float)
            except Exception:  # collapse is data: keep the previous fit, record the failure
                if self.models_[r] is None:
                    raise
                self.status_[r] = "fit_failed"
                continue
            weights = np.ones_like(y) if w is None else w
            self.models_[r] = model
            self.noise_variance_[r] = float((weights * residual**2).sum() / weights.sum())
            self.status_[r] = "zero_variance" if not self.noise_variance_[r] > 0 else STATUS_OK
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions, X of shape (R, m, d) -> (R, m)."""
        return np.stack([np.asarray(m.predict(x), dtype=float)
                         for m, x in zip(self.models_, X)])

    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        """Rows ``[x, y]`` (R, n_samples, d + 1): design rows ``i mod T`` with new labels."""
        T = self.design.shape[1]
        X = self.design[:, np.arange(n_samples) % T]
        noise = np.stack([g.standard_normal(n_samples) for g in rngs])
        y = self.predict(X) + noise * np.sqrt(self.noise_variance_)[:, None]
        return np.concatenate([X, y[..., None]], axis=-1)

    def score_samples(self, data: np.ndarray) -> np.ndarray:
        """Gaussian log-likelihood of each row's label given its x, nats, (R, m, d + 1) -> (R, m)."""
        data = np.asarray(data, dtype=float)
        var = self.noise_variance_[:, None]
        residual = data[..., -1] - self.predict(data[..., :-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            return -0.5 * (LOG_2PI + np.log(var) + residual**2 / var)
