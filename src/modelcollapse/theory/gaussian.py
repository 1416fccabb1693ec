"""Closed-form moments of a Gaussian refitted to its own samples (replace, accumulate, mix).

Setting (the ``gaussian`` task with ``dataset: synthetic``; Kazdan et al. 2024, Sec. 2.1;
Shumailov et al. 2024, Thm 3.1; Alemohammad et al. 2023, Sec. 3.1): truth N(mu_0, Sigma_0) in
d dimensions, n real samples, m = ``n_synthetic`` samples drawn from each fitted model
N(mu_hat_t, lambda Sigma_hat_t) (lambda = ``sampling_scale``, the sampling bias of Alemohammad
et al.; 1 = unbiased sampling).  The fit is the sample mean and the scatter matrix divided by
D(k) = k (``estimator="mle"``) or k - 1 (``"unbiased"``), k = the training-set size.

Units: ``trace_cov`` = tr Sigma_0 and ``variance`` (Sigma_0 = variance I) are in squared data
units; mean errors and squared Wasserstein distances are in squared data units; ratios are
dimensionless.  Iterations are 0-based: iteration 0 is fitted on the n real samples, so
Shumailov's / Kazdan's "n" (number of fits) is t + 1.

Every expectation below is exact for Gaussian truth (the engine's known-truth task), obtained
from the conditional moments of one refit given the previous model:

* batch mean b ~ N(mu_hat, lambda Sigma_hat / m), independent of the batch scatter
  B ~ Wishart(lambda Sigma_hat, m - 1);
* E[W A W] = k(k+1) A + k tr(A) I and E[(tr W A)^2] = k^2 (tr A)^2 + 2 k tr(A^2) for
  W ~ Wishart(I, k) (second moments used for the W2 bounds).

Because these moments are linear in Sigma_hat, E Sigma_hat_t is a multiple of Sigma_0 and the
first moments obey linear recursions, solved here in closed form (replace) or by iterating the
recursion exactly (accumulate, mix with fresh real data).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ._common import (PI2_OVER_6, chi_mean, digamma, iterations, output, recursion_table,
                      tetragamma, trigamma)

__all__ = [
    "replace_cov_trace_ratio", "replace_mean_sq_error",
    "accumulate_cov_trace_ratio", "accumulate_mean_sq_error", "accumulate_mean_sq_error_bound",
    "mix_fresh_cov_trace_ratio", "mix_fresh_mean_sq_error",
    "sampling_bias_cov_trace_ratio",
    "w2_mean_term", "replace_expected_sd_ratio", "replace_w2_cov_term_1d",
    "replace_w2_squared_1d", "cov_trace_second_moments", "w2_cov_term_bounds",
    "w2_cov_term_small_deviation",
    "jensen_cov_term_lower_bound",
    "replace_median_variance_ratio", "shumailov_median_variance_ratio",
]

Estimator = Literal["mle", "unbiased"]
Paradigm = Literal["replace", "accumulate"]


def _denominator(k, estimator: Estimator):
    if estimator == "mle":
        return k
    if estimator == "unbiased":
        return k - 1
    raise ValueError(f"estimator must be 'mle' or 'unbiased', got {estimator!r}")


def _sizes(n_samples: int, n_synthetic: int | None, estimator: Estimator) -> tuple[int, int]:
    n = int(n_samples)
    m = n if n_synthetic is None else int(n_synthetic)
    if n < 2 or m < 2:
        raise ValueError(f"need n_samples >= 2 and n_synthetic >= 2, got n={n}, m={m}")
    _denominator(n, estimator)
    return n, m


# -- first moments: replace ----------------------------------------------------------------

def _replace_factors(n, m, estimator, lam):
    """(a, b): E Sigma_hat_0 = a Sigma_0, E[Sigma_hat_t | Sigma_hat_{t-1}] = b Sigma_hat_{t-1}."""
    return (n - 1) / _denominator(n, estimator), lam * (m - 1) / _denominator(m, estimator)


def replace_cov_trace_ratio(t, *, n_samples: int, estimator: Estimator = "mle",
                            n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """E[tr Sigma_hat_t] / tr Sigma_0 under replace: a b^t.

    a = (n - 1) / D(n) and b = lambda (m - 1) / D(m), with D(k) = k (MLE) or k - 1 (unbiased).
    MLE, m = n, lambda = 1: (1 - 1/n)^(t+1) (Kazdan et al. 2024, Sec. 2.1); unbiased:
    lambda^t (E Sigma_t = lambda E Sigma_{t-1}, Alemohammad et al. 2023, Sec. 3.1), so 1 for
    lambda = 1 although Sigma_hat_t -> 0 almost surely (Shumailov et al. 2024, Thm 3.1).

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_samples : int
        n, real samples (iteration 0).
    estimator : {"mle", "unbiased"}
        Scatter divided by k or k - 1.
    n_synthetic : int, optional
        m, samples drawn from each model (default n).
    sampling_scale : float
        lambda in (0, 1]: samples are drawn from N(mu_hat, lambda Sigma_hat).

    Returns
    -------
    float or ndarray, dimensionless (the ``cov_trace_ratio`` metric in expectation).

    Notes
    -----
    Exact for Gaussian truth: the scatter of m draws from N(mu_hat, lambda Sigma_hat) is
    Wishart(lambda Sigma_hat, m - 1), so E[Sigma_hat_t | Sigma_hat_{t-1}] = b Sigma_hat_{t-1},
    and E Sigma_hat_0 = a Sigma_0.  E Sigma_hat_t = a b^t Sigma_0 as a matrix, for any Sigma_0.

    References
    ----------
    Kazdan et al. 2024, "Collapse or Thrive?", arXiv 2410.16713, Sec. 2.1 (MLE); Shumailov et
    al. 2024, Nature 631:755, Thm 3.1 (unbiased); Alemohammad et al. 2023, "Self-Consuming
    Generative Models Go MAD", arXiv 2307.01850, Sec. 3.1 and App. A (sampling bias lambda);
    literature.md Sec. 2a, 4, 6 and Sec. 8 items 6, 9, 10.
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    a, b = _replace_factors(n, m, estimator, sampling_scale)
    return output(a * b ** t.astype(float), scalar)


