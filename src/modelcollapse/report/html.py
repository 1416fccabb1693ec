"""One self-contained HTML report of a run: profile, summary, plots with theory, provenance, study.

Everything is inline (CSS, PNGs as base64 data URIs), so the file can be mailed or archived
alone.  The PNGs are also written under ``RUN_DIR/plots/``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..results.store import atomic_write, load_manifest, load_results, without_attrs

__all__ = ["write_report"]

SYMBOL = {"occurs": "✓", "does_not_occur": "✗", "inconclusive": "?", "not_applicable": "–"}
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: center;
         overflow-wrap: anywhere; }
th { background: #f5f5f5; } td.name { text-align: left; }
th small, td small { display: block; font-weight: normal; color: #555; font-size: 0.75em; }
table.grid { width: 100%; table-layout: fixed; }
#summary, #practices { width: 100%; }
table.grid th:first-child { width: 16%; }
.verdict-occurs { background: #fde2e1; color: #a40000; }
td.verdict-occurs { font-weight: bold; }
.verdict-does_not_occur { background: #e3f5e1; color: #1e6b1e; }
.verdict-not_applicable { color: #777; }
.verdict-inconclusive { background: #fff4d6; color: #7a5a00; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr));
         gap: 0.8em; }
.card { border: 1px solid #ddd; border-radius: 4px; padding: 0.4em 0.6em; min-width: 0;
        break-inside: avoid; font-size: 0.85em; }
.card h3 { margin: 0.2em 0 0.4em; font-size: 1.05em; overflow-wrap: anywhere; }
.card h3 small { font-weight: normal; color: #555; }
.card ul { list-style: none; margin: 0; padding: 0; }
.card li { display: flex; gap: 0.5em; padding: 0.3em; margin: 0.2em 0; border-radius: 3px;
           overflow-wrap: anywhere; }
.card li .sym { font-weight: bold; min-width: 1em; }
.card li div { color: #222; min-width: 0; }
.card li small { display: block; color: #555; font-size: 0.85em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #a40000; }
pre { background: #f8f8f8; padding: 1em; font-size: 0.85em; white-space: pre-wrap;
      overflow-wrap: anywhere; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  .cards { grid-template-columns: 1fr 1fr; }
  .card, img, tr, li { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  th, td { padding: 0.2em 0.3em; }
}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_e(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _num(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    if np.isnan(x):
        return ""
    return ("-inf" if x < 0 else "inf") if np.isinf(x) else f"{x:.3g}"


def _text(x) -> str:
    """A free-text field of the profile ('' for missing)."""
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def _definitions(profile: pd.DataFrame) -> dict[int, str]:
    try:
        from ..profile import DEFINITIONS
    except ImportError:
        DEFINITIONS = {}
    names = dict(DEFINITIONS) or {d: "" for d in range(1, 9)}
    if "name" in profile:
        for d, name in zip(profile.definition, profile.name):
            names.setdefault(int(d), _text(name))
            if not names[int(d)]:
                names[int(d)] = _text(name)
    return dict(sorted(names.items()))


VERDICT_WORDS = {"occurs": "occurs", "does_not_occur": "does not occur",
                 "inconclusive": "inconclusive", "not_applicable": "not applicable"}


def _explain(r) -> str:
    """One line that says what a profile cell means: the statistic with its interval, the
    threshold and the adjusted p-value, or why it is inconclusive / not applicable."""
    low, high = _num(getattr(r, "low", None)), _num(getattr(r, "high", None))
    bounds = f" [{low or '-inf'}, {high or 'inf'}]" if low or high else ""
    value, threshold = _num(getattr(r, "value", None)), _num(getattr(r, "threshold", None))
    p_value = _num(getattr(r, "p_value", None))
    statistic = _text(getattr(r, "statistic", "")) or "statistic"
    parts = [f"{statistic} = {value}{bounds}" if value else "",
             f"threshold {threshold}" if value and threshold else "",
             f"adjusted p = {p_value}" if value and p_value else "",
             _text(getattr(r, "reason", ""))]
    return "; ".join(x for x in parts if x) or VERDICT_WORDS.get(r.verdict, str(r.verdict))


def _profile_table(profile: pd.DataFrame) -> str:
    """The collapse profile twice: a compact grid (a row per task and paradigm, a column per
    definition, the symbol and its word in each cell) that fits any width, then a card per
    task and paradigm with each verdict's statistic, interval, threshold, p-value, test and
    detail written out (nothing only in a hover)."""
    columns = list(dict.fromkeys(zip(profile.task, profile.paradigm)))
    cells = {(r.task, r.paradigm, int(r.definition)): r for r in profile.itertuples()}
    names = _definitions(profile)
    head = "".join(f"<th>{d}<small>{_e(name)}</small></th>" for d, name in names.items())
    rows, cards = [], []
    for t, p in columns:
        tds, items = [], []
        for d, name in names.items():
            r = cells.get((t, p, d))
            if r is None:
                tds.append('<td class="verdict-not_applicable">–<small>not run</small></td>')
                continue
            verdict, line = str(r.verdict), _explain(r)
            tip = "; ".join(x for x in (line, _text(getattr(r, "test", "")),
                                        _text(getattr(r, "detail", ""))) if x)
            tds.append(f'<td class="verdict-{_e(verdict)}" title="{_e(tip)}">'
                       f"{SYMBOL.get(verdict, '?')}<small>{_e(VERDICT_WORDS.get(verdict, verdict))}"
                       "</small></td>")
            more = "; ".join(x for x in (_text(getattr(r, "test", "")),
                                         _text(getattr(r, "detail", ""))) if x)
            items.append(
                f'<li class="verdict-{_e(verdict)}"><span class="sym">'
                f"{SYMBOL.get(verdict, '?')}</span><div><b>{d}. {_e(name)}: "
                f"{_e(VERDICT_WORDS.get(verdict, verdict))}</b><br>{_e(line)}"
                + (f"<small>{_e(more)}</small>" if more else "") + "</div></li>")
        rows.append(f'<tr><td class="name">{_e(t)}<small>{_e(p)}</small></td>{"".join(tds)}</tr>')
        cards.append(f'<div class="card"><h3>{_e(t)} <small>{_e(p)}</small></h3>'
                     f'<ul>{"".join(items)}</ul></div>')
    return (f'<table id="collapse-profile" class="grid"><thead><tr><th>task · paradigm</th>'
            f'{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "<h3>Each verdict in words</h3>"
            f'<div id="profile-cards" class="cards">{"".join(cards)}</div>')


def _ci_cell(row, name: str) -> str:
    """``row.<name>`` with its interval ``<name>_low`` / ``<name>_high`` (empty if absent)."""
    m = getattr(row, name, np.nan)
    lo, hi = getattr(row, f"{name}_low", np.nan), getattr(row, f"{name}_high", np.nan)
    if m != m:
        return ""
    return _e(_num(m)) + (f" <small>[{_num(lo)}, {_num(hi)}]</small>" if _num(lo) else "")


def _streamed_note(streamed: dict) -> str:
    """What a streamed run's report is computed from (``api._stream``)."""
    return (f'<p class="meta">Streamed run: the collapse profile, the summary and '
            f'<code>curves.csv</code> are computed from exact aggregates of all '
            f'{int(streamed["n_seeds"]):,} seeds (<code>aggregates.npz</code>, blocks of '
            f'{int(streamed["block_size"]):,} chains); <code>results.parquet</code> and the '
            f'figures below hold the first {int(streamed["keep_seeds"]):,} seeds '
            f'(<code>keep_seeds</code>).</p>')


