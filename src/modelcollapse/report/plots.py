"""Plots: every metric vs model-fitting iteration, mean and 95% CI band per paradigm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import PROVENANCE, info
from ..results.store import atomic_write
from .summary import mean_ci

__all__ = ["plot_task", "plot_run", "plot_provenance", "plot_final_risk", "plot_verdicts",
           "wants_log", "integer_iterations", "grid_shape"]

#: A panel's y axis is logarithmic when its positive plotted values span more than this ratio.
LOG_RATIO = 100.0


def wants_log(curves) -> bool:
    """Whether a panel whose curves are ``curves`` (iterables of plotted values: means, theory)
    reads better on a log y axis: every finite value is > 0 and max / min > ``LOG_RATIO``."""
    values = np.concatenate([np.asarray(c, dtype=float).ravel() for c in curves] or [[]])
    values = values[np.isfinite(values)]
    if not len(values) or (values <= 0).any():
        return False
    return bool(values.max() / values.min() > LOG_RATIO)


def paradigm_color(k: int, n: int):
    """The colour of the k-th of ``n`` paradigms (in order of appearance): matplotlib's ten
    default colours C0..C9 up to 10 paradigms, tab20 beyond (no colour repeats up to 20)."""
    if n <= 10:
        return f"C{k}"
    import matplotlib

    return matplotlib.colormaps["tab20"](k % 20)


def integer_iterations(ax) -> None:
    """Ticks of the x axis (model-fitting iterations) at whole numbers only."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def grid_shape(n: int, ncol: int = 3) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` panels, at most ``ncol`` per row."""
    ncol = max(1, min(ncol, n))
    return -(-n // ncol), ncol


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
    nrow, ncol = grid_shape(len(metrics))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow + 0.8), squeeze=False,
                             layout="constrained")
    # one colour per paradigm for the whole figure (in order of appearance), one legend below
    order = list(dict.fromkeys(data.paradigm.astype(str)))
    colors = {p: paradigm_color(k, len(order)) for k, p in enumerate(order)}
    any_theory = False
    for ax, metric in zip(axes.ravel(), metrics):
        sub = data[data.metric == metric]
        drawn, infinite = [], []  # the plotted means and theory curves: linear or log axis
        for paradigm, frame in sub.groupby("paradigm", observed=True, sort=False):
            color = colors[str(paradigm)]
            finite = frame[np.isfinite(frame.value)]
            band = _band(finite)
            if len(finite) < len(frame):  # e.g. the ratio under replace, or NLL of a collapsed fit
                infinite.append(f"{paradigm} {1 - len(finite) / len(frame):.0%}")
            if band.empty:
                continue
            line, = ax.plot(band.iteration, band["mean"], color=color, label=str(paradigm), lw=1.6,
                            marker="o" if len(band) == 1 else None, ms=4)
            drawn.append(band["mean"].to_numpy())
            expected = (overlays or {}).get(metric, {}).get(str(paradigm))
            if expected is not None:
                drawn.append(expected)
                any_theory = True
                ax.plot(np.arange(len(expected)), expected, color=color, ls="--", lw=1.2,
                        label=f"{paradigm}: theory")
            ax.fill_between(band.iteration, band.low, band.high, color=line.get_color(), alpha=0.2,
                            lw=0)
        meta = info(metric)
        log = wants_log(drawn)
        if log:  # curves orders of magnitude apart: a linear axis would flatten the small ones
            ax.set_yscale("log")
        title = f"{metric} (log scale)" if log else str(metric)
        if infinite:  # named, not drawn: the share of infinite values per paradigm
            title += "\n" + _wrap("inf values not drawn: " + (
                infinite[0] if len(infinite) == 1 else f"{len(infinite)} paradigms"), 60)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("model-fitting iteration")
        ax.set_ylabel(meta.units)
        integer_iterations(ax)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=c, lw=1.6, label=p) for p, c in colors.items()]
    if any_theory:
        handles.append(plt.Line2D([], [], color="#444", ls="--", lw=1.2,
                                  label="closed-form theory (dashed, paradigm's colour)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)),
               fontsize=8)
    fig.suptitle(f"{task}: mean and 95% CI over seeds", fontsize=11)
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_run(results: pd.DataFrame, directory: Path, study: dict | None = None) -> list[Path]:
    """A PNG per task under ``directory`` (created), with theory overlays where the resolved
    ``study`` has a closed form; returns the paths.

    Raises
    ------
    ValueError
        A task label that would name a file outside ``directory`` (labels are checked when a
        study is validated, ``config.name_problem``; this guards results from elsewhere).
    """
    from .overlays import theory_curves

    directory = Path(directory)
    inside = directory.resolve()
    for task in results.task.unique():
        path = (directory / f"{task}.png").resolve()
        if path.parent != inside or "/" in str(task) or "\\" in str(task):
            raise ValueError(f"task label {str(task)!r} would write outside {directory}; a "
                             "label may use letters, digits and . _ - + @ = only")
    directory.mkdir(parents=True, exist_ok=True)
    n_iterations = int(results.iteration.max()) + 1
    return [plot_task(results, str(task), directory / f"{task}.png",
                      theory_curves(study or {}, str(task), n_iterations))
            for task in results.task.unique()]


def _shared_legend(fig, axes, most: int) -> None:
    """A legend in each panel with at most ``most`` lines, else one legend below the grid."""
    panels = [ax for ax in axes.flat if ax.get_visible() and ax.get_lines()]
    if all(len(ax.get_lines()) <= most for ax in panels):
        for ax in panels:
            ax.legend(fontsize=7)
        return
    handles, labels = max((ax.get_legend_handles_labels() for ax in panels),
                          key=lambda h: len(h[1]))
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)),
               fontsize=7)


