"""The pi^2/6 law of Dey & Donoho (2024) in the Gaussian location model.

Setting: X ~ N(theta, sigma^2) with sigma^2 known; each generation draws n samples; the model of
generation g is theta_hat_g (sample mean, or an asymptotically linear estimator such as the
median); synthetic data of generation g + 1 are n draws from N(theta_hat_g, sigma^2).

* **augment** (= our ``accumulate``): generation g fits the real n samples plus all synthetic
  batches so far;
* **discard** (= our ``replace``): generation g fits only the batch drawn from model g - 1.

Iterations are 0-based: our iteration t is Dey & Donoho's generation G = t + 1.  MSEs are in
squared data units; ratios MSE_t / MSE_0 and relative efficiencies are dimensionless.

In the engine this is the ``gaussian`` task with ``known_covariance: true`` (sample mean;
``replace`` = discard, ``accumulate`` = augment).  ``modelcollapse.checks.PREDICTIONS`` checks the
sample mean there and both estimators by an **independent simulation**
(``checks.predictions.simulate_location_sq_errors``); the median has no engine counterpart.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ._common import PI2_OVER_6, harmonic2, iterations, output, ratio_of_means

__all__ = ["augment_mse_ratio", "augment_mse_ratio_limit", "discard_mse_ratio", "augment_mse",
           "discard_mse", "augment_relative_efficiency", "relative_efficiency_floor",
           "median_mse_asymptotic", "simulate_mse_ratio"]

def augment_mse_ratio(t):
    """MSE_t / MSE_0 under augment (accumulate): sum_{g=1}^{t+1} 1/g^2.

    Parameters
    ----------
    t : int or array_like of int
        0-based iterations (generation G = t + 1).

    Returns
    -------
    float or ndarray, dimensionless: 1, 1.25, 1.3611, 1.4236, 1.4636 (t = 0..4), 1.5962
    (t = 19), -> pi^2/6 = 1.644934.

    Notes
    -----
    Exact for the sample mean: theta_hat_t = theta_hat_{t-1} + (b_t - theta_hat_{t-1}) / (t + 1)
    with b_t ~ N(theta_hat_{t-1}, sigma^2 / n), so the error is a sum of independent terms with
    variances sigma^2 / (n g^2).  Asymptotic (n -> inf) for any asymptotically linear
    estimator of an exponential-family parameter (Dey & Donoho's universality theorem, e.g.
    the median; its finite-n ratio is a few % lower at n = 400).

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812 (main theorem and Gaussian-location simulation);
    literature.md Sec. 3 and Sec. 8 item 15.
    """
    t, scalar = iterations(t)
    return output(harmonic2(t + 1), scalar)


def augment_mse_ratio_limit() -> float:
    """sup_t of ``augment_mse_ratio``: pi^2 / 6 = 1.644934.

    Returns
    -------
    float, dimensionless.

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812 (abstract: "pi-squared-over-6").
    """
    return PI2_OVER_6


def discard_mse_ratio(t):
    """MSE_t / MSE_0 under discard (replace): t + 1.

    Parameters
    ----------
    t : int or array_like of int

    Returns
    -------
    float or ndarray, dimensionless; unbounded.

    Notes
    -----
    Exact for the sample mean (a random walk with N(0, sigma^2 / n) steps); asymptotic for
    asymptotically linear estimators.

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812; literature.md Sec. 3 and Sec. 8 item 15.
    """
    t, scalar = iterations(t)
    return output(t + 1.0, scalar)


def augment_mse(t, *, n_samples: int, variance: float = 1.0):
    """MSE of the sample mean under augment: (sigma^2 / n) sum_{g=1}^{t+1} 1/g^2 (exact).

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
        n per generation.
    variance : float
        sigma^2 (known), squared data units.

    Returns
    -------
    float or ndarray, squared data units.

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812.
    """
    return variance / n_samples * augment_mse_ratio(t)


def discard_mse(t, *, n_samples: int, variance: float = 1.0):
    """MSE of the sample mean under discard: (t + 1) sigma^2 / n (exact).

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
    variance : float
        sigma^2.

    Returns
    -------
    float or ndarray, squared data units.

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812.
    """
    return variance / n_samples * discard_mse_ratio(t)


def augment_relative_efficiency(t):
    """Relative efficiency MSE_0 / MSE_t under augment: 1 / sum_{g=1}^{t+1} 1/g^2 (>= 6/pi^2).

    Parameters
    ----------
    t : int or array_like of int

    Returns
    -------
    float or ndarray, dimensionless, decreasing to ``relative_efficiency_floor``.

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812 (asymptotic relative efficiency >= 6/pi^2).
    """
    return 1.0 / augment_mse_ratio(t)


def relative_efficiency_floor() -> float:
    """6 / pi^2 = 0.607927: the limit (and lower bound) of the augment relative efficiency.

    Returns
    -------
    float, dimensionless.

    References
    ----------
    Dey & Donoho 2024, arXiv 2410.22812.
    """
    return 1.0 / PI2_OVER_6


def median_mse_asymptotic(*, n_samples: int, variance: float = 1.0) -> float:
    """Asymptotic MSE of the sample median of n Gaussian draws: pi sigma^2 / (2n).

    Parameters
    ----------
    n_samples : int
    variance : float
        sigma^2.

    Returns
    -------
    float, squared data units.  **Asymptotic** (n -> inf).

    References
    ----------
    Asymptotic normality of the sample median, sd sqrt(pi/2) sigma / sqrt(n) (e.g. van der
    Vaart 1998, Asymptotic Statistics, Cor. 21.5); Dey & Donoho's code uses it.
    """
    return math.pi * variance / (2 * n_samples)


def simulate_mse_ratio(t: int, *, workflow: Literal["augment", "discard"],
                       estimator: Literal["mean", "median"] = "mean", n_samples: int = 100,
                       n_chains: int = 2000, seed=0, variance: float = 1.0) -> tuple[float, float]:
    """**Independent simulation** (numpy only, not the engine) of MSE_t / MSE_0.

    Runs ``n_chains`` chains of the Gaussian location model with theta = 0 for iterations
    0..t and returns the ratio of the mean squared errors at t and 0 with its delta-method
    standard error (both errors come from the same chains).

    Parameters
    ----------
    t : int
        0-based iteration (generation t + 1).
    workflow : {"augment", "discard"}
    estimator : {"mean", "median"}
    n_samples : int
        n per generation.
    n_chains : int
        Monte Carlo replicates.
    seed : int or SeedSequence
        Seeds a ``np.random.Generator`` (PCG64).
    variance : float
        sigma^2.

    Returns
    -------
    (ratio, standard_error) : tuple of float
    """
    rng = np.random.default_rng(seed)
    est = {"mean": np.mean, "median": np.median}[estimator]
    sd = math.sqrt(variance)
    pool = sd * rng.standard_normal((n_chains, n_samples))
    theta = est(pool, axis=1)
    err0 = theta**2
    for _ in range(t):
        batch = theta[:, None] + sd * rng.standard_normal((n_chains, n_samples))
        if workflow == "augment":
            pool = np.concatenate([pool, batch], axis=1)
        elif workflow == "discard":
            pool = batch
        else:
            raise ValueError(f"workflow must be 'augment' or 'discard', got {workflow!r}")
        theta = est(pool, axis=1)
    err = theta**2
    return ratio_of_means(err, err0)

