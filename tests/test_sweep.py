"""Sweeps (issue 6, item 2): a grid of studies into one store; the same numbers as separate runs,
whichever executor ran them, after any interruption; bad grids are one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.config import load_study
from modelcollapse.engine import load_sweep, run_study
from modelcollapse.results.checkpoint import CHECKPOINT_DIR
from modelcollapse.results.store import COLUMNS, load_results, write_run

SWEEP = """\
name: grid-test
task: gaussian
task_params: {n_features: 2, n_test: 30}
paradigms: [replace, accumulate]
n_iterations: 5
n_seeds: 3
grid:
  task_params.n_samples: [15, 40]
  paradigms: [[replace, accumulate], [accumulate-subsample, {name: mix, real_fraction: 0.5}]]
"""
POINTS = [("task_params.n_samples=15", "paradigms=[replace, accumulate]"),
          ("task_params.n_samples=15",
           "paradigms=[accumulate-subsample, {name: mix, real_fraction: 0.5}]"),
          ("task_params.n_samples=40", "paradigms=[replace, accumulate]"),
          ("task_params.n_samples=40",
           "paradigms=[accumulate-subsample, {name: mix, real_fraction: 0.5}]")]


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categories as strings (a sweep's categories span all its points)."""
    df = df.copy()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(str)
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "grid.yaml"
    path.write_text(SWEEP)
    return path


