"""The run's fixed cost (issue 13): the figures are drawn by processes started with the run (so
matplotlib loads while the chains run) with the same PNG bytes as in process, and the console
script leaves without the interpreter's teardown but with all its output and exit status."""

import json
import os
import subprocess
import sys
import threading

import pytest

import modelcollapse
from modelcollapse import cli
from modelcollapse.engine.executors import worker_pool
from modelcollapse.report import figures, plots
from modelcollapse.results.store import verify_run

STUDY = {"name": "fixed-cost", "task": "gaussian",
         "task_params": {"dataset": "synthetic", "n_features": 3, "n_samples": 40},
         "paradigms": ["replace", "accumulate"], "n_iterations": 3, "n_seeds": 3}


def _env():
    """The child's environment, with block-buffered output (PYTHONUNBUFFERED would hide a
    missing flush before ``os._exit``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def test_a_fresh_process_draws_the_figures_in_its_workers_with_the_same_bytes(tmp_path):
    """Drawn early, from memory, by the workers started with the run: the bytes of the PNGs
    drawn here from the stored results."""
    code = ("import json, sys, modelcollapse\n"
            "seen = []\n"
            "def hear(p):\n"
            "    if p.stage == 'figures': seen.append((p.done, p.total))\n"
            "modelcollapse.run(json.loads(sys.argv[1]), out=sys.argv[2], progress=hear)\n"
            "print('matplotlib.figure' in sys.modules, seen[0][0] == seen[0][1] > 0)\n")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(STUDY), str(tmp_path / "a")],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    # this process never imported matplotlib, and when the report was written every figure
    # drawn from the results in memory already carried the digest of the stored results
    assert proc.stdout.strip() == "False True"
    modelcollapse.run(STUDY, out=tmp_path / "b")  # here matplotlib is loaded: drawn in process
    names = sorted(p.name for p in (tmp_path / "a" / "plots").iterdir())
    assert names and names == sorted(p.name for p in (tmp_path / "b" / "plots").iterdir())
    for name in names:
        assert (tmp_path / "a" / "plots" / name).read_bytes() == \
            (tmp_path / "b" / "plots" / name).read_bytes()


def test_figure_workers_are_not_started_where_matplotlib_is_loaded():
    import matplotlib.figure  # noqa: F401

    with figures.figure_workers(2) as pool:
        assert pool is None


def test_a_failing_figure_in_a_started_pool_fails_and_writes_nothing(tmp_path):
    bad = figures.FigureJob(tmp_path / "x.png", plots.task_figure, ("not a frame", "a", {}))
    with worker_pool(1) as pool:
        with pytest.raises(AttributeError):
            figures.draw_figures([bad], pool=pool)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, code, stream, text", [
    (["presets", "--format", "csv"], 0, "stdout", "kazdan2024-gaussian"),
    (["run", "no-such-study.yaml"], 2, "stderr", "error: "),
    (["--version"], 0, "stdout", "modelcollapse "),
])
def test_the_console_script_keeps_its_output_and_exit_status(tmp_path, args, code, stream,
                                                             text):
    proc = subprocess.run([sys.executable, "-m", "modelcollapse", *args], cwd=tmp_path,
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == code
    out = getattr(proc, stream)
    assert text in out and out.endswith("\n")


def test_a_run_through_the_console_script_is_whole(tmp_path):
    study = tmp_path / "s.json"
    study.write_text(json.dumps(STUDY))
    proc = subprocess.run([sys.executable, "-m", "modelcollapse", "run", str(study), "--out",
                           str(tmp_path / "r")], cwd=tmp_path, capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / "r") in proc.stdout
    assert verify_run(tmp_path / "r") == []  # sealed: every file as its checksum says


def test_leave_exits_normally_while_something_still_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with pytest.raises(SystemExit) as exc:
            cli._leave(3)
        assert exc.value.code == 3
    finally:
        stop.set()
        thread.join()
    with pytest.raises(SystemExit) as exc:
        cli._leave("a message")
    assert exc.value.code == "a message"
