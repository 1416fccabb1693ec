"""Resume: a run killed with SIGKILL at random points and resumed each time gives exactly the
results of an uninterrupted run (issue 6, item 1); finished units are never recomputed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.config import load_study
from modelcollapse.engine.study import run_study
from modelcollapse.engine.unit import compute_unit
from modelcollapse.results.checkpoint import CHECKPOINT_DIR, RunCheckpoints, UnitCheckpoint
from modelcollapse.results.store import load_results, write_run

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:  # pragma: no cover - CI installs the torch extra
    HAVE_TORCH = False

ANALYTIC = """\
  - task: gaussian
    task_params: {n_features: 3, n_samples: 30, n_test: 40}
  - task: kde
    task_params: {n_features: 2, n_samples: 25, n_test: 40}
"""
VAE = """\
  - task: vae
    task_params: {dataset: digits, n_samples: 80, n_test: 40, hidden: 16, latent: 2, epochs: 2,
                  init: warm_start, sample_metrics: false}
"""
STUDY = """\
name: resume-test
tasks:
{tasks}paradigms: {paradigms}
n_iterations: {n_iterations}
n_seeds: 3
"""
ROWS_KEPT = "[accumulate-subsample, {name: mix, real_fraction: 0.5, fresh_real: true}]"
ALL = "[replace, accumulate, accumulate-subsample, {name: mix, real_fraction: 0.5, fresh_real: true}]"


def _write_study(tmp_path: Path, n_iterations: int = 12, vae: bool = HAVE_TORCH,
                 tasks: str = ANALYTIC, paradigms: str = ALL) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(tasks=tasks + (VAE if vae else ""), paradigms=paradigms,
                                 n_iterations=n_iterations))
    return path


def _reference(study_file: Path, tmp_path: Path) -> tuple[pd.DataFrame, float]:
    """The uninterrupted run (in this process), read back as the store writes it, and the
    seconds its units took."""
    spec = load_study(str(study_file))
    start = time.perf_counter()
    results = run_study(spec)
    seconds = time.perf_counter() - start
    write_run(tmp_path / "reference", results, {})
    return load_results(tmp_path / "reference"), seconds


def _progress(run_dir: Path) -> set:
    """Committed checkpoint files and their versions."""
    out = set()
    for name in ("state.npz", "result.npz"):
        for path in (run_dir / CHECKPOINT_DIR).glob(f"*/{name}"):
            try:
                out.add((str(path), path.stat().st_mtime_ns))
            except FileNotFoundError:  # replaced or removed meanwhile
                pass
    return out


def _start(study_file: Path, run_dir: Path, jobs: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "modelcollapse", "run", str(study_file), "--out", str(run_dir),
         "--no-plots", "-q", "--resume", "--jobs", str(jobs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


KDE = """\
  - task: kde
    task_params: {n_features: 4, n_samples: 300, n_test: 1000}
