"""Closed-form population risk of OLS on a fixed design under replace and accumulate.

Setting (Gerstgrasser et al. 2024, Sec. 3; the notation of Zhu et al. 2024, Sec. 4.2; the
``linear_regression`` task with ``dataset: synthetic``, ``label_noise: true``): x ~ N(0, I_d),
a fixed design X of T rows (T >= d + 2), y = X w* + eps with eps ~ N(0, sigma^2 I_T).  Model
t >= 1 is refitted on labels X w_hat_{t-1} + fresh N(0, sigma^2 I_T) noise, always on the same
design X (``n_synthetic`` = T).  The population risk is the excess test error
E_x[(x^T(w_hat_t - w*))^2] = ||w_hat_t - w*||^2 (isotropic x), in squared label units
(the ``population_risk`` metric).

With A = (X^T X)^-1 X^T and E_i the noise of the i-th label draw (i = 1 .. t + 1):

* replace:    w_hat_t - w* = sum_{i=1}^{t+1} A E_i,
* accumulate: w_hat_t - w* = sum_{i=1}^{t+1} A E_i / i    (OLS on the stacked design),

so E||w_hat_t - w*||^2 = sigma^2 tr((X^T X)^-1) (t + 1), resp. ... sum_{i=1}^{t+1} 1/i^2, and
E tr((X^T X)^-1) = d / (T - d - 1) for Gaussian rows (mean of the inverse Wishart).

Iterations are 0-based: iteration 0 is the fit on real data, so the literature's n = t + 1.
"""

from __future__ import annotations

from ._common import PI2_OVER_6, harmonic2, iterations, output

__all__ = ["expected_trace_inverse_gram", "replace_risk", "accumulate_risk",
           "accumulate_risk_limit", "replace_risk_fixed_design", "accumulate_risk_fixed_design",
           "replace_risk_ratio", "accumulate_risk_ratio"]


def _check_sizes(n_features: int, n_samples: int) -> None:
    if n_samples < n_features + 2:
        raise ValueError(f"need n_samples >= n_features + 2 for a finite expected risk, got "
                         f"T={n_samples}, d={n_features}")


def expected_trace_inverse_gram(*, n_features: int, n_samples: int) -> float:
    """E tr((X^T X)^-1) = d / (T - d - 1) for X with i.i.d. N(0, 1) entries.

    Parameters
    ----------
    n_features : int
        d, columns of the design.
    n_samples : int
        T, rows of the design; T >= d + 2.

    Returns
    -------
    float, in inverse squared feature units.

    Notes
    -----
    X^T X ~ Wishart(I_d, T), whose inverse has mean I_d / (T - d - 1) (Anderson 2003, Thm 7.7.1);
    hence the trace d / (T - d - 1).
    """
    _check_sizes(n_features, n_samples)
    return n_features / (n_samples - n_features - 1)


def replace_risk_fixed_design(t, *, trace_inv_gram: float, noise_variance: float):
    """Expected population risk under replace for one fixed design: sigma^2 tr((X^T X)^-1) (t + 1).

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    trace_inv_gram : float
        tr((X^T X)^-1) of the design (inverse squared feature units).
    noise_variance : float
        sigma^2 of the label noise (squared label units).

    Returns
    -------
    float or ndarray
        E[||w_hat_t - w*||^2 | X] in squared label units (x isotropic, so this is the excess
        test error E_x[(x^T(w_hat_t - w*))^2]).

    Notes
    -----
    Exact for any full-rank X, conditional on X, with synthetic labels drawn with the true
    sigma^2 on the same design: w_hat_t - w* is the sum of t + 1 independent A E_i, each with
    covariance sigma^2 (X^T X)^-1.

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    t, scalar = iterations(t)
    return output(noise_variance * trace_inv_gram * (t + 1), scalar)


def accumulate_risk_fixed_design(t, *, trace_inv_gram: float, noise_variance: float):
    """Expected population risk under accumulate for one fixed design:
    sigma^2 tr((X^T X)^-1) sum_{i=1}^{t+1} 1/i^2.

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    trace_inv_gram : float
        tr((X^T X)^-1) of the design.
    noise_variance : float
        sigma^2 (squared label units).

    Returns
    -------
    float or ndarray, squared label units.

    Notes
    -----
    OLS on the design stacked t + 1 times with labels [y_real; y_1; ...; y_t] gives
    w_hat_t = w_hat_{t-1} + A E_{t+1} / (t + 1), so w_hat_t - w* = sum_i A E_i / i and the i-th
    term contributes sigma^2 tr((X^T X)^-1) / i^2.  Exact conditional on X.

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    t, scalar = iterations(t)
    return output(noise_variance * trace_inv_gram * harmonic2(t + 1), scalar)


