"""Closed forms for a categorical distribution refitted by empirical frequencies (Wright-Fisher).

Setting (the ``discrete`` task; Shumailov et al. 2024, "discrete distributions"; Schaeffer et al.
2025, Sec. 4): truth p_0 over K outcomes, D = ``n_samples`` draws per model-fitting iteration,
the fit is the empirical frequency vector.  Under ``replace`` the fitted frequencies are a
neutral haploid **Wright-Fisher** chain with population D started at x = p_0:

    WF generation g (g >= 1) = one multinomial resampling of D individuals,
    our model t              = the frequencies after generation g = t + 1,

because iteration 0 already fits a sample of size D drawn from p_0.  So "number of model fits
until one outcome remains" (Schaeffer et al.'s count, iteration 1 = the real-data fit) equals
the WF generation count T_WF, and the 0-based index of the first single-outcome model is
T_WF - 1.  Units: probabilities and Gini-Simpson indices are dimensionless; times are counted in
model fits (= WF generations).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import iterations, output

__all__ = ["gini_simpson_replace", "gini_simpson_accumulate", "gini_simpson_accumulate_limit",
           "prob_outcome_lost", "expected_support_size", "prob_not_single_outcome",
           "expected_fits_to_single_outcome", "expected_collapse_iteration",
           "expected_fits_to_single_outcome_exact", "absorption_probabilities",
           "loss_probability"]


def _p0(probabilities) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 1 or (p < 0).any() or abs(p.sum() - 1) > 1e-9:
        raise ValueError("probabilities must be a 1-d non-negative vector summing to 1")
    return p


def _gini(p: np.ndarray) -> float:
    return 1.0 - float(np.sum(p**2))


def gini_simpson_replace(t, *, probabilities, n_samples: int, n_synthetic: int | None = None):
    """E[1 - sum_i p_hat_t(i)^2] under replace: G_0 (1 - 1/n)(1 - 1/m)^t (= G_0 (1 - 1/n)^(t+1)
    for m = n), G_0 = 1 - sum_i p_0(i)^2.

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations (= WF generation t + 1).
    probabilities : array_like
        p_0.
    n_samples : int
        n = D, samples of iteration 0.
    n_synthetic : int, optional
        m, samples drawn from each model (default n).

    Returns
    -------
    float or ndarray, dimensionless (the ``gini_simpson`` metric in expectation).

    Notes
    -----
    Exact.  For counts C ~ Multinomial(k, p): E sum_i (C_i / k)^2 = (1 - 1/k) sum_i p_i^2 + 1/k,
    so each resampling multiplies the expected heterozygosity 1 - sum p^2 by (1 - 1/k) -- the
    classical Wright-Fisher loss of heterozygosity.

    References
    ----------
    Wright 1931, Genetics 16:97; Ewens 2004, Mathematical Population Genetics I, Sec. 3.2
    (heterozygosity decay); Shumailov et al. 2024, Nature 631:755 (discrete case); literature.md
    Sec. 4, 5.
    """
    t, scalar = iterations(t)
    p = _p0(probabilities)
    n = int(n_samples)
    m = n if n_synthetic is None else int(n_synthetic)
    return output(_gini(p) * (1 - 1 / n) * (1 - 1 / m) ** t.astype(float), scalar)


def gini_simpson_accumulate(t, *, probabilities, n_samples: int, n_synthetic: int | None = None):
    """E[1 - sum_i p_hat_t(i)^2] under accumulate (pooled counts), exact:

        G_0 (1 - 1/n) prod_{j=1}^{t} (1 - m / N_j^2),   N_j = n + j m.

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    probabilities : array_like
        p_0.
    n_samples : int
        n, real samples (kept in the pool).
    n_synthetic : int, optional
        m, samples added per iteration (default n).

    Returns
    -------
    float or ndarray, dimensionless.  Converges to a positive limit
    (``gini_simpson_accumulate_limit``): accumulating data does not collapse diversity.

    Notes
    -----
    Exact (derived here; literature.md Sec. 8 item 14 lists no closed form).  With pool counts
    C (total N) and a batch ~ Multinomial(m, C/N), E[sum_i C'_i^2 | C] =
    (N'^2 - m) sum_i p_hat_i^2 + m, so 1 - E sum p_hat'^2 = (1 - m / N'^2)(1 - E sum p_hat^2).
    The same recursion governs E tr Sigma_hat of the Gaussian MLE under accumulate.

    References
    ----------
    Derived for this package; compare Kazdan et al. 2024, arXiv 2410.16713 (accumulate bounds
    the collapse) and Schaeffer et al. 2025, arXiv 2503.03150, Sec. 4.
    """
    t, scalar = iterations(t)
    p = _p0(probabilities)
    n = int(n_samples)
    m = n if n_synthetic is None else int(n_synthetic)
    tmax = int(t.max()) if t.size else 0
    N = n + m * np.arange(1, tmax + 1, dtype=float)
    factors = np.concatenate([[1.0], np.cumprod(1 - m / N**2)])
    return output(_gini(p) * (1 - 1 / n) * factors[t], scalar)


def gini_simpson_accumulate_limit(*, probabilities, n_samples: int) -> float:
    """lim_t of ``gini_simpson_accumulate`` for m = n: G_0 sqrt(n) sin(pi / sqrt(n)) / pi.

    Parameters
    ----------
    probabilities : array_like
        p_0.
    n_samples : int
        n = m.

    Returns
    -------
    float, dimensionless; n = 100 keeps 98.36% of G_0.

    Notes
    -----
    (1 - 1/n) prod_{j>=2} (1 - 1/(n j^2)) = prod_{j>=1} (1 - x^2/j^2) with x = 1/sqrt(n), and
    Euler's product sin(pi x) / (pi x) = prod_{j>=1} (1 - x^2/j^2).  Exact.

    References
    ----------
    Euler's sine product (e.g. Abramowitz & Stegun 4.3.89).
    """
    x = 1 / math.sqrt(n_samples)
    return _gini(_p0(probabilities)) * math.sin(math.pi * x) / (math.pi * x)


# -- exact two-type (marginal) Wright-Fisher chain ---------------------------------------------

def _binomial_rows(D: int, freqs: np.ndarray) -> np.ndarray:
    """pmf of Binomial(D, f) over 0..D for each f in freqs, shape (len(freqs), D + 1)."""
    j = np.arange(D + 1)
    logc = np.array([math.lgamma(D + 1) - math.lgamma(k + 1) - math.lgamma(D - k + 1) for k in j])
    f = np.asarray(freqs, dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = (logc + np.where(j > 0, j * np.log(f), 0.0)
                + np.where(j < D, (D - j) * np.log1p(-f), 0.0))
    return np.exp(logp)


def _count_distributions(q: float, D: int, tmax: int) -> np.ndarray:
    """Distribution of one outcome's count after WF generations 1 .. tmax + 1, shape
    (tmax + 1, D + 1): row t = model t."""
    P = _binomial_rows(D, np.arange(D + 1) / D)
    rows = [_binomial_rows(D, np.array([q]))[0]]
    for _ in range(tmax):
        rows.append(rows[-1] @ P)
    return np.array(rows)


def prob_outcome_lost(t, *, q: float, n_samples: int):
    """P(an outcome of initial probability q has frequency 0 in model t) under replace, exact.

    Parameters
    ----------
    t : int or array_like of int
        0-based model-fitting iterations.
    q : float
        p_0 of the outcome.
    n_samples : int
        D (every iteration draws D samples; ``n_synthetic`` = D).

    Returns
    -------
    float or ndarray, probability; increases to ``loss_probability(q)`` = 1 - q.

    Notes
    -----
    Exact: the count of one outcome (vs all others) is itself a two-type Wright-Fisher chain,
    Binomial(D, q) after the first fit and Binomial(D, c/D) from count c; the distribution is
    propagated with the (D + 1) x (D + 1) transition matrix, O(D^2) per iteration.

    References
    ----------
    Ewens 2004, Mathematical Population Genetics I, Sec. 2.2; Shumailov et al. 2024, Nature
    631:755 ("the probability of losing information ... is equal to 1 - q").
    """
    t, scalar = iterations(t)
    dist = _count_distributions(q, int(n_samples), int(t.max()) if t.size else 0)
    return output(dist[t, 0], scalar)


def expected_support_size(t, *, probabilities, n_samples: int):
    """E[number of outcomes with non-zero fitted probability in model t] under replace, exact:
    sum_i (1 - ``prob_outcome_lost(t, q=p_0(i))``).

    Parameters
    ----------
    t : int or array_like of int
    probabilities : array_like
        p_0.
    n_samples : int
        D (= ``n_synthetic``).

    Returns
    -------
    float or ndarray, outcomes (the ``support_size`` metric in expectation); tends to 1.

    References
    ----------
    Shumailov et al. 2024, Nature 631:755 (tails vanish first: Definition 7 of Schaeffer et al.
    2025); Ewens 2004, Sec. 2.2.
    """
    t, scalar = iterations(t)
    p = _p0(probabilities)
    total = np.zeros(t.shape)
    for q in np.unique(p[p > 0]):
        lost = np.asarray(prob_outcome_lost(t, q=float(q), n_samples=n_samples))
        total = total + np.count_nonzero(p == q) * (1 - lost)
    return output(total, scalar)


def prob_not_single_outcome(t, *, probabilities, n_samples: int):
    """P(model t still has more than one outcome) under replace, exact for at most two outcomes
    of non-zero initial probability: 1 - P(lost_1) - P(lost_2).

    Parameters
    ----------
    t : int or array_like of int
    probabilities : array_like
        p_0 with at most two non-zero entries.
    n_samples : int
        D.

    Returns
    -------
    float or ndarray, probability = P(T_WF > t + 1).

    Raises
    ------
    ValueError
        For more than two outcomes (no exact small-state solution; use the diffusion
        approximation ``expected_fits_to_single_outcome``).
    """
    p = _p0(probabilities)
    support = p[p > 0]
    t_arr, scalar = iterations(t)
    if len(support) == 1:
        return output(np.zeros(t_arr.shape), scalar)
    if len(support) != 2:
        raise ValueError("exact only for two outcomes of non-zero probability")
    lost = [np.asarray(prob_outcome_lost(t_arr, q=float(q), n_samples=n_samples)) for q in support]
    return output(1 - lost[0] - lost[1], scalar)


def expected_fits_to_single_outcome_exact(probabilities, *, n_samples: int,
                                          max_fits: int | None = None) -> float:
    """E[T_WF] (or E[min(T_WF, max_fits)]) for two outcomes, exact: model fits until one outcome
    remains, counting the real-data fit.

    Parameters
    ----------
    probabilities : array_like
        p_0 with at most two non-zero entries.
    n_samples : int
        D.
    max_fits : int, optional
        Truncation L: return E[min(T_WF, L)] = sum_{s=0}^{L-1} P(T_WF > s) -- what a run of
        L - 1 iterations observes when chains still alive after its last iteration are counted
        as L.

    Returns
    -------
    float, model fits (= WF generations).  The 0-based iteration of the first single-outcome
    model is one less.

    Notes
    -----
    Untruncated: solve (I - Q) tau = 1 over the transient counts 1 .. D - 1 of the binomial
    chain (tau = expected further generations), then E T_WF = 1 + sum_c Binom(D, q)(c) tau_c.

    References
    ----------
    Ewens 2004, Mathematical Population Genetics I, Sec. 2.4 (absorption times of the
    Wright-Fisher chain); Kimura & Ohta 1969, Genetics 61:763 (diffusion limit).
    """
    p = _p0(probabilities)
    support = p[p > 0]
    if len(support) == 1:
        return 1.0 if max_fits is None or max_fits >= 1 else 0.0
    if len(support) != 2:
        raise ValueError("exact only for two outcomes of non-zero probability")
    D, q = int(n_samples), float(support[0])
    if max_fits is not None:
        if max_fits <= 0:
            return 0.0
        alive = np.asarray(prob_not_single_outcome(np.arange(max_fits - 1), probabilities=p,
                                                   n_samples=D))
        return float(1.0 + alive.sum())
    P = _binomial_rows(D, np.arange(D + 1) / D)
    Q = P[1:D, 1:D]
    tau = np.linalg.solve(np.eye(D - 1) - Q, np.ones(D - 1))
    first = _binomial_rows(D, np.array([q]))[0]
    return float(1.0 + first[1:D] @ tau)


def expected_fits_to_single_outcome(probabilities, *, n_samples: int) -> float:
    """Mean number of model fits until one outcome remains, diffusion approximation:
    T ~ -2D sum_i (1 - x_i) ln(1 - x_i), x = p_0 (haploid population D).

    Parameters
    ----------
    probabilities : array_like
        p_0 = x, the WF frequencies at generation 0 (before the real-data sample).
    n_samples : int
        D, samples per iteration.

    Returns
    -------
    float, model fits = WF generations (Schaeffer et al.'s "iterations until total collapse",
    counting the real-data fit).  Uniform K: T / D = -2K(1 - 1/K) ln(1 - 1/K) = 1.386 (K = 2),
    1.8965 (K = 10), -> 2 (K -> inf).  ``expected_collapse_iteration`` gives the 0-based index.

    Notes
    -----
    **Approximation**: the Kimura diffusion limit (D -> inf, time in units of D generations);
    the mean of the discrete chain is lower at small D: K = 10 uniform, +8% at D = 10 (19.0 vs
    Monte Carlo 17.5), +5% at D = 20; K = 2, +10.1% at D = 10, +1.5% at D = 100, +0.45% at
    D = 400 against the exact ``expected_fits_to_single_outcome_exact`` (the absolute error
    grows only like log D).  Linear in D, and not D H(p_0) except for K = 2 (literature.md
    Sec. 5).

    References
    ----------
    Littler 1975, "Loss of variability at one locus in a finite population", Math. Biosci.
    25:151 (K alleles; the diploid form -4N sum (1 - x_i) ln(1 - x_i), here 2N -> D);
    Kimura & Ohta 1969, Genetics 61:763 (two alleles); Schaeffer et al. 2025, arXiv 2503.03150,
    Sec. 4 (time to total collapse); literature.md Sec. 5 and Sec. 8 items 11-13.
    """
    x = _p0(probabilities)
    x = x[(x > 0) & (x < 1)]
    return float(-2 * n_samples * np.sum((1 - x) * np.log1p(-x)))


def expected_collapse_iteration(probabilities, *, n_samples: int) -> float:
    """0-based iteration of the first single-outcome model, diffusion approximation:
    ``expected_fits_to_single_outcome`` - 1.

    Parameters
    ----------
    probabilities : array_like
        p_0.
    n_samples : int
        D.

    Returns
    -------
    float, iterations (0-based index t with ``support_size`` = 1 for the first time).
    **Approximation** (Kimura/Littler diffusion).

    References
    ----------
    Littler 1975, Math. Biosci. 25:151; Schaeffer et al. 2025, arXiv 2503.03150, Sec. 4.
    """
    return expected_fits_to_single_outcome(probabilities, n_samples=n_samples) - 1.0


def absorption_probabilities(probabilities) -> np.ndarray:
    """P(the chain ends as a point mass on outcome i) = p_0(i), under replace.

    Parameters
    ----------
    probabilities : array_like
        p_0.

    Returns
    -------
    ndarray of shape (K,), probabilities.

    Notes
    -----
    Exact for any D: the fitted frequencies are a bounded martingale (E[p_hat_t | past] =
    p_hat_{t-1}) absorbed at the vertices e_i, so P(absorbed at i) = E p_hat_inf(i) = p_0(i).

    References
    ----------
    Shumailov et al. 2024, Nature 631:755 ("the probability of ending up at a certain state
    [is] equal to the probability of sampling said state from the original distribution");
    Ewens 2004, Sec. 1.5.
    """
    return _p0(probabilities).copy()


def loss_probability(q):
    """P(an outcome of initial probability q is eventually lost) = 1 - q, under replace.

    Parameters
    ----------
    q : float or array_like
        Initial probability of the outcome.

    Returns
    -------
    float or ndarray, probability; the finite-iteration value is ``prob_outcome_lost``.

    Notes
    -----
    Exact: with probability q the chain is absorbed at that outcome, otherwise it is lost.

    References
    ----------
    Shumailov et al. 2024, Nature 631:755 ("equal to 1 - q").
    """
    q = np.asarray(q, dtype=float)
    out = 1.0 - q
    return float(out) if out.ndim == 0 else out