def plot_provenance(results: pd.DataFrame, path: Path) -> Path:
    """Real fraction n_real / n_train of the training set per task and paradigm (the
    synthetic-to-real ratio is (1 - f) / f)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results.task.unique())
    nrow, ncol = grid_shape(len(tasks))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.4 * nrow), squeeze=False,
                             layout="constrained")
    prov = results[results.metric.isin(["n_real", "n_train"])]
    for ax, task in zip(axes.flat, tasks):
        sub = prov[prov.task == task].pivot_table(index=["paradigm", "iteration"],
                                                  columns="metric", values="value",
                                                  observed=True, aggfunc="mean")
        # the colours of plot_task: paradigms in order of appearance, C0, C1, ...
        order = list(dict.fromkeys(results.paradigm[results.task == task].astype(str)))
        for k, paradigm in enumerate(order):
            if paradigm not in sub.index.get_level_values(0):
                continue
            frame = sub.xs(paradigm, level=0)
            ax.plot(frame.index, frame["n_real"] / frame["n_train"],
                    color=paradigm_color(k, len(order)), label=paradigm)
        ax.set_title(str(task), fontsize=10)
        ax.set_xlabel("model-fitting iteration")
        ax.set_ylabel("real fraction of the training set")
        ax.set_ylim(-0.02, 1.02)
        integer_iterations(ax)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    _shared_legend(fig, axes, 6)
    atomic_write(Path(path), lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return Path(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return path


def _wrap(text: str, width: int = 16) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _ticks(table: pd.DataFrame, key: str) -> tuple[pd.DataFrame, list[str], str]:
    """(one row per x, sorted; tick labels; note): values longer than 12 characters are
    numbered (1), (2), ... and the note spells them out ("key: (1) = value, ...")."""
    ticks = table.drop_duplicates("x").sort_values("x")
    if ticks.value.str.len().max() <= 12:
        return ticks, list(ticks.value), ""
    labels = [f"({k})" for k in range(1, len(ticks) + 1)]
    return ticks, labels, f"{key}: " + "; ".join(f"{a} = {v}" for a, v in zip(labels,
                                                                                ticks.value))


def _value_axis(ax, table: pd.DataFrame, key: str, scale: str) -> None:
    """The x axis of a plot against grid key ``key``: its values as numbers or categories."""
    ticks, labels, _ = _ticks(table, key)
    if scale == "log":
        ax.set_xscale("log")
    ax.set_xticks(ticks.x, labels, fontsize=8)
    ax.minorticks_off()
    if scale == "category":
        ax.set_xlim(ticks.x.min() - 0.5, ticks.x.max() + 0.5)
    ax.set_xlabel(key)


def plot_final_risk(table: pd.DataFrame, key: str, scale: str, path: Path) -> Path:
    """The final-iteration risk against grid key ``key``: a panel per (task, values of the
    other grid keys), a line (markers only for a categorical key) per paradigm with its 95% CI
    as error bars; ``table`` is ``report.sweep.final_risk_table``, ``scale`` is
    ``report.sweep.axis_scale`` of the key's values.  Non-finite means are named, not drawn."""
    plt = _pyplot()
    panels = list(table.groupby(["task", "panel"], sort=False, observed=True))
    colors = {p: f"C{k}" for k, p in enumerate(dict.fromkeys(table.paradigm.astype(str)))}
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.3 * nrow + 0.9), squeeze=False,
                             layout="constrained")
    for ax, ((task, panel), rows) in zip(axes.flat, panels):
        n_lines, notes = rows.paradigm.nunique(), []
        for k, (paradigm, line) in enumerate(rows.groupby("paradigm", sort=False,
                                                          observed=True)):
            finite = line[np.isfinite(line.final)]
            notes += [f"{paradigm}: mean {v} at {key} = {x}"
                      for v, x in zip(line.final[~np.isfinite(line.final)],
                                      line.value[~np.isfinite(line.final)])]
            dodge = (k - (n_lines - 1) / 2) * 0.08 if scale == "category" else 0.0  # apart
            err = np.nan_to_num(np.abs(finite[["final_low", "final_high"]].to_numpy().T
                                       - finite.final.to_numpy()))
            ax.errorbar(finite.x + dodge, finite.final, yerr=err, color=colors[str(paradigm)],
                        fmt="o" if scale == "category" else "o-", ms=4, lw=1.4, capsize=3,
                        label=str(paradigm))
        _value_axis(ax, rows, key, scale)
        ax.set_ylabel(f"{', '.join(rows.metric.astype(str).unique())} (last iteration)",
                      fontsize=9)
        ax.set_title(_wrap(f"{task} · {panel}" if panel else str(task), 48), fontsize=9)
        if notes:
            ax.text(0.02, 0.98, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=7,
                    color="#a40000")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=c, marker="o", label=p) for p, c in colors.items()]
    note = _ticks(table, key)[2]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)),
               fontsize=8, title=_wrap(note, 140) or None, title_fontsize=8)
    others = ("; a panel per value of the other grid keys (nothing averaged across points)"
              if table.panel.ne("").any() else "")
    fig.suptitle(_wrap(f"risk at the last iteration against {key}: mean and 95% CI over "
                       f"seeds{others}", 110), fontsize=10)
    return _save(fig, path)


