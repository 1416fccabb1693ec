"""Run every check of ``PREDICTIONS``: theory against our engine (or an independent simulation).

    >>> from modelcollapse.checks import run_verify
    >>> table = run_verify(seed=0)      # pandas DataFrame, one row per check, ~20 s
    >>> table.passed.all()

The test of one check
---------------------
A check compares k predicted values p_i (a curve at early, middle and late iterations, or one
whole-chain value) with estimates e_i computed from the same N replicate chains (the same seeds
at every iteration, so the e_i are correlated).  With s_i the bootstrap standard error of e_i and
b_i >= 0 the check's allowance for a known model error (``rel_tol`` |p_i|, plus the censoring
bound of absorption checks; 0 for exact formulas), the statistic is the simultaneous

    Z = max_i max(|e_i - p_i| - b_i, 0) / s_i

(one-sided for bounds).  Its null distribution is calibrated by a nonparametric bootstrap over
**whole chains** (Efron & Tibshirani 1993, Ch. 6 and 16; the max-statistic calibration of
simultaneous bands, e.g. Westfall & Young 1993, resampling-based multiple testing): B multinomial
resamples of the N chains give e*_i, and

    Z*_b = max_i |e*_i - e_i| / s_i,     p = (1 + #{b: Z*_b >= Z}) / (B + 1)

(signed deviations for one-sided checks), so the correlation across iterations and the
skewness of heavy-tailed values (trace ratios, squared errors) are taken from the data rather
than from a normal approximation.  A check passes when p >= ``level``; ``run_verify`` uses
level = ``FAMILY_LEVEL`` / (number of checks) (Bonferroni), so a run of correct formulas fails
with probability ~1% for any seed.  B is at least 2 / level, so that a p-value below the level
can be resolved.  Measured calibration (1500 data sets each, exact formulas): rejection rates
1.1% / 5.1% (weighting curve) and 1.3% / 5.7% (location MSE ratio) at nominal 1% / 5%.
(``scipy.stats.bootstrap`` gives intervals for one statistic at a time; the shared resamples
and the max over iterations are what the simultaneous test needs, hence the numpy here.)

Seeds: engine checks share runs: every distinct study is run once per call (``run_study`` with
``seed`` as its root seed).  Independent simulations are seeded with
``SeedSequence([seed, crc32(check name)])`` and the bootstrap with
``SeedSequence([seed, crc32("bootstrap"), N, B])``.  Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Study
from ..engine import run_study
from .predictions import PREDICTIONS, Prediction

__all__ = ["run_verify", "verify_one", "max_z_test", "multinomial_counts", "resampled_means",
           "default_level", "Sample", "STATISTICS", "COLUMNS", "FAMILY_LEVEL", "N_BOOTSTRAP"]

COLUMNS = ["check", "source", "iterations", "predicted", "simulated", "std_error", "tolerance",
           "max_z", "p_value", "level", "passed"]

FAMILY_LEVEL = 0.01  #: family-wise false-failure rate of a whole ``run_verify`` (Bonferroni)
N_BOOTSTRAP = 9999   #: minimum number of bootstrap resamples of the chains

Getter = Callable[[str], np.ndarray]  # metric -> values (n_chains, n_iterations)


@dataclass
class Sample:
    """What one check compares, before the bootstrap.

    Attributes
    ----------
    values : ndarray, shape (N, q)
        Per-chain values; the bootstrap resamples rows (whole chains).
    estimate : callable
        (B, q) column means -> (B, k) estimates (vectorised over rows).
    target : ndarray, shape (k,)
        Predicted value of each estimate.
    band : ndarray, shape (k,)
        Allowance for known model error (>= 0).
    side : ndarray, shape (k,)
        0: two-sided; +1: the estimate must not exceed target + band (the prediction is an
        upper bound); -1: must not fall below target - band.
    report : int
        Index of the estimate shown in the table.
    shown : (float, float, float) or None
        (simulated, std_error, tolerance) shown instead of estimate ``report``, its bootstrap
        SE and band (the median check tests CDF values but shows the sample median).
    """

    values: np.ndarray
    estimate: Callable[[np.ndarray], np.ndarray]
    target: np.ndarray
    band: np.ndarray
    side: np.ndarray
    report: int = -1
    shown: tuple[float, float, float] | None = None


def _identity(means: np.ndarray) -> np.ndarray:
    return means


def _side(pred: Prediction) -> int:
    return {"equal": 0, "at_most": 1, "at_least": -1}[pred.comparison]


def _curve_sample(values: np.ndarray, pred: Prediction, estimate=_identity,
                  extra: float = 0.0) -> Sample:
    _, target = pred.predicted_values()
    return Sample(values, estimate, target, pred.rel_tol * np.abs(target) + extra,
                  np.full(len(target), _side(pred)))


def _columns(get: Getter, pred: Prediction) -> np.ndarray:
    its, _ = pred.predicted_values()
    table = get(pred.metric)
    if its.max() >= table.shape[1]:
        raise ValueError(f"{pred.name}: iteration {its.max()} not simulated")
    return table[:, its]


def _mean(get: Getter, pred: Prediction) -> Sample:
    """Mean over chains at each compared iteration."""
    return _curve_sample(_columns(get, pred), pred)


def _ratio_to_first(get: Getter, pred: Prediction) -> Sample:
    """mean(value at t) / mean(value at iteration 0) at each compared iteration (t >= 1)."""
    cols = _columns(get, pred)
    k = cols.shape[1]
    values = np.column_stack([cols, get(pred.metric)[:, 0]])
    return _curve_sample(values, pred, lambda m: m[:, :k] / m[:, k:])


def _median(get: Getter, pred: Prediction) -> Sample:
    """Sample median at each compared iteration, tested through the empirical CDF: the median
    lies in [lo, hi] = p (1 -+ rel_tol) iff F(hi) >= 1/2 >= F(lo) (a sign test per iteration;
    the bootstrap gives the joint law over iterations).  Shows the sample median at the
    reported iteration with the distribution-free SE of the 95% order-statistic interval (ranks
    N/2 -+ 1.96 sqrt(N)/2) divided by 2 x 1.96."""
    cols = _columns(get, pred)
    _, p = pred.predicted_values()
    k = len(p)
    lo, hi = p * (1 - pred.rel_tol), p * (1 + pred.rel_tol)
    values = np.column_stack([cols <= hi, cols < lo]).astype(float)
    x = np.sort(cols[:, -1])
    N = len(x)
    half = 1.96 * math.sqrt(N) / 2
    i_lo, i_hi = max(int(math.floor(N / 2 - half)), 0), min(int(math.ceil(N / 2 + half)), N - 1)
    shown = (float(np.median(x)), float((x[i_hi] - x[i_lo]) / (2 * 1.96)),
             float(pred.rel_tol * abs(p[-1])))
    return Sample(values, _identity, np.full(2 * k, 0.5), np.zeros(2 * k),
                  np.r_[np.full(k, -1), np.full(k, 1)], report=k - 1, shown=shown)


def _fits_to_single_outcome(get: Getter, pred: Prediction) -> Sample:
    """Per chain: model fits until the first single-outcome model (first t with support_size 1,
    plus 1); chains still alive after the last iteration L - 1 count as L + 1, so the
    statistic estimates E[min(T_WF, L + 1)]."""
    support = get("support_size")
    L = support.shape[1]
    single = support == 1
    fits = np.where(single.any(1), single.argmax(1) + 1, L + 1).astype(float)
    return _curve_sample(fits[:, None], pred)


def _probabilities(pred: Prediction) -> np.ndarray:
    params = pred.study["task_params"]
    if params.get("probabilities") is not None:
        return np.asarray(params["probabilities"], dtype=float)
    K = params.get("n_outcomes") or 10
    return np.full(K, 1.0 / K)


def _absorbed(get: Getter, pred: Prediction) -> tuple[np.ndarray, np.ndarray]:
    """(absorbing outcome per chain or -1, chain not yet absorbed), from the last iteration: a
    single-outcome model on outcome i has tv_distance 1 - p0[i] exactly."""
    p0 = _probabilities(pred)
    single = get("support_size")[:, -1] == 1
    tv = get("tv_distance")[:, -1]
    match = np.abs(tv[:, None] - (1 - p0)[None, :]) < 1e-9
    if (match.sum(1)[single] != 1).any():
        raise ValueError("absorbing outcome is ambiguous: p0 entries must be distinct")
    outcome = np.where(single, match.argmax(1), -1)
    return outcome, ~single


def _absorbed_at(i: int):
    def stat(get: Getter, pred: Prediction) -> Sample:
        """Proportion of chains absorbed at outcome i; the fraction of chains not yet absorbed
        bounds |P(absorbed at i by L) - P(absorbed at i)| and is added to the allowance."""
        outcome, alive = _absorbed(get, pred)
        return _curve_sample((outcome == i).astype(float)[:, None], pred, extra=alive.mean())
    return stat


def _lost(i: int):
    def stat(get: Getter, pred: Prediction) -> Sample:
        """Proportion of chains absorbed at an outcome other than i (+ censoring bound)."""
        outcome, alive = _absorbed(get, pred)
        hit = ((outcome >= 0) & (outcome != i)).astype(float)
        return _curve_sample(hit[:, None], pred, extra=alive.mean())
    return stat


STATISTICS: dict[str, Callable[[Getter, Prediction], Sample]] = {
    "mean": _mean,
    "ratio_to_first": _ratio_to_first,
    "median": _median,
    "fits_to_single_outcome": _fits_to_single_outcome,
}
"""Reducers (getter, prediction) -> ``Sample``; ``absorbed_at:<i>`` and ``lost:<i>`` are parsed
from the statistic name."""


def _statistic(name: str) -> Callable[[Getter, Prediction], Sample]:
    if name in STATISTICS:
        return STATISTICS[name]
    kind, _, arg = name.partition(":")
    if kind == "absorbed_at":
        return _absorbed_at(int(arg))
    if kind == "lost":
        return _lost(int(arg))
    raise ValueError(f"unknown statistic {name!r}")


# -- the bootstrap and the test -----------------------------------------------------------------

def multinomial_counts(n_chains: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resampling counts: row b counts how often each of the N chains is drawn in
    resample b (N draws with replacement), shape (n_boot, n_chains), float32 (exact integers;
    kept as float32 for the matrix products of ``resampled_means``).
    """
    counts = np.empty((n_boot, n_chains), dtype=np.float32)
    chunk = max(1, 4_000_000 // n_chains)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, n_chains, size=(rows, n_chains))
        draws += (np.arange(rows) * n_chains)[:, None]
        block = np.bincount(draws.ravel(), minlength=rows * n_chains)
        counts[start:start + rows] = block.reshape(rows, n_chains)
    return counts


def resampled_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Column means of ``values`` (N, q) in each bootstrap resample of its rows: (B, q).

    ``counts`` (B, N) are resampling counts (``multinomial_counts``).  Computed as mean +
    counts @ (values - mean) / N in float32 (the centring keeps float32 accurate to ~1e-7 of
    the spread).
    """
    from threadpoolctl import threadpool_limits

    values = np.asarray(values, dtype=float)
    mean = values.mean(0)
    centred = (values - mean).astype(np.float32)
    with threadpool_limits(limits=1, user_api="blas"):  # one BLAS thread: reproducible sums
        sums = counts @ centred
    return mean + sums.astype(float) / values.shape[0]


def max_z_test(estimate: np.ndarray, boot: np.ndarray, target: np.ndarray, band: np.ndarray,
               side: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Simultaneous max-|z| test of k estimates against their targets, bootstrap-calibrated.

    Parameters
    ----------
    estimate : ndarray, shape (k,)
        Estimates from the original sample.
    boot : ndarray, shape (B, k)
        The same estimates in B bootstrap resamples of the chains.
    target, band : ndarray, shape (k,)
        Predicted values and allowances for known model error (>= 0).
    side : ndarray, shape (k,)
        0 two-sided, +1 upper bound only (estimate must not exceed target + band), -1 lower.

    Returns
    -------
    (max_z, p_value, std_error)
        max_z = max_i excess_i / s_i with excess the distance beyond target -+ band in the
        tested direction(s) and s_i the bootstrap SD; p_value = (1 + #{Z*_b >= max_z}) /
        (B + 1) with Z*_b = max_i of (e*_bi - e_i) / s_i taken in the tested direction(s) (1
        when max_z = 0; 0 when an estimate is not finite).  std_error = s, shape (k,).

    Notes
    -----
    Centring the bootstrap at the estimate (not at the target) calibrates the statistic at the
    boundary of the null region, so the test is conservative inside the allowance band.
    References: Efron & Tibshirani 1993, An Introduction to the Bootstrap, Ch. 16 (bootstrap
    hypothesis tests); Westfall & Young 1993, Resampling-Based Multiple Testing (max-T).
    """
    estimate, target = np.asarray(estimate, float), np.asarray(target, float)
    band, side = np.asarray(band, float), np.asarray(side)
    if not (np.isfinite(estimate).all() and np.isfinite(boot).all()):
        return math.inf, 0.0, np.full(len(estimate), math.nan)
    se = boot.std(0, ddof=1)
    dev = estimate - target
    excess = np.where(side == 0, np.abs(dev), side * dev) - band
    excess = np.maximum(excess, 0.0)
    scale = np.where(se > 0, se, 1.0)
    z = np.where(se > 0, excess / scale, np.where(excess > 0, math.inf, 0.0))
    stat = float(z.max())
    if stat == 0.0:
        return 0.0, 1.0, se
    d = (boot - estimate) / scale
    dstar = np.where(side == 0, np.abs(d), side * d).max(1)
    p = (1.0 + np.count_nonzero(dstar >= stat)) / (len(dstar) + 1.0)
    return stat, float(p), se


def _wide_tables(df: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Long engine results -> {(paradigm, metric): values (n_seeds, n_iterations)}, rows in
    seed order, columns in iteration order, NaN where a value is missing."""
    out = {}
    for (paradigm, metric), sub in df.groupby(["paradigm", "metric"], sort=False,
                                              observed=True):
        seeds, row = np.unique(sub["seed"].to_numpy(), return_inverse=True)
        its, col = np.unique(sub["iteration"].to_numpy(), return_inverse=True)
        table = np.full((len(seeds), len(its)), np.nan)
        table[row, col] = sub["value"].to_numpy(dtype=float)
        out[(str(paradigm), str(metric))] = table
    return out


class _EngineRuns:
    """Runs each distinct study once and serves (paradigm, metric) tables; caches the bootstrap
    resampling counts per (number of chains, resamples)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._studies: set[str] = set()
        self._tables: dict[tuple, np.ndarray] = {}
        self._counts: dict[tuple[int, int], np.ndarray] = {}

    def getter(self, study: dict, paradigm: str) -> Getter:
        key = json.dumps(study, sort_keys=True)
        if key not in self._studies:
            spec = Study.model_validate(dict(study, seed=self.seed))
            self._studies.add(key)
            self._tables.update({(key, *k): v for k, v in _wide_tables(run_study(spec)).items()})

        def get(metric: str) -> np.ndarray:
            if (key, paradigm, metric) not in self._tables:
                raise KeyError(f"no {metric!r} for paradigm {paradigm!r}")
            return self._tables[(key, paradigm, metric)]
        return get

    def counts(self, n_chains: int, n_boot: int) -> np.ndarray:
        key = (int(n_chains), int(n_boot))
        if key not in self._counts:
            ss = np.random.SeedSequence([self.seed, zlib.crc32(b"bootstrap"), *key])
            self._counts[key] = multinomial_counts(*key, np.random.default_rng(ss))
        return self._counts[key]


def default_level(n_checks: int | None = None) -> float:
    """Per-check level: ``FAMILY_LEVEL`` / n_checks (Bonferroni; default: len(PREDICTIONS))."""
    return FAMILY_LEVEL / (len(PREDICTIONS) if n_checks is None else n_checks)


def _n_boot(level: float) -> int:
    return max(N_BOOTSTRAP, int(math.ceil(2.0 / level)) - 1)


def verify_one(pred: Prediction, seed: int = 0, runs: _EngineRuns | None = None,
               level: float | None = None) -> dict:
    """Run one check; returns a row with the ``COLUMNS`` of ``run_verify``.

    Parameters
    ----------
    pred : Prediction
    seed : int
        Root seed (engine study, independent simulation, bootstrap).
    runs : optional
        Shared cache of engine runs and bootstrap counts (``run_verify`` passes one).
    level : float, optional
        Pass when p_value >= level; default ``default_level()`` = 0.01 / len(PREDICTIONS).

    Raises
    ------
    ValueError
        ``level`` not in (0, 1), unknown statistic, or iterations not simulated.
    """
    level = default_level() if level is None else float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    runs = runs or _EngineRuns(seed)
    if pred.study is not None:
        get = runs.getter(pred.study, pred.paradigm)
    else:
        ss = np.random.SeedSequence([int(seed), zlib.crc32(pred.name.encode())])
        simulated = np.asarray(pred.simulate(ss), dtype=float)
        get = lambda metric: simulated  # noqa: E731
    sample = _statistic(pred.statistic)(get, pred)
    values = np.asarray(sample.values, dtype=float)
    n_boot = _n_boot(level)
    estimate = sample.estimate(values.mean(0)[None, :])[0]
    if np.isfinite(values).all():
        boot = sample.estimate(resampled_means(values, runs.counts(len(values), n_boot)))
    else:
        boot = np.full((2, len(estimate)), math.nan)
    stat, p, se = max_z_test(estimate, boot, sample.target, sample.band, sample.side)
    r = sample.report
    its, _ = pred.predicted_values()
    simulated, std_error, tolerance = sample.shown or (float(estimate[r]), float(se[r]),
                                                       float(sample.band[r]))
    return {"check": pred.name, "source": pred.source,
            "iterations": "whole chain" if pred.curve is None else ",".join(map(str, its)),
            "predicted": float(pred.predicted_values()[1][-1]), "simulated": simulated,
            "std_error": std_error, "tolerance": tolerance, "max_z": stat,
            "p_value": p, "level": level, "passed": bool(p >= level)}


def run_verify(seed: int = 0, predictions: Iterable[Prediction] | None = None,
               on_check: Callable[[dict], None] | None = None,
               family_level: float = FAMILY_LEVEL) -> pd.DataFrame:
    """Run every check of ``PREDICTIONS`` (or ``predictions``) and tabulate the results.

    Parameters
    ----------
    seed : int
        Root seed of the engine studies, the independent simulations and the bootstrap.
    predictions : iterable of Prediction, optional
        Default: ``modelcollapse.checks.PREDICTIONS``.
    on_check : callable, optional
        Called with each finished row (progress output).
    family_level : float
        Family-wise false-failure rate; each check is run at level family_level / (number of
        checks) (Bonferroni).

    Returns
    -------
    pandas.DataFrame with columns ``COLUMNS``: ``iterations`` compared; ``predicted``,
    ``simulated`` and ``std_error`` (bootstrap SD) at the reported (last) iteration;
    ``tolerance``: the allowance for known model error there (0 for exact formulas); ``max_z``:
    the simultaneous statistic; ``p_value`` (bootstrap over whole chains, see the module
    docstring); ``level``; ``passed`` = p_value >= level.  ``attrs["seconds"]`` holds the wall
    time per check (engine runs and bootstrap draws are charged to the first check that needs
    them), ``attrs["seed"]`` the seed and ``attrs["family_level"]`` the family level.

    Raises
    ------
    ValueError
        Duplicate check names or a family level not in (0, 1).
    """
    preds = list(PREDICTIONS if predictions is None else predictions)
    names = [p.name for p in preds]
    if len(set(names)) != len(names):
        raise ValueError("prediction names must be unique")
    if not 0.0 < family_level < 1.0:
        raise ValueError(f"family_level must be in (0, 1), got {family_level}")
    level = family_level / max(len(preds), 1)
    runs = _EngineRuns(seed)
    rows, seconds = [], {}
    for pred in preds:
        start = time.perf_counter()
        row = verify_one(pred, seed, runs, level=level)
        seconds[pred.name] = time.perf_counter() - start
        rows.append(row)
        if on_check is not None:
            on_check(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["seconds"] = seconds
    table.attrs["seed"] = int(seed)
    table.attrs["family_level"] = float(family_level)
    return table