def replace_mean_sq_error(t, *, n_samples: int, trace_cov: float, estimator: Estimator = "mle",
                          n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """E||mu_hat_t - mu_0||^2 under replace: tr Sigma_0 [1/n + (lambda a / m) sum_{s<t} b^s].

    MLE, m = n, lambda = 1: tr Sigma_0 (1 - (1 - 1/n)^(t+1)) (saturates at tr Sigma_0);
    unbiased, m = n, lambda = 1: (t + 1) tr Sigma_0 / n (a random walk; diverges).

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_samples : int
        n.
    trace_cov : float
        tr Sigma_0, squared data units.
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
        m (default n).
    sampling_scale : float
        lambda.

    Returns
    -------
    float or ndarray, squared data units (the ``mean_sq_error`` metric in expectation).

    Notes
    -----
    mu_hat_0 - mu_0 has covariance Sigma_0 / n; each refit adds an independent increment with
    conditional covariance lambda Sigma_hat_{s} / m, whose expected trace is
    lambda a b^s tr Sigma_0 / m (``replace_cov_trace_ratio``).  Exact; a, b as there.

    References
    ----------
    Kazdan et al. 2024, arXiv 2410.16713, Sec. 2.1; Shumailov et al. 2024, Nature 631:755,
    Thm 3.1; Schaeffer et al. 2025, arXiv 2503.03150, Sec. 2.1 (the mean term of W2 diverges);
    literature.md Sec. 2a, 4 and Sec. 8 items 6 and 9.
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    a, b = _replace_factors(n, m, estimator, sampling_scale)
    tf = t.astype(float)
    geometric = tf if b == 1 else (1 - b**tf) / (1 - b)
    return output(trace_cov * (1 / n + sampling_scale * a / m * geometric), scalar)


def sampling_bias_cov_trace_ratio(t, *, sampling_scale: float, n_samples: int,
                                  estimator: Estimator = "unbiased",
                                  n_synthetic: int | None = None):
    """E[tr Sigma_hat_t] / tr Sigma_0 with sampling bias lambda under replace (unbiased: lambda^t).

    Parameters
    ----------
    t : int or array_like of int
        0-based iterations; Alemohammad et al.'s generation G_{t+1}.
    sampling_scale : float
        lambda in (0, 1].
    n_samples : int
        n.
    estimator : {"unbiased", "mle"}
        Alemohammad et al. use the unbiased estimators (the default).
    n_synthetic : int, optional
        m (default n).

    Returns
    -------
    float or ndarray, dimensionless.

    Notes
    -----
    E[Sigma_t | Sigma_{t-1}] = lambda Sigma_{t-1} (Alemohammad et al. 2023, Sec. 3.1, Prop. and
    App. A): geometric decay lambda^(G-1) after the first fit G_1, i.e. lambda^t here.  Exact;
    same as ``replace_cov_trace_ratio`` with ``sampling_scale=lambda``.

    References
    ----------
    Alemohammad et al. 2023, arXiv 2307.01850, Sec. 2.3 (sampling bias) and Sec. 3.1;
    literature.md Sec. 6 and Sec. 8 item 10.
    """
    return replace_cov_trace_ratio(t, n_samples=n_samples, estimator=estimator,
                                   n_synthetic=n_synthetic, sampling_scale=sampling_scale)


# -- first moments: accumulate and mix with fresh real data -----------------------------------

def _accumulate_first_moments(t, n, m, estimator, lam):
    """States (M_t, E tr scatter_t) per unit tr Sigma_0, iterated exactly."""
    def step(s, state):
        M, S = state
        N, N1 = n + s * m, n + (s + 1) * m
        V = S / _denominator(N, estimator)
        return (M + m * lam * V / N1**2, S + lam * V * ((m - 1) + N / N1))

    states = recursion_table(t, step, (1.0 / n, float(n - 1)))
    M = np.array([s[0] for s in states])[t]
    V = np.array([s[1] / _denominator(n + i * m, estimator) for i, s in enumerate(states)])[t]
    return M, V


def accumulate_cov_trace_ratio(t, *, n_samples: int, estimator: Estimator = "mle",
                               n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """E[tr Sigma_hat_t] / tr Sigma_0 under accumulate (pooled sufficient statistics), exact.

    With N_t = n + t m, V_t = E tr Sigma_hat_t / tr Sigma_0 and S_t = E tr(pool scatter_t) /
    tr Sigma_0 (so V_t = S_t / D(N_t)):

        S_0 = n - 1,    S_{t+1} = S_t + lambda V_t [(m - 1) + N_t / N_{t+1}].

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_samples : int
        n, real samples (in the pool from iteration 0 on).
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
        m, samples added to the pool per iteration (default n).
    sampling_scale : float
        lambda.

    Returns
    -------
    float or ndarray, dimensionless.  MLE, d = 10, n = m = 100: settles at ~0.982 (no
    collapse; literature.md Sec. 8 item 7).

    Notes
    -----
    Exact.  The pool mean and scatter are merged with a batch (mean b, scatter B) by the
    pairwise update S_{t+1} = S_t + B + (N_t m / N_{t+1}) (b - mu_hat_t)(b - mu_hat_t)^T, with
    E[B | F_t] = (m - 1) lambda Sigma_hat_t and E[(b - mu_hat_t)(...)^T | F_t] =
    lambda Sigma_hat_t / m.  For lambda <= 1 and both estimators V_t <= 1 for every t.

    References
    ----------
    Kazdan et al. 2024, arXiv 2410.16713, Sec. 2.1 (accumulate; the paper's theorem statement
    was not consulted, this recursion is derived); Chan, Golub & LeVeque 1979 (pairwise
    update); literature.md Sec. 2a and Sec. 8 item 7.
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    return output(_accumulate_first_moments(t, n, m, estimator, sampling_scale)[1], scalar)


def accumulate_mean_sq_error(t, *, n_samples: int, trace_cov: float, estimator: Estimator = "mle",
                             n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """E||mu_hat_t - mu_0||^2 under accumulate, exact:
    tr Sigma_0 [1/n + sum_{s=0}^{t-1} m lambda V_s / N_{s+1}^2].

    V_s = ``accumulate_cov_trace_ratio(s)``, N_s = n + s m.  For m = n and lambda = 1 this is
    the recursion of Kazdan et al. (literature.md Sec. 2a, in our 0-based iterations)

        E||mu_hat_t - mu_0||^2 = sum_{i=1}^{t+1} E[tr Sigma_hat_{i-2}] / (n i^2),
        with Sigma_hat_{-1} := Sigma_0,

    here with E tr Sigma_hat computed exactly rather than assumed.

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_samples : int
        n.
    trace_cov : float
        tr Sigma_0 (squared data units).
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
        m (default n).
    sampling_scale : float
        lambda.

    Returns
    -------
    float or ndarray, squared data units.  MLE, d = 10, n = m = 100: 0.1000, 0.1248, 0.1458,
    0.1543, 0.1605 at t = 0, 1, 4, 9, 29 (literature.md Sec. 8 item 7 reports a Monte
    Carlo 0.1008, 0.1262, 0.1484, 0.1576, 0.1636 +- 0.0016: 1-2 SE above, with the errors of
    one set of chains correlated across t; the engine agrees with this function, see tests).

    Notes
    -----
    mu_hat_{t+1} = mu_hat_t + (m / N_{t+1})(b_{t+1} - mu_hat_t): a martingale whose increments
    have expected squared norm (m / N_{t+1})^2 lambda E tr Sigma_hat_t / m.  Exact.  Bounded by
    ``accumulate_mean_sq_error_bound`` when m = n and lambda <= 1.

    References
    ----------
    Kazdan et al. 2024, arXiv 2410.16713, Sec. 2.1; Gerstgrasser et al. 2024, arXiv 2404.01413
    (the analogous pi^2/6 bound); literature.md Sec. 2a and Sec. 8 item 7.
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    return output(trace_cov * _accumulate_first_moments(t, n, m, estimator, sampling_scale)[0],
                  scalar)


def accumulate_mean_sq_error_bound(*, n_samples: int, trace_cov: float) -> float:
    """Upper bound of the accumulate mean error for m = n, lambda <= 1: (pi^2 / 6) tr Sigma_0 / n.

    Parameters
    ----------
    n_samples : int
        n (= m).
    trace_cov : float
        tr Sigma_0.

    Returns
    -------
    float, squared data units; d = 10, n = 100: 0.16449.

    Notes
    -----
    From ``accumulate_mean_sq_error`` with N_{s+1} = (s + 2) n and V_s <= 1 (true for both
    estimators when lambda <= 1): sum_{i>=1} tr Sigma_0 / (n i^2) = (pi^2 / 6) tr Sigma_0 / n.

    References
    ----------
    Kazdan et al. 2024, arXiv 2410.16713, Sec. 2.1; literature.md Sec. 2a and Sec. 8 item 7.
    """
    return PI2_OVER_6 * trace_cov / n_samples


def _mix_fresh_first_moments(t, n, real_fraction, estimator, lam):
    k = int(round(real_fraction * n))
    s = n - k
    D = _denominator(n, estimator)

    def step(_, state):
        M, V = state
        M1 = (k + s * s * M + s * lam * V) / n**2
        scatter = (k - 1 + s / n) + lam * V * (s - 1 + k / n) + (k * s / n) * M
        return (M1, scatter / D)

    states = recursion_table(t, step, (1.0 / n, (n - 1) / D))
    return np.array([x[0] for x in states])[t], np.array([x[1] for x in states])[t]


def mix_fresh_mean_sq_error(t, *, n_samples: int, real_fraction: float, trace_cov: float,
                            estimator: Estimator = "mle", sampling_scale: float = 1.0):
    """E||mu_hat_t - mu_0||^2 under ``mix`` with ``fresh_real: true`` (the fresh-data loop), exact.

    Iteration t >= 1 fits k = round(rho n) fresh draws from the truth plus s = n - k samples of
    model t - 1 (rho = ``real_fraction``).  Per unit tr Sigma_0, with M_t the mean error and
    V_t = E tr Sigma_hat_t / tr Sigma_0:

        M_t = (k + s^2 M_{t-1} + s lambda V_{t-1}) / n^2,
        V_t = [(k - 1 + s/n) + lambda V_{t-1} (s - 1 + k/n) + (k s / n) M_{t-1}] / D(n),

    M_0 = 1/n, V_0 = (n - 1) / D(n).  rho = 0 reproduces ``replace_*`` (m = n).

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_samples : int
        n, the training-set size of every iteration.
    real_fraction : float
        rho in [0, 1].
    trace_cov : float
        tr Sigma_0.
    estimator : {"mle", "unbiased"}
    sampling_scale : float
        lambda (applies to the synthetic part only).

    Returns
    -------
    float or ndarray, squared data units.

    Notes
    -----
    Exact: the pooled mean is (k r + s y)/n with r the fresh real mean (covariance Sigma_0 / k)
    and y the synthetic mean (conditional covariance lambda Sigma_hat_{t-1} / s), and the pooled
    scatter is scatter_r + scatter_y + (k s / n)(r - y)(r - y)^T.  The long-run limit does not
    depend on iteration 0 (Alemohammad et al.'s independence of n_ini).

    References
    ----------
    Alemohammad et al. 2023, arXiv 2307.01850, Sec. 2.2 (fresh-data loop) and Sec. 5;
    literature.md Sec. 6 and Sec. 8 item 20.
    """
    t, scalar = iterations(t)
    n, _ = _sizes(n_samples, None, estimator)
    return output(trace_cov * _mix_fresh_first_moments(t, n, real_fraction, estimator,
                                                       sampling_scale)[0], scalar)


def mix_fresh_cov_trace_ratio(t, *, n_samples: int, real_fraction: float,
                              estimator: Estimator = "mle", sampling_scale: float = 1.0):
    """E[tr Sigma_hat_t] / tr Sigma_0 under ``mix`` with fresh real data, exact (V_t of
    ``mix_fresh_mean_sq_error``).

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    n_samples : int
        n.
    real_fraction : float
        rho in [0, 1].
    estimator : {"mle", "unbiased"}
    sampling_scale : float
        lambda.

    Returns
    -------
    float or ndarray, dimensionless; for rho > 0 it converges to a positive fixed point
    (fresh data stop the variance collapse).

    References
    ----------
    Alemohammad et al. 2023, arXiv 2307.01850, Sec. 2.2 and Sec. 5; literature.md Sec. 6.
    """
    t, scalar = iterations(t)
    n, _ = _sizes(n_samples, None, estimator)
    return output(_mix_fresh_first_moments(t, n, real_fraction, estimator, sampling_scale)[1],
                  scalar)


# -- squared 2-Wasserstein distance ------------------------------------------------------------

def w2_mean_term(t, *, paradigm: Paradigm, n_samples: int, trace_cov: float,
                 estimator: Estimator = "mle", n_synthetic: int | None = None,
                 sampling_scale: float = 1.0):
    """Mean term of E W2^2(N(mu_hat_t, Sigma_hat_t), N(mu_0, Sigma_0)): E||mu_hat_t - mu_0||^2.

    W2^2 = ||mu_hat - mu_0||^2 + tr(Sigma_hat + Sigma_0 - 2 (Sigma_0^1/2 Sigma_hat
    Sigma_0^1/2)^1/2) (Dowson & Landau 1982); Schaeffer et al. 2025, Sec. 2.1, split E W2^2
    into this mean term (-> inf under replace with unbiased estimators) and the covariance
    (Bures) term (-> tr Sigma_0 as Sigma_hat -> 0).

    Parameters
    ----------
    t : int or array_like of int
    paradigm : {"replace", "accumulate"}
    n_samples : int
    trace_cov : float
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    float or ndarray, squared data units.  Exact (``replace_mean_sq_error`` /
    ``accumulate_mean_sq_error``).

    References
    ----------
    Schaeffer et al. 2025, "Position: Model Collapse Does Not Mean What You Think",
    arXiv 2503.03150, Sec. 2.1; Shumailov et al. 2024, Thm 3.1.
    """
    fn = {"replace": replace_mean_sq_error, "accumulate": accumulate_mean_sq_error}[paradigm]
    return fn(t, n_samples=n_samples, trace_cov=trace_cov, estimator=estimator,
              n_synthetic=n_synthetic, sampling_scale=sampling_scale)


def replace_expected_sd_ratio(t, *, n_samples: int, estimator: Estimator = "mle",
                              n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """E sqrt(Sigma_hat_t[i, i] / Sigma_0[i, i]) under replace (any coordinate, any basis), exact:

        kappa_t = c(n - 1, D(n)) (sqrt(lambda) c(m - 1, D(m)))^t,
        c(k, D) = E sqrt(chi^2_k / D) = sqrt(2 / D) Gamma((k + 1)/2) / Gamma(k/2).

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    float or ndarray, dimensionless; in 1-d the expected fitted standard deviation over sigma_0.

    Notes
    -----
    Given Sigma_hat_{t-1}, the next scatter is W = R Z^T Z R^T with Z^T Z ~ Wishart(I, m - 1),
    so for any unit vector e, e^T W e = (e^T lambda Sigma_hat_{t-1} e) chi^2_{m-1} with the
    chi-square independent of the past.  Hence Sigma_hat_t[i,i] / Sigma_0[i,i] is a product of
    t + 1 independent scaled chi-squares, and E sqrt factorises (chi-distribution mean).

    References
    ----------
    Shumailov et al. 2024, Nature 631:755, Thm 3.1 (the 1-d chain); Johnson, Kotz &
    Balakrishnan 1994, Continuous Univariate Distributions 1, Ch. 18 (chi distribution).
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    c0 = float(chi_mean(n - 1)) / math.sqrt(_denominator(n, estimator))
    c = math.sqrt(sampling_scale) * float(chi_mean(m - 1)) / math.sqrt(_denominator(m, estimator))
    return output(c0 * c ** t.astype(float), scalar)


def replace_w2_cov_term_1d(t, *, n_samples: int, variance: float, estimator: Estimator = "mle",
                           n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """Covariance (Bures) term of E W2^2 in one dimension under replace, exact:
    E(sigma_hat_t - sigma_0)^2 = sigma_0^2 (1 + v_t - 2 kappa_t).

    v_t = ``replace_cov_trace_ratio`` (E sigma_hat_t^2 / sigma_0^2) and kappa_t =
    ``replace_expected_sd_ratio`` (E sigma_hat_t / sigma_0, chi-distribution means).

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
    variance : float
        sigma_0^2, squared data units.
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    float or ndarray, squared data units; tends to sigma_0^2 as the variance collapses.

    References
    ----------
    Schaeffer et al. 2025, arXiv 2503.03150, Sec. 2.1 (the covariance term -> tr Sigma_0, i.e.
    bounded: it is not the cause of the divergence); Shumailov et al. 2024, Thm 3.1.
    """
    v = replace_cov_trace_ratio(t, n_samples=n_samples, estimator=estimator,
                                n_synthetic=n_synthetic, sampling_scale=sampling_scale)
    kappa = replace_expected_sd_ratio(t, n_samples=n_samples, estimator=estimator,
                                      n_synthetic=n_synthetic, sampling_scale=sampling_scale)
    return variance * (1 + v - 2 * kappa)


def replace_w2_squared_1d(t, *, n_samples: int, variance: float, estimator: Estimator = "mle",
                          n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """E W2^2(N(mu_hat_t, sigma_hat_t^2), N(mu_0, sigma_0^2)) in one dimension under replace, exact:
    mean term (``replace_mean_sq_error``) + covariance term (``replace_w2_cov_term_1d``).

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
    variance : float
        sigma_0^2.
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    float or ndarray, squared data units (the ``w2_squared`` metric for ``n_features: 1``).

    References
    ----------
    Schaeffer et al. 2025, arXiv 2503.03150, Sec. 2.1; Shumailov et al. 2024, Thm 3.1
    (E W2^2 -> inf for the unbiased estimator).
    """
    kw = dict(n_samples=n_samples, estimator=estimator, n_synthetic=n_synthetic,
              sampling_scale=sampling_scale)
    return (replace_mean_sq_error(t, trace_cov=variance, **kw)
            + replace_w2_cov_term_1d(t, variance=variance, **kw))


def cov_trace_second_moments(t, *, paradigm: Paradigm, n_samples: int, n_features: int,
                             variance: float, estimator: Estimator = "mle",
                             n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """Exact (E tr(Sigma_hat_t^2), E (tr Sigma_hat_t)^2) for Sigma_0 = variance I_d.

    Replace: with k = m - 1, D = D(m) and (p, q) the two moments of iteration t - 1,

        p' = lambda^2 [k (k + 1) p + k q] / D^2,   q' = lambda^2 [2 k p + k^2 q] / D^2,

    started from (tr Sigma_0^2, (tr Sigma_0)^2) with k = n - 1, D = D(n), lambda = 1 for
    iteration 0.  Accumulate: the same for the pool scatter S with the pairwise update
    S' = S + B + c (b - mu_hat)(b - mu_hat)^T, c = N m / N', a = lambda / D(N):

        p' = p + a^2 (m-1) m p + a^2 (m-1) q + c^2 a^2 (q + 2p) / m^2 + 2 (m-1) a p
             + 2 (c/m) a p + 2 (m-1) (c/m) a^2 p,
        q' = q + a^2 (m-1)^2 q + 2 a^2 (m-1) p + c^2 a^2 (q + 2p) / m^2 + 2 (m-1) a q
             + 2 (c/m) a q + 2 (m-1) (c/m) a^2 q,

    from S_0 ~ Wishart(Sigma_0, n - 1); then divide by D(N_t)^2.

    Parameters
    ----------
    t : int or array_like of int
    paradigm : {"replace", "accumulate"}
    n_samples, n_features : int
        n and d.
    variance : float
        Sigma_0 = variance I_d.
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    (E tr Sigma_hat_t^2, E (tr Sigma_hat_t)^2), each float or ndarray, in (squared data units)^2.

    Notes
    -----
    Exact, from E[W A W] = k(k+1) A + k tr(A) I and E[(tr W A)^2] = k^2 (tr A)^2 + 2k tr(A^2)
    for W ~ Wishart(I, k) (Muirhead 1982, Thm 3.2.5 / Anderson 2003, Sec. 7.3) and
    E||z||^4 = (tr C)^2 + 2 tr C^2 for z ~ N(0, C).  Used by ``w2_cov_term_bounds``; the second
    gives Var(cov_trace_ratio).
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    lam = sampling_scale
    p0, q0 = n_features * variance**2, (n_features * variance) ** 2
    if paradigm == "replace":
        def wishart(p, q, k, D, scale):
            return ((scale**2) * (k * (k + 1) * p + k * q) / D**2,
                    (scale**2) * (2 * k * p + k * k * q) / D**2)

        init = wishart(p0, q0, n - 1, _denominator(n, estimator), 1.0)
        states = recursion_table(
            t, lambda s, st: wishart(st[0], st[1], m - 1, _denominator(m, estimator), lam), init)
        p = np.array([s[0] for s in states])[t]
        q = np.array([s[1] for s in states])[t]
    elif paradigm == "accumulate":
        def step(s, state):
            p, q = state
            N, N1 = n + s * m, n + (s + 1) * m
            a, c = lam / _denominator(N, estimator), N * m / N1
            rank1 = c * c * a * a * (q + 2 * p) / m**2
            p1 = (p + a * a * (m - 1) * m * p + a * a * (m - 1) * q + rank1 + 2 * (m - 1) * a * p
                  + 2 * (c / m) * a * p + 2 * (m - 1) * (c / m) * a * a * p)
            q1 = (q + a * a * (m - 1) ** 2 * q + 2 * a * a * (m - 1) * p + rank1
                  + 2 * (m - 1) * a * q + 2 * (c / m) * a * q + 2 * (m - 1) * (c / m) * a * a * q)
            return (p1, q1)

        k = n - 1
        states = recursion_table(t, step, (k * (k + 1) * p0 + k * q0, 2 * k * p0 + k * k * q0))
        D = np.array([_denominator(n + i * m, estimator) for i in range(len(states))], float)
        p = (np.array([s[0] for s in states]) / D**2)[t]
        q = (np.array([s[1] for s in states]) / D**2)[t]
    else:
        raise ValueError(f"paradigm must be 'replace' or 'accumulate', got {paradigm!r}")
    return output(p, scalar), output(q, scalar)


def jensen_cov_term_lower_bound(cov_trace_ratio, *, trace_cov: float):
    """Lower bound of the expected Bures term whenever E Sigma_hat = v Sigma_0:
    tr Sigma_0 (1 - sqrt(v))^2.

    Parameters
    ----------
    cov_trace_ratio : float or array_like
        v = E tr Sigma_hat / tr Sigma_0 (every paradigm here has E Sigma_hat proportional to
        Sigma_0).
    trace_cov : float
        tr Sigma_0.

    Returns
    -------
    float or ndarray, squared data units.

    Notes
    -----
    The fidelity F(S) = tr((Sigma_0^1/2 S Sigma_0^1/2)^1/2) is concave in S (operator
    concavity of the square root), so E F(Sigma_hat) <= F(v Sigma_0) = sqrt(v) tr Sigma_0 and
    E[Bures^2] = E tr Sigma_hat + tr Sigma_0 - 2 E F >= tr Sigma_0 (1 + v - 2 sqrt(v)).

    References
    ----------
    Bhatia, Jain & Lim 2019, "On the Bures-Wasserstein distance between positive definite
    matrices", Expo. Math. 37:165 (concavity of the fidelity).
    """
    v = np.asarray(cov_trace_ratio, dtype=float)
    out = trace_cov * (1 - np.sqrt(v)) ** 2
    return float(out) if out.ndim == 0 else out


def w2_cov_term_bounds(t, *, paradigm: Paradigm, n_samples: int, n_features: int,
                       variance: float, estimator: Estimator = "mle",
                       n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """Lower and upper bounds of the covariance (Bures) term of E W2^2 for Sigma_0 = variance I_d.

    Bures^2 = tr Sigma_hat + tr Sigma_0 - 2 sigma_0 tr Sigma_hat^1/2 (Sigma_0 = sigma_0^2 I);
    only E tr Sigma_hat^1/2 has no closed form for d > 1.

    * lower, replace: d sigma_0^2 (1 + v_t - 2 kappa_t) -- W2^2 of two distributions is at
      least the sum of the W2^2 of their 1-d marginals (the coordinates of any coupling couple
      the marginals), and each diagonal entry of Sigma_hat_t is a product of independent scaled
      chi-squares (``replace_expected_sd_ratio``).  **Exact for d = 1.**
    * lower, accumulate: ``jensen_cov_term_lower_bound`` (tr Sigma_0 (1 - sqrt(v_t))^2).
    * upper: the smaller of
      (a) d sigma_0^2 (1 + v_t) - 2 sigma_0 (E tr Sigma_hat)^{3/2} / (E tr Sigma_hat^2)^{1/2}
      -- Hoelder/Lyapunov E sqrt(X) >= (E X)^{3/2} / (E X^2)^{1/2} applied to the eigenvalues
      X of Sigma_hat under (replicate x uniform eigenvalue index), and
      (b) E||Sigma_hat - sigma_0^2 I||_F^2 / sigma_0^2 -- from (sqrt(x) - s)^2 =
      (x - s^2)^2 / (sqrt(x) + s)^2 <= (x - s^2)^2 / s^2 per eigenvalue x;
      both with the exact second moment of ``cov_trace_second_moments``.

    The bounds are valid but not tight for d > 1: at d = 3, n = 10 (Monte Carlo covariance term
    0.34 at t = 0) replace gives [0.16, 0.96] and accumulate [0.008, 0.96] -- the Jensen bound
    is nearly vacuous while Sigma_hat stays near Sigma_0.  There
    ``w2_cov_term_small_deviation`` (the leading-order approximation) is within ~2.5% at
    n = 100 and ~13-18% at n = 10.

    Parameters
    ----------
    t : int or array_like of int
    paradigm : {"replace", "accumulate"}
    n_samples, n_features : int
        n and d.
    variance : float
        sigma_0^2.
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    (lower, upper), each float or ndarray, squared data units; add ``w2_mean_term`` for bounds
    of E W2^2 (the ``w2_squared`` metric).

    References
    ----------
    Schaeffer et al. 2025, arXiv 2503.03150, Sec. 2.1 (the mean/covariance split); Dowson &
    Landau 1982, J. Multivar. Anal. 12:450 (W2 between Gaussians); Villani 2009, Optimal
    Transport, Ch. 6 (marginal couplings).
    """
    t_arr, scalar = iterations(t)
    kw = dict(n_samples=n_samples, estimator=estimator, n_synthetic=n_synthetic,
              sampling_scale=sampling_scale)
    tr0 = n_features * variance
    if paradigm == "replace":
        v = np.asarray(replace_cov_trace_ratio(t_arr, **kw))
        kappa = np.asarray(replace_expected_sd_ratio(t_arr, **kw))
        lower = tr0 * (1 + v - 2 * kappa)
    elif paradigm == "accumulate":
        v = np.asarray(accumulate_cov_trace_ratio(t_arr, **kw))
        lower = tr0 * (1 - np.sqrt(v)) ** 2
    else:
        raise ValueError(f"paradigm must be 'replace' or 'accumulate', got {paradigm!r}")
    p, _ = cov_trace_second_moments(t_arr, paradigm=paradigm, n_features=n_features,
                                    variance=variance, **kw)
    mean_tr = v * tr0
    hoelder = tr0 * (1 + v) - 2 * math.sqrt(variance) * mean_tr**1.5 / np.sqrt(p)
    frobenius = (p - 2 * variance * mean_tr + n_features * variance**2) / variance
    return output(lower, scalar), output(np.minimum(hoelder, frobenius), scalar)


def w2_cov_term_small_deviation(t, *, paradigm: Paradigm, n_samples: int, n_features: int,
                                variance: float, estimator: Estimator = "mle",
                                n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """Leading-order approximation of the covariance (Bures) term for Sigma_0 = variance I_d:
    E||Sigma_hat_t - sigma_0^2 I||_F^2 / (4 sigma_0^2).

    Parameters
    ----------
    t : int or array_like of int
    paradigm : {"replace", "accumulate"}
    n_samples, n_features : int
    variance : float
        sigma_0^2.
    estimator : {"mle", "unbiased"}
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    float or ndarray, squared data units.  **Approximation**: per eigenvalue x of Sigma_hat,
    (sqrt(x) - s)^2 = (x - s^2)^2 / (sqrt(x) + s)^2 with (sqrt(x) + s)^2 replaced by 4 s^2,
    i.e. second order in Sigma_hat - Sigma_0; good when Sigma_hat stays near Sigma_0
    (accumulate, large n), wrong under replace once the variance collapses (the Bures term
    then tends to tr Sigma_0, this to tr Sigma_0 / 4).  Uses the exact
    ``cov_trace_second_moments``.

    References
    ----------
    Bhatia, Jain & Lim 2019, Expo. Math. 37:165 (Bures metric; local expansion).
    """
    t_arr, scalar = iterations(t)
    kw = dict(n_samples=n_samples, estimator=estimator, n_synthetic=n_synthetic,
              sampling_scale=sampling_scale)
    ratio = {"replace": replace_cov_trace_ratio, "accumulate": accumulate_cov_trace_ratio}
    v = np.asarray(ratio[paradigm](t_arr, **kw))
    p, _ = cov_trace_second_moments(t_arr, paradigm=paradigm, n_features=n_features,
                                    variance=variance, **kw)
    frob = p - 2 * variance * v * n_features * variance + n_features * variance**2
    return output(frob / (4 * variance), scalar)


# -- variance collapse: the median -----------------------------------------------------------

def replace_median_variance_ratio(t, *, n_samples: int, estimator: Estimator = "unbiased",
                                  n_synthetic: int | None = None, sampling_scale: float = 1.0):
    """Median of Sigma_hat_t[i, i] / Sigma_0[i, i] under replace (1-d: sigma_hat_t^2 / sigma_0^2),
    Cornish-Fisher approximation: exp(K1 - K3 / (6 K2)).

    log(Sigma_hat_t[i,i] / Sigma_0[i,i]) = sum_{s=0}^{t} [log chi^2_{k_s} - log D_s + log lam_s]
    with independent terms (k_0 = n - 1, D_0 = D(n), lam_0 = 1; k_s = m - 1, D_s = D(m),
    lam_s = lambda).  Its cumulants are exact,

        K1 = sum [psi(k_s/2) + ln 2 - ln D_s + ln lam_s],  K2 = sum psi'(k_s/2),
        K3 = sum psi''(k_s/2),

    and the median of a near-normal sum is K1 - K3 / (6 K2) to first order in the skewness;
    exp preserves medians.

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
    estimator : {"unbiased", "mle"}
        Shumailov et al. use the unbiased estimator (the default).
    n_synthetic : int, optional
    sampling_scale : float

    Returns
    -------
    float or ndarray, dimensionless.  **Approximation** (Cornish-Fisher); error ~1% of the
    value for n = 10, t <= 30 (checked against Monte Carlo in the tests).

    Notes
    -----
    The mean stays 1 (unbiased, lambda = 1) while the median decays geometrically: the
    variance collapses almost surely (Shumailov et al. 2024, Thm 3.1; Schaeffer et al. 2025,
    Definition 5, "collapsing variance").

    References
    ----------
    Shumailov et al. 2024, Nature 631:755, Thm 3.1; Cornish & Fisher 1938, Rev. Inst. Int.
    Stat. 5:307; literature.md Sec. 4 and Sec. 8 item 9.
    """
    t, scalar = iterations(t)
    n, m = _sizes(n_samples, n_synthetic, estimator)
    k0, k = (n - 1) / 2, (m - 1) / 2
    tf = t.astype(float)
    K1 = (float(digamma(k0)) + math.log(2) - math.log(_denominator(n, estimator))
          + tf * (float(digamma(k)) + math.log(2) - math.log(_denominator(m, estimator))
                  + math.log(sampling_scale)))
    K2 = float(trigamma(k0)) + tf * float(trigamma(k))
    K3 = float(tetragamma(k0)) + tf * float(tetragamma(k))
    return output(np.exp(K1 - K3 / (6 * K2)), scalar)


def shumailov_median_variance_ratio(t, *, n_samples: int):
    """Median of sigma_hat_t^2 / sigma_0^2 under replace with unbiased estimators, the simple
    approximation exp(-(t + 1) / (n - 1)) (literature.md Sec. 4: exp(-n/(M-1)) with n = t + 1
    fits and M = n samples).

    Parameters
    ----------
    t : int or array_like of int
    n_samples : int
        n (= M), n >= 2.

    Returns
    -------
    float or ndarray, dimensionless.  **Approximation**: E log(chi^2_k / k) = -1/k + O(k^-2)
    per fit with k = n - 1, and the skewness of the log is ignored.  n = 10 gives 0.329, 0.108,
    0.036 at t = 9, 19, 29 (Monte Carlo 0.328, 0.101, 0.033): a few % high, growing with t;
    ``replace_median_variance_ratio`` is more accurate.

    References
    ----------
    Shumailov et al. 2024, Nature 631:755, Thm 3.1 (a.s. collapse; this timescale is derived,
    literature.md Sec. 4 [D]); Suresh et al. 2024, arXiv 2412.17646 (the standard deviation
    vanishes "roughly at n iterations").
    """
    t, scalar = iterations(t)
    if n_samples < 2:
        raise ValueError("n_samples must be >= 2")
    return output(np.exp(-(t + 1.0) / (n_samples - 1)), scalar)
