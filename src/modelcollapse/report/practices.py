"""What each paradigm and curation policy changes: risk and tail effects with confidence
intervals, paired against a baseline paradigm, and tail recall against the synthetic share.

Replicate r of every paradigm starts from the same real data (its streams depend on the seed
and the replicate only), so differences between paradigms are paired by seed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .summary import contrast, mean_ci

__all__ = ["practice_effects", "plot_tail_vs_synthetic_share", "tail_metric"]


def tail_metric(results: pd.DataFrame, spec: dict) -> tuple[str | None, bool]:
    """The task's tail metric and whether higher is better: its tail recall (Def. 7) if
    recorded, else its tail risk (``spec["tail"]``)."""
    recorded = set(results.metric.astype(str))
    if spec.get("tail_recall") in recorded:
        return spec["tail_recall"], True
    if spec.get("tail") in recorded:
        return spec["tail"], False
    return None, False


def _wide(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    return rows[rows.metric == metric].pivot(index="seed", columns="iteration", values="value")


def practice_effects(results: pd.DataFrame, specs: dict[str, dict],
                     baseline: str = "accumulate", level: float = 0.95) -> pd.DataFrame:
    """One row per (task, paradigm): the last iteration's risk and tail metric relative to
    iteration 0, the synthetic share of the last training set, and the paired difference of the
    last risk from the ``baseline`` paradigm's (when the run has it), each with a ``level``
    confidence interval over seeds.

    Returns
    -------
    ``risk_ratio`` is the ratio of means last / first (delta-method interval), or for a
    log-loss the difference last - first (``risk_contrast`` says which); ``tail_ratio`` the
    ratio of means of the tail metric.

    DataFrame with columns task, paradigm, risk_metric, risk_contrast, risk_ratio(_low, _high),
    risk_vs_baseline(_low, _high), tail_metric, tail_higher_is_better, tail_ratio(_low, _high),
    synthetic_share, n_seeds.
    """
    rows = []
    for task, group in results.groupby("task", observed=True, sort=False):
        spec = specs.get(str(task), {})
        risk = spec.get("risk")
        tail, higher = tail_metric(group, spec)
        base = group[group.paradigm == baseline]
        base_final = (_wide(base, risk).iloc[:, -1] if risk and len(base) else None)
        for paradigm, rows_p in group.groupby("paradigm", observed=True, sort=False):
            row = {"task": task, "paradigm": paradigm, "risk_metric": risk, "tail_metric": tail,
                   "tail_higher_is_better": higher}
            if risk and (rows_p.metric == risk).any():
                w = _wide(rows_p, risk)
                row["n_seeds"] = len(w)
                m, lo, hi, row["risk_contrast"] = contrast(w.iloc[:, 0], w.iloc[:, -1], risk,
                                                           level)
                row.update(risk_ratio=m, risk_ratio_low=lo, risk_ratio_high=hi)
                if base_final is not None:
                    diff = (w.iloc[:, -1] - base_final.reindex(w.index)).to_numpy()
                    m, lo, hi = mean_ci(diff, level)
                    row.update(risk_vs_baseline=m, risk_vs_baseline_low=lo,
                               risk_vs_baseline_high=hi)
            if tail and (rows_p.metric == tail).any():
                w = _wide(rows_p, tail)
                m, lo, hi, _ = contrast(w.iloc[:, 0], w.iloc[:, -1], tail, level)
                row.update(tail_ratio=m, tail_ratio_low=lo, tail_ratio_high=hi)
            n_syn, n_train = _wide(rows_p, "n_synthetic"), _wide(rows_p, "n_train")
            if len(n_syn):
                row["synthetic_share"] = float((n_syn.iloc[:, -1] / n_train.iloc[:, -1]).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def plot_tail_vs_synthetic_share(results: pd.DataFrame, specs: dict[str, dict],
                                 path: Path) -> Path | None:
    """Per task, the tail metric (mean over seeds) against the synthetic share of the training
    set, one line per paradigm with a marker per model-fitting iteration; None if no task has a
    tail metric.  A grid of at most 3 panels per row, one legend below it."""
    tasks = [(t, *tail_metric(results[results.task == t], specs.get(str(t), {})))
             for t in results.task.unique()]
    tasks = [t for t in tasks if t[1] is not None]
    if not tasks:
        return None
    from .plots import _laid_out, grid_shape, paradigm_color, save_figure

    nrow, ncol = grid_shape(len(tasks))
    fig, axes = _laid_out(4.6 * ncol, 3.6 * nrow + 0.4, nrow, ncol)
    for ax, (task, metric, higher) in zip(axes.flat, tasks):
        sub = results[(results.task == task)
                      & results.metric.isin([metric, "n_synthetic", "n_train"])]
        means = sub.pivot_table(index=["paradigm", "iteration"], columns="metric",
                                values="value", aggfunc="mean", observed=True)
        order = list(dict.fromkeys(results.paradigm[results.task == task].astype(str)))
        for k, paradigm in enumerate(order):
            if paradigm not in means.index.get_level_values(0):
                continue
            frame = means.xs(paradigm, level=0)
            share = frame["n_synthetic"] / frame["n_train"]
            ax.plot(share, frame[metric], marker="o", ms=3, color=paradigm_color(k, len(order)),
                    label=paradigm)
        ax.set_title(str(task), fontsize=10)
        ax.set_xlabel("synthetic share of the training set")
        ax.set_ylabel(f"{metric} ({'higher' if higher else 'lower'} is better)")
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes.flat[:len(tasks)]),
                          key=lambda h: len(h[1]))
    fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)),
               fontsize=7)
    return save_figure(fig, Path(path))
