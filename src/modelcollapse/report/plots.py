"""Plots: every metric vs model-fitting iteration, mean and 95% CI band per paradigm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import PROVENANCE, info
from ..results.store import atomic_write, without_attrs

__all__ = ["plot_task", "plot_run", "plot_provenance", "plot_final_risk", "plot_verdicts",
           "wants_log", "integer_iterations", "grid_shape", "bands", "task_figure",
           "provenance_figure", "new_figure", "save_figure", "check_labels",
           "final_risk_figure", "verdict_figure"]

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

    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=1))


def grid_shape(n: int, ncol: int = 3) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` panels, at most ``ncol`` per row."""
    ncol = max(1, min(ncol, n))
    return -(-n // ncol), ncol


def bands(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """What the metric panels draw, for every (task, paradigm, metric, iteration) at once: the
    mean over seeds and its Student-t ``level`` interval (as ``summary.mean_ci``), over the
    finite values, and ``nonfinite``, the share of values that are NaN or infinite (named in the
    panel's title, not drawn).

    Returns a DataFrame with columns task, paradigm, metric, iteration, mean, low, high (NaN
    with fewer than 2 finite values), nonfinite; paradigms in order of appearance.  One grouped
    pass over the table instead of a pandas group per line (the plots' cost was mostly there).
    """
    from scipy.special import stdtrit  # the Student-t quantile (profile._stats.t_ppf)

    results = without_attrs(results)
    value = results.value.to_numpy(dtype=float)
    finite = np.isfinite(value)
    frame = results[["task", "paradigm", "metric", "iteration"]].assign(
        v=np.where(finite, value, np.nan), v2=np.where(finite, value * value, np.nan),
        n=finite.astype(np.int64), rows=1)
    g = frame.groupby(["task", "paradigm", "metric", "iteration"], observed=True, sort=False)
    agg = g.agg(mean=("v", "mean"), sum2=("v2", "sum"), n=("n", "sum"), rows=("rows", "sum"))
    agg = agg.reset_index()
    n = agg.n.to_numpy(dtype=float)
    mean = agg["mean"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(agg.sum2.to_numpy() - n * mean * mean, 0.0) / (n - 1)
        half = stdtrit(np.maximum(n - 1, 1), 0.5 + level / 2) * np.sqrt(var / n)
    half[n < 2] = np.nan
    return agg.assign(low=mean - half, high=mean + half,
                      nonfinite=1.0 - n / agg.rows.to_numpy())[
        ["task", "paradigm", "metric", "iteration", "mean", "low", "high", "nonfinite"]]


def new_figure(nrow: int, ncol: int, *, panel: tuple[float, float], top: float = 0.9,
               bottom: float = 0.9, left: float = 0.75, right: float = 0.2,
               hspace: float = 1.0, wspace: float = 0.8, dpi: int = 100):
    """A figure of ``nrow`` x ``ncol`` axes of ``panel`` = (width, height) inches each, with
    fixed margins in inches (title band ``top``, legend band ``bottom``, gaps ``hspace``,
    ``wspace``): no layout engine (constrained layout was a third of the drawing time), no
    pyplot (nothing global; the figure is freed with its last reference).  Returns
    (Figure, axes array of shape (nrow, ncol))."""
    from matplotlib.figure import Figure

    width = left + right + ncol * panel[0] + (ncol - 1) * wspace
    height = top + bottom + nrow * panel[1] + (nrow - 1) * hspace
    fig = Figure(figsize=(width, height), dpi=dpi)
    axes = fig.subplots(nrow, ncol, squeeze=False, gridspec_kw=dict(
        left=left / width, right=1 - right / width, bottom=bottom / height,
        top=1 - top / height, wspace=wspace / panel[0], hspace=hspace / panel[1]))
    return fig, axes


def save_figure(fig, path: Path, *, stamp: str | None = None) -> Path:
    """Write ``fig`` as a PNG at its own dpi (atomically); ``stamp`` goes into the PNG's
    ``Description`` text chunk (``report.figures`` keeps there the digest of what was drawn)."""
    path = Path(path)
    metadata = {"Description": stamp} if stamp else None
    atomic_write(path, lambda p: fig.savefig(p, dpi="figure", format="png", metadata=metadata))
    return path


def task_figure(band: pd.DataFrame, task: str,
                overlays: dict[str, dict[str, np.ndarray]] | None = None):
    """The Figure of one task: a panel per metric (plus the synthetic-to-real ratio) with the
    mean and 95% band per paradigm; ``band`` holds the task's rows of ``bands(results)``.
    ``overlays`` = {metric: {paradigm: expected value per iteration}} are drawn dashed in the
    paradigm's colour (closed-form theory, see ``report.overlays``)."""
    from matplotlib.lines import Line2D

    band = band[band.task == task]
    # the real-data learning curve (reference_<metric>_n<N>, Def. 5) is constant per chain
    metrics = [m for m in band.metric.unique()
               if (m not in PROVENANCE or m == "synthetic_to_real_ratio")
               and not str(m).startswith("reference_")]
    nrow, ncol = grid_shape(len(metrics))
    fig, axes = new_figure(nrow, ncol, panel=(3.8, 2.5), top=0.95, bottom=0.75, dpi=110)
    # one colour per paradigm for the whole figure (in order of appearance), one legend below
    order = list(dict.fromkeys(band.paradigm.astype(str)))
    colors = {p: paradigm_color(k, len(order)) for k, p in enumerate(order)}
    any_theory = False
    for ax, metric in zip(axes.ravel(), metrics):
        sub = band[band.metric == metric]
        drawn, infinite = [], []  # the plotted means and theory curves: linear or log axis
        for paradigm, frame in sub.groupby("paradigm", observed=True, sort=False):
            color = colors[str(paradigm)]
            share = float(frame.nonfinite.mean())
            if share > 0:  # e.g. the ratio under replace, or NLL of a collapsed fit
                infinite.append(f"{paradigm} {share:.0%}")
            frame = frame[np.isfinite(frame["mean"])]
            if frame.empty:
                continue
            ax.plot(frame.iteration, frame["mean"], color=color, label=str(paradigm), lw=1.6,
                    marker="o" if len(frame) == 1 else None, ms=4)
            drawn.append(frame["mean"].to_numpy())
            expected = (overlays or {}).get(metric, {}).get(str(paradigm))
            if expected is not None:
                drawn.append(expected)
                any_theory = True
                ax.plot(np.arange(len(expected)), expected, color=color, ls="--", lw=1.2,
                        label=f"{paradigm}: theory")
            ax.fill_between(frame.iteration, frame.low, frame.high, color=color, alpha=0.2,
                            lw=0)
        meta = info(metric)
        log = wants_log(drawn)
        if log:  # curves orders of magnitude apart: a linear axis would flatten the small ones
            ax.set_yscale("log")
        title = f"{metric} (log scale)" if log else str(metric)
        if infinite:  # named, not drawn: the share of infinite values per paradigm
            title += "\n" + _wrap("inf values not drawn: " + (
                infinite[0] if len(infinite) == 1 else f"{len(infinite)} paradigms"), 60)
        ax.set_title(title, fontsize=9, y=1.0, pad=5)  # y given: no tight-bbox search (0.03 s)
        ax.set_xlabel("model-fitting iteration", fontsize=8)
        ax.set_ylabel(meta.units, fontsize=8)
        ax.tick_params(labelsize=8)
        integer_iterations(ax)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=c, lw=1.6, label=p) for p, c in colors.items()]
    if any_theory:
        handles.append(Line2D([], [], color="#444", ls="--", lw=1.2,
                              label="closed-form theory (dashed, paradigm's colour)"))
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8,
               frameon=False)
    fig.suptitle(f"{task}: mean and 95% CI over seeds", fontsize=11)
    return fig


