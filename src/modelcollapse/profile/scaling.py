"""Definition 5, change in scaling law: the effective real sample size (ESS) of each iteration.

ESS(t) is the number of real samples a real-data-only fit of the same model family needs to
reach, in expectation, the mean risk of iteration t -- the inverse of the real-data learning
curve at that risk (the relative efficiency ESS / n of Dey & Donoho 2024, arXiv 2410.22812,
generalised from their closed forms to any task with a held-out real test set).

The reference learning curve
----------------------------
``E[risk](N) = r_inf + a / (N - b)``, a > 0, b < N_min, either

* in closed form where the truth is known (spec ``scaling: {metric, a, b}``, r_inf = 0:
  E||w_hat - w*||^2 = sigma^2 d / (N - d - 1) for OLS on an isotropic Gaussian design,
  E||mu_hat - mu_0||^2 = tr(Sigma_0) / N for a mean, E||p_hat - p_0||^2 = (1 - sum p_0^2) / N for
  frequencies), or
* **fitted** to the task's recorded real-data learning curve (spec ``scaling: {metric,
  reference}``: metrics ``<reference>N`` = the risk of a real-only fit on N real rows, one value
  per chain; ``tasks.base.LearningCurve``), anchored at iteration 0 -- itself the real-only fit
  on all n_real rows, so ESS(0) = n_real exactly: a and b are fitted by weighted least squares
  to the mean *paired* differences risk(N) - risk(iteration 0) over seeds (weights 1 / their
  standard error^2; the seed-to-seed spread of the split and test set cancels in them), profiled
  over b (variable projection: for fixed b the curve is linear in a; Golub & Pereyra 1973), and
  r_inf = mean risk(0) - a / (n_real - b).

Why this form and not a power law r_inf + a N^-beta: it is *exact* for the closed forms above
(OLS: the expected test MSE sigma^2 (1 + d / (N - d - 1)) with a Gaussian design, e.g. Breiman &
Freedman 1983, Hastie et al. 2022 Sec. 2; Gaussian mean: tr Sigma / N), it is the leading-order
expansion r_inf + c / N + O(N^-2) of the expected excess log-loss of any regular maximum
likelihood fit (Akaike 1973; Takeuchi 1976: c = tr(J^-1 K) / 2), with b absorbing the O(N^-2)
term, and its pole at N = b is where a real fit stops being finite (a Gaussian's NLL needs
N > d) -- so a collapsed model maps to an ESS near b, not to an extrapolated fraction of a
sample.  For non-parametric fits (KDE: excess risk ~ N^(-4/(d+4))) it is a 3-parameter
smooth approximation over the recorded sizes; ESSs outside [N_min, n_real] are extrapolations
and the detail says so.

The test
--------
Statistic: theta = log ESS(T) - log ESS(0), T the last iteration.  Occurs when ESS(T) / ESS(0)
is significantly below ``settings.efficiency`` (default 0.9), does not occur when significantly
above.  Uncertainty: every seed contributes its learning-curve risks and its risks at 0 and T,
so theta is a smooth function of means over independent seeds; its standard error is the
delete-one-seed jackknife's (Tukey 1958; Efron & Stein 1981; consistent for smooth functions of
means, Shao & Tu 1995 Thm 2.1), refitting the curve in each of the n jackknife samples, and
(theta - log efficiency) / se is referred to Student-t with n - 1 degrees of freedom.  The
p-values are analytic, hence fine enough for Holm over every test of a run (a bootstrap
p-value cannot go below 1 / (B + 1)).

Degenerate cases are results: a mean risk at or below the curve's floor r_inf gives ESS = inf;
a non-finite mean risk (a NaN or infinite risk in some chain) gives ESS = 0; an ESS of 0 or inf
at T decides by its side (p 0 or 1).  Fewer than ``settings.min_seeds`` seeds, a learning curve
that does not decrease, or a jackknife sample that reaches ESS 0 or inf give *inconclusive*.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ._stats import Verdict, grid_min, t_ppf, t_pvalues

__all__ = ["scaling_verdict", "scaling_verdict_from", "SeedRows", "WideSource", "CurveFit",
           "fit_learning_curve", "reference_curve", "reference_names", "dey_donoho_efficiency"]

STATISTIC = "effective real sample size, last / first iteration"


@dataclass(frozen=True)
class CurveFit:
    """A learning curve E[risk](N) = r_inf + a / (N - b) (risk units; N in samples)."""

    r_inf: float
    a: float
    b: float

    def risk(self, n: np.ndarray | float) -> np.ndarray | float:
        """Expected risk of a real-only fit on n samples (n > b)."""
        return self.r_inf + self.a / (np.asarray(n, dtype=float) - self.b)

    def ess(self, risk: float) -> float:
        """Effective sample size of a mean risk: b + a / (risk - r_inf), in samples.

        inf when ``risk`` <= r_inf (better than any finite real sample predicts), 0 when
        ``risk`` is NaN or infinite, and at least 0 (a curve with b < 0 reaches 0 at a finite
        risk)."""
        if not np.isfinite(risk):
            return 0.0
        if risk <= self.r_inf:
            return math.inf
        return max(0.0, self.b + self.a / (risk - self.r_inf))

    def __str__(self) -> str:
        sign = "-" if self.b >= 0 else "+"
        return f"{self.r_inf:.4g} + {self.a:.4g} / (N {sign} {abs(self.b):.4g})"


def fit_learning_curve(sizes: np.ndarray, means: np.ndarray, se: np.ndarray | None = None, *,
                       anchor: tuple[float, float] | None = None) -> CurveFit | None:
    """Weighted least-squares fit of E[risk](N) = r_inf + a / (N - b) with a > 0, b < min N.

    Parameters
    ----------
    sizes : ndarray of shape (K,)
        Training-set sizes N (samples).
    means : ndarray of shape (K,)
        Mean risk over seeds at each size (risk units); with ``anchor``, the mean *paired
        difference* risk(N) - risk(n_anchor) over seeds instead.
    se : ndarray of shape (K,), optional
        Standard errors of ``means`` (weights 1 / se^2; non-positive ones get the largest
        weight seen; missing -> equal weights).
    anchor : (n_anchor, mean risk at n_anchor), optional
        A size the curve passes through exactly: then only a and b are fitted (to the paired
        differences: r_inf = risk(n_anchor) - a / (n_anchor - b)), which needs K >= 2 sizes;
        without it r_inf, a and b are fitted, which needs K >= 3.

    Returns
    -------
    CurveFit, or None when no decreasing curve (a > 0) fits or there are too few sizes.

    Method: variable projection (Golub & Pereyra 1973) -- for fixed b the curve is linear in
    (r_inf, a), or in a alone with an anchor, solved by weighted least squares; b = N_min (1 - e^u)
    is found on a grid of u in [log 1e-3, log 100] (b from just below N_min down to -99 N_min, the
    far end an almost linear curve) refined by nested grids (``_stats.grid_min``) to 1e-6.
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(means, dtype=float)
    if len(np.unique(x)) < (2 if anchor is not None else 3) or not np.isfinite(y).all():
        return None
    if se is None:
        w = np.ones_like(y)
    else:
        se = np.asarray(se, dtype=float)
        good = np.isfinite(se) & (se > 0)
        if not good.any():
            w = np.ones_like(y)
        else:  # a zero standard error (constant values) gets the largest weight seen
            w = 1.0 / np.where(good, se, se[good].min()) ** 2
    w = w / w.sum()
    n_min = min(x.min(), anchor[0]) if anchor is not None else x.min()

    def solve(u: np.ndarray):
        b = n_min * (1.0 - np.exp(np.atleast_1d(u)))            # (G,)
        g = 1.0 / (x[None, :] - b[:, None])                      # (G, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            if anchor is not None:
                g = g - 1.0 / (anchor[0] - b[:, None])
                a = (w * g * y[None, :]).sum(1) / (w * g * g).sum(1)
                r = np.zeros_like(a)
            else:
                sw, sg, sgg = w.sum(), (w * g).sum(1), (w * g * g).sum(1)
                sy, sgy = (w * y).sum(), (w * g * y[None, :]).sum(1)
                a = (sw * sgy - sg * sy) / (sw * sgg - sg**2)
                r = (sy - a * sg) / sw
        rss = (w * (y[None, :] - r[:, None] - a[:, None] * g) ** 2).sum(1)
        rss = np.where((a > 0) & np.isfinite(rss), rss, np.inf)
        return rss, r, a, b

    rss_min, u = grid_min(lambda v: solve(v)[0],
                          np.linspace(math.log(1e-3), math.log(100.0), 121), 1e-6)
    if not np.isfinite(rss_min):
        return None
    _, r, a, b = solve(u)
    if anchor is not None:
        r = anchor[1] - a / (anchor[0] - b)
    return CurveFit(float(r[0]), float(a[0]), float(b[0]))