@pytest.fixture(scope="module")
def local1(sweep_file) -> Path:
    out = sweep_file.parent / "jobs1"
    res = _invoke("sweep", sweep_file, "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return out


def test_sweep_equals_separate_runs_of_each_point(sweep_file, local1, tmp_path):
    df = load_results(local1)
    assert list(df.columns) == COLUMNS + ["point", "grid.task_params.n_samples", "grid.paradigms"]
    assert str(df["grid.task_params.n_samples"].dtype) == "int64"
    assert sorted(df.point.unique()) == [0, 1, 2, 3]
    manifest = json.loads((local1 / "manifest.json").read_text())
    assert len(manifest["points"]) == 4 and manifest["files"]["results.parquet"]["sha256"]
    for k, sets in enumerate(POINTS):
        base = tmp_path / "base.yaml"
        base.write_text(SWEEP.split("grid:")[0])
        spec = load_study(str(base), list(sets))
        assert manifest["points"][k]["study_hash"] == __import__(
            "modelcollapse.config", fromlist=["study_hash"]).study_hash(spec)
        write_run(tmp_path / f"p{k}", run_study(spec), {})
        single = load_results(tmp_path / f"p{k}")
        part = df[df.point == k]
        assert (part["grid.task_params.n_samples"] == spec.tasks[0].task_params["n_samples"]).all()
        pd.testing.assert_frame_equal(_plain(part[COLUMNS]), _plain(single))
    assert not (local1 / CHECKPOINT_DIR).exists()
    assert _invoke("validate", local1).exit_code == 0


def test_sweep_summary_and_profile_are_by_grid_point(local1):
    """A sweep directory is analysable: sweep writes summary.csv and profile.csv with one
    block per grid point (its grid.<key> columns), each point profiled with its own specs and
    its paradigms only; the summary / profile commands read it (they used to fail with
    'Index contains duplicate entries')."""
    results = load_results(local1)
    for name in ("summary.csv", "profile.csv"):
        table = pd.read_csv(local1 / name)
        assert {"point", "grid.task_params.n_samples"} <= set(table.columns)
        for point, rows in table.groupby("point"):
            assert set(rows.paradigm) == set(results[results.point == point].paradigm)
    profile = pd.read_csv(local1 / "profile.csv")
    assert len(profile) == 4 * 2 * 8
    # the points' own specs: the variance metric (Def. 4) is decided, not "no variance metric"
    assert (profile[profile.definition == 4].verdict != "not_applicable").all()
    summary = pd.read_csv(local1 / "summary.csv")
    by_point = summary.set_index(["point", "paradigm"]).initial
    assert by_point.loc[(0, "replace")] != by_point.loc[(2, "replace")]  # n = 15 vs n = 40
    for command in ("summary", "profile"):
        res = _invoke(command, local1)
        assert res.exit_code == 0, res.output
        assert "point 3" in res.stdout


def test_sweep_report_and_ledger_are_by_grid_point(local1, tmp_path):
    """report and ledger read a sweep directory as one run whose tasks are <task>@p<point>
    (the ledger no longer averages across grid points)."""
    res = _invoke("report", local1)
    assert res.exit_code == 0, res.output
    page = (local1 / "report.html").read_text()
    assert 'id="points"' in page and "gaussian-synthetic@p3" in page
    out = tmp_path / "ledger.csv"
    res = _invoke("ledger", local1, "--csv", out)
    assert res.exit_code == 0, res.output
    ledger = pd.read_csv(out)
    assert set(ledger.task) == {f"gaussian-synthetic@p{k}" for k in range(4)}
    first = ledger[ledger.iteration == 0].set_index(["task", "paradigm"]).real
    assert first.loc[("gaussian-synthetic@p0", "replace")] == 15
    assert first.loc[("gaussian-synthetic@p2", "replace")] == 40


def test_jobs_do_not_change_results(sweep_file, local1):
    out = sweep_file.parent / "jobs2"
    res = _invoke("sweep", sweep_file, "--out", out, "--jobs", "2", "-q")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(load_results(out), load_results(local1))


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (pip install 'modelcollapse[ray]')")
def test_ray_executor_gives_the_same_results(sweep_file, local1):
    """A local Ray instance with 2 CPUs, started and shut down by the executor."""
    import ray

    out = sweep_file.parent / "ray"
    res = _invoke("sweep", sweep_file, "--out", out, "--executor", "ray", "--jobs", "2", "-q")
    assert res.exit_code == 0, res.output
    assert not ray.is_initialized()  # shut down again
    pd.testing.assert_frame_equal(load_results(out), load_results(local1))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"]["kind"] == "ray"


def _one_line(res, *needles):
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("grid, needles", [
    ("  task_params.n_sample: [10, 20]\n", ["grid.task_params.n_sample", "unknown field"]),
    ("  n_seeds: [2, 0]\n", ["grid.n_seeds = 0", "n_seeds"]),
    ("  paradigms: [[replace], [nonsense]]\n", ["grid.paradigms", "nonsense", "allowed"]),
    ("  n_seeds: 3\n", ["grid.n_seeds", "non-empty list"]),
    ("  seed: [0, 0]\n", ["same study"]),
])
def test_bad_grid_is_one_line_and_writes_nothing(tmp_path, grid, needles):
    path = tmp_path / "bad.yaml"
    path.write_text(SWEEP.split("grid:")[0] + "grid:\n" + grid)
    out = tmp_path / "out"
    _one_line(_invoke("sweep", path, "--out", out), *needles)
    assert not out.exists()


def test_missing_grid_and_bad_options(tmp_path):
    path = tmp_path / "nogrid.yaml"
    path.write_text(SWEEP.split("grid:")[0])
    _one_line(_invoke("sweep", path, "--out", tmp_path / "o"), "grid")
    _one_line(_invoke("sweep", tmp_path / "missing.yaml"), "not found")
    good = tmp_path / "good.yaml"
    good.write_text(SWEEP)
    _one_line(_invoke("sweep", good, "--executor", "dask"), "--executor", "local, ray")
    _one_line(_invoke("sweep", good, "--address", "auto"), "--address")
    _one_line(_invoke("sweep", good, "--jobs", "0"), "--jobs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.yaml", "nogrid.yaml"]


def test_grid_over_list_items_and_extends(tmp_path):
    (tmp_path / "base.yaml").write_text(SWEEP.split("grid:")[0])
    path = tmp_path / "child.yaml"
    path.write_text("extends: base.yaml\nname: child\ngrid:\n"
                    "  tasks.0.task_params.covariance_estimator: [mle, unbiased]\n")
    sweep = load_sweep(str(path), ["n_seeds=2"])
    assert [s.tasks[0].task_params["covariance_estimator"] for s in sweep.points] == [
        "mle", "unbiased"]
    assert all(s.n_seeds == 2 for s in sweep.points) and sweep.name == "child"


def test_sweep_resume_after_sigkill(tmp_path):
    """Killed after some units finished, resumed: the uninterrupted sweep's results."""
    sweep_file = tmp_path / "long.yaml"  # units of ~0.1 s: the kill lands mid-sweep
    sweep_file.write_text(SWEEP.replace("n_iterations: 5", "n_iterations: 200"))
    reference = tmp_path / "reference"
    assert _invoke("sweep", sweep_file, "--out", reference, "-q").exit_code == 0
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "modelcollapse", "sweep", str(sweep_file),
                             "--out", str(out), "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if len(list((out / CHECKPOINT_DIR).glob("*/result.npz"))) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    assert not (out / "results.parquet").exists()
    other = tmp_path / "other.yaml"  # another grid may not resume it
    other.write_text(sweep_file.read_text().replace("[15, 40]", "[15, 41]"))
    _one_line(_invoke("sweep", other, "--out", out, "--resume", "-q"), "different sweep")
    res = _invoke("sweep", sweep_file, "--out", out, "--resume", "-q")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(load_results(out), load_results(reference))


def test_units_are_concatenated_with_categorical_columns_as_their_strings_would_be():
    """``results.store.concat_frames`` keeps the categorical columns categorical (the sorted
    union of the units' categories) and equals the concatenation of plain strings made
    categorical: the store's bytes do not depend on it."""
    from modelcollapse.results.store import CATEGORICAL, concat_frames

    a = pd.DataFrame({"study": pd.Categorical(["s", "s"]), "task": pd.Categorical(["b", "b"]),
                      "family": pd.Categorical(["f", "f"]), "paradigm": pd.Categorical(["x", "x"]),
                      "metric": pd.Categorical(["m2", "m1"]), "value": [1.0, 2.0],
                      "status": pd.Categorical(["ok", "ok"])})
    b = a.assign(task=pd.Categorical(["a", "a"]), metric=pd.Categorical(["m3", "m1"]),
                 status=pd.Categorical(["zero_variance", "ok"]))
    got = concat_frames([a, b])
    plain = pd.concat([f.astype({c: str for c in CATEGORICAL}) for f in (a, b)],
                      ignore_index=True)
    expected = plain.astype({c: "category" for c in CATEGORICAL})
    pd.testing.assert_frame_equal(got, expected)
    assert list(got.metric.cat.categories) == ["m1", "m2", "m3"]
