"""Run every check of ``PREDICTIONS``: theory against our engine (or an independent simulation).

    >>> from modelcollapse.theory.verify import run_verify
    >>> table = run_verify(seed=0)      # pandas DataFrame, one row per check, ~10 s
    >>> table.passed.all()

Engine checks share runs: every distinct study is run once per call (``run_study`` with
``seed`` as its root seed).  Independent simulations are seeded with
``SeedSequence([seed, crc32(check name)])``.  Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from .predictions import PREDICTIONS, Prediction

__all__ = ["run_verify", "verify_one", "STATISTICS", "COLUMNS"]

COLUMNS = ["check", "source", "predicted", "simulated", "std_error", "tolerance", "passed"]

Getter = Callable[[str], np.ndarray]  # metric -> values (n_seeds, n_iterations)


def _mean(get: Getter, pred: Prediction) -> tuple[float, float, float]:
    x = get(pred.metric)[:, pred.iteration]
    if not np.isfinite(x).all():
        return math.nan, math.nan, 0.0
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))), 0.0


def _median(get: Getter, pred: Prediction) -> tuple[float, float, float]:
    """Sample median; SE from the distribution-free 95% order-statistic interval
    (ranks N/2 -+ 1.96 sqrt(N)/2), divided by 2 x 1.96."""
    x = np.sort(get(pred.metric)[:, pred.iteration])
    N = len(x)
    half = 1.96 * math.sqrt(N) / 2
    lo, hi = max(int(math.floor(N / 2 - half)), 0), min(int(math.ceil(N / 2 + half)), N - 1)
    return float(np.median(x)), float((x[hi] - x[lo]) / (2 * 1.96)), 0.0


def _fits_to_single_outcome(get: Getter, pred: Prediction) -> tuple[float, float, float]:
    """Per chain: model fits until the first single-outcome model (first t with support_size 1,
    plus 1); chains still alive after the last iteration L - 1 count as L + 1, so the
    statistic estimates E[min(T_WF, L + 1)]."""
    support = get("support_size")
    L = support.shape[1]
    single = support == 1
    fits = np.where(single.any(1), single.argmax(1) + 1, L + 1).astype(float)
    return float(fits.mean()), float(fits.std(ddof=1) / math.sqrt(len(fits))), 0.0


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


def _indicator_stat(hit: np.ndarray, alive: np.ndarray) -> tuple[float, float, float]:
    """Proportion, its SE, and the censoring bound: the fraction of chains not yet absorbed
    bounds |P(event, absorbed by L) - P(event)|."""
    hit = hit.astype(float)
    return float(hit.mean()), float(hit.std(ddof=1) / math.sqrt(len(hit))), float(alive.mean())


def _absorbed_at(i: int):
    def stat(get: Getter, pred: Prediction):
        outcome, alive = _absorbed(get, pred)
        return _indicator_stat(outcome == i, alive)
    return stat


def _lost(i: int):
    def stat(get: Getter, pred: Prediction):
        outcome, alive = _absorbed(get, pred)
        return _indicator_stat((outcome >= 0) & (outcome != i), alive)
    return stat


STATISTICS: dict[str, Callable] = {
    "mean": _mean,
    "median": _median,
    "fits_to_single_outcome": _fits_to_single_outcome,
}
"""Reducers (getter, prediction) -> (estimate, standard error, extra tolerance);
``absorbed_at:<i>`` and ``lost:<i>`` are parsed from the statistic name."""


def _statistic(name: str) -> Callable:
    if name in STATISTICS:
        return STATISTICS[name]
    kind, _, arg = name.partition(":")
    if kind == "absorbed_at":
        return _absorbed_at(int(arg))
    if kind == "lost":
        return _lost(int(arg))
    raise ValueError(f"unknown statistic {name!r}")


class _EngineRuns:
    """Runs each distinct study once and serves (paradigm, metric) tables."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._frames: dict[str, pd.DataFrame] = {}
        self._tables: dict[tuple, np.ndarray] = {}

    def getter(self, study: dict, paradigm: str) -> Getter:
        from ..config import Study
        from ..engine import run_study

        key = json.dumps(study, sort_keys=True)
        if key not in self._frames:
            spec = Study.model_validate(dict(study, seed=self.seed))
            self._frames[key] = run_study(spec)
        df = self._frames[key]

        def get(metric: str) -> np.ndarray:
            tkey = (key, paradigm, metric)
            if tkey not in self._tables:
                sub = df[(df.paradigm == paradigm) & (df.metric == metric)]
                if sub.empty:
                    raise KeyError(f"no {metric!r} for paradigm {paradigm!r}")
                wide = sub.pivot(index="seed", columns="iteration", values="value")
                self._tables[tkey] = wide.sort_index(axis=1).to_numpy()
            return self._tables[tkey]
        return get


def verify_one(pred: Prediction, seed: int = 0, runs: _EngineRuns | None = None) -> dict:
    """Run one check; returns a row with the ``COLUMNS`` of ``run_verify``."""
    if pred.study is not None:
        runs = runs or _EngineRuns(seed)
        est, se, extra = _statistic(pred.statistic)(runs.getter(pred.study, pred.paradigm), pred)
    else:
        ss = np.random.SeedSequence([int(seed), zlib.crc32(pred.name.encode())])
        est, se = pred.simulate(ss)
        extra = 0.0
    tol = pred.tolerance(se, extra) if np.isfinite(se) else math.nan
    return {"check": pred.name, "source": pred.source, "predicted": float(pred.predicted),
            "simulated": est, "std_error": se, "tolerance": tol,
            "passed": pred.passes(est, tol) if np.isfinite(tol) else False}


def run_verify(seed: int = 0, predictions: Iterable[Prediction] | None = None,
               on_check: Callable[[dict], None] | None = None) -> pd.DataFrame:
    """Run every check of ``PREDICTIONS`` (or ``predictions``) and tabulate the results.

    Parameters
    ----------
    seed : int
        Root seed of the engine studies and of the independent simulations.
    predictions : iterable of Prediction, optional
        Default: ``modelcollapse.theory.PREDICTIONS``.
    on_check : callable, optional
        Called with each finished row (progress output).

    Returns
    -------
    pandas.DataFrame with columns ``check, source, predicted, simulated, std_error, tolerance,
    passed``; ``passed`` applies the check's tolerance rule (|simulated - predicted| <=
    tolerance, one-sided for bounds).  ``attrs["seconds"]`` holds the wall time per check
    (engine runs are charged to the first check that needs them) and ``attrs["seed"]`` the seed.
    """
    preds = list(PREDICTIONS if predictions is None else predictions)
    names = [p.name for p in preds]
    if len(set(names)) != len(names):
        raise ValueError("prediction names must be unique")
    runs = _EngineRuns(seed)
    rows, seconds = [], {}
    for pred in preds:
        start = time.perf_counter()
        row = verify_one(pred, seed, runs)
        seconds[pred.name] = time.perf_counter() - start
        rows.append(row)
        if on_check is not None:
            on_check(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["seconds"] = seconds
    table.attrs["seed"] = int(seed)
    return table
