"""Sweeps: a grid over any study field, run as one results store.

A sweep file is a study file (any study field, ``extends:`` a preset or file) plus ``grid:``, a
mapping from a study field -- written as for ``--set``, e.g. ``task_params.n_samples``,
``paradigms``, ``seed``, ``tasks.0.task_params.covariance_estimator`` -- to a list of values::

    extends: kazdan2024-gaussian
    n_iterations: 20
    grid:
      task_params.n_samples: [50, 100, 200]
      paradigms: [[replace], [accumulate]]

The points are the Cartesian product of the lists (in file order, the last key varying
fastest); each is the base study with those assignments, validated like ``--set``.  Every unit
(point, task, paradigm) is a pure function of its study, so results do not depend on the executor
(``engine.executors``) or on interruptions (``--resume``).

Results: one table with the store's columns (``results.COLUMNS``), plus ``point`` (int32, the
point's index in the manifest's ``points``) and one column ``grid.<key>`` per grid key holding
the point's value (int64 / float64 / bool when every value of the key is one, else a category
of strings: the value itself or its JSON text, e.g. ``["replace"]``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from ..config import (NAME_RULE, Study, StudyError, _first_error, _read, apply_override,
                      name_problem, study_folders, study_hash, validate_study)
from ..registry import RegistryError
from ..results.store import COLUMNS, concat_frames
from .study import run_units

__all__ = ["Sweep", "load_sweep", "run_sweep", "sweep_columns", "MAX_POINTS"]

#: the most grid points a sweep may have (the product of its grid lists' lengths)
MAX_POINTS = 10_000


@dataclass
class Sweep:
    """A validated sweep: ``points[k]`` is the study of point k, ``values[k]`` its grid values."""

    name: str
    grid: dict[str, list]
    values: list[dict[str, Any]]
    points: list[Study]

    @property
    def hash(self) -> str:
        """SHA-256 (16 hex digits) of the points' study hashes, in order."""
        text = json.dumps([study_hash(s) for s in self.points])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def manifest_points(self) -> list[dict]:
        return [{"point": k, "values": v, "study_hash": study_hash(s), "study": s.resolved()}
                for k, (v, s) in enumerate(zip(self.values, self.points))]