def _summary_table(summary: pd.DataFrame) -> str:
    rows = "".join(
        f'<tr><td class="name">{_e(r.task)}</td><td>{_e(r.paradigm)}</td><td>{_e(r.metric)}</td>'
        f"<td>{_ci_cell(r, 'initial')}</td><td>{_ci_cell(r, 'final')}</td>"
        f"<td>{_ci_cell(r, 'ratio')}</td></tr>" for r in summary.itertuples())
    return ('<table id="summary"><thead><tr><th>task</th><th>paradigm</th><th>metric</th>'
            "<th>iteration 0</th><th>last iteration</th><th>last vs first (ratio of means; "
            "difference for log-losses)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _points_table(points: list[dict]) -> str:
    """The grid values of each point of a sweep (tasks are labelled ``<task>@p<point>``)."""
    from .sweep import value_label

    keys = list(dict.fromkeys(k for p in points for k in p.get("values", {})))
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    rows = "".join(f'<tr><td class="name">p{_e(p["point"])}</td>'
                   + "".join(f"<td>{_e(value_label(p.get('values', {}).get(k, '')))}</td>"
                             for k in keys)
                   + "</tr>" for p in points)
    return (f'<table id="points"><thead><tr><th>grid point</th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _with_data(table: pd.DataFrame, stem: Path) -> Path:
    """Write ``table`` (the numbers behind a sweep plot) to ``<stem>.csv``; the plot's path
    ``<stem>.png``."""
    atomic_write(Path(f"{stem}.csv"), lambda p: table.to_csv(p, index=False))
    return Path(f"{stem}.png")


def _sweep_section(manifest: dict, summary: pd.DataFrame, profile: pd.DataFrame | None,
                   plots: Path) -> tuple[list, list]:
    """The "Sweep" section: the grid table, then for each grid key with more than one value
    the final risk and the verdicts against it.  Returns (parts, figures): HTML strings and
    the PNG paths to embed in their place, and the ``FigureJob``s that draw those PNGs (with
    the others of the report); the plotted numbers are written next to them as CSV now."""
    from .figures import FigureJob
    from .plots import final_risk_figure, verdict_figure
    from .sweep import axis_scale, error_control, final_risk_table, grid_values, verdict_table

    plots.mkdir(parents=True, exist_ok=True)
    grid = grid_values(manifest)
    varied = {k: v for k, v in grid.items() if len(v) > 1}
    fixed = [k for k in grid if k not in varied]
    control = error_control(profile) if profile is not None else ""
    jobs: list = []
    out = [f"<h2>Sweep: {_e(' × '.join(grid))}</h2>",
           f"<p>{len(manifest['points'])} grid points, the Cartesian product of the grid "
           "values; the tasks of point k are labelled <code>&lt;task&gt;@pk</code> below. "
           "Each plot against a grid key has one panel per combination of the other keys' "
           "values: nothing is averaged across points."
           + (f" One value only (no plot): {_e(', '.join(fixed))}." if fixed else "") + "</p>",
           _points_table(manifest["points"])]
    for key, values in varied.items():
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
        risk = final_risk_table(summary, manifest, key)
        jobs.append(FigureJob(_with_data(risk, plots / f"sweep_risk_{safe}"), final_risk_figure,
                              (risk, key, axis_scale(values))))
        out += [f"<h3>Final risk against {_e(key)}</h3>",
                "<p>The risk at the last model-fitting iteration: mean and 95% confidence "
                "interval over seeds, one line per paradigm (the plotted numbers: "
                f"<code>plots/sweep_risk_{_e(safe)}.csv</code>).</p>", jobs[-1].path]
        if profile is not None:
            verdicts = verdict_table(profile, manifest, key)
            jobs.append(FigureJob(_with_data(verdicts, plots / f"sweep_verdicts_{safe}"),
                                  verdict_figure, (verdicts, key),
                                  {"names": _definitions(profile), "control": control}))
            out += [f"<h3>Collapse verdicts against {_e(key)}</h3>",
                    f"<p>{_e(control)}.</p>" if control else "", jobs[-1].path]
    if profile is not None and "test" in profile and varied:
        tests = profile.groupby("definition").test.agg(
            lambda t: "; ".join(dict.fromkeys(_text(x) for x in t if _text(x))) or "–")
        names = _definitions(profile)
        out.append("<h3>Tests behind the verdicts</h3>"
                   '<table id="sweep-tests"><thead><tr><th>definition</th><th>test</th></tr>'
                   "</thead><tbody>" + "".join(
                       f'<tr><td class="name">{d}. {_e(names.get(int(d), ""))}</td>'
                       f'<td class="name">{_e(t)}</td></tr>' for d, t in tests.items())
                   + "</tbody></table>")
    return out, jobs


def _practices_table(effects: pd.DataFrame, baseline: str) -> str:
    fmt = _ci_cell
    rows = "".join(
        f'<tr><td class="name">{_e(r.task)}</td><td class="name">{_e(r.paradigm)}</td>'
        f"<td>{_e(r.risk_metric or '')}</td><td>{fmt(r, 'risk_ratio')}"
        f"<br><small>{_e(getattr(r, 'risk_contrast', '') or '')}</small></td>"
        f"<td>{fmt(r, 'risk_vs_baseline')}</td><td>{_e(r.tail_metric or '')}</td>"
        f"<td>{fmt(r, 'tail_ratio')}</td><td>{_e(_num(getattr(r, 'synthetic_share', np.nan)))}"
        "</td></tr>" for r in effects.itertuples())
    return ('<table id="practices"><thead><tr><th>task</th><th>paradigm'
            "</th><th>risk</th><th>risk last vs first</th>"
            f"<th>last risk − {_e(baseline)}</th><th>tail metric</th><th>tail last / first "
            "(ratio of means)</th>"
            "<th>synthetic share (last)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


#: Settings of a paradigm entry that make it a practice (docs/practices.md).
PRACTICE_KEYS = ("curation", "real_arrival", "initial_real", "scraping", "synthetic_growth")


def practices_configured(studies: list[dict]) -> bool:
    """Whether any resolved study in ``studies`` configures a practice: a paradigm with a
    curation policy, real arrivals, an initial real size, scraping or its own synthetic growth,
    or a study-wide synthetic growth other than constant."""
    for study in studies:
        if ((study.get("synthetic_growth") or {}).get("kind", "constant")) != "constant":
            return True
        for paradigm in study.get("paradigms") or []:
            if isinstance(paradigm, dict) and any(paradigm.get(k) for k in PRACTICE_KEYS):
                return True
    return False


def _metric_figures(results: pd.DataFrame, manifest: dict, study: dict, plots: Path,
                    max_point_figures: int | None) -> tuple[list, str]:
    """The ``FigureJob``s of a figure per task (every metric over iterations, theory dashed)
    and of the provenance figure -- from the aggregates they draw, so digests and pickling
    stay small -- and the note naming a sweep's points left out ("" when none)."""
    from .figures import FigureJob
    from .overlays import theory_curves
    from .plots import bands, check_labels, provenance_figure, task_figure

    tasks = [str(t) for t in results.task.unique()]
    check_labels(tasks, plots)
    left_out, shown = "", results
    points = sorted(int(p["point"]) for p in manifest.get("points") or [])
    if max_point_figures is not None and len(points) > max_point_figures:
        first = set(points[:max_point_figures])
        tasks = [t for t in tasks if int(t.rsplit("@p", 1)[1]) in first]
        shown = results[results.task.isin(tasks)]
        left_out = (f'<p class="note">Figures are drawn for the first {max_point_figures} of '
                    f"{len(points)} grid points (points {points[0]} to "
                    f"{points[max_point_figures - 1]}); <code>modelcollapse report DIR "
                    "--all-figures</code> draws every point's.</p>")
    n_iterations = int(results.iteration.max()) + 1 if len(results) else 0
    band = bands(shown)
    figures = [FigureJob(plots / f"{task}.png", task_figure,
                         (band[band.task == task].reset_index(drop=True), task,
                          theory_curves(study, task, n_iterations))) for task in tasks]
    prov = shown[shown.metric.isin(["n_real", "n_train"])].reset_index(drop=True)
    figures.append(FigureJob(plots / "provenance.png", provenance_figure, (prov,)))
    return figures, left_out


#: a sweep's per-point figures are drawn for this many grid points by default
MAX_POINT_FIGURES = 12


def start_figures(run_dir: str | Path, results: pd.DataFrame, manifest: dict, pool) -> list:
    """Start drawing a run's metric and provenance figures in ``pool`` (``figure_workers``)
    from its results still in memory, while the caller verifies, reloads and analyses them;
    the futures, for ``write_report(pending=...)``.  ``write_report`` waits for them, then
    draws only a figure whose PNG does not carry the digest of what the stored results show
    (none, when memory and disk agree: tests/test_run_fixed_cost.py).  A sweep: [] (its
    figures need the profile)."""
    if pool is None or "points" in manifest:
        return []
    from .figures import submit_figures
    from .sweep import points_as_tasks

    results, _, _ = points_as_tasks(without_attrs(results), manifest)
    figures, _ = _metric_figures(results, manifest, manifest.get("study", {}),
                                 Path(run_dir) / "plots", MAX_POINT_FIGURES)
    return submit_figures(figures, pool)


def write_report(run_dir: str | Path, *, profile: pd.DataFrame | None = None,
                 summary: pd.DataFrame | None = None, out: str | Path | None = None,
                 jobs: int = 1, progress: Callable[[int, int], None] | None = None,
                 max_point_figures: int | None = MAX_POINT_FIGURES, pool=None,
                 pending: Sequence = ()) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) and the PNGs it embeds; return its path.

    Parameters
    ----------
    run_dir : a finished run directory (``results.parquet`` + ``manifest.json``)
    profile : DataFrame, optional
        A precomputed collapse profile (``modelcollapse.profile.collapse_profile`` columns);
        computed from the results and the manifest's ``profile_specs`` otherwise, or replaced
        by a note if ``modelcollapse.profile`` cannot be imported.
    summary : DataFrame, optional
        A precomputed summary (``report.summary.final_vs_initial`` columns, as the run's
        ``summary.csv``); computed as ``profile`` is otherwise.
    out : path, optional
        Where to write the HTML (default ``RUN_DIR/report.html``); the PNGs always go to
        ``RUN_DIR/plots/``.
    jobs : int
        Processes drawing the figures (``report.figures.draw_figures``; the PNGs do not
        depend on it).  A figure whose PNG already shows the same data is not redrawn.
    pool : optional
        Processes already started by ``report.figures.figure_workers`` to draw the figures
        (instead of ``jobs``).
    pending : futures of ``start_figures``
        Waited for before the figures are drawn (a failure is raised here).
    progress : callable(done, total), optional
        Called as the metric and provenance figures are drawn.
    max_point_figures : int or None
        A sweep's metric and provenance figures are drawn for its first ``max_point_figures``
        grid points (None: all); the report names the points left out and how to draw them.
        Their cost grows with the points, and the Sweep section already compares them.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a run directory.
    """
    from .figures import draw_figures
    from .overlays import theory_curves
    from .plots import LOG_RATIO
    from .summary import final_vs_initial

    from .sweep import label_points, points_as_tasks, unlabel_points

    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    # a sweep reads as one run whose tasks are "<task>@p<point>" (grid values: points table)
    results, specs, risk_metrics = points_as_tasks(without_attrs(load_results(run_dir)),
                                                   manifest)
    study = manifest.get("study", {})
    if "points" in manifest:
        studies = [p.get("study") or {} for p in manifest["points"]]
        study = {"name": (manifest.get("sweep") or {}).get("name", run_dir.name),
                 "profile": studies[0].get("profile"),
                 **{k: ", ".join(dict.fromkeys(str(s.get(k, "")) for s in studies))
                    for k in ("n_seeds", "n_iterations")}}
    sweep_profile = None
    if profile is not None and "point" in profile:  # a sweep's profile.csv, by grid point
        sweep_profile, profile = profile, label_points(profile)
    if manifest.get("streamed") and (profile is None or summary is None):
        from ..profile.stored import analyse_stored  # all seeds' aggregates, not the kept rows

        stored_summary, stored_profile = analyse_stored(run_dir, manifest)
        profile = stored_profile if profile is None else profile
        summary = stored_summary if summary is None else summary
    if profile is None:
        try:
            from ..profile import collapse_profile
        except ImportError:
            profile_html = ('<p class="note">The collapse profile is not available '
                            "(<code>modelcollapse.profile</code> could not be imported).</p>")
        else:
            profile = collapse_profile(results, specs, study.get("profile"))
    if profile is not None:
        profile_html = _profile_table(profile)
    if summary is None:
        summary = final_vs_initial(results, risk_metrics)
    if "points" in manifest:
        if sweep_profile is None and profile is not None:
            sweep_profile = unlabel_points(profile)
        sweep_parts, sweep_jobs = _sweep_section(manifest, unlabel_points(summary),
                                                 sweep_profile, run_dir / "plots")
    else:
        sweep_parts, sweep_jobs = [], []
    figures, left_out = _metric_figures(results, manifest, study, run_dir / "plots",
                                        max_point_figures)
    for future in pending:
        future.result()
    *plots, provenance = draw_figures(figures + sweep_jobs, workers=jobs,
                                      progress=progress, pool=pool)[:len(figures)]
    sweep_html = "".join(_img(p) if isinstance(p, Path) else p for p in sweep_parts)
    from .practices import plot_tail_vs_synthetic_share, practice_effects

    studies = ([p.get("study") or {} for p in manifest["points"]] if "points" in manifest
               else [study])
    practices_html = []
    if practices_configured(studies):  # a section only when a practice was configured
        baseline = "accumulate"
        effects = practice_effects(results, specs, baseline)
        tail_plot = plot_tail_vs_synthetic_share(
            results, specs, run_dir / "plots" / "tail_vs_synthetic_share.png")
        practices_html = [
            "<h2>Practices: what each paradigm and policy changes</h2>",
            "<p>Per paradigm (and curation policy): the risk and the tail metric at the last "
            "iteration relative to iteration 0, the paired difference of the last risk from "
            f"<code>{_e(baseline)}</code> (same seeds, same real data), and the synthetic share "
            "of the last training set. Means with 95% confidence intervals over seeds.</p>",
            _practices_table(effects, baseline),
            *([_img(tail_plot)] if tail_plot is not None else [])]
    n_iterations = int(results.iteration.max()) + 1 if len(results) else 0
    theory = "points" not in manifest and any(
        theory_curves(study, str(t), n_iterations) for t in results.task.unique())

    versions = ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items())
    sections = [
        f"<h1>{_e(study.get('name', run_dir.name))}</h1>",
        f'<p class="meta">{"sweep" if "points" in manifest else "study"} hash '
        f'{_e(manifest.get("sweep_hash", manifest.get("study_hash", "")))} · created '
        f'{_e(manifest.get("created", ""))} · {_e(study.get("n_seeds", ""))} seeds × '
        f'{_e(study.get("n_iterations", ""))} model-fitting iterations · {_e(versions)}</p>',
        *([f"<p>{_e(study['description'])}</p>"] if study.get("description") else []),
        *([_streamed_note(manifest["streamed"])] if manifest.get("streamed") else []),
        *([sweep_html] if "points" in manifest else []),
        "<h2>Collapse profile</h2>",
        "<p>For each task and paradigm, whether model collapse occurs under each of the eight "
        "definitions of Schaeffer et al. 2025 (Sec. 2): ✓ occurs, ✗ does not occur (both "
        "decided at family-wise α over every verdict of the run, Holm), ? inconclusive (not "
        "detected either way), – not applicable. The cards below the grid give each verdict's "
        "statistic = value [confidence interval], the threshold it is compared with, the "
        "adjusted p-value, the test and the reason; docs/profile.md has the rules.</p>",
        profile_html,
        *(["<h2>Risk: last iteration vs iteration 0</h2>",
           "<p>Mean and 95% confidence interval over seeds.</p>",
           _summary_table(summary)] if len(summary) else []),
        *practices_html,
        "<h2>Metrics over model-fitting iterations</h2>",
        "<p>Mean and 95% band per paradigm"
        + ("; dashed: closed-form theory" if theory else "")
        + f"; a panel whose curves span more than {LOG_RATIO:g}× is drawn on a log scale "
        "(its title says so).</p>",
        left_out,
        *[f"<h3>{_e(p.stem)}</h3>{_img(p)}" for p in plots],
        "<h2>Provenance: real fraction of the training set</h2>",
        "<p>The synthetic-to-real ratio is (1 − f) / f; replace trains on synthetic data only "
        "after iteration 0.</p>",
        _img(provenance),
        "<h2>Resolved study</h2>",
        f"<pre>{_e(yaml.safe_dump(study, sort_keys=False))}</pre>",
        "<h2>Profile specs</h2>",
        f"<pre>{_e(json.dumps(specs, indent=1))}</pre>",
    ]
    page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{_e(study.get('name', 'modelcollapse report'))}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")
    path = Path(out) if out is not None else run_dir / "report.html"
    atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"))
    return path
