"""The collapse profile: a verdict for each of the eight definitions of model collapse.

Schaeffer, Kazdan, Arulandu & Koyejo 2025, "Position: Model Collapse Does Not Mean What You
Think" (arXiv 2503.03150), Sec. 2, list eight definitions; the same run can collapse under one and
not under another (their Table 1).  For every (task, paradigm) of a run this module decides each
definition from the replicate chains, with a statistic, a confidence and the numbers behind it:

====  =======================================  ================================================
def.  name                                     decided by (defaults in ``ProfileSettings``)
====  =======================================  ================================================
1     catastrophic increase of population      ratio of mean risk, last / first iteration; occurs
      risk                                     if its one-sided lower bound > ``catastrophic_ratio``
2     any increase of population risk          paired one-sided t-test, risk_last - risk_0 > 0
3     asymptotically diverging population      growth models fitted to the mean risk curve:
      risk                                     unbounded (Box-Cox power / log growth) vs
                                               saturating (power or exponential approach to a
                                               plateau visible within the run), chosen by BIC,
                                               confidence by bootstrap over seeds
4     collapsing variance                      geometric-mean ratio of the variance metric, last /
                                               first; occurs if its upper bound < ``variance_ratio``
5     change in scaling law                    effective sample size ESS (the real-data-only
                                               training-set size with the same expected risk) over
                                               n_train; occurs if its upper bound < ``efficiency``
6     disappearance of real modes              share of the modes covered at iteration 0 that
                                               are lost by the last, significantly > ``mode_loss``
7     disappearance of real tail data          tail risk relative to overall risk grows by more
                                               than ``tail_margin``; or the median tail-mass
                                               recall falls below 1 - ``tail_margin`` of its
                                               iteration-0 value
8     appearance of hallucinated data          the hallucinated share (mass off the real support,
                                               or 1 - k-NN precision) grows by more than
                                               ``hallucination``
====  =======================================  ================================================

Confidence bounds are one-sided at level ``1 - alpha`` over seeds (bootstrap of the seeds, or a
t-test).  A definition whose metric the task does not record is ``not_applicable``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

__all__ = ["DEFINITIONS", "ProfileSettings", "collapse_profile", "growth_verdict"]

DEFINITIONS = {
    1: "catastrophic increase of population risk",
    2: "any increase of population risk",
    3: "asymptotically diverging population risk",
    4: "collapsing variance",
    5: "change in scaling law",
    6: "disappearance of real modes",
    7: "disappearance of real tail data",
    8: "appearance of hallucinated data",
}
OCCURS, NOT, NA = "occurs", "does_not_occur", "not_applicable"


class ProfileSettings(BaseModel):
    """Thresholds of the collapse profile (documented defaults)."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(0.05, gt=0, lt=0.5, description="one-sided error level of every test")
    catastrophic_ratio: float = Field(
        2.0, gt=1, description="Def. 1: 'catastrophic' = mean risk more than this many times "
        "the real-data fit's")
    variance_ratio: float = Field(
        0.5, gt=0, lt=1, description="Def. 4: variance falls below this fraction of iteration 0's")
    efficiency: float = Field(
        0.9, gt=0, le=1, description="Def. 5: ESS / n_train below this departs from the "
        "real-data scaling law")
    mode_loss: float = Field(0.0, ge=0, lt=1, description="Def. 6: tolerated share of lost modes")
    tail_margin: float = Field(
        0.1, gt=0, description="Def. 7: relative growth of tail risk over overall risk (or loss "
        "of tail mass) that counts")
    hallucination: float = Field(0.02, gt=0, description="Def. 8: tolerated increase of the "
                                 "hallucinated share (mass off the real support, 1 - k-NN "
                                 "precision)")
    n_bootstrap: int = Field(200, ge=20, description="bootstrap resamples of the seeds")
    n_bootstrap_growth: int = Field(40, ge=10, description="bootstrap resamples for Def. 3")
    seed: int = Field(0, ge=0, description="seed of the bootstrap")


@dataclass
class _Verdict:
    definition: int
    verdict: str
    statistic: str
    value: float = np.nan
    low: float = np.nan
    high: float = np.nan
    p_value: float = np.nan
    detail: str = ""


# -- statistics helpers -------------------------------------------------------------------------

