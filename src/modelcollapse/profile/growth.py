"""Definition 3 (asymptotically diverging risk) as a test with uncertainty.

A curve over a finite run cannot prove divergence: a bounded curve whose timescale is many run
lengths looks linear.  So the test is stated at the run's horizon ``T``:

* the **saturating** family S: r = a + b (1 - exp(-t / tau)) with tau <= kappa T, or
  r = a + b ((t+1)^c - 1) / c with c <= -1 / (kappa ln(T+1)) -- curves that cover at least
  1 - e^(-1/kappa) of their way to a plateau within the run (kappa = ``saturation_horizon``,
  default 1: 63%);
* the **unbounded** family U: r = a + b ((t+1)^c - 1) / c with b >= 0, c in [0, 3] (c = 0:
  logarithmic, c = 1: linear -- the replace law of Dohmatob et al. 2024);

each fitted to the mean curve by generalized least squares with the covariance of the mean
estimated over seeds, on K blocks of iterations (block means, so the K x K covariance is
well estimated; same seeds every iteration make the iterations correlated, and GLS uses
that).  Lack of fit of a family is the Hotelling-type statistic
chi2 = min_params (ybar - f)^T (S / n)^-1 (ybar - f), referred to F(q, n - K) after
scaling by (n - K) / ((n - 1) q), q = K - 3 (Hotelling's T^2 with an estimated covariance;
Hotelling 1931, Seber & Lee 2003, Sec. 2.4).  K <= (n - 1) / 2 keeps n - K degrees of freedom
for the covariance; under a flat null curve with 30-100 seeds the saturating family is rejected
at 4-7% of nominal 5% (300 simulated null curves).

* *occurs*: S is rejected **and** the risk is still rising at the end (one-sided paired
  t-test over seeds: mean of the last block > mean of the one before); p = the larger of the
  two (an intersection-union test, Berger 1982).  If U is rejected too, no growth law fits
  and the verdict is inconclusive.
* *does not occur*: U is rejected (no unbounded growth law fits).
* otherwise *inconclusive*: e.g. a bounded curve whose timescale the run cannot resolve.

The same test applied to -log(variance ratio) decides Def. 4's "trending to zero".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._stats import Moments, f_sf, grid_min, t_sf

__all__ = ["GrowthTest", "growth_test", "growth_test_from", "n_blocks_for", "box_cox_basis",
           "exp_saturation_basis"]


def box_cox_basis(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """((t+1)^c - 1) / c (log(t+1) at c = 0) for every c, shape (len(c), len(t))."""
    lx = np.log(t + 1.0)[None, :]
    c = np.asarray(c, dtype=float)[:, None]
    small = np.abs(c) < 1e-8
    return np.where(small, lx, np.expm1(c * lx) / np.where(small, 1.0, c))


def exp_saturation_basis(t: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """1 - exp(-t / tau) for every tau, shape (len(tau), len(t))."""
    return -np.expm1(-t[None, :] / np.asarray(tau, dtype=float)[:, None])


class _GLS:
    """Profiled generalized least squares of ybar ~ a + b g(shape) on block means."""

    def __init__(self, ybar: np.ndarray, cov: np.ndarray, blocks: np.ndarray):
        # whitening W = Lambda^-1/2 V^T (cov = V Lambda V^T, K x K; eigenvalues floored at
        # 1e-12 of the largest so a rank-deficient covariance cannot fail), applied to the
        # block-averaging matrix once
        lam, vec = np.linalg.eigh((cov + cov.T) / 2)
        lam = np.maximum(lam, max(float(lam.max()), 1e-300) * 1e-12)
        w = vec.T / np.sqrt(lam)[:, None]
        self.white = w @ blocks                    # (K, T)
        self.y = w @ ybar
        self.one = w.sum(1)

    def chi2(self, basis: np.ndarray, b_min: float | None) -> np.ndarray:
        """Minimum GLS lack of fit over (a, b) for each row of ``basis`` (shapes, T)."""
        g = basis @ self.white.T
        one, y = self.one, self.y
        # project out the intercept: residual makers with respect to the whitened constant
        oo = one @ one
        gc = g - np.outer(g @ one / oo, one)
        yc = y - (y @ one / oo) * one
        gg = (gc**2).sum(1)
        b = np.where(gg > 1e-300, gc @ yc / np.where(gg > 1e-300, gg, 1.0), 0.0)
        if b_min is not None:
            b = np.maximum(b, b_min)
        return ((yc[None, :] - b[:, None] * gc) ** 2).sum(1)

    def best(self, t, basis_fn, low, high, b_min, log_scale=False, n_grid=48):
        """(min chi2, shape) over the shape parameter in [low, high]: a grid, refined by nested
        grids around its best point (``_stats.grid_min``) to 1e-7."""
        if high <= low:
            return np.inf, np.nan
        grid = np.geomspace(low, high, n_grid) if log_scale else np.linspace(low, high, n_grid)
        return grid_min(lambda v: self.chi2(basis_fn(t, v), b_min), grid, 1e-7)


@dataclass
class GrowthTest:
    """Result of ``growth_test`` (p-values unadjusted)."""

    p_saturating: float            # lack of fit of the saturating family S
    p_unbounded: float             # lack of fit of the unbounded family U
    p_rising: float                # H0: last block mean <= the previous one
    exponent: float                # Box-Cox c of the best unbounded fit
    saturation: tuple[str, float]  # ("tau", tau) or ("c", c) of the best saturating fit
    n_blocks: int
    chi2_unbounded: float
    chi2_saturating: float
    end_slope: np.ndarray | None   # per seed, last minus previous block mean per iteration
    #: Moments of end_slope over seeds (what the tests use; a streamed test has no end_slope)
    slope: Moments | None = None


def _blocks(T: int, K: int) -> np.ndarray:
    edges = np.linspace(0, T, K + 1).round().astype(int)
    A = np.zeros((K, T))
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        A[k, a:b] = 1.0 / (b - a)
    return A


def n_blocks_for(n_seeds: int, n_iterations: int, n_blocks: int) -> int:
    """K, the growth test's number of blocks: min(n_blocks, T, max(4, (n - 1) // 2)); it is
    min(n_blocks, T) whenever n_seeds >= 2 n_blocks + 1."""
    return min(n_blocks, n_iterations, max(4, (n_seeds - 1) // 2))


def growth_test(curves: np.ndarray, n_blocks: int = 8, horizon: float = 2.0,
                precision: float = 1e-3) -> GrowthTest | None:
    """Test unbounded against saturating growth of the mean of per-seed curves.

    Parameters
    ----------
    curves : array (n_seeds, n_iterations), finite
        One curve per replicate chain (risk, or -log variance ratio).
    n_blocks : int
        K, blocks of consecutive iterations (capped by n_iterations and (n_seeds - 1) / 2,
        at least 4: ``n_blocks_for``).
    horizon : float
        kappa: saturating models reach >= 1 - e^(-1/kappa) of their plateau within the run.
    precision : float
        Relative floor on the standard error of a block mean (times the curve's range), so a
        noise-free curve is judged at this precision instead of a singular covariance.

    Returns
    -------
    GrowthTest with p_saturating (lack of fit of S), p_unbounded (of U), p_rising (last block
    not above the previous one), exponent c of the best unbounded fit, tau or c of the best
    saturating fit, n_blocks, end_slope (per seed: last minus previous block mean per
    iteration, shape (n_seeds,)) and its ``Moments``; or None when there are fewer than 4
    iterations or 5 seeds.  The test itself is ``growth_test_from`` on the block means' mean
    and covariance over seeds.
    """
    n, T = curves.shape
    K = n_blocks_for(n, T, n_blocks)
    if T < 4 or K < 4:
        return None
    A = _blocks(T, K)
    Y = curves @ A.T                                                 # (n, K)
    rise = Y[:, -1] - Y[:, -2]
    centers = A @ np.arange(T, dtype=float)
    end_slope = rise / (centers[-1] - centers[-2])
    g = growth_test_from(Y.mean(0), np.cov(Y, rowvar=False, ddof=1), n, T,
                         float(rise.mean()), rise.std(ddof=1), horizon, precision)
    g.end_slope, g.slope = end_slope, Moments.of(end_slope)
    return g


def growth_test_from(ybar: np.ndarray, cov: np.ndarray, n: int, n_iterations: int,
                     rise_mean: float, rise_sd: float, horizon: float = 2.0,
                     precision: float = 1e-3) -> GrowthTest:
    """``growth_test`` from the per-seed block means' mean ``ybar`` (K,) and sample covariance
    ``cov`` (K, K) (divisor n - 1) over ``n`` seeds, K = len(ybar) >= 4 blocks of
    ``_blocks(n_iterations, K)``, and the mean and standard deviation of the per-seed rise of
    the last block over the previous one (Y_K - Y_{K-1}).  ``slope`` (the end slope's
    Moments: the rise per iteration between the two blocks' centres) is set; ``end_slope``
    (per seed) is None.  Used by ``growth_test`` (arrays) and ``profile.streaming`` (merged
    moments), so both decide alike."""
    T, K = n_iterations, len(ybar)
    A = _blocks(T, K)
    scale = max(float(np.ptp(ybar)), float(np.abs(ybar).max()) * 1e-6, 1e-300)
    cov = cov / n + np.eye(K) * np.square(precision * scale)
    gls = _GLS(ybar, cov, A)
    t = np.arange(T, dtype=float)
    unb = gls.best(t, box_cox_basis, 0.0, 3.0, b_min=0.0)
    c_max = -1.0 / (horizon * math.log(T + 1.0))
    sat_pow = gls.best(t, box_cox_basis, -3.0, c_max, b_min=None)
    sat_exp = gls.best(t, exp_saturation_basis, 1e-2, horizon * T, b_min=None, log_scale=True)
    sat = min(sat_pow, sat_exp, key=lambda r: r[0])
    q = K - 3

    def p_fit(chi2: float) -> float:
        f = chi2 * (n - K) / ((n - 1) * q)
        return f_sf(f, q, n - K)

    centers = A @ np.arange(T, dtype=float)
    dc = centers[-1] - centers[-2]
    se = rise_sd / math.sqrt(n)
    mean_rise = float(rise_mean)
    if se > 0:
        p_rising = t_sf(mean_rise / se, n - 1)
    else:
        p_rising = 0.0 if mean_rise > 0 else 1.0
    return GrowthTest(p_saturating=p_fit(sat[0]), p_unbounded=p_fit(unb[0]),
                      p_rising=p_rising, exponent=unb[1],
                      saturation=("tau", sat[1]) if sat is sat_exp else ("c", sat[1]),
                      n_blocks=K, chi2_unbounded=unb[0], chi2_saturating=sat[0],
                      end_slope=None,
                      slope=Moments(mean_rise / dc, float(rise_sd) / dc if n > 1 else np.nan,
                                    n))