def plot_task(results: pd.DataFrame, task: str, path: Path,
              overlays: dict[str, dict[str, np.ndarray]] | None = None) -> Path:
    """One PNG for ``task`` (``task_figure`` of the task's ``bands``); returns its path."""
    results = without_attrs(results)
    return save_figure(task_figure(bands(results[results.task == task]), task, overlays), path)


def check_labels(tasks, directory: Path) -> None:
    """Refuse a task label that would name a file outside ``directory`` (ValueError; labels
    are checked when a study is validated, ``config.name_problem``; this guards results from
    elsewhere)."""
    inside = Path(directory).resolve()
    for task in tasks:
        path = (Path(directory) / f"{task}.png").resolve()
        if path.parent != inside or "/" in str(task) or "\\" in str(task):
            raise ValueError(f"task label {str(task)!r} would write outside {directory}; a "
                             "label may use letters, digits and . _ - + @ = only")


def plot_run(results: pd.DataFrame, directory: Path, study: dict | None = None) -> list[Path]:
    """A PNG per task under ``directory`` (created), with theory overlays where the resolved
    ``study`` has a closed form; returns the paths.

    Raises
    ------
    ValueError
        A task label that would name a file outside ``directory`` (``check_labels``).
    """
    from .overlays import theory_curves

    directory = Path(directory)
    tasks = [str(t) for t in results.task.unique()]
    check_labels(tasks, directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_iterations = int(results.iteration.max()) + 1
    band = bands(results)
    return [save_figure(task_figure(band, task, theory_curves(study or {}, task, n_iterations)),
                        directory / f"{task}.png") for task in tasks]


def _shared_legend(fig, axes, most: int) -> None:
    """A legend in each panel with at most ``most`` lines, else one legend below the grid."""
    panels = [ax for ax in axes.flat if ax.get_visible() and ax.get_lines()]
    if all(len(ax.get_lines()) <= most for ax in panels):
        for ax in panels:
            ax.legend(fontsize=7)
        return
    handles, labels = max((ax.get_legend_handles_labels() for ax in panels),
                          key=lambda h: len(h[1]))
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7,
               frameon=False)


