"""A sweep store seen as one run whose tasks are (grid point, task) pairs, so that every
reader of a run (report, ledger) works on a sweep directory unchanged; and the tables behind
the sweep report's plots against each grid key (``final_risk_table``, ``verdict_table``)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

__all__ = ["points_as_tasks", "point_label", "label_points", "unlabel_points", "grid_values",
           "axis_scale", "final_risk_table", "verdict_table", "error_control", "VERDICTS"]

#: The verdicts of the collapse profile, in the order of the verdict charts' legend.
VERDICTS = ("occurs", "does_not_occur", "inconclusive", "not_applicable")

_LABEL = re.compile(r"^(?P<task>.*)@p(?P<point>\d+)$")


def point_label(task: str, point: int) -> str:
    """The task label of ``task`` at grid point ``point``: ``"<task>@p<point>"``."""
    return f"{task}@p{point}"


def label_points(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (results, summary or profile) with task = ``point_label(task, point)`` and
    without the ``point`` and ``grid.<key>`` columns; a table without ``point`` as it is."""
    if "point" not in table.columns:
        return table
    out = table.drop(columns=[c for c in table.columns
                              if c == "point" or str(c).startswith("grid.")])
    out["task"] = [point_label(t, p) for t, p in zip(table.task.astype(str), table.point)]
    return out


def unlabel_points(table: pd.DataFrame) -> pd.DataFrame:
    """The inverse of ``label_points`` (without the grid columns): task labels
    ``"<task>@p<point>"`` split into ``point`` (int, first column) and ``task``.

    Raises
    ------
    ValueError
        If a task label is not of the form ``<task>@p<point>``.
    """
    if "point" in table.columns:
        return table
    parts = [_LABEL.match(str(t)) for t in table.task]
    bad = [str(t) for t, m in zip(table.task, parts) if m is None]
    if bad:
        raise ValueError(f"task {bad[0]!r}: not a sweep label '<task>@p<point>'")
    out = table.assign(task=[m["task"] for m in parts])
    out.insert(0, "point", [int(m["point"]) for m in parts])
    return out


def points_as_tasks(results: pd.DataFrame, manifest: dict) -> tuple[pd.DataFrame, dict, dict]:
    """(results with task = ``point_label(task, point)`` and without the point and grid
    columns, task label -> profile spec, task label -> risk metric) of a sweep store; a plain
    run's results and manifest maps are returned as they are.

    The grid values of each point are in ``manifest["points"][k]["values"]``.
    """
    if "point" not in results.columns:
        specs = manifest.get("profile_specs") or {}
        risks = {t: s["risk"] for t, s in specs.items() if s.get("risk")}
        risks.update(manifest.get("risk_metrics") or {})
        return results, specs, risks
    specs, risks = {}, {}
    for entry in manifest.get("points") or []:
        k = int(entry["point"])
        for task, spec in (entry.get("profile_specs") or {}).items():
            specs[point_label(task, k)] = spec
        for task, risk in (entry.get("risk_metrics") or {}).items():
            risks[point_label(task, k)] = risk
    return label_points(results), specs, risks


def _key(value) -> str:
    """A grid value's identity (lists and mappings by their JSON text)."""
    return json.dumps(value, sort_keys=True)


def grid_values(manifest: dict) -> dict[str, list]:
    """Grid key -> its distinct values in grid-file order, of a sweep manifest ({} for a run)."""
    grid = (manifest.get("sweep") or {}).get("grid")
    if not grid:
        grid = {}
        for entry in manifest.get("points") or []:
            for key, value in entry.get("values", {}).items():
                grid.setdefault(key, []).append(value)
    return {key: list({_key(v): v for v in values}.values()) for key, values in grid.items()}


def axis_scale(values: list) -> str:
    """How to lay out a grid key's values: ``"category"`` unless every value is a number
    (bool excluded); ``"log"`` for positive values spread over a factor of 4 or more that are
    more evenly spaced on a log scale than on a linear one (e.g. 25, 100, 400; two values:
    a factor of 10 or more); else ``"linear"``."""
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in values):
        return "category"
    v = np.unique(np.asarray(values, dtype=float))
    if len(v) < 2 or v[0] <= 0 or v[-1] / v[0] < 4:
        return "linear"
    if len(v) == 2:
        return "log" if v[-1] / v[0] >= 10 else "linear"

    def spread(d):  # coefficient of variation of the gaps
        return d.std() / d.mean()

    return "log" if spread(np.diff(np.log(v))) <= spread(np.diff(v)) else "linear"


