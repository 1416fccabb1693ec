"""The worked examples of docs/guide.md ("Your own model", "Your own data"), run as a new user
runs them: a CSV under replace vs accumulate from the CLI and from Python, a scikit-learn model
by import path, a pip-installed plug-in package found by its entry point, and a sweep analysed
afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = ["--set", "n_seeds=5", "--set", "n_iterations=3"]


def _cli(*args, cwd, env=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "modelcollapse", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_own_data_from_the_cli_then_a_sweep(tmp_path):
    study = EXAMPLES / "own_data.yaml"
    _cli("run", str(study), "--out", "run", "--quiet", *SMALL, cwd=tmp_path)
    run = tmp_path / "run"
    assert (run / "report.html").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    data = manifest["provenance"]["gmm-own_data"]["datasets"]["dataset"]
    assert data["sha256"] == _sha256(EXAMPLES / "own_data.csv")
    summary = pd.read_csv(run / "summary.csv")
    assert set(summary.paradigm) == {"replace", "accumulate"}
    assert set(summary.task) == {"gmm-own_data"}
    # Def. 6 is measured on the file's own class column
    profile = pd.read_csv(run / "profile.csv")
    assert (profile[profile.definition == 6].verdict != "not_applicable").all()

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"extends: {study}\nn_seeds: 5\nn_iterations: 3\n"
                     "grid:\n  task_params.n_samples: [60, 120]\n")
    _cli("sweep", str(sweep), "--out", "sw", "--quiet", cwd=tmp_path)
    for command in ("summary", "profile", "report"):
        _cli(command, "sw", cwd=tmp_path)
    points = pd.read_csv(tmp_path / "sw" / "summary.csv")
    assert sorted(points["grid.task_params.n_samples"].unique()) == [60, 120]
    manifest = json.loads((tmp_path / "sw" / "manifest.json").read_text())
    for point in manifest["points"]:
        origin = point["provenance"]["gmm-own_data"]["datasets"]["dataset"]
        assert origin["sha256"] == _sha256(EXAMPLES / "own_data.csv")


def test_own_data_from_python(tmp_path, monkeypatch):
    import modelcollapse

    monkeypatch.chdir(tmp_path)
    run = modelcollapse.run(str(EXAMPLES / "own_data.yaml"), out=tmp_path / "run",
                            overrides=["n_seeds=5", "n_iterations=3"])
    assert set(run.results.paradigm.astype(str)) == {"replace", "accumulate"}
    again = modelcollapse.open_run(tmp_path / "run")
    pd.testing.assert_frame_equal(run.summary, again.summary)
    assert Path(run.report()).is_file()
    assert "replace" in run._repr_html_()


def test_sklearn_model_by_import_path(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "byo_sklearn_model.py"), "--out", str(tmp_path / "r"),
         "--n-seeds", "5", "--n-iterations", "3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    family = manifest["provenance"]["BayesianGMM-own_data"]["family"]
    assert family["class"] == "byo_sklearn_model:BayesianGMM"
    assert family["sha256"] == _sha256(EXAMPLES / "byo_sklearn_model.py")
    assert (tmp_path / "r" / "report.html").is_file()
    # the same family from the CLI, by import path resolved next to the study file
    (tmp_path / "study.yaml").write_text(
        (EXAMPLES / "own_data.yaml").read_text().replace("family: gmm",
                                                         "family: byo_sklearn_model:BayesianGMM"))
    (tmp_path / "own_data.csv").write_bytes((EXAMPLES / "own_data.csv").read_bytes())
    (tmp_path / "byo_sklearn_model.py").write_bytes(
        (EXAMPLES / "byo_sklearn_model.py").read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _cli("validate", str(tmp_path / "study.yaml"), cwd=elsewhere)
    assert (f"runs your code: tasks.0.family = byo_sklearn_model:BayesianGMM "
            f"({tmp_path / 'byo_sklearn_model.py'})") in proc.stdout


def test_plugin_package_by_entry_point(tmp_path):
    pytest.importorskip("torch")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(EXAMPLES / "byo_plugin")],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    _cli("run", str(EXAMPLES / "byo_plugin" / "study.yaml"), "--out", "run", "--quiet",
         "--no-plots", "--set", "n_seeds=5", "--set", "n_iterations=2",
         "--set", "family_params.n_steps=20", cwd=tmp_path, env=env)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    family = manifest["provenance"]["torch-mixture-moons"]["family"]
    assert (family["package"], family["version"]) == ("byo-plugin", "0.1.0")
    # without the package the name is unknown, with a one-line error
    proc = subprocess.run([sys.executable, "-m", "modelcollapse", "validate",
                           str(EXAMPLES / "byo_plugin" / "study.yaml")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown family 'torch-mixture'" in proc.stderr
