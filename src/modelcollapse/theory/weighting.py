"""Optimal weighting of fresh real and synthetic data (He, Xu & Cheng 2025): the golden ratio.

Setting (Gaussian mean, known sigma^2): iteration 0 estimates theta from n real samples,
theta_hat_0 = xbar_real; iteration t >= 1 draws n **fresh** real samples from N(theta, sigma^2)
and m synthetic samples from N(theta_hat_{t-1}, sigma^2) and sets

    theta_hat_t = w xbar_real + (1 - w) xbar_synthetic,

w = the weight on real data.  Write r = m / n (synthetic-to-real ratio) and k = n / m = 1 / r.
With x_t = n MSE_t / sigma^2:

    x_t = a + b x_{t-1},  x_0 = 1,  a = w^2 + (1 - w)^2 / r,  b = (1 - w)^2,

so x_t -> a / (1 - b) = [w^2 + (1 - w)^2 / r] / (1 - (1 - w)^2) for 0 < w <= 1.

Iterations are 0-based.  Scaled MSEs n MSE / sigma^2 are dimensionless (1 = real data alone).

In the engine this is the ``gaussian`` task with ``known_covariance: true`` under ``mix`` with
``fresh_real: true`` and ``real_weight: w``: a training set of N = ``n_samples`` rows holds
n = round(rho N) fresh real and N - n synthetic rows (rho = ``real_fraction``), so m = N - n,
and iteration 0 fits all N real rows (``initial_scaled_mse`` = n / N).
``modelcollapse.checks.PREDICTIONS`` checks the formulas both on the engine and by an
**independent simulation** (``checks.predictions.simulate_weighting_scaled_mse``).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import iterations, output

__all__ = ["scaled_mse", "stationary_scaled_mse", "optimal_real_weight", "golden_ratio_weight",
           "simulate_scaled_mse"]


def _ratio(synthetic_to_real: float) -> float:
    if synthetic_to_real <= 0:
        raise ValueError("synthetic_to_real = m / n must be > 0")
    return float(synthetic_to_real)


def stationary_scaled_mse(weight, *, synthetic_to_real: float = 1.0):
    """Stationary n MSE / sigma^2 = [w^2 + (1 - w)^2 / (m/n)] / (1 - (1 - w)^2).

    Parameters
    ----------
    weight : float or array_like
        w in (0, 1], the weight on the fresh real sample mean (w = 0: no real data, inf).
    synthetic_to_real : float
        m / n.

    Returns
    -------
    float or ndarray, dimensionless.  m = n: 1.0 at w = 1 (real only), 0.6667 at w = 1/2,
    0.618034 at the golden-ratio weight (the minimum).

    Notes
    -----
    Exact fixed point of x = a + b x (module docstring): the real and synthetic sample means are
    independent given theta_hat_{t-1}, with variances sigma^2 / n and sigma^2 / m.

    References
    ----------
    He, Xu & Cheng 2025, "Golden Ratio Weighting Prevents Model Collapse", arXiv 2502.18049
    (JRSS-B; the abstract's "reciprocal of the golden ratio"); literature.md Sec. 7 and Sec. 8
    item 16.
    """
    r = _ratio(synthetic_to_real)
    w = np.asarray(weight, dtype=float)
    if ((w < 0) | (w > 1)).any():
        raise ValueError("weight must be in [0, 1]")
    with np.errstate(divide="ignore"):
        out = np.where(w > 0, (w**2 + (1 - w) ** 2 / r) / np.where(w > 0, 1 - (1 - w) ** 2, 1.0),
                       np.inf)
    return float(out) if out.ndim == 0 else out


def scaled_mse(t, *, weight: float, synthetic_to_real: float = 1.0,
               initial_scaled_mse: float = 1.0):
    """n MSE_t / sigma^2 at iteration t: x_inf + (x_0 - x_inf) (1 - w)^(2t), exact.

    Parameters
    ----------
    t : int or array_like of int
        0-based iterations.
    weight : float
        w in (0, 1].
    synthetic_to_real : float
        m / n.
    initial_scaled_mse : float
        x_0 = n MSE_0 / sigma^2: 1 when iteration 0 fits n real samples (He, Xu & Cheng), n / N
        when it fits N real samples (the engine's ``mix``, whose iteration 0 uses the whole
        training-set size N).

    Returns
    -------
    float or ndarray, dimensionless; converges geometrically (rate (1 - w)^2) to
    ``stationary_scaled_mse``.

    References
    ----------
    He, Xu & Cheng 2025, arXiv 2502.18049; literature.md Sec. 7.
    """
    t, scalar = iterations(t)
    x_inf = stationary_scaled_mse(weight, synthetic_to_real=synthetic_to_real)
    b = (1 - weight) ** 2
    return output(x_inf + (initial_scaled_mse - x_inf) * b ** t.astype(float), scalar)


def optimal_real_weight(*, synthetic_to_real: float = 1.0) -> float:
    """Weight on real data minimising ``stationary_scaled_mse``: w* = (sqrt(k^2 + 4k) - k) / 2,
    k = n / m.  The minimum value equals w* itself.

    Parameters
    ----------
    synthetic_to_real : float
        m / n (k = 1 / this).

    Returns
    -------
    float in (0, 1).  m = n: (sqrt(5) - 1) / 2 = 0.618034, the reciprocal of the golden ratio;
    m = 2n: 0.5; m = n/2: 0.7321.

    Notes
    -----
    With f(w) = [w^2 + k (1 - w)^2] / (w (2 - w)), f'(w) = 0 reduces to w^2 + k w - k = 0,
    the same quadratic as f(w) = w, so the optimal scaled MSE equals w*.  Derived here and
    checked numerically in the tests; the paper's general statement was not consulted.

    References
    ----------
    He, Xu & Cheng 2025, arXiv 2502.18049; literature.md Sec. 7 and Sec. 8 item 16.
    """
    k = 1.0 / _ratio(synthetic_to_real)
    return (math.sqrt(k * k + 4 * k) - k) / 2


def golden_ratio_weight() -> float:
    """(sqrt(5) - 1) / 2 = 0.6180339887: the optimal real weight for m = n.

    Returns
    -------
    float.

    References
    ----------
    He, Xu & Cheng 2025, arXiv 2502.18049 (abstract).
    """
    return (math.sqrt(5) - 1) / 2


def simulate_scaled_mse(t: int, *, weight: float, synthetic_to_real: float = 1.0,
                        n_real: int = 50, n_chains: int = 20000, seed=0,
                        variance: float = 1.0) -> tuple[float, float]:
    """**Independent simulation** (numpy only, not the engine) of n MSE_t / sigma^2.

    Draws the real and synthetic sample means directly (xbar ~ N(mean, sigma^2 / size), which is
    their exact distribution for Gaussian samples) for ``n_chains`` chains, theta = 0.

    Parameters
    ----------
    t : int
        0-based iteration.
    weight : float
        w.
    synthetic_to_real : float
        m / n; m = round(n_real * synthetic_to_real).
    n_real : int
        n.
    n_chains : int
    seed : int or SeedSequence
        Seeds a ``np.random.Generator``.
    variance : float
        sigma^2.

    Returns
    -------
    (value, standard_error) : tuple of float, dimensionless.
    """
    rng = np.random.default_rng(seed)
    n = int(n_real)
    m = max(1, int(round(n * synthetic_to_real)))
    sd = math.sqrt(variance)
    theta = sd / math.sqrt(n) * rng.standard_normal(n_chains)
    for _ in range(int(t)):
        real = sd / math.sqrt(n) * rng.standard_normal(n_chains)
        synthetic = theta + sd / math.sqrt(m) * rng.standard_normal(n_chains)
        theta = weight * real + (1 - weight) * synthetic
    x = n * theta**2 / variance
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(n_chains))