def replace_risk(t, *, n_features: int, n_samples: int, noise_variance: float):
    """Expected population risk under replace: sigma^2 d / (T - d - 1) (t + 1).

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations (literature n = t + 1).
    n_features : int
        d.
    n_samples : int
        T, rows of the fixed design; T >= d + 2.
    noise_variance : float
        sigma^2 (squared label units).

    Returns
    -------
    float or ndarray
        E||w_hat_t - w*||^2 averaged over Gaussian designs, squared label units.  Example
        (literature.md Sec. 8 item 1): d = 10, T = 100, sigma^2 = 1 gives 0.112360 (t + 1).

    Notes
    -----
    ``replace_risk_fixed_design`` averaged over X with i.i.d. N(0, 1) entries
    (E tr((X^T X)^-1) = d / (T - d - 1)).  Grows linearly without bound (Definition 3 of
    Schaeffer et al. 2025: asymptotically diverging risk).

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    tr = expected_trace_inverse_gram(n_features=n_features, n_samples=n_samples)
    return replace_risk_fixed_design(t, trace_inv_gram=tr, noise_variance=noise_variance)


def accumulate_risk(t, *, n_features: int, n_samples: int, noise_variance: float):
    """Expected population risk under accumulate: sigma^2 d / (T - d - 1) sum_{i=1}^{t+1} 1/i^2.

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_features, n_samples : int
        d and T (T >= d + 2).
    noise_variance : float
        sigma^2.

    Returns
    -------
    float or ndarray, squared label units.  Example: d = 10, T = 100, sigma^2 = 1 gives
    0.1124, 0.1404, 0.1645, 0.1741, 0.1826 at t = 0, 1, 4, 9, 49.

    Notes
    -----
    ``accumulate_risk_fixed_design`` averaged over Gaussian designs.  Bounded by
    ``accumulate_risk_limit`` = (pi^2 / 6) x the iteration-0 risk.

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    tr = expected_trace_inverse_gram(n_features=n_features, n_samples=n_samples)
    return accumulate_risk_fixed_design(t, trace_inv_gram=tr, noise_variance=noise_variance)


def accumulate_risk_limit(*, n_features: int, n_samples: int, noise_variance: float) -> float:
    """lim_{t -> inf} of ``accumulate_risk``: (pi^2 / 6) sigma^2 d / (T - d - 1).

    Parameters
    ----------
    n_features, n_samples : int
        d and T (T >= d + 2).
    noise_variance : float
        sigma^2.

    Returns
    -------
    float, squared label units; an upper bound of the accumulate risk at every iteration.
    Example: d = 10, T = 100, sigma^2 = 1 gives 0.18483.

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    return PI2_OVER_6 * noise_variance * expected_trace_inverse_gram(
        n_features=n_features, n_samples=n_samples)


def replace_risk_ratio(t):
    """Replace risk relative to iteration 0: t + 1 (design- and noise-free).

    Parameters
    ----------
    t : int or array_like of int

    Returns
    -------
    float or ndarray, dimensionless.

    Notes
    -----
    Ratio of expectations E risk_t / E risk_0 (for a fixed design also the conditional one).

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    t, scalar = iterations(t)
    return output(t + 1.0, scalar)


def accumulate_risk_ratio(t):
    """Accumulate risk relative to iteration 0: sum_{i=1}^{t+1} 1/i^2 < pi^2 / 6.

    Parameters
    ----------
    t : int or array_like of int

    Returns
    -------
    float or ndarray, dimensionless: 1, 1.25, 1.3611, ... -> 1.644934.

    References
    ----------
    Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", arXiv 2404.01413, Sec. 3
    (replace and accumulate theorems for linear regression); Dohmatob, Feng & Kempe 2024,
    arXiv 2402.07712 (replace: sigma^2 d/(T-d-1) n, as quoted in Zhu et al. 2024,
    arXiv 2412.14689, Eq. 7); literature.md Sec. 1a and Sec. 8 items 1-3.
    """
    t, scalar = iterations(t)
    return output(harmonic2(t + 1), scalar)
