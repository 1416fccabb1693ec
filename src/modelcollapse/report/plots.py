"""Plots: every metric vs model-fitting iteration, mean and 95% CI band per paradigm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import PROVENANCE, info
from ..results.store import atomic_write
from .summary import mean_ci

__all__ = ["plot_task", "plot_run", "plot_provenance"]


def _band(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for it, v in frame.groupby("iteration", observed=True).value:
        m, lo, hi = mean_ci(v.to_numpy())
        rows.append((it, m, lo, hi))
    return pd.DataFrame(rows, columns=["iteration", "mean", "low", "high"])


def plot_task(results: pd.DataFrame, task: str, path: Path,
              overlays: dict[str, dict[str, np.ndarray]] | None = None) -> Path:
    """One PNG for ``task``: a panel per metric (plus the synthetic-to-real ratio).

    ``overlays`` = {metric: {paradigm: expected value per iteration}} are drawn dashed in the
    paradigm's colour (closed-form theory, see ``report.overlays``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = results[results.task == task]
    # the real-data learning curve (reference_<metric>_n<N>, Def. 5) is constant per chain
    metrics = [m for m in data.metric.unique()
               if (m not in PROVENANCE or m == "synthetic_to_real_ratio")
               and not str(m).startswith("reference_")]
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
            expected = (overlays or {}).get(metric, {}).get(str(paradigm))
            if expected is not None:
                ax.plot(np.arange(len(expected)), expected, color=color, ls="--", lw=1.2,
                        label=f"{paradigm}: theory")
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


def plot_run(results: pd.DataFrame, directory: Path, study: dict | None = None) -> list[Path]:
    """A PNG per task under ``directory`` (created), with theory overlays where the resolved
    ``study`` has a closed form; returns the paths."""
    from .overlays import theory_curves

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_iterations = int(results.iteration.max()) + 1
    return [plot_task(results, str(task), directory / f"{task}.png",
                      theory_curves(study or {}, str(task), n_iterations))
            for task in results.task.unique()]


def plot_provenance(results: pd.DataFrame, path: Path) -> Path:
    """Real fraction n_real / n_train of the training set per task and paradigm (the
    synthetic-to-real ratio is (1 - f) / f)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results.task.unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.2), squeeze=False)
    prov = results[results.metric.isin(["n_real", "n_train"])]
    for ax, task in zip(axes[0], tasks):
        sub = prov[prov.task == task].pivot_table(index=["paradigm", "iteration"],
                                                  columns="metric", values="value",
                                                  observed=True, aggfunc="mean")
        # the colours of plot_task: paradigms in order of appearance, C0, C1, ...
        order = list(dict.fromkeys(results.paradigm[results.task == task].astype(str)))
        for k, paradigm in enumerate(order):
            if paradigm not in sub.index.get_level_values(0):
                continue
            frame = sub.xs(paradigm, level=0)
            ax.plot(frame.index, frame["n_real"] / frame["n_train"], color=f"C{k}",
                    label=paradigm)
        ax.set_title(str(task), fontsize=10)
        ax.set_xlabel("model-fitting iteration")
        ax.set_ylabel("real fraction of the training set")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(Path(path), lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return Path(path)
