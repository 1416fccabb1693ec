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


def mean_test(x: np.ndarray, theta: float, alpha: float) -> MeanTest:
    """Student-t test of the mean of per-chain values, shape (n_seeds,); NaN chains dropped;
    an infinite value makes the mean infinite (decided by its sign).

    Source: one-sample t-test (Student 1908); valid for the mean of n i.i.d. chains by the
    central limit theorem -- chains are independent replicates by construction (rng.py).
    """
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return MeanTest(np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    if np.isinf(x).any():
        m = float(np.sign(x[np.isinf(x)]).mean() * np.inf) if abs(
            np.sign(x[np.isinf(x)]).mean()) == 1 else np.nan
        pg, pl = t_pvalues(m, 0.0, n, theta) if not np.isnan(m) else (np.nan, np.nan)
        return MeanTest(m, m, m, pg, pl, n)
    mean = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else np.nan
    low, high = t_bounds(mean, se, n, alpha)
    pg, pl = t_pvalues(mean, se, n, theta)
    return MeanTest(mean, low, high, pg, pl, n)


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
    nan = MeanTest(np.nan, np.nan, np.nan, np.nan, np.nan, n)
    if n == 0:
        return np.nan, nan
    m0, m1 = float(first.mean()), float(last.mean())
    if not np.isfinite(m0) or m0 <= 0 or m1 < 0:
        return (np.inf if np.isinf(m1) and np.isfinite(m0) and m0 > 0 else np.nan), (
            MeanTest(np.inf, np.inf, np.inf, 0.0, 1.0, n) if np.isinf(m1) and m0 > 0 else nan)
    ratio = m1 / m0
    if m1 == 0:
        return 0.0, MeanTest(0.0, 0.0, 0.0, 1.0, 0.0, n)
    u = last / m1 - first / m0
    se = float(u.std(ddof=1) / math.sqrt(n)) if n > 1 else np.nan
    lr = math.log(ratio)
    low, high = t_bounds(lr, se, n, alpha)
    pg, pl = t_pvalues(lr, se, n, math.log(theta))
    return ratio, MeanTest(ratio, math.exp(low) if np.isfinite(low) else np.nan,
                           math.exp(high) if np.isfinite(high) else np.nan, pg, pl, n)


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