_SIZE = re.compile(r"(\d+)$")


def reference_curve(wide: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The recorded real-data learning curve: sizes (K,) and per-seed risks (n_seeds, K), from
    the metrics ``<prefix>N`` at iteration 0 (``tasks.base.LearningCurve``), by increasing N."""
    found = []
    for name, values in wide.items():
        if name.startswith(prefix):
            m = _SIZE.fullmatch(name[len(prefix):])
            if m:
                found.append((int(m.group(1)), np.asarray(values, dtype=float)[:, 0]))
    found.sort(key=lambda item: item[0])
    if not found:
        return np.zeros(0), np.zeros((0, 0))
    return (np.array([n for n, _ in found], dtype=float),
            np.stack([v for _, v in found], axis=1))


def dey_donoho_efficiency(generations: int) -> float:
    """Relative efficiency of the Gaussian-mean estimate after G generations of augment
    (= accumulate): 1 / sum_{g=1}^{G} 1 / g^2, decreasing to 6 / pi^2 = 0.6079 (Dey & Donoho
    2024, Sec. 3; research/literature.md Sec. 3).  Generation g is model-fitting iteration
    g - 1."""
    return 1.0 / sum(1.0 / g**2 for g in range(1, int(generations) + 1))


def _as_risk(x: np.ndarray) -> np.ndarray:
    """Risks with NaN (an undefined, broken fit) counted as +inf."""
    x = np.asarray(x, dtype=float)
    return np.where(np.isnan(x), np.inf, x)


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard errors over seeds (axis 0); inf where a column is not finite."""
    n = x.shape[0]
    finite = np.isfinite(x).all(0)
    with np.errstate(invalid="ignore"):
        mean = np.where(finite, x.mean(0), np.inf)
        se = np.where(finite, x.std(0, ddof=1) / math.sqrt(n), np.inf) if n > 1 else \
            np.full(x.shape[1], np.nan)
    return mean, se


def _accumulate_generations(wide: dict[str, np.ndarray]) -> int | None:
    """G = number of iterations when the provenance is Dey & Donoho's augment workflow (real
    pool kept, one real-sized synthetic batch added per iteration), else None."""
    if "n_real" not in wide or "n_synthetic" not in wide:
        return None
    n_real = np.asarray(wide["n_real"], float)
    if augment_chains(n_real, wide["n_synthetic"]).all():
        return int(n_real.shape[1])
    return None


def augment_chains(n_real: np.ndarray, n_synthetic: np.ndarray) -> np.ndarray:
    """(n_seeds,) bool: which chains (rows of the (n_seeds, n_iterations) provenance arrays)
    follow Dey & Donoho's augment workflow -- n_real constant, n_synthetic = t n_real
    (``np.allclose`` per chain)."""
    n_real, n_syn = np.asarray(n_real, float), np.asarray(n_synthetic, float)
    t = np.arange(n_real.shape[1])
    return (np.isclose(n_real, n_real[:, :1]).all(1)
            & np.isclose(n_syn, t[None, :] * n_real[:, :1]).all(1))


class SeedRows:
    """Def. 5's per-seed data, shape (n_seeds, K + 2): the K learning-curve risks, the risk
    at iteration 0 and at the last iteration (NaN counted as inf), with the delete-one-seed
    jackknife.  ``profile.streaming`` gives the same interface from merged moments (with the
    delta method)."""

    method = "delete-one-seed jackknife"

    def __init__(self, data: np.ndarray):
        self.data = data
        self.n = data.shape[0]

    def finite_columns(self) -> np.ndarray:
        """(K + 2,) bool: columns finite in every seed."""
        return np.isfinite(self.data).all(0)

    def columns(self, keep: np.ndarray) -> "SeedRows":
        """These rows with only the columns ``keep`` (bool or indices)."""
        return SeedRows(np.ascontiguousarray(self.data[:, keep]))

    def stats(self, K: int):
        """(column means (K + 2,), mean paired differences learning curve - iteration 0 (K,)
        and their standard errors (K,)); inf where a column is not finite."""
        return _stats_of(self.data, K)

    def theta_se(self, theta, K: int) -> float:
        """Jackknife standard error of ``theta(stats)`` over seeds (NaN when a delete-one
        sample is not finite)."""
        n = self.n
        loo = np.array([theta(_stats_of(np.delete(self.data, i, axis=0), K))
                        for i in range(n)])
        if not np.isfinite(loo).all():
            return math.nan
        return math.sqrt((n - 1) / n * float(((loo - loo.mean()) ** 2).sum()))


def _stats_of(rows: np.ndarray, K: int):
    mean = _mean_se(rows)[0]
    diff, se = _mean_se(rows[:, :K] - rows[:, K:K + 1])
    return mean, diff, se


class WideSource:
    """What Def. 5 reads of a unit, from its wide arrays (metric -> (n_seeds, n_iterations))."""

    def __init__(self, wide: dict[str, np.ndarray]):
        self.wide = wide
        self.names = list(wide)

    def n_seeds(self, metric: str) -> int:
        return self.wide[metric].shape[0]

    def n_real(self) -> float:
        """Mean n_train at iteration 0 over seeds (NaN when not recorded)."""
        return (float(np.nanmean(self.wide["n_train"][:, 0])) if "n_train" in self.wide
                else math.nan)

    def rows(self, metric: str, ref_names: list[str]) -> SeedRows:
        """``SeedRows`` of the learning-curve metrics ``ref_names`` (at iteration 0) and the
        risk ``metric`` at the first and last iteration."""
        risk = _as_risk(self.wide[metric])
        ref = (np.stack([_as_risk(np.asarray(self.wide[k], dtype=float)[:, 0])
                         for k in ref_names], axis=1) if ref_names
               else np.zeros((risk.shape[0], 0)))
        return SeedRows(np.column_stack([ref, risk[:, 0], risk[:, -1]]))

    def accumulate_generations(self) -> int | None:
        return _accumulate_generations(self.wide)


def reference_names(names, prefix: str) -> tuple[np.ndarray, list[str]]:
    """The recorded learning curve's sizes (K,) and metric names ``<prefix>N``, by increasing
    N (``reference_curve`` without the values)."""
    found = []
    for name in names:
        if name.startswith(prefix):
            m = _SIZE.fullmatch(name[len(prefix):])
            if m:
                found.append((int(m.group(1)), name))
    found.sort(key=lambda item: item[0])
    return np.array([n for n, _ in found], dtype=float), [k for _, k in found]


def scaling_verdict(wide: dict[str, np.ndarray], spec: dict, settings) -> Verdict:
    """Def. 5 from the wide metric arrays (metric -> (n_seeds, n_iterations); NaN where not
    recorded) and the task's profile spec (``scaling``: ``metric`` and ``reference`` and/or the
    closed form ``a``, ``b``; see the module docstring).

    Returns a ``Verdict`` with value = ESS(T) / ESS(0), one-sided ``1 - settings.alpha``
    bounds, threshold ``settings.efficiency``, ``p_occurs`` (H0: ratio >= efficiency) and
    ``p_not`` (H0: ratio <= efficiency) from the jackknife t-test; ``extra`` holds the numbers
    (ESS at 0 and T, ESS / n_real, the curve).  The test is analytic: no resampling.
    """
    return scaling_verdict_from(WideSource(wide), spec, settings)


def scaling_verdict_from(src, spec: dict, settings) -> Verdict:
    """``scaling_verdict`` from a source of the unit's data: ``WideSource`` (arrays, the
    jackknife) or ``profile.streaming``'s (merged moments, the delta method)."""
    scaling = spec.get("scaling") or {}
    metric = scaling.get("metric")
    if not metric or metric not in src.names:
        return Verdict.not_applicable(5, STATISTIC, "no real-data reference learning curve"
                                      if not scaling else f"risk metric {metric!r} not recorded")
    n_seeds = src.n_seeds(metric)
    closed = "a" in scaling and "b" in scaling
    n_real = src.n_real()
    if closed:
        fixed = CurveFit(float(scaling.get("r_inf", 0.0)), float(scaling["a"]),
                         float(scaling["b"]))
        sizes, ref_names = np.zeros(0), []
        source = f"closed form E[{metric}](N) = {fixed}"
    else:
        fixed = None
        sizes, ref_names = reference_names(src.names, scaling.get("reference") or "\0")
        if len(sizes) == 0:
            return Verdict.not_applicable(5, STATISTIC, "no real-data reference learning curve "
                                          "recorded (the real pool is too small for one)")
        if not np.isfinite(n_real):
            return Verdict.not_applicable(5, STATISTIC, "n_train not recorded: the real pool's "
                                          "size anchors the learning curve")
        source = (f"E[{metric}](N) fitted to real-only fits on N = "
                  f"{', '.join(str(int(n)) for n in sizes)} real samples and iteration 0 "
                  f"(N = {n_real:.0f}), means over seeds")
    if n_seeds < settings.min_seeds:
        return Verdict.inconclusive(5, STATISTIC, f"{n_seeds} seeds < min_seeds = "
                                    f"{settings.min_seeds}")

    # per-seed data: learning-curve risks, risk at iteration 0, risk at the last iteration
    data = src.rows(metric, ref_names)
    K = len(ref_names)
    if fixed is None:  # sizes whose real-only fit is not finite carry no curve information
        keep = data.finite_columns()[:K]
        data = data.columns(np.concatenate([np.flatnonzero(keep), [K, K + 1]]))
        sizes, K = sizes[keep], int(keep.sum())

    def estimate(stats):
        """(theta = log ESS(T) - log ESS(0), curve, ESS(0), ESS(T)) from the seeds' ``stats``
        (``SeedRows.stats``)."""
        mean, diff, se = stats
        if fixed is None:
            if not np.isfinite(mean[K]):
                return math.nan, None, math.nan, math.nan
            # paired differences from iteration 0 (same seed, split and test set): the
            # seed-to-seed spread of the test set's difficulty cancels
            curve = fit_learning_curve(sizes, diff, se, anchor=(n_real, mean[K]))
            if curve is None:
                return math.nan, None, math.nan, math.nan
        else:
            curve = fixed
        e0, e1 = curve.ess(mean[K]), curve.ess(mean[K + 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = float(np.log(e1) - np.log(e0)) if e0 > 0 and np.isfinite(e0) else math.nan
        return theta, curve, e0, e1

    theta, curve, ess0, ess1 = estimate(data.stats(K))
    if curve is None:
        return Verdict.inconclusive(5, STATISTIC, "the real-data learning curve does not "
                                    "decrease with N (no curve r_inf + a / (N - b), a > 0, fits)"
                                    if fixed is None else "no finite risk at iteration 0")
    numbers = {"ess_first": ess0, "ess_last": ess1, "n_real": n_real,
               "ess_first_per_n_real": ess0 / n_real, "ess_last_per_n_real": ess1 / n_real,
               "curve_r_inf": curve.r_inf, "curve_a": curve.a, "curve_b": curve.b,
               "curve_sizes": [int(n) for n in sizes]}
    detail = _detail(metric, source, curve, ess0, ess1, n_real, sizes, scaling, src)
    log_eff = math.log(settings.efficiency)
    if np.isnan(theta):
        return Verdict.inconclusive(5, STATISTIC, f"ESS(0) = {ess0:.4g}: the risk at iteration 0 "
                                    "is off the learning curve", detail=detail, extra=numbers)
    if np.isinf(theta):  # ESS(T) = 0 (non-finite risk) or inf (below the curve's floor)
        value = 0.0 if theta < 0 else math.inf
        p_occ, p_not = (0.0, 1.0) if theta < 0 else (1.0, 0.0)
        return Verdict(5, STATISTIC, value, value, value, settings.efficiency, p_occ, p_not,
                       test="ESS(T) at a bound of the learning curve (decided by its side)",
                       detail=detail, extra=numbers)

    # delete-one-seed jackknife of theta (the curve refitted each time), or the delta method
    n = data.n
    se = data.theta_se(lambda stats: estimate(stats)[0], K)
    if not np.isfinite(se):
        return Verdict.inconclusive(
            5, STATISTIC, f"a {data.method} sample reaches ESS 0 or inf (one seed "
            "decides the effective sample size)", value=math.exp(theta),
            threshold=settings.efficiency, detail=detail, extra=numbers)
    q = t_ppf(1 - settings.alpha, n - 1)
    p_not, p_occ = t_pvalues(theta, se, n, log_eff)  # (H0 theta <= log eff, H0 theta >= log eff)
    numbers["log_ratio_se"] = se
    return Verdict(5, STATISTIC, math.exp(theta), math.exp(theta - q * se),
                   math.exp(theta + q * se), settings.efficiency, p_occ, p_not,
                   test=f"{data.method} t-test of log ESS(T) / ESS(0) ({n - 1} df)",
                   detail=detail, extra=numbers)


def _detail(metric: str, source: str, curve: CurveFit, ess0: float, ess1: float,
            n_real: float, sizes: np.ndarray, scaling: dict, src) -> str:
    def fmt(e: float) -> str:
        return f"{e:.4g}" if np.isfinite(e) else "inf"

    parts = [f"ESS = {fmt(ess0)} real samples at iteration 0, {fmt(ess1)} at the last"]
    if np.isfinite(n_real) and n_real > 0:
        parts.append(f"ESS / n_real = {ess0 / n_real:.3g} and {ess1 / n_real:.3g} "
                     f"(n_real = {n_real:.0f})")
    if not ("a" in scaling and "b" in scaling):
        parts.append(f"curve E[{metric}](N) = {curve}")
        lo = sizes.min() if len(sizes) else math.nan
        if np.isfinite(n_real) and (ess1 < lo or ess1 > n_real):
            parts.append(f"ESS(T) extrapolated outside the recorded sizes "
                         f"[{lo:.0f}, {n_real:.0f}]" + (
                             f": the last risk is worse than a real-only fit on {lo:.0f} "
                             "samples" if ess1 < lo else ""))
    parts.append(source)
    generations = src.accumulate_generations() if scaling.get("dey_donoho") else None
    if generations is not None:
        parts.append(f"Dey & Donoho 2024 (Gaussian mean, augment): ESS(T) / n_real -> "
                     f"{dey_donoho_efficiency(generations):.4f} at G = {generations} "
                     f"generations (limit 6/pi^2 = {6 / math.pi**2:.4f})")
    return "; ".join(parts)