def _bootstrap(values: np.ndarray, stat, settings: ProfileSettings, rng) -> np.ndarray:
    """``stat`` of seed-resampled rows of ``values`` (seeds on axis 0), shape (B,)."""
    n = values.shape[0]
    idx = rng.integers(n, size=(settings.n_bootstrap, n))
    with np.errstate(all="ignore"):
        return np.array([stat(values[i]) for i in idx])


def _bounds(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    boot = boot[~np.isnan(boot)]
    if len(boot) == 0:
        return np.nan, np.nan
    with np.errstate(invalid="ignore"):  # infinite resamples give infinite bounds
        return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))


def _one_sided_t(x: np.ndarray, popmean: float, alternative: str) -> float:
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return np.nan
    if np.isinf(x).any():
        inf_side = np.sign(x[np.isinf(x)]).mean()
        return 0.0 if (inf_side > 0) == (alternative == "greater") else 1.0
    if np.ptp(x) == 0:
        hit = x[0] > popmean if alternative == "greater" else x[0] < popmean
        return 0.0 if hit else 1.0
    with warnings.catch_warnings():  # nearly identical values: the test is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_1samp(x, popmean, alternative=alternative).pvalue)


# -- growth models (Def. 3) ---------------------------------------------------------------------

def _box_cox_basis(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """((t+1)^c - 1) / c (log(t+1) at c = 0) for every c, shape (len(c), T)."""
    lx = np.log(t + 1.0)[None, :]
    c = np.asarray(c, dtype=float)[:, None]
    small = np.abs(c) < 1e-8
    return np.where(small, lx, np.expm1(c * lx) / np.where(small, 1.0, c))


def _exp_sat_basis(t: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """1 - exp(-t / tau) for every tau, shape (len(tau), T)."""
    return -np.expm1(-t[None, :] / np.asarray(tau, dtype=float)[:, None])


def _profiled_sse(y: np.ndarray, basis: np.ndarray, b_min: float | None) -> np.ndarray:
    """Least-squares SSE of y ~ a + b g over (a, b) for each row g of ``basis`` (variable
    projection: the models are linear in a and b given the shape parameter), with b >= b_min
    when given (then b = b_min at the boundary).  Shape (K,)."""
    gc = basis - basis.mean(1, keepdims=True)
    yc = y - y.mean()
    gg = (gc**2).sum(1)
    b = np.where(gg > 0, gc @ yc / np.where(gg > 0, gg, 1.0), 0.0)
    if b_min is not None:
        b = np.maximum(b, b_min)
    return ((yc[None, :] - b[:, None] * gc) ** 2).sum(1)


def _best_shape(y, t, basis_fn, low, high, b_min, log_scale=False, n_grid=64):
    """min over the shape parameter in [low, high] of the profiled SSE: a grid, then a bounded
    scalar search around the best grid point.  Returns (SSE, shape)."""
    from scipy.optimize import minimize_scalar

    grid = (np.geomspace(low, high, n_grid) if log_scale else np.linspace(low, high, n_grid))
    sse = _profiled_sse(y, basis_fn(t, grid), b_min)
    k = int(np.argmin(sse))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, n_grid - 1)]
    if hi > lo:
        res = minimize_scalar(lambda v: _profiled_sse(y, basis_fn(t, np.array([v])), b_min)[0],
                              bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
        if res.fun < sse[k]:
            return float(res.fun), float(res.x)
    return float(sse[k]), float(grid[k])


def growth_verdict(curve: np.ndarray) -> tuple[bool, float, float]:
    """Is a mean risk curve better described by unbounded or by saturating growth?

    Fits, by least squares, to r(t), t = 0..T-1:

    * unbounded: r = a + b ((t+1)^c - 1) / c with b >= 0, c in [0, 3] (c = 0: logarithmic,
      c = 1: linear -- the replace law of Dohmatob et al. 2024);
    * saturating: the same power law with c in [-3, -0.3] (approach to a plateau like 1/t -- the
      accumulate law of Gerstgrasser et al. 2024), or r = a + b (1 - exp(-t / tau)) with
      tau <= T / 2, so that the plateau must be visible within the run;

    and compares the best of each kind by BIC (3 parameters each).  Each model is linear in
    (a, b) given its shape parameter (c or tau), so the fit is a one-dimensional search of the
    profiled least-squares error (variable projection; Golub & Pereyra 1973): a 64-point grid,
    refined by a bounded scalar search -- the global optimum over the shape parameter.  The fit is unweighted: the
    late iterations, where divergence shows, have the largest spread over seeds and would be
    discounted by inverse-variance weights.  (Checked on linear regression at 20, 50 and 100
    iterations, Kazdan's MLE Gaussian at 300 and Shumailov's unbiased Gaussian at 100.)

    Returns
    -------
    (unbounded wins, growth exponent c of the unbounded fit, BIC(unbounded) - BIC(saturating))
    """
    T = len(curve)
    t = np.arange(T, dtype=float)
    y = curve / max(np.abs(curve).max(), 1e-300)
    up = _best_shape(y, t, _box_cox_basis, 0.0, 3.0, b_min=0.0)
    sat_pow = _best_shape(y, t, _box_cox_basis, -3.0, -0.3, b_min=None)
    sat_exp = _best_shape(y, t, _exp_sat_basis, 1e-3, max(T / 2, 2e-3), b_min=None,
                          log_scale=True)

    def bic(sse):
        return T * np.log(max(sse, 1e-300) / T) + 3 * np.log(T)

    delta = bic(up[0]) - bic(min(sat_pow[0], sat_exp[0]))
    c = up[1]
    return bool(delta < 0), c, float(delta)


# -- the definitions ----------------------------------------------------------------------------

def _risk_definitions(risk: np.ndarray, settings, rng) -> list[_Verdict]:
    """Definitions 1-3 from the risk matrix (seeds x iterations)."""
    first, last = risk[:, 0], risk[:, -1]
    out = []
    # Def. 1: ratio of mean risks
    ratio = float(np.mean(last) / np.mean(first))
    boot = _bootstrap(risk[:, [0, -1]], lambda r: r[:, 1].mean() / r[:, 0].mean(), settings, rng)
    low, high = _bounds(boot, settings.alpha)
    if np.isinf(ratio):
        low = high = np.inf
    p = float(np.mean(boot <= settings.catastrophic_ratio))
    out.append(_Verdict(1, OCCURS if low > settings.catastrophic_ratio else NOT,
                        "mean risk ratio, last / first iteration", ratio, low, high, p,
                        f"threshold {settings.catastrophic_ratio:g}x"))
    # Def. 2: paired increase
    diff = last - first
    p = _one_sided_t(diff, 0.0, "greater")
    mean = float(np.mean(diff))
    boot = _bootstrap(diff[:, None], lambda d: d.mean(), settings, rng)
    low, high = _bounds(boot, settings.alpha)
    out.append(_Verdict(2, OCCURS if p < settings.alpha else NOT,
                        "mean paired increase of risk, last - first iteration", mean, low, high, p,
                        "one-sided paired t-test"))
    # Def. 3: growth models
    if not np.isfinite(risk).all():
        out.append(_Verdict(3, OCCURS, "risk became infinite", np.inf, detail="diverged"))
        return out
    if risk.shape[1] < 4:
        out.append(_Verdict(3, NA, "growth model", detail="needs at least 4 iterations"))
        return out
    unbounded, c, delta = growth_verdict(risk.mean(0))
    idx = rng.integers(len(risk), size=(settings.n_bootstrap_growth, len(risk)))
    agree = [growth_verdict(risk[i].mean(0))[0] == unbounded for i in idx]
    grows = out[1].verdict == OCCURS
    verdict = OCCURS if (unbounded and grows) else NOT
    out.append(_Verdict(3, verdict, "BIC(unbounded) - BIC(saturating) of the mean risk curve",
                        delta, p_value=1.0 - float(np.mean(agree)),
                        detail=f"unbounded fit exponent c = {c:.3g}; "
                        f"{'unbounded' if unbounded else 'saturating'} growth preferred"))
    return out


def _variance_definition(v: np.ndarray, settings, rng) -> _Verdict:
    with np.errstate(divide="ignore", invalid="ignore"):
        logratio = np.log(v[:, -1] / v[:, 0])

    def geo(x):
        return float(np.exp(np.mean(x)))

    value = geo(logratio)
    boot = _bootstrap(logratio[:, None], lambda x: geo(x), settings, rng)
    low, high = _bounds(boot, settings.alpha)
    p = float(np.mean(boot >= settings.variance_ratio))
    return _Verdict(4, OCCURS if high < settings.variance_ratio else NOT,
                    "geometric-mean variance ratio, last / first iteration", value, low, high, p,
                    f"threshold {settings.variance_ratio:g}")


def _scaling_definition(metric: np.ndarray, n_train: float, n_first: float, scaling: dict,
                        settings, rng) -> _Verdict:
    a, b = float(scaling["a"]), float(scaling["b"])

    def efficiency(x):
        return (a / x.mean() + b) / n_train

    value = efficiency(metric[:, -1])
    boot = _bootstrap(metric[:, -1:], lambda x: efficiency(x[:, 0]), settings, rng)
    low, high = _bounds(boot, settings.alpha)
    ess = value * n_train
    p = float(np.mean(boot >= settings.efficiency))
    return _Verdict(5, OCCURS if high < settings.efficiency else NOT,
                    "relative efficiency ESS / n_train at the last iteration", value, low, high, p,
                    f"ESS = {ess:.4g} real samples for n_train = {n_train:.4g}; ESS / n_real = "
                    f"{ess / n_first:.3g} (Dey & Donoho floor under accumulate: 6/pi^2 = 0.608); "
                    f"reference E[{scaling['metric']}](N) = {a:.4g} / (N - {b:.4g})")


def _tail_definition(tail: np.ndarray, base: np.ndarray, mode: str, settings, rng) -> _Verdict:
    def growth(pair):
        t0, tT, b0, bT = (pair[:, i].mean() for i in range(4))
        if mode == "ratio":
            return (tT / bT) / (t0 / b0) - 1.0
        return ((tT - bT) - (t0 - b0)) / abs(t0 - b0)

    data = np.column_stack([tail[:, 0], tail[:, -1], base[:, 0], base[:, -1]])
    if not np.isfinite(data).all():
        return _Verdict(7, OCCURS, "tail risk became infinite", np.inf, detail=mode)
    value = growth(data)
    boot = _bootstrap(data, growth, settings, rng)
    low, high = _bounds(boot, settings.alpha)
    p = float(np.mean(boot <= settings.tail_margin))
    what = "tail / overall risk" if mode == "ratio" else "tail - overall risk"
    return _Verdict(7, OCCURS if low > settings.tail_margin else NOT,
                    f"relative growth of {what}, last vs first iteration", value, low, high, p,
                    f"margin {settings.tail_margin:g}")


def _mode_definition(coverage: np.ndarray, settings, rng) -> _Verdict:
    """Def. 6: modes present in the real-data fit (iteration 0) that later fits lose."""
    lost = coverage[:, 0] - coverage[:, -1]
    value = float(lost.mean())
    boot = _bootstrap(lost[:, None], lambda v: v.mean(), settings, rng)
    low, high = _bounds(boot, settings.alpha)
    p = _one_sided_t(lost, settings.mode_loss, "greater")
    return _Verdict(6, OCCURS if p < settings.alpha else NOT,
                    "mean share of real modes lost since iteration 0", value, low, high, p,
                    f"coverage {coverage[:, 0].mean():.3g} -> {coverage[:, -1].mean():.3g}; "
                    f"tolerated loss {settings.mode_loss:g}")


def _tail_recall_definition(recall: np.ndarray, settings, rng) -> _Verdict:
    """Def. 7 from a tail recall (tail mass, or share of tail types still produced).  Tail
    mass is a martingale under replace (Wright-Fisher), so the median chain is what shows the
    tail vanishing."""
    def ratio(x):
        first = np.median(x[:, 0])
        return np.median(x[:, 1]) / first if first > 0 else np.nan

    data = recall[:, [0, -1]]
    value = ratio(data)
    boot = _bootstrap(data, ratio, settings, rng)
    low, high = _bounds(boot, settings.alpha)
    p = float(np.mean(boot >= 1 - settings.tail_margin))
    return _Verdict(7, OCCURS if high < 1 - settings.tail_margin else NOT,
                    "median tail recall, last / first iteration", value, low, high, p,
                    f"margin {settings.tail_margin:g}")


def _hallucination_definition(metric: np.ndarray, mode: str, settings, rng) -> _Verdict:
    """Def. 8: the hallucinated share (mass off the real support, or 1 - k-NN precision)
    grows from iteration 0 to the last by more than ``hallucination``."""
    share = metric if mode == "mass" else 1.0 - metric
    growth = share[:, -1] - share[:, 0]
    value = float(growth.mean())
    boot = _bootstrap(growth[:, None], lambda v: v.mean(), settings, rng)
    low, high = _bounds(boot, settings.alpha)
    p = _one_sided_t(growth, settings.hallucination, "greater")
    what = "mass outside the real support" if mode == "mass" else "1 - k-NN precision"
    return _Verdict(8, OCCURS if p < settings.alpha else NOT,
                    f"increase of the hallucinated share ({what}) since iteration 0", value, low,
                    high, p, f"{share[:, 0].mean():.3g} -> {share[:, -1].mean():.3g}; threshold "
                    f"{settings.hallucination:g}")


def _profile_group(group: pd.DataFrame, spec: dict, settings: ProfileSettings, rng) -> list:
    wide = {m: g.pivot(index="seed", columns="iteration", values="value").to_numpy()
            for m, g in group.groupby("metric", observed=True)}
    verdicts: list[_Verdict] = []
    risk_name = spec.get("risk")
    if risk_name in wide:
        verdicts += _risk_definitions(wide[risk_name], settings, rng)
    else:
        verdicts += [_Verdict(d, NA, "population risk", detail="no risk metric") for d in (1, 2, 3)]
    var = spec.get("variance")
    verdicts.append(_variance_definition(wide[var], settings, rng) if var in wide
                    else _Verdict(4, NA, "variance", detail="no variance metric"))
    scaling = spec.get("scaling")
    if scaling and scaling.get("metric") in wide and "n_train" in wide:
        verdicts.append(_scaling_definition(wide[scaling["metric"]], wide["n_train"][:, -1].mean(),
                                            wide["n_train"][:, 0].mean(), scaling, settings, rng))
    else:
        verdicts.append(_Verdict(5, NA, "effective sample size",
                                 detail="no real-data reference scaling curve for this task"))
    modes = spec.get("modes")
    verdicts.append(_mode_definition(wide[modes], settings, rng) if modes in wide
                    else _Verdict(6, NA, "mode coverage", detail="no mode metric"))
    tail, base = spec.get("tail"), spec.get("tail_base")
    if tail in wide and base in wide:
        verdicts.append(_tail_definition(wide[tail], wide[base], spec.get("tail_mode", "ratio"),
                                         settings, rng))
    elif spec.get("tail_recall") in wide:
        verdicts.append(_tail_recall_definition(wide[spec["tail_recall"]], settings, rng))
    else:
        verdicts.append(_Verdict(7, NA, "tail risk", detail="no tail metric"))
    hal = spec.get("hallucination")
    if hal in wide:
        verdicts.append(_hallucination_definition(wide[hal], spec.get("hallucination_mode",
                                                                      "mass"), settings, rng))
    else:
        verdicts.append(_Verdict(8, NA, "hallucinated mass",
                                 detail="no off-support metric (e.g. the truth has full support)"))
    return verdicts


def collapse_profile(results: pd.DataFrame, specs: dict[str, dict] | None = None,
                     settings: ProfileSettings | dict | None = None) -> pd.DataFrame:
    """The collapse profile of a run: one row per (task, paradigm, definition).

    Parameters
    ----------
    results : DataFrame in the results schema (``modelcollapse.load_results``)
    specs : dict task -> profile spec, optional
        Which metric measures what (the manifest's ``profile_specs``; see ``Task.profile``).
        Without it, the risk is the first of ``report.summary.RISK_PREFERENCE`` recorded and the
        other definitions are not applicable.
    settings : ProfileSettings or dict, optional
        Thresholds (see ``ProfileSettings`` for the documented defaults).

    Returns
    -------
    DataFrame with columns task, paradigm, definition (1-8), name, verdict (``occurs``,
    ``does_not_occur``, ``not_applicable``), statistic, value, low, high (one-sided
    ``1 - alpha`` bounds over seeds), p_value, detail, n_seeds, last_iteration.
    """
    from .report.summary import RISK_PREFERENCE

    settings = ProfileSettings.model_validate(settings or {})
    rows = []
    for (task, paradigm), group in results.groupby(["task", "paradigm"], observed=True,
                                                   sort=False):
        spec = dict((specs or {}).get(str(task), {}))
        if "risk" not in spec:
            spec["risk"] = next((m for m in RISK_PREFERENCE if (group.metric == m).any()), None)
        rng = np.random.default_rng(settings.seed)
        for v in _profile_group(group, spec, settings, rng):
            rows.append({"task": str(task), "paradigm": str(paradigm),
                         "definition": v.definition, "name": DEFINITIONS[v.definition],
                         "verdict": v.verdict, "statistic": v.statistic, "value": v.value,
                         "low": v.low, "high": v.high, "p_value": v.p_value, "detail": v.detail,
                         "n_seeds": int(group.seed.nunique()),
                         "last_iteration": int(group.iteration.max())})
    return pd.DataFrame(rows)