def value_label(value) -> str:
    """A grid value as written in a sweep file (lists and mappings in YAML flow style)."""
    if isinstance(value, (list, dict)):
        import yaml

        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return str(value)


def _against(table: pd.DataFrame, manifest: dict, key: str) -> pd.DataFrame:
    """``table`` (one with a ``point`` column) plus ``value`` (the point's value of ``key``,
    as text), ``x`` (the number for a numeric key, the value's index in the grid for a
    categorical one) and ``panel`` (the point's values of the other grid keys, as text: one
    panel per combination, so nothing is averaged across points), sorted by panel and x."""
    grid = grid_values(manifest)
    if key not in grid:
        raise ValueError(f"grid key {key!r}: not in this sweep; allowed: {', '.join(grid)}")
    numeric = axis_scale(grid[key]) != "category"
    index = {_key(v): i for i, v in enumerate(grid[key])}
    points = {int(e["point"]): e.get("values", {}) for e in manifest.get("points") or []}
    missing = sorted(set(table.point.astype(int)) - set(points))
    if missing:
        raise ValueError(f"point {missing[0]}: not in the manifest's points")
    values = [points[int(p)][key] for p in table.point]
    out = table.assign(
        value=[value_label(v) for v in values],
        x=[float(v) if numeric else float(index[_key(v)]) for v in values],
        panel=[", ".join(f"{k} = {value_label(v)}" for k, v in points[int(p)].items() if k != key)
               for p in table.point])
    order = {p: i for i, p in enumerate(dict.fromkeys(out.panel))}
    return out.sort_values(["panel", "x"], key=lambda s: s.map(order) if s.name == "panel"
                           else s, kind="stable").reset_index(drop=True)


def final_risk_table(summary: pd.DataFrame, manifest: dict, key: str) -> pd.DataFrame:
    """What the final-risk plot against grid key ``key`` draws: one row per (grid point, task,
    paradigm) of a sweep summary (``report.summary.final_vs_initial`` with ``point``, or task
    labels ``<task>@p<point>``).

    Returns
    -------
    DataFrame with columns panel (the other grid keys' values), value, x (see ``_against``),
    point, task, paradigm, metric, n_seeds, final, final_low, final_high (the risk at the last
    iteration: mean and 95% Student-t interval over seeds, in the metric's units).

    Raises
    ------
    ValueError
        If ``key`` is not a grid key of the manifest's sweep.
    """
    cols = ["panel", "value", "x", "point", "task", "paradigm", "metric", "n_seeds", "final",
            "final_low", "final_high"]
    return _against(unlabel_points(summary), manifest, key)[cols]


def verdict_table(profile: pd.DataFrame, manifest: dict, key: str) -> pd.DataFrame:
    """What the verdict chart against grid key ``key`` draws: one row per (grid point, task,
    paradigm, definition) of a sweep's collapse profile (``profile.collapse_profile`` with
    ``point``, or task labels ``<task>@p<point>``).

    Returns
    -------
    DataFrame with columns panel, value, x (see ``_against``), point, task, paradigm,
    definition (1..8), verdict (one of ``VERDICTS``).

    Raises
    ------
    ValueError
        If ``key`` is not a grid key of the manifest's sweep.
    """
    cols = ["panel", "value", "x", "point", "task", "paradigm", "definition", "verdict"]
    out = _against(unlabel_points(profile), manifest, key)[cols]
    return out.assign(definition=out.definition.astype(int))


def _span(values: pd.Series) -> str:
    v = sorted(set(values.dropna().astype(int)))
    return ", ".join(map(str, v)) + (" (by grid point)" if len(v) > 1 else "")


def error_control(profile: pd.DataFrame) -> str:
    """One line on how a profile's verdicts were decided, from its ``alpha``, ``n_seeds`` and
    ``last_iteration`` columns ('' if they are absent)."""
    if not {"alpha", "n_seeds", "last_iteration"} <= set(profile.columns) or profile.empty:
        return ""
    alpha = ", ".join(f"{a:g}" for a in sorted(set(profile.alpha.dropna())))
    return (f"one-sided tests per definition (docs/profile.md), decided at family-wise "
            f"α = {alpha} over every verdict of the sweep (Holm); seeds: "
            f"{_span(profile.n_seeds)}; horizon: iteration {_span(profile.last_iteration)}")
