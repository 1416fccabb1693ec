"""The command line: bad input gives ONE line on stderr naming the field and the allowed values,
exit code 2, no traceback, and nothing written (the output directory is not even created); good
input writes results.parquet + manifest.json + summary.csv."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

import modelcollapse
from modelcollapse.cli import app
from modelcollapse.registry import tasks

SMALL = """
name: small
task: gaussian
task_params: {n_samples: 20, n_features: 2, n_test: 50}
paradigms: [replace, accumulate]
n_seeds: 2
n_iterations: 2
"""

#: the documented schema of results.parquet (modelcollapse.results.store)
DTYPES = {"study": "category", "task": "category", "family": "category", "paradigm": "category",
          "seed": "int32", "iteration": "int32", "metric": "category", "value": "float64",
          "status": "category"}


def write(path, text: str):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> str:
    """Exit 2, exactly one line on stderr starting with 'error:', no traceback."""
    detail = (result.exit_code, result.stdout, result.stderr, repr(result.exception))
    assert result.exit_code == 2, detail
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, detail
    line = lines[0]
    assert line.startswith("error: "), detail
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# -- bad study files ------------------------------------------------------------------------------

BAD = {
    "unknown_top_level_field": ("task: gaussian\nfoo: 1\n", ["foo"]),
    "unknown_task": ("task: gaussiann\n", ["gaussiann", *tasks.names()]),
    "unknown_paradigm": ("task: gaussian\nparadigms: [replac]\n",
                         ["paradigms", "replac", "replace", "accumulate", "mix"]),
    "mix_without_real_fraction": ("task: gaussian\nparadigms: [{name: mix}]\n",
                                  ["real_fraction", "mix"]),
    "real_fraction_on_replace": (
        "task: gaussian\nparadigms: [{name: replace, real_fraction: 0.5}]\n",
        ["real_fraction", "replace"]),
    "n_seeds_wrong_type": ('task: gaussian\nn_seeds: "ten"\n', ["n_seeds", "integer"]),
    "n_seeds_zero": ("task: gaussian\nn_seeds: 0\n", ["n_seeds", "1"]),
    "unknown_task_params_key": ("task: gaussian\ntask_params: {bogus: 1}\n",
                                ["task_params", "bogus"]),
    "covariance_estimator_foo": ("task: gaussian\ntask_params: {covariance_estimator: foo}\n",
                                 ["covariance_estimator", "mle", "unbiased"]),
    "dataset_not_allowed": ("task: gaussian\ntask_params: {dataset: iris}\n",
                            ["dataset", "synthetic", "wine", "digits"]),
    "invalid_yaml": ("task: gaussian\nparadigms: [replace\nn_seeds: 3\n", ["YAML", "line 3"]),
    "both_task_and_tasks": ("task: gaussian\ntasks: [{task: discrete}]\n", ["task", "tasks"]),
    "task_label_collision": ("tasks: [{task: gaussian}, {task: gaussian}]\n",
                             ["tasks", "unique", "gaussian-synthetic"]),
    "paradigm_label_collision": ("task: gaussian\nparadigms: [replace, replace]\n",
                                 ["paradigms", "unique"]),
    "mix_label_collision": (
        "task: gaussian\nparadigms: [{name: mix, real_fraction: 0.5}, "
        "{name: mix, real_fraction: 0.5}]\n", ["paradigms", "unique", "mix-0.5"]),
}


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_study_file(tmp_path, case, command):
    text, needles = BAD[case]
    path = write(tmp_path / "bad.yaml", text)
    out = tmp_path / "out"
    args = [command, path] + (["--out", out, "--no-plots"] if command == "run" else [])
    assert_one_line_error(invoke(*args), *needles)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_bad_study_writes_nothing_with_default_out_dir(tmp_path, monkeypatch):
    """Without --out the run would go to runs/<name>: runs/ must not be created either."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.yaml", "name: x\ntask: gaussian\nn_seeds: 0\n")
    assert_one_line_error(invoke("run", "bad.yaml"), "n_seeds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_file_not_found(tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", tmp_path / "missing.yaml", "--out", out),
                          "missing.yaml", "not found")
    assert not out.exists()


def test_unknown_preset_lists_presets(tmp_path):
    out = tmp_path / "out"
    line = assert_one_line_error(invoke("run", "no-such-preset", "--out", out),
                                 "no-such-preset", "default")
    assert "presets" in line
    assert not out.exists()


@pytest.mark.parametrize("assignment, needles", [
    ("n_seeds", ["n_seeds", "key=value"]),
    ("tasks.9.task_params.n_samples=5", ["tasks.9", "out of range"]),
    ("paradigms.7=replace", ["out of range"]),
    ("n_seeds=ten", ["n_seeds", "integer"]),
    ("tasks.0.task_params.dataset=iris", ["dataset", "diabetes"]),
])
def test_bad_set(tmp_path, assignment, needles):
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", "default", "--set", assignment, "--out", out), *needles)
    assert not out.exists()


