"""Tests over replicate chains shared by the definitions: one verdict record, one-sided t-tests,
the ratio of means by the delta method, and Holm's multiplicity correction.

Every test here is two one-sided tests of the same effect against the same threshold theta:

* ``p_occurs`` tests H0: "no collapse" (effect <= theta); rejecting it decides *occurs*;
* ``p_not`` tests H0: "collapse" (effect >= theta); rejecting it decides *does not occur*.

When neither is rejected after the correction the verdict is *inconclusive*.  The interval
``[low, high]`` is the pair of one-sided ``1 - alpha`` bounds (a two-sided ``1 - 2 alpha``
confidence interval), before correction.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .settings import INCONCLUSIVE, NA, NOT, OCCURS, OUTCOMES  # noqa: F401  (re-exported)


# -- distribution functions ---------------------------------------------------------------------
# scipy.special's cephes routines, not scipy.stats: the same numbers (checked against scipy.stats
# in tests/test_profile_stats.py) for a fifth of the import time (scipy.stats pulls in
# scipy.sparse, .spatial and .optimize: ~0.5 s of every run's start-up).

def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (``scipy.special.stdtr``)."""
    return float(special.stdtr(df, t))


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (by symmetry, ``stdtr(df, -t)``)."""
    return float(special.stdtr(df, -t))


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (``stdtrit``)."""
    return float(special.stdtrit(df, q))


def f_sf(f: float, dfn: float, dfd: float) -> float:
    """P(F > f) for Snedecor's F with (``dfn``, ``dfd``) degrees of freedom (``fdtrc``)."""
    return float(special.fdtrc(dfn, dfd, f))


