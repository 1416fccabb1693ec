"""Resume: a run killed with SIGKILL at chosen writes (``MODELCOLLAPSE_TEST_KILL_AT``, see
``results.store``) -- inside a unit, between units with worker processes, between
results.parquet and manifest.json, during the checkpoint cleanup, the summary, the profile, the
report and the seal -- is refused by a plain run, reported unfinished by ``validate``, and
completed by ``--resume`` to the byte-identical files of an uninterrupted run (issue 6, item 1;
issue 12, findings 4 and 11); finished units are never recomputed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


KDE = """\
  - task: kde
    task_params: {n_features: 4, n_samples: 300, n_test: 1000}
"""
#: (the write to SIGKILL at, --jobs, --plots): at each, the state left must resume byte-identical
KILLS = [
    ("state.npz:3", 1, False),  # inside a unit: a chain state and pool segments committed
    ("result.npz:1", 2, False),  # 2 worker processes: after the first finished unit
    ("results.parquet:1:before", 1, False),  # results in a temporary file, not yet renamed
    ("results.parquet:1", 1, False),  # between results.parquet and manifest.json
    ("manifest.json:1", 1, False),  # results committed (unsealed), checkpoints all there
    (".checkpoints:1", 1, False),  # during the checkpoint cleanup
    ("summary.csv:1", 1, False),  # summary written, profile not
    ("profile.csv:1:before", 1, False),  # during the profile
    ("report.html:1:before", 1, True),  # during the report (plots written)
    ("manifest.json:2:before", 1, True),  # everything written, just before the seal
]
COMPARED = ("results.parquet", "summary.csv", "profile.csv")


def _listing(run_dir: Path) -> list[str]:
    """The files below a run directory (temporary files and the lock left out)."""
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                  if p.is_file() and not p.name.endswith(".tmp")
                  and p.name != ".modelcollapse.lock")


def _killed(args: list, kill_at: str, tmp_path: Path) -> int:
    """Run the CLI in a new process (and session) that SIGKILLs itself at ``kill_at``; kill
    what it leaves (worker processes) and return its exit status."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", MODELCOLLAPSE_TEST_KILL_AT=kill_at)
    with open(tmp_path / "killed.log", "w") as log:  # not a pipe: orphans would hold it open
        proc = subprocess.Popen([sys.executable, "-m", "modelcollapse", *map(str, args)],
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        code = proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the session's workers, if the kill left any
    except ProcessLookupError:
        pass
    return code


@pytest.fixture(scope="module")
def kill_study(tmp_path_factory):
    """The study the kill tests run, and its uninterrupted run (with plots)."""
    root = tmp_path_factory.mktemp("kill")
    study_file = _write_study(root, n_iterations=12, vae=False, tasks=KDE, paradigms=ROWS_KEPT)
    res = _invoke("run", study_file, "--out", root / "reference", "-q")
    assert res.exit_code == 0, res.output
    return study_file, root / "reference"


@pytest.mark.parametrize("kill_at, jobs, plots", KILLS)
def test_sigkill_at_a_chosen_write_then_resume_gives_identical_files(kill_study, tmp_path,
                                                                      kill_at, jobs, plots):
    study_file, reference = kill_study
    run_dir = tmp_path / "run"
    args = ["run", study_file, "--out", run_dir, "-q", "--jobs", jobs,
            "--plots" if plots else "--no-plots"]
    code = _killed(args, kill_at, tmp_path)
    assert code == -signal.SIGKILL, (tmp_path / "killed.log").read_text()
    if kill_at.startswith("state.npz"):
        assert _partial_units(run_dir), "killed inside a unit: its chain state is committed"
    if kill_at.endswith(":before"):  # killed between the write and the rename
        assert list(run_dir.rglob(".*.tmp")), "a stale temporary file is left"
    # a plain run is refused with the hint to resume, and changes nothing
    before = _listing(run_dir)
    _one_line(_invoke(*args), "--resume")
    assert _listing(run_dir) == before
    # validate: unfinished (exit 1), with the hint
    res = _invoke("validate", run_dir)
    assert res.exit_code == 1 and "unfinished" in res.output and "--resume" in res.output, \
        res.output
    # resume completes it: the files of the uninterrupted run, nothing left over
    res = _invoke(*args, "--resume")
    assert res.exit_code == 0, res.output
    for name in COMPARED:
        assert (run_dir / name).read_bytes() == (reference / name).read_bytes(), name
    assert (run_dir / "report.html").is_file() == plots
    assert not (run_dir / CHECKPOINT_DIR).exists() and not list(run_dir.rglob("*.tmp"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["sealed"] is True and sorted(manifest["files"]) == sorted(
        p for p in _listing(run_dir) if p != "manifest.json")
    res = _invoke("validate", run_dir)
    assert res.exit_code == 0 and "valid run" in res.output, res.output
    # and resuming a finished run says so
    res = _invoke(*args, "--resume")
    assert res.exit_code == 0 and "already complete" in res.output, res.output


@pytest.mark.skipif(not HAVE_TORCH, reason="needs the torch extra")
def test_sigkill_inside_a_torch_unit_then_resume_gives_identical_files(tmp_path):
    """A VAE (warm start: the network is checkpointed) killed after its first chain state."""
    study_file = _write_study(tmp_path, n_iterations=6, vae=True, tasks="",
                              paradigms="[accumulate-subsample]")
    args = ["run", study_file, "-q", "--no-plots", "--out"]
    assert _invoke(*args, tmp_path / "reference").exit_code == 0
    run_dir = tmp_path / "run"
    assert _killed([*args, run_dir], "state.npz:1", tmp_path) == -signal.SIGKILL
    assert _partial_units(run_dir)
    res = _invoke(*args, run_dir, "--resume")
    assert res.exit_code == 0, res.output
    for name in COMPARED:
        assert (run_dir / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
    assert _invoke("validate", run_dir).exit_code == 0


def test_sigkill_of_a_sweep_between_results_and_manifest_resumes(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(STUDY.format(tasks=ANALYTIC, paradigms="[replace, accumulate]",
                                 n_iterations=3) + "grid:\n  n_seeds: [2, 3]\n")
    args = ["sweep", grid, "-q", "--no-plots", "--out"]
    assert _invoke(*args, tmp_path / "reference").exit_code == 0
    run_dir = tmp_path / "run"
    assert _killed([*args, run_dir], "results.parquet:1", tmp_path) == -signal.SIGKILL
    _one_line(_invoke(*args, run_dir), "--resume")
    res = _invoke(*args, run_dir, "--resume")
    assert res.exit_code == 0, res.output
    for name in COMPARED:
        assert (run_dir / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
    assert _invoke("validate", run_dir).exit_code == 0
    res = _invoke(*args, run_dir, "--resume")
    assert res.exit_code == 0 and "already complete" in res.output, res.output


def _partial_units(run_dir: Path) -> set[str]:
    """Units with a checkpointed chain state but no result yet."""
    return {p.parent.name for p in (run_dir / CHECKPOINT_DIR).glob("*/state.npz")
            if not (p.parent / "result.npz").exists()}


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


def test_resume_without_partial_run_runs_and_finished_run_is_complete(tmp_path):
    study_file = _write_study(tmp_path, n_iterations=3, vae=False)
    run_dir = tmp_path / "run"
    res = _invoke("run", study_file, "--out", run_dir, "--resume", "-q", "--no-plots")
    assert res.exit_code == 0, res.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert not (run_dir / CHECKPOINT_DIR).exists() and manifest["files"]
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    res = _invoke("run", study_file, "--out", run_dir, "--resume", "-q", "--no-plots")
    assert res.exit_code == 0 and "already complete" in res.output, res.output
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before  # untouched
    # a plain run is refused; a resume of another study is refused
    _one_line(_invoke("run", study_file, "--out", run_dir, "-q", "--no-plots"),
              "already holds results")
    _one_line(_invoke("run", study_file, "--out", run_dir, "--resume", "-q", "--no-plots",
                      "--set", "n_seeds=2"), "different study")


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