@pytest.mark.parametrize("assignment", ["paradigms.0.real_fraction=0.5", "paradigms.0.x.y=1"])
def test_set_through_scalar_list_item_is_one_line_error(tmp_path, assignment):
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", "default", "--set", assignment, "--out", out))
    assert not out.exists()


@pytest.mark.parametrize("value", ["[/foo]", "[bold]x"])
def test_error_message_is_printed_verbatim_not_as_rich_markup(tmp_path, value):
    """User text inside the error line must not be interpreted as rich markup (a closing tag
    raised MarkupError with a traceback; an opening tag was silently swallowed)."""
    path = write(tmp_path / "bad.yaml", f'task: "{value}"\n')
    assert_one_line_error(invoke("validate", path), value)


def test_runtime_value_error_is_one_line_and_writes_nothing(tmp_path):
    """Values only checkable once data exist (n_samples beyond the dataset, mix needing more
    synthetic samples than drawn) also give one line, exit 2, nothing written."""
    for i, text in enumerate([
        "task: gaussian\ntask_params: {dataset: wine, n_samples: 100000}\nn_seeds: 2\n"
        "n_iterations: 2\n",
        "task: gaussian\ntask_params: {n_samples: 20, n_features: 2, n_test: 20}\n"
        "paradigms: [{name: mix, real_fraction: 0.2}]\nn_synthetic: 5\nn_seeds: 2\n"
        "n_iterations: 3\n",
    ]):
        path = write(tmp_path / f"late{i}.yaml", text)
        out = tmp_path / f"out{i}"
        assert_one_line_error(invoke("run", path, "--out", out, "--no-plots"))
        assert not out.exists()


# -- real subprocess runs -------------------------------------------------------------------------

