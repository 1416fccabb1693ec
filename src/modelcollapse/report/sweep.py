"""A sweep store seen as one run whose tasks are (grid point, task) pairs, so that every
reader of a run (report, ledger) works on a sweep directory unchanged."""

from __future__ import annotations

import pandas as pd

__all__ = ["points_as_tasks", "point_label"]


def point_label(task: str, point: int) -> str:
    """The task label of ``task`` at grid point ``point``: ``"<task>@p<point>"``."""
    return f"{task}@p{point}"


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
    out = results.drop(columns=[c for c in results.columns
                                if c == "point" or str(c).startswith("grid.")])
    out["task"] = [point_label(t, p) for t, p in zip(results.task.astype(str), results.point)]
    specs, risks = {}, {}
    for entry in manifest.get("points") or []:
        k = int(entry["point"])
        for task, spec in (entry.get("profile_specs") or {}).items():
            specs[point_label(task, k)] = spec
        for task, risk in (entry.get("risk_metrics") or {}).items():
            risks[point_label(task, k)] = risk
    return out, specs, risks