def binom_sf_at(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the p-value of the one-sided exact binomial test of
    "more than n p successes" with k observed (``scipy.stats.binomtest(k, n, p, "greater")``);
    1 when k <= 0."""
    return 1.0 if k <= 0 else float(special.bdtrc(k - 1, n, p))


def binom_ppf(q: float, n: int, p: float) -> int:
    """The ``q`` quantile of Binomial(n, p): the least k with P(X <= k) >= q."""
    cdf = special.bdtr(np.arange(n + 1), n, p)
    return int(np.searchsorted(cdf, q * (1 - 1e-12), side="left"))


@dataclass
class Verdict:
    """One definition's test for one (task, paradigm).  ``verdict`` is decided by
    ``decide`` after the run-wide correction, unless the test could not be run
    (``not_applicable`` / ``inconclusive`` with a ``reason``)."""

    definition: int
    statistic: str
    value: float = np.nan
    low: float = np.nan
    high: float = np.nan
    threshold: float = np.nan
    p_occurs: float = np.nan
    p_not: float = np.nan
    test: str = ""
    detail: str = ""
    verdict: str = ""
    reason: str = ""
    p_occurs_adjusted: float = np.nan
    p_not_adjusted: float = np.nan
    extra: dict = field(default_factory=dict)

    @classmethod
    def not_applicable(cls, definition: int, statistic: str, reason: str) -> "Verdict":
        return cls(definition, statistic, verdict=NA, reason=reason)

    @classmethod
    def inconclusive(cls, definition: int, statistic: str, reason: str, **kw) -> "Verdict":
        return cls(definition, statistic, verdict=INCONCLUSIVE, reason=reason, **kw)


def grid_min(f, grid: np.ndarray, xatol: float) -> tuple[float, float]:
    """(min f, argmin) of a vectorised ``f`` (shape (G,) -> (G,), inf where infeasible) over
    ``[grid[0], grid[-1]]``: ``f`` on ``grid``, then on nested grids of the same size spanning
    the round's best point's two neighbouring cells (each round shrinks the bracket ~G/2-fold)
    until the bracket is narrower than ``xatol`` (G >= 4).  The minimum is searched near the
    grid's best point, as a bounded Brent search on that bracket would; the best value seen is
    returned ((inf, grid[0]) if f is nowhere finite).  Replaces ``scipy.optimize.minimize_scalar`` in the growth test and
    the learning-curve fit: the same minima to ~1e-6 relative without importing scipy.optimize
    (0.12 s of a run's start-up), and faster (one vectorised call per round).
    """
    n = len(grid)
    best_f, best_x = np.inf, float(grid[0])
    while True:
        values = np.asarray(f(grid), dtype=float)
        k = int(np.argmin(values))
        if values[k] < best_f:
            best_f, best_x = float(values[k]), float(grid[k])
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, n - 1)]
        if not hi - lo > xatol:
            return best_f, best_x
        grid = np.linspace(lo, hi, n)


def t_bounds(mean: float, se: float, n: int, alpha: float) -> tuple[float, float]:
    """One-sided ``1 - alpha`` lower and upper Student-t bounds of a mean."""
    if not (np.isfinite(mean) and np.isfinite(se)) or n < 2:
        return np.nan, np.nan
    q = t_ppf(1 - alpha, n - 1)
    return mean - q * se, mean + q * se


def t_pvalues(mean: float, se: float, n: int, theta: float) -> tuple[float, float]:
    """(p of H0 mean <= theta, p of H0 mean >= theta) from a Student-t statistic with n - 1
    degrees of freedom.  A zero standard error decides by the side of theta (p 0 or 1)."""
    if n < 2 or np.isnan(mean) or np.isnan(se):
        return np.nan, np.nan
    if np.isinf(mean):
        return (0.0, 1.0) if mean > 0 else (1.0, 0.0)
    if se == 0:
        return (0.0 if mean > theta else 1.0), (0.0 if mean < theta else 1.0)
    t = (mean - theta) / se
    return t_sf(t, n - 1), t_cdf(t, n - 1)


@dataclass
class MeanTest:
    """A one-sample Student-t analysis of per-chain values ``x`` against ``theta``."""

    mean: float
    low: float
    high: float
    p_greater: float      # H0: mean <= theta
    p_less: float         # H0: mean >= theta
    n: int


@dataclass(frozen=True)
class Moments:
    """What the t-test of ``mean_test`` needs of per-chain values: ``n`` (chains not NaN),
    ``mean`` (+inf / -inf when some value is infinite and all infinite ones share a sign, NaN
    when both signs occur) and ``sd`` (sample standard deviation, divisor n - 1; NaN when the
    mean is not finite or n < 2).  ``Moments.of`` computes them from an array; a streamed
    analysis (``profile.streaming``) gets them from merged moments
    (``results.aggregate.CurveMoments.t_summary``)."""

    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, x: np.ndarray) -> "Moments":
        """From per-chain values, shape (n_seeds,): NaN chains dropped."""
        x = np.asarray(x, dtype=float)
        x = x[~np.isnan(x)]
        n = len(x)
        if n == 0:
            return cls(np.nan, np.nan, 0)
        if np.isinf(x).any():
            m = float(np.sign(x[np.isinf(x)]).mean() * np.inf) if abs(
                np.sign(x[np.isinf(x)]).mean()) == 1 else np.nan
            return cls(m, np.nan, n)
        return cls(float(x.mean()), float(x.std(ddof=1)) if n > 1 else np.nan, n)


def mean_test_from(m: Moments, theta: float, alpha: float) -> MeanTest:
    """The Student-t test of ``mean_test`` from the chains' ``Moments``: bounds and p-values
    of the mean against ``theta``; an infinite mean decides by its sign (p 0 or 1, bounds the
    mean itself); no chains (n = 0) or a NaN mean give NaN."""
    n = m.n
    if n == 0:
        return MeanTest(np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    if np.isinf(m.mean):
        pg, pl = t_pvalues(m.mean, 0.0, n, theta)
        return MeanTest(m.mean, m.mean, m.mean, pg, pl, n)
    se = m.sd / math.sqrt(n) if n > 1 else np.nan
    low, high = t_bounds(m.mean, se, n, alpha)
    pg, pl = t_pvalues(m.mean, se, n, theta)
    return MeanTest(m.mean, low, high, pg, pl, n)


def mean_test(x: np.ndarray, theta: float, alpha: float) -> MeanTest:
    """Student-t test of the mean of per-chain values, shape (n_seeds,); NaN chains dropped;
    an infinite value makes the mean infinite (decided by its sign).

    Source: one-sample t-test (Student 1908); valid for the mean of n i.i.d. chains by the
    central limit theorem -- chains are independent replicates by construction (rng.py).
    """
    return mean_test_from(Moments.of(x), theta, alpha)


def log_ratio_of_means_from(n: int, m0: float, m1: float, sd_u, theta: float,
                            alpha: float) -> tuple[float, MeanTest]:
    """``log_ratio_of_means`` from the n paired chains' means ``m0`` (first) and ``m1`` (last)
    (+-inf / NaN as numpy's mean gives them) and ``sd_u(m0, m1)``: the sample standard
    deviation (divisor n - 1) of the influence values u_i = last_i / m1 - first_i / m0, called
    only when both means are finite, m0 > 0 and m1 > 0 (else the standard error is NaN, as
    the influence values are then).  A chain at +inf at the last iteration (m1 = +inf, m0
    finite and > 0) means the last iteration's expected value is infinite (an infinite value
    has positive probability), so R = inf exceeds any theta: bounds [inf, inf], p_greater 0,
    p_less 1."""
    nan = MeanTest(np.nan, np.nan, np.nan, np.nan, np.nan, n)
    if n == 0:
        return np.nan, nan
    if m1 == np.inf and np.isfinite(m0) and m0 > 0:
        return np.inf, MeanTest(np.inf, np.inf, np.inf, 0.0, 1.0, n)
    if not np.isfinite(m0) or m0 <= 0 or m1 < 0:
        return (np.inf if np.isinf(m1) and np.isfinite(m0) and m0 > 0 else np.nan), (
            MeanTest(np.inf, np.inf, np.inf, 0.0, 1.0, n) if np.isinf(m1) and m0 > 0 else nan)
    ratio = m1 / m0
    if m1 == 0:
        return 0.0, MeanTest(0.0, 0.0, 0.0, 1.0, 0.0, n)
    # an infinite m1 makes u NaN for the chains at +inf: no standard error
    se = sd_u(m0, m1) / math.sqrt(n) if n > 1 and np.isfinite(m1) else np.nan
    lr = math.log(ratio)
    low, high = t_bounds(lr, se, n, alpha)
    pg, pl = t_pvalues(lr, se, n, math.log(theta))
    return ratio, MeanTest(ratio, math.exp(low) if np.isfinite(low) else np.nan,
                           math.exp(high) if np.isfinite(high) else np.nan, pg, pl, n)


def log_ratio_of_means(first: np.ndarray, last: np.ndarray, theta: float,
                       alpha: float) -> tuple[float, MeanTest]:
    """Ratio of means R = mean(last) / mean(first) of paired per-chain values with a
    delta-method test of log R against log theta.

    The log ratio of means has influence u_i = last_i / mean(last) - first_i / mean(first)
    (delta method; e.g. Casella & Berger 2002, Sec. 5.5.4), so
    se(log R) = sd(u) / sqrt(n) and (log R - log theta) / se is Student-t with n - 1 degrees of
    freedom asymptotically.  The ratio of means, unlike the mean of per-chain ratios, is not
    inflated by chains with a small denominator (issue 10, finding 8).

    Returns (R, test on log R with bounds transformed back to the ratio scale).
    """
    ok = ~(np.isnan(first) | np.isnan(last))
    first, last = np.asarray(first, float)[ok], np.asarray(last, float)[ok]
    n = len(first)
    if n == 0:
        return log_ratio_of_means_from(0, np.nan, np.nan, None, theta, alpha)
    return log_ratio_of_means_from(
        n, float(first.mean()), float(last.mean()),
        lambda m0, m1: (last / m1 - first / m0).std(ddof=1), theta, alpha)


@dataclass(frozen=True)
class PairStats:
    """What the paired tests (Defs. 1, 2, 6, 8 and the summary's contrast) use of per-chain
    values at the first and the last iteration: their ``Moments``, the Moments of the paired
    differences last - first, the nan-means of each end (``np.nanmean``: +-inf as numpy gives
    them) and ``ratio(theta, alpha)``: ``log_ratio_of_means``'s (R, MeanTest).  ``PairStats.of``
    builds them from arrays; ``profile.streaming`` from merged moments."""

    first: Moments
    last: Moments
    diff: Moments
    mean_first: float
    mean_last: float
    ratio: object  # callable (theta, alpha) -> (R, MeanTest)

    @classmethod
    def of(cls, first: np.ndarray, last: np.ndarray) -> "PairStats":
        """From per-chain values at the two ends, shape (n_seeds,) each."""
        first, last = np.asarray(first, dtype=float), np.asarray(last, dtype=float)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN end: mean NaN
            diff = last - first
            m_first, m_last = np.nanmean(first), np.nanmean(last)
        return cls(Moments.of(first), Moments.of(last), Moments.of(diff), m_first, m_last,
                   lambda theta, alpha: log_ratio_of_means(first, last, theta, alpha))


def mean_ci_from(m: Moments, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-chain values with its two-sided Student-t ``level``
    interval, from their ``Moments`` (``report.summary.mean_ci``); the interval is NaN with
    fewer than 2 chains or an infinite value (the mean is then +-inf or NaN)."""
    if m.n == 0:
        return (np.nan, np.nan, np.nan)
    if m.n < 2 or np.isnan(m.sd):
        return (m.mean, np.nan, np.nan)
    half = t_ppf(0.5 + level / 2, m.n - 1) * m.sd / float(np.sqrt(m.n))
    return (m.mean, m.mean - half, m.mean + half)


def contrast_from(pair: PairStats, metric: str,
                  level: float = 0.95) -> tuple[float, float, float, str]:
    """Last vs first iteration (``report.summary.contrast``) from ``PairStats``: (value, low,
    high, kind) with a two-sided ``level`` interval -- the ratio of means (delta method), or
    for a log-loss the mean paired difference (t interval)."""
    from ..metrics import is_log_loss

    alpha = (1 - level) / 2
    if is_log_loss(metric):
        t = mean_test_from(pair.diff, 0.0, alpha)
        return t.mean, t.low, t.high, "difference"
    _, t = pair.ratio(1.0, alpha)
    return t.mean, t.low, t.high, "ratio of means"


def intersection_union(*p: float) -> float:
    """p-value of "every one of these alternatives holds": the largest p (Berger 1982's
    intersection-union test is level alpha when each component test is); NaN if any is NaN."""
    return float(np.max(np.asarray(p, dtype=float)))


def bonferroni_union(*p: float) -> float:
    """p-value of "at least one of these alternatives holds": Bonferroni, min(1, k min p) over
    the k components (NaN components count in k but cannot reject)."""
    arr = np.asarray(p, dtype=float)
    return float("nan") if np.isnan(arr).all() else float(min(1.0, len(arr) * np.nanmin(arr)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple
    test procedure", Scand. J. Statist. 6: 65-70); NaN entries (no test) are left out.

    With the m p-values sorted, p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    min(1, max_{j <= i} (m - j + 1) p_(j)).  Rejecting where it is <= alpha controls the
    family-wise error rate at alpha under arbitrary dependence between the tests.  (Checked
    against statsmodels' ``multipletests(method="holm")`` in the tests.)
    """
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m:
        order = ok[np.argsort(p[ok], kind="stable")]
        steps = (m - np.arange(m)) * np.clip(p[order], 0.0, 1.0)
        out[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return out
