"""Final-vs-initial summary of a run with 95% confidence intervals over replicate chains."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..profile._stats import Moments, PairStats, contrast_from, mean_ci_from

__all__ = ["mean_ci", "contrast", "final_vs_initial", "collapse_times"]


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval over replicates, shape (n,) -> (mean, low, high).

    Infinite values make the mean infinite and the interval undefined (nan): collapse to an
    infinite loss is reported, not averaged away.
    """
    return mean_ci_from(Moments.of(values), level)


def contrast(first: np.ndarray, last: np.ndarray, metric: str,
             level: float = 0.95) -> tuple[float, float, float, str]:
    """Last vs first iteration of per-chain values, shape (n_seeds,) each: (value, low, high,
    kind) with a two-sided ``level`` interval.  The ratio of means with a delta-method interval
    (``profile._stats.log_ratio_of_means``), or for a log-loss (``metrics.is_log_loss``) the
    mean difference with a paired t interval; ``kind`` says which.  inf - inf (chains collapsed
    at both ends) is NaN and dropped."""
    return contrast_from(PairStats.of(first, last), metric, level)


def final_vs_initial(results: pd.DataFrame, risk_metrics: dict[str, str] | None = None,
                     level: float = 0.95, *,
                     point_risk: dict[int, dict[str, str]] | None = None) -> pd.DataFrame:
    """Per (task, paradigm): the risk metric at iteration 0 and at the last iteration, each as
    mean with a Student-t ``level`` confidence interval over seeds, and their contrast.

    The contrast is the **ratio of means** mean(last) / mean(first) with a delta-method
    interval (``profile._stats.log_ratio_of_means``) -- not the mean of per-chain ratios, which
    chains with a small iteration-0 risk inflate (the Gerstgrasser accumulate mean ratio of
    ratios reads 1.87, above the pi^2/6 = 1.645 bound; the ratio of means 1.62).  For
    log-losses (units in nats) a ratio depends on the data's units, so the contrast is the
    **difference** of means, mean(last - first), with a paired t interval; ``contrast`` says
    which.

    Parameters
    ----------
    results : DataFrame in the results schema
    risk_metrics : dict task -> metric, optional
        Which metric is each task's population risk (or test-set estimate of it); default the
        first of ``profile.core.RISK_PREFERENCE`` the task recorded.
    point_risk : dict point -> (dict task -> metric), optional
        For a sweep store (a ``point`` column): each grid point's risk metrics.

    Returns
    -------
    DataFrame with columns (point and its grid.<key> columns for a sweep) task, paradigm,
    metric, n_seeds, initial, initial_low,
    initial_high, final, final_low, final_high, contrast ("ratio of means" or "difference"),
    ratio, ratio_low, ratio_high (the contrast and its interval), final_iteration.
    """
    rows = []
    risk_metrics = dict(risk_metrics or {})
    from ..profile.core import default_risk
    from ..results.store import units

    for where, task, paradigm, group in units(results):
        risks = (point_risk or {}).get(where["point"], risk_metrics) if where else risk_metrics
        metric = risks.get(task) or default_risk(group.metric.unique())
        if metric is None:
            continue
        g = group[group.metric == metric].pivot(index="seed", columns="iteration", values="value")
        first, last = g[g.columns.min()].to_numpy(), g[g.columns.max()].to_numpy()
        row = {**where, "task": task, "paradigm": paradigm, "metric": metric,
               "n_seeds": len(g),
               "final_iteration": int(g.columns.max())}
        for name, v in (("initial", first), ("final", last)):
            m, lo, hi = mean_ci(v, level)
            row.update({name: m, f"{name}_low": lo, f"{name}_high": hi})
        m, lo, hi, row["contrast"] = contrast(first, last, metric, level)
        row.update({"ratio": m, "ratio_low": lo, "ratio_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def collapse_times(results: pd.DataFrame,
                   absorbing: tuple[str, ...] = ("single_outcome", "zero_variance")) -> pd.DataFrame:
    """First model-fitting iteration at which each chain has collapsed to a point.

    Returns
    -------
    DataFrame with columns task, paradigm, seed, collapse_iteration (NaN if the chain had not
    collapsed by its last iteration -- a censored time) and last_iteration.  The number of
    model fits until total collapse (Schaeffer et al. 2025, Sec. 4, count) is
    ``collapse_iteration + 1``.
    """
    per_fit = results.drop_duplicates(["task", "paradigm", "seed", "iteration"])
    per_fit = per_fit.assign(collapsed=per_fit.status.astype(str).isin(absorbing))
    rows = []
    for (task, paradigm, seed), g in per_fit.groupby(["task", "paradigm", "seed"], observed=True,
                                                     sort=False):
        hit = g.iteration[g.collapsed.to_numpy()]
        rows.append({"task": task, "paradigm": paradigm, "seed": int(seed),
                     "collapse_iteration": float(hit.min()) if len(hit) else np.nan,
                     "last_iteration": int(g.iteration.max())})
    return pd.DataFrame(rows)