def provenance_figure(results: pd.DataFrame):
    """The Figure of the real fraction n_real / n_train of the training set per task and
    paradigm (the synthetic-to-real ratio is (1 - f) / f); ``results`` needs only the n_real
    and n_train rows."""
    results = without_attrs(results)
    tasks = list(results.task.unique())
    nrow, ncol = grid_shape(len(tasks))
    fig, axes = new_figure(nrow, ncol, panel=(3.6, 2.5), top=0.4, bottom=0.75)
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
        ax.set_title(str(task), fontsize=10, y=1.0, pad=5)
        ax.set_xlabel("model-fitting iteration", fontsize=8)
        ax.set_ylabel("real fraction of the training set", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_ylim(-0.02, 1.02)
        integer_iterations(ax)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    _shared_legend(fig, axes, 6)
    return fig


def plot_provenance(results: pd.DataFrame, path: Path) -> Path:
    """``provenance_figure(results)`` as a PNG at ``path``; returns the path."""
    return save_figure(provenance_figure(results), path)


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


def _laid_out(width: float, height: float, nrow: int, ncol: int, **kw):
    """A constrained-layout Figure (no pyplot) of ``nrow`` x ``ncol`` axes: for the sweep
    figures, whose label sizes vary too much for fixed margins."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(nrow, ncol, squeeze=False, **kw)


def final_risk_figure(table: pd.DataFrame, key: str, scale: str):
    """The final-iteration risk against grid key ``key``: a panel per (task, values of the
    other grid keys), a line (markers only for a categorical key) per paradigm with its 95% CI
    as error bars; ``table`` is ``report.sweep.final_risk_table``, ``scale`` is
    ``report.sweep.axis_scale`` of the key's values.  Non-finite means are named, not drawn.
    Returns the Figure."""
    from matplotlib.lines import Line2D

    panels = list(table.groupby(["task", "panel"], sort=False, observed=True))
    colors = {p: f"C{k}" for k, p in enumerate(dict.fromkeys(table.paradigm.astype(str)))}
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = _laid_out(4 * ncol, 3.3 * nrow + 0.9, nrow, ncol)
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
    handles = [Line2D([], [], color=c, marker="o", label=p) for p, c in colors.items()]
    note = _ticks(table, key)[2]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)),
               fontsize=8, title=_wrap(note, 140) or None, title_fontsize=8)
    others = ("; a panel per value of the other grid keys (nothing averaged across points)"
              if table.panel.ne("").any() else "")
    fig.suptitle(_wrap(f"risk at the last iteration against {key}: mean and 95% CI over "
                       f"seeds{others}", 110), fontsize=10)
    return fig


def plot_final_risk(table: pd.DataFrame, key: str, scale: str, path: Path) -> Path:
    """``final_risk_figure`` as a PNG at ``path``; returns the path."""
    return save_figure(final_risk_figure(table, key, scale), path)


#: Colour and symbol of each verdict in the verdict charts (those of report.html's table).
VERDICT_STYLE = {"occurs": ("#d7301f", "✓", "collapse occurs"),
                 "does_not_occur": ("#4dac26", "✗", "does not occur"),
                 "inconclusive": ("#fdd049", "?", "inconclusive"),
                 "not_applicable": ("#d9d9d9", "–", "not applicable")}


def verdict_figure(table: pd.DataFrame, key: str, *, names: dict[int, str],
                   control: str = ""):
    """The collapse verdicts against grid key ``key``: a panel per (task, paradigm, values of
    the other grid keys), a coloured cell with its symbol per (definition, value of ``key``),
    white where the unit was not run at that value; a legend and the error-control line
    ``control`` below.  ``table`` is ``report.sweep.verdict_table``, ``names`` maps definition
    number -> name (the row labels).  Returns the Figure."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .sweep import VERDICTS

    code = {v: i for i, v in enumerate(VERDICTS)}
    xs, labels, note = _ticks(table, key)
    column = {x: j for j, x in enumerate(xs.x)}
    defs = sorted(names)
    panels = list(table.groupby(["task", "paradigm", "panel"], sort=False, observed=True))
    width = max(0.42 * len(xs) + 0.5, 2.2)  # inches per panel
    chars = int(width * 12)  # title characters per line at 8 pt
    ncol = max(1, min(len(panels), int(9 / width)))
    nrow = -(-len(panels) // ncol)
    fig, axes = _laid_out(3.2 + width * ncol, 2.9 * nrow + 1.1, nrow, ncol, sharey=True)
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
    return fig


def plot_verdicts(table: pd.DataFrame, key: str, path: Path, *, names: dict[int, str],
                  control: str = "") -> Path:
    """``verdict_figure`` as a PNG at ``path``; returns the path."""
    return save_figure(verdict_figure(table, key, names=names, control=control), path)