def _yaml_value(value: Any) -> str:
    """``value`` as text that ``yaml.safe_load`` (what ``--set`` uses) reads back unchanged."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9)
    return text[:-len("\n...\n")] if text.endswith("\n...\n") else text.rstrip("\n")


def _build(base: dict, assignments: list[tuple[str, Any]], folders=None) -> Study:
    """The study of one point (raises StudyError with one line); relative data files and
    ``module:Class`` families are looked up in ``folders`` (``config.study_folders``)."""
    data = copy.deepcopy(base)
    if data.get("task") is not None and any(k.startswith("tasks.") for k, _ in assignments):
        data["tasks"] = [{"task": data.pop("task"),
                          "task_params": data.pop("task_params", None) or {}}]
    for key, value in assignments:
        apply_override(data, f"{key}={_yaml_value(value)}")
    try:
        return validate_study(data, folders)
    except ValidationError as err:
        message = _first_error(err, model=Study)
        if data.get("task") is not None and message.startswith("tasks.0."):
            message = message[len("tasks.0."):]
        raise StudyError(message) from None
    except RegistryError as err:
        raise StudyError(str(err)) from None


def _clean(message: str) -> str:
    return message.replace("--set ", "")


def load_sweep(source: str, overrides: list[str] | tuple[str, ...] = ()) -> Sweep:
    """Read a sweep file, apply ``key=value`` overrides to its base study, validate every point.

    The file is read as a study file (``config``: at most 1 MiB of UTF-8 YAML, no repeated
    keys); the sweep's ``name`` (default: the file's stem) names its run directory, so it
    follows the study-name rule (``config.NAME_RULE``); at most ``MAX_POINTS`` points.

    Raises
    ------
    StudyError
        One line: the grid key (and value) or point at fault and what is allowed.
    """
    if not Path(source).is_file():
        raise StudyError(f"sweep file {source!r} not found")
    data = _read(source)
    grid = data.pop("grid", None)
    if not isinstance(grid, dict) or not grid:
        raise StudyError(f"{source}: grid: required, a mapping of study fields to lists of "
                         "values, e.g. grid: {task_params.n_samples: [50, 100]}")
    for key, values in grid.items():
        if not isinstance(key, str) or not key or key.startswith("grid"):
            raise StudyError(f"grid: key {key!r} is not a study field (write it as for --set, "
                             "e.g. task_params.n_samples)")
        if not isinstance(values, list) or not values:
            raise StudyError(f"grid.{key}: must be a non-empty list of values, got {values!r}")
    n_points = 1
    for values in grid.values():
        n_points *= len(values)
    if n_points > MAX_POINTS:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        raise StudyError(f"grid: {n_points} points ({sizes}); a sweep has at most {MAX_POINTS}: "
                         "split it into several sweeps")
    for assignment in overrides:
        apply_override(data, assignment)
    name = data.get("name") or Path(source).stem
    if not data.get("name") and name_problem(name) is not None:
        raise StudyError(f"name: the sweep file's name {name!r} cannot name the run directory "
                         f"(allowed: {NAME_RULE}); give the sweep a name: field")
    data.setdefault("name", name)
    if name_problem(data["name"]) is not None:
        raise StudyError(f"name: {name_problem(data['name'])}")
    folders = study_folders(source)
    keys = list(grid)
    points, values = [], []
    seen: dict[str, int] = {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        assignments = list(zip(keys, combo))
        try:
            study = _build(data, assignments, folders)
        except StudyError as exc:
            raise StudyError(_blame(data, assignments, len(points), exc, folders)) from None
        h = study_hash(study)
        if h in seen:
            raise StudyError(f"grid: points {seen[h]} and {len(points)} are the same study "
                             f"({_show(assignments)}); remove the repeated value")
        seen[h] = len(points)
        points.append(study)
        values.append(dict(assignments))
    return Sweep(str(name), grid, values, points)


def _show(assignments) -> str:
    return ", ".join(f"{k}={_yaml_value(v)}" for k, v in assignments)


def _blame(base: dict, assignments, index: int, exc: StudyError, folders=None) -> str:
    """One line naming what makes the study of a point invalid: the base study itself (the
    same error without any grid value), the grid key whose value alone does, or the point."""
    try:
        _build(base, [], folders)
    except StudyError as alone:
        if str(alone) == str(exc):
            return _clean(str(exc))
    for key, value in assignments:
        try:
            _build(base, [(key, value)], folders)
        except StudyError:
            return f"grid.{key} = {_yaml_value(value)}: {_clean(str(exc))}"
    return f"grid point {index} ({_show(assignments)}): {_clean(str(exc))}"


def sweep_columns(sweep: Sweep) -> dict[str, tuple[str, list]]:
    """Column name -> (dtype, value per point) for the grid keys (see module docstring)."""
    out = {}
    for key in sweep.grid:
        vals = [v[key] for v in sweep.values]
        if all(isinstance(v, bool) for v in vals):
            dtype = "bool"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            dtype = "int64"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            dtype, vals = "float64", [float(v) for v in vals]
        else:
            dtype = "category"
            vals = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in vals]
        out[f"grid.{key}"] = (dtype, vals)
    return out


def run_sweep(sweep: Sweep, *, executor=None, checkpoints=None, on_iteration=None,
              on_unit=None) -> pd.DataFrame:
    """Run every point of ``sweep``; the long table of all of them (see module docstring).

    ``frame.attrs["profile_specs"]`` has, per point, the task label -> profile spec map, and
    ``frame.attrs["provenance"]`` the task label -> ``Task.provenance`` map.
    """
    ship = getattr(executor, "shares_files", True) if executor is not None else True
    results = run_units(sweep.points, executor=executor, checkpoints=checkpoints,
                        on_iteration=on_iteration, on_unit=on_unit, ship_checkpoints=ship)
    frames, specs = [], [dict() for _ in sweep.points]
    origins: list[dict] = [dict() for _ in sweep.points]
    columns = sweep_columns(sweep)
    units = [(k, i, j) for k, s in enumerate(sweep.points) for i in range(len(s.tasks))
             for j in range(len(s.paradigms))]
    for (k, _, _), result in zip(units, results):
        frame = result.frame()
        frame["point"] = np.int32(k)
        for name, (_, vals) in columns.items():
            frame[name] = vals[k]
        frames.append(frame)
        specs[k][result.labels["task"]] = result.profile_spec
        origins[k][result.labels["task"]] = result.provenance
    frame = concat_frames(frames)
    for name, (dtype, _) in columns.items():
        frame[name] = frame[name].astype(dtype)
    frame = frame[COLUMNS + ["point", *columns]]
    frame.attrs["profile_specs"] = specs
    frame.attrs["provenance"] = origins
    return frame