"""


def _partial_units(run_dir: Path) -> set[str]:
    """Units with a checkpointed chain state but no result yet."""
    return {p.parent.name for p in (run_dir / CHECKPOINT_DIR).glob("*/state.npz")
            if not (p.parent / "result.npz").exists()}


def test_sigkill_at_random_points_then_resume_gives_identical_results(tmp_path):
    # an analytic family (KDE: the pool rows are checkpointed as segments) and a torch family
    # (VAE, warm start: the network is checkpointed), with paradigms that keep rows
    # (accumulate-subsample: the accumulated pool; mix: the latest batch)
    study_file = _write_study(tmp_path, n_iterations=12, tasks=KDE, paradigms=ROWS_KEPT)
    run_dir = tmp_path / "run"
    expected, seconds = _reference(study_file, tmp_path)
    # kill times: after this process's first new checkpoint, a random share of the run's
    # compute time (so that about 10 kills would spread over the whole run on any machine)
    rng = np.random.default_rng(20261122)  # fixed: the kill times are reproducible
    kills, killed_in = 0, set()
    for attempt in range(12):
        # every other attempt runs units in 2 worker processes (orphaned by the kill)
        proc = _start(study_file, run_dir, jobs=1 + attempt % 2)
        before = _progress(run_dir)
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            if _progress(run_dir) - before:  # this process committed a new checkpoint
                time.sleep(rng.uniform(0.05, 0.15) * seconds)
                break
            time.sleep(0.02)
        if proc.poll() is not None:
            break  # finished before it could be killed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        killed_in |= _partial_units(run_dir)
        assert not (run_dir / "results.parquet").exists()
        if kills >= 5 and (not HAVE_TORCH or any(u.startswith("0-1-") for u in killed_in)):
            break  # >= 5 kills, at least one inside a VAE unit
    print("kills", kills, "in units", sorted(killed_in))
    assert kills >= 5, f"the run finished after {kills} kills: make the study longer"
    # the final, uninterrupted resume (in this process: saves the imports)
    res = _invoke("run", study_file, "--out", run_dir, "--no-plots", "-q", "--resume")
    assert res.exit_code == 0, res.output
    assert not (run_dir / CHECKPOINT_DIR).exists()  # removed once the results are written
    resumed = load_results(run_dir)
    assert set(resumed.family.unique()) == {"kde"} | ({"vae"} if HAVE_TORCH else set())
    pd.testing.assert_frame_equal(resumed, expected)
    res = CliRunner().invoke(app, ["validate", str(run_dir)])
    assert res.exit_code == 0, res.output


def test_finished_units_are_not_recomputed_and_partial_units_continue(tmp_path, monkeypatch):
    """In process: a run stopped (KeyboardInterrupt) after some units and iterations resumes
    with only the missing iterations computed, and gives the uninterrupted results."""
    spec = load_study(str(_write_study(tmp_path, n_iterations=6, vae=False,
                                       paradigms="[replace, accumulate, accumulate-subsample]")))
    expected = run_study(spec)
    ck = RunCheckpoints(tmp_path / "run", "run", "h", max_overhead=1e9)  # every iteration
    ck.start()
    calls = []

    def stop_at(n):
        def on_iteration(t):
            calls.append(t)
            if len(calls) == n:
                raise KeyboardInterrupt
        return on_iteration

    with pytest.raises(KeyboardInterrupt):  # 2 units done, the third stopped in iteration 2
        run_study(spec, checkpoints=ck, on_iteration=stop_at(6 + 6 + 3))
    assert len(list(ck.directory.glob("*/result.npz"))) == 2
    state, _ = ck.unit(0, 0, 2).load_state()
    assert int(state["n_done"]) == 2  # stopped in iteration 2: iterations 0, 1 (+ batch) saved

    import modelcollapse.engine.loop as loop

    fits = []
    real_run_chain = loop.run_chain

    def counting(task, paradigm, **kw):
        chain = real_run_chain(task, paradigm, **kw)
        fits.append(chain.status.shape[0])
        return chain
    monkeypatch.setattr("modelcollapse.engine.unit.run_chain", counting)
    calls.clear()
    resumed = run_study(spec, checkpoints=ck, on_iteration=calls.append)
    pd.testing.assert_frame_equal(resumed, expected)
    assert len(fits) == len(spec.tasks) * len(spec.paradigms) - 2  # finished units: loaded
    assert len(calls) == len(spec.tasks) * len(spec.paradigms) * spec.n_iterations  # progress


def test_unit_without_state_protocol_reruns_from_iteration_zero(tmp_path):
    """A model that cannot be checkpointed is re-run from iteration 0: still identical."""
    spec = load_study(str(_write_study(tmp_path, n_iterations=5, vae=False)))
    expected = compute_unit(spec, 0, 0)
    ck = UnitCheckpoint(tmp_path / "unit", max_overhead=1e9)
    from modelcollapse.families.gaussian import Gaussian

    get_state = Gaussian.get_state
    try:
        Gaussian.get_state = lambda self: (_ for _ in ()).throw(NotImplementedError)
        with pytest.raises(KeyboardInterrupt):
            compute_unit(spec, 0, 0, checkpoint=ck,
                         on_iteration=lambda t: (_ for _ in ()).throw(KeyboardInterrupt)
                         if t == 3 else None)
    finally:
        Gaussian.get_state = get_state
    assert ck.load_state() is None
    again = compute_unit(spec, 0, 0, checkpoint=ck)
    for name, values in expected.values.items():
        np.testing.assert_array_equal(again.values[name], values)


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line(res, *needles):
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_resume_refuses_another_study_and_plain_run_refuses_a_partial_dir(tmp_path):
    study_file = _write_study(tmp_path, n_iterations=3, vae=False)
    run_dir = tmp_path / "run"
    RunCheckpoints(run_dir, "run", "0123456789abcdef").start()  # "another study" was killed
    _one_line(_invoke("run", study_file, "--out", run_dir, "--resume", "-q", "--no-plots"),
              "different study")
    _one_line(_invoke("run", study_file, "--out", run_dir, "-q", "--no-plots"), "--resume")
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_DIR]  # nothing written


def test_resume_without_partial_run_runs_and_finished_run_is_not_resumed(tmp_path):
    study_file = _write_study(tmp_path, n_iterations=3, vae=False)
    run_dir = tmp_path / "run"
    res = _invoke("run", study_file, "--out", run_dir, "--resume", "-q", "--no-plots")
    assert res.exit_code == 0, res.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert not (run_dir / CHECKPOINT_DIR).exists() and manifest["files"]
    _one_line(_invoke("run", study_file, "--out", run_dir, "--resume", "-q", "--no-plots"),
              "already holds finished results")


def test_checkpoint_files_load_without_pickle(tmp_path):
    """Checkpoints are .npz/.npy/.json only, readable with allow_pickle=False."""
    spec = load_study(str(_write_study(tmp_path, n_iterations=4, vae=False)))
    ck = RunCheckpoints(tmp_path / "run", "run", "h", max_overhead=1e9)
    ck.start()
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, checkpoints=ck, on_iteration=lambda t: (_ for _ in ()).throw(
            KeyboardInterrupt) if t == 2 else None)
    files = [p for p in ck.directory.rglob("*") if p.is_file()]
    assert files and {p.suffix for p in files} <= {".npz", ".npy", ".json"}
    for path in files:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                assert all(data[k].dtype != object for k in data.files)
        elif path.suffix == ".npy":
            assert np.load(path, allow_pickle=False).dtype != object