#: Colour and symbol of each verdict in the verdict charts (those of report.html's table).
VERDICT_STYLE = {"occurs": ("#d7301f", "✓", "collapse occurs"),
                 "does_not_occur": ("#4dac26", "✗", "does not occur"),
                 "inconclusive": ("#fdd049", "?", "inconclusive"),
                 "not_applicable": ("#d9d9d9", "–", "not applicable")}


def plot_verdicts(table: pd.DataFrame, key: str, path: Path, *, names: dict[int, str],
                  control: str = "") -> Path:
    """The collapse verdicts against grid key ``key``: a panel per (task, paradigm, values of
    the other grid keys), a coloured cell with its symbol per (definition, value of ``key``),
    white where the unit was not run at that value; a legend and the error-control line
    ``control`` below.  ``table`` is ``report.sweep.verdict_table``, ``names`` maps definition
    number -> name (the row labels)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .sweep import VERDICTS

    plt = _pyplot()
    code = {v: i for i, v in enumerate(VERDICTS)}
    xs, labels, note = _ticks(table, key)
    column = {x: j for j, x in enumerate(xs.x)}
    defs = sorted(names)
    panels = list(table.groupby(["task", "paradigm", "panel"], sort=False, observed=True))
    width = max(0.42 * len(xs) + 0.5, 2.2)  # inches per panel
    chars = int(width * 12)  # title characters per line at 8 pt
    ncol = max(1, min(len(panels), int(9 / width)))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 + width * ncol, 2.9 * nrow + 1.1),
                             squeeze=False, sharey=True, layout="constrained")
    cmap = ListedColormap([VERDICT_STYLE[v][0] for v in VERDICTS]).with_extremes(bad="white")
    for ax, ((task, paradigm, panel), rows) in zip(axes.flat, panels):
        grid = np.full((len(defs), len(xs)), np.nan)
        for r in rows.itertuples():
            if r.definition in defs:
                grid[defs.index(r.definition), column[r.x]] = code[r.verdict]
        ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(VERDICTS) - 0.5, aspect="auto")
        for (i, j), c in np.ndenumerate(grid):
            if c == c:
                ax.text(j, i, VERDICT_STYLE[VERDICTS[int(c)]][1], ha="center", va="center",
                        fontsize=9)
        ax.set_xticks(range(len(xs)), labels, fontsize=8)
        ax.set_yticks(range(len(defs)), [_wrap(f"{d}. {names[d]}", 30) for d in defs],
                      fontsize=8)
        ax.set_xticks(np.arange(len(xs) + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(len(defs) + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel(_wrap(key, 24), fontsize=8)
        ax.set_title("\n".join(_wrap(s, chars) for s in (f"{task} · {paradigm}", panel) if s),
                     fontsize=8)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles = [Patch(facecolor=VERDICT_STYLE[v][0], label=f"{VERDICT_STYLE[v][1]} "
                     f"{VERDICT_STYLE[v][2]}") for v in VERDICTS]
    if len(table.drop_duplicates(["task", "paradigm", "panel", "x"])) < len(panels) * len(xs):
        handles.append(Patch(facecolor="white", edgecolor="#999", label="not run at this value"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8,
               title="\n".join(_wrap(t, 140) for t in (note, control) if t) or None,
               title_fontsize=8)
    fig.suptitle(f"collapse verdicts against {key} (Schaeffer et al. 2025's eight definitions)",
                 fontsize=10)
    return _save(fig, path)