def _subprocess(args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "modelcollapse", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("case", ["unknown_task", "covariance_estimator_foo", "invalid_yaml",
                                  "n_seeds_wrong_type"])
def test_subprocess_bad_study(tmp_path, case):
    text, needles = BAD[case]
    write(tmp_path / "bad.yaml", text)
    proc = _subprocess(["run", "bad.yaml", "--out", "DIR"], cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0]
    assert not (tmp_path / "DIR").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_subprocess_set_without_equals_and_missing_file(tmp_path):
    for args, needle in ((["run", "default", "--set", "n_seeds", "--out", "DIR"], "key=value"),
                         (["run", "nope.yaml", "--out", "DIR"], "not found")):
        proc = _subprocess(args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_subprocess_small_run(tmp_path):
    write(tmp_path / "small.yaml", SMALL)
    proc = _subprocess(["run", "small.yaml", "--out", "DIR", "--no-plots", "-q"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    _check_run_dir(tmp_path / "DIR", n_tasks=1, n_paradigms=2, n_seeds=2, n_iterations=2)


# -- good input -----------------------------------------------------------------------------------

def _check_run_dir(directory, *, n_tasks, n_paradigms, n_seeds, n_iterations):
    files = {p.name for p in directory.iterdir()}
    assert {"results.parquet", "manifest.json", "summary.csv"} <= files
    assert not any(name.endswith(".tmp") for name in files)
    manifest = json.loads((directory / "manifest.json").read_text())
    results_bytes = (directory / "results.parquet").read_bytes()
    assert manifest["files"]["results.parquet"]["sha256"] == hashlib.sha256(results_bytes).hexdigest()
    df = modelcollapse.load_results(directory)
    assert list(df.columns) == list(DTYPES)
    assert {c: str(t) for c, t in df.dtypes.items()} == DTYPES
    assert manifest["files"]["results.parquet"]["rows"] == len(df)
    n_metrics = df.metric.nunique()
    assert len(df) == n_tasks * n_paradigms * n_seeds * n_iterations * n_metrics
    assert df.seed.nunique() == n_seeds and sorted(df.iteration.unique()) == list(range(n_iterations))
    assert {"n_train", "n_real", "n_synthetic", "synthetic_to_real_ratio"} <= set(df.metric.unique())
    assert set(manifest["risk_metrics"]) == set(df.task.unique())
    assert manifest["study"]["n_seeds"] == n_seeds
    assert len(manifest["study_hash"]) == 16
    summary = (directory / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("task,paradigm,metric")
    assert len(summary) == 1 + n_tasks * n_paradigms
    return df, manifest


def test_small_run_writes_results_manifest_summary(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "nested" / "out"
    result = invoke("run", study, "--out", out, "--no-plots", "-q")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    df, manifest = _check_run_dir(out, n_tasks=1, n_paradigms=2, n_seeds=2, n_iterations=2)
    assert not (out / "plots").exists()
    assert set(df.paradigm.unique()) == {"replace", "accumulate"}
    assert (df.study == "small").all() and (df.family == "gaussian").all()
    assert manifest["study"]["name"] == "small"
    assert manifest["risk_metrics"] == {"gaussian-synthetic": "w2_squared"}


def test_run_files_are_readable_like_normal_files(tmp_path):
    """Results are written via a temporary file: the final files must get the usual
    0o666 & ~umask permissions, not mkstemp's private 0o600."""
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        result = invoke("run", study, "--out", out, "--no-plots", "-q")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    for name in ("results.parquet", "manifest.json", "summary.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_run_refuses_directory_with_results(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "results.parquet"
    existing.write_bytes(b"precious bytes \x00\x01")
    before = existing.read_bytes(), existing.stat().st_mtime_ns
    line = assert_one_line_error(invoke("run", study, "--out", out, "--no-plots"), "--out")
    assert "results" in line
    assert (existing.read_bytes(), existing.stat().st_mtime_ns) == before
    assert sorted(p.name for p in out.iterdir()) == ["results.parquet"]


def test_run_refuses_after_a_real_run(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    assert invoke("run", study, "--out", out, "--no-plots", "-q").exit_code == 0
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    assert_one_line_error(invoke("run", study, "--out", out, "--no-plots", "-q"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot


def test_run_refuses_out_that_is_a_file(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "afile"
    out.write_text("x")
    assert_one_line_error(invoke("run", study, "--out", out, "--no-plots"), "not a directory")
    assert out.read_text() == "x"


def test_run_into_existing_empty_directory(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    out.mkdir()
    assert invoke("run", study, "--out", out, "--no-plots", "-q").exit_code == 0
    assert (out / "results.parquet").is_file()


def test_run_with_set_overrides(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    result = invoke("run", study, "--out", out, "--no-plots", "-q",
                    "--set", "task_params.n_samples=50", "--set", "paradigms=[replace]")
    assert result.exit_code == 0, result.stderr
    df = modelcollapse.load_results(out)
    n_real = df[(df.metric == "n_real") & (df.iteration == 0)].value
    assert (n_real == 50).all()
    assert set(df.paradigm.unique()) == {"replace"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["study"]["tasks"][0]["task_params"]["n_samples"] == 50


# -- validate / presets ---------------------------------------------------------------------------

def _validate_json(result):
    body, _, tail = result.stdout.rpartition("valid study")
    return json.loads(body), tail


def test_validate_preset_prints_resolved_study():
    result = invoke("validate", "default")
    assert result.exit_code == 0, result.stderr
    resolved, tail = _validate_json(result)
    assert resolved["name"] == "default"
    assert "task" not in resolved and "task_params" not in resolved
    assert len(resolved["tasks"]) == 5
    assert all(t["label"] for t in resolved["tasks"])
    assert {p["label"] for p in resolved["paradigms"]} == {"replace", "accumulate",
                                                           "accumulate-subsample"}
    assert "'default'" in tail and "hash" in tail


def test_validate_with_set_overrides(tmp_path):
    result = invoke("validate", "default", "--set", "tasks.0.task_params.n_samples=50",
                    "--set", "n_seeds=4")
    assert result.exit_code == 0, result.stderr
    resolved, _ = _validate_json(result)
    assert resolved["tasks"][0]["task_params"]["n_samples"] == 50
    assert resolved["n_seeds"] == 4

    path = write(tmp_path / "one.yaml", "task: discrete\n")
    result = invoke("validate", path, "--set", "task_params.n_samples=50")
    assert result.exit_code == 0, result.stderr
    resolved, _ = _validate_json(result)
    assert resolved["tasks"][0]["task_params"]["n_samples"] == 50


def test_validate_extends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "parent.yaml", "name: parent\ntask: gaussian\nn_seeds: 5\nn_iterations: 4\n"
                                    "task_params: {n_features: 3, n_samples: 30}\n")
    write(tmp_path / "child.yaml", "extends: parent.yaml\nname: child\nn_seeds: 2\n"
                                   "task_params: {n_features: 2}\n")
    result = invoke("validate", "child.yaml")
    assert result.exit_code == 0, result.stderr
    resolved, _ = _validate_json(result)
    assert resolved["name"] == "child" and resolved["n_seeds"] == 2
    assert resolved["n_iterations"] == 4
    params = resolved["tasks"][0]["task_params"]
    assert params["n_features"] == 2 and params["n_samples"] == 30


def test_presets_lists_default():
    result = invoke("presets")
    assert result.exit_code == 0, result.stderr
    assert "default" in result.stdout


def test_presets_descriptions_are_not_rich_markup(monkeypatch):
    """Descriptions hold text like 'E[tr Sigma_t]': it must be shown, not eaten as markup."""
    import modelcollapse.cli as cli

    monkeypatch.setattr(cli, "preset_records", lambda: [
        {"name": "p", "extras": "", "data": "", "summary": "E[tr S] grows [/x]",
         "description": "E[tr S] grows [/x]"}])
    result = CliRunner().invoke(app, ["presets"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, repr(result.exception)
    assert "E[tr S] grows [/x]" in result.stdout


def test_summary_of_missing_run_is_one_line(tmp_path):
    assert_one_line_error(invoke("summary", tmp_path / "nothing"), "results.parquet")


def test_summary_of_finished_run(tmp_path):
    study = write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    assert invoke("run", study, "--out", out, "--no-plots", "-q").exit_code == 0
    result = invoke("summary", out)
    assert result.exit_code == 0, result.stderr
    assert "w2_squared" in result.stdout
