"""Plots: every metric vs model-fitting iteration, mean and 95% CI band per paradigm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import PROVENANCE, info
from .summary import mean_ci

__all__ = ["plot_task", "plot_run"]


def _band(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for it, v in frame.groupby("iteration", observed=True).value:
        m, lo, hi = mean_ci(v.to_numpy())
        rows.append((it, m, lo, hi))
    return pd.DataFrame(rows, columns=["iteration", "mean", "low", "high"])


def plot_task(results: pd.DataFrame, task: str, path: Path) -> Path:
    """One PNG for ``task``: a panel per metric (plus the synthetic-to-real ratio)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = results[results.task == task]
    metrics = [m for m in data.metric.unique()
               if m not in PROVENANCE or m == "synthetic_to_real_ratio"]
    ncol = min(3, len(metrics))
    nrow = int(np.ceil(len(metrics) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics):
        sub = data[data.metric == metric]
        for paradigm, frame in sub.groupby("paradigm", observed=True, sort=False):
            band = _band(frame[np.isfinite(frame.value)])
            if band.empty:
                continue
            line, = ax.plot(band.iteration, band["mean"], label=str(paradigm), lw=1.6)
            ax.fill_between(band.iteration, band.low, band.high, color=line.get_color(), alpha=0.2,
                            lw=0)
        meta = info(metric)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("model-fitting iteration")
        ax.set_ylabel(meta.units)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=8)
    fig.suptitle(f"{task}: mean and 95% CI over seeds", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_run(results: pd.DataFrame, directory: Path) -> list[Path]:
    """A PNG per task under ``directory`` (created); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [plot_task(results, str(task), directory / f"{task}.png")
            for task in results.task.unique()]
