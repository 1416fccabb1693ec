"""Plots: every metric vs model-fitting iteration, mean and 95% CI band per paradigm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import PROVENANCE, info
from ..results.store import atomic_write
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
        for k, (paradigm, frame) in enumerate(sub.groupby("paradigm", observed=True, sort=False)):
            color = f"C{k}"
            finite = frame[np.isfinite(frame.value)]
            band = _band(finite)
            if len(finite) < len(frame):  # e.g. the ratio under replace, or NLL of a collapsed fit
                share = 1 - len(finite) / len(frame)
                ax.plot([], [], color=color, ls=":", label=f"{paradigm}: {share:.0%} of values inf")
            if band.empty:
                continue
            line, = ax.plot(band.iteration, band["mean"], color=color, label=str(paradigm), lw=1.6)
            ax.fill_between(band.iteration, band.low, band.high, color=line.get_color(), alpha=0.2,
                            lw=0)
        meta = info(metric)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("model-fitting iteration")
        ax.set_ylabel(meta.units)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    for ax in axes.ravel()[:len(metrics)]:
        if any(lbl.endswith("inf") for lbl in ax.get_legend_handles_labels()[1]) or ax is axes.flat[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"{task}: mean and 95% CI over seeds", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_run(results: pd.DataFrame, directory: Path) -> list[Path]:
    """A PNG per task under ``directory`` (created); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [plot_task(results, str(task), directory / f"{task}.png")
            for task in results.task.unique()]
