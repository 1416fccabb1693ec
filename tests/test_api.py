"""The Python API (issue 11, items 4-6): modelcollapse.run / sweep / open_run and Run; the
manifest written by results/ with versions, git, plug-ins, provenance and the checksum of every
file of the run directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import modelcollapse as mc
from modelcollapse.config import StudyError, load_study
from modelcollapse.engine import run_study
from modelcollapse.results import manifest as manifest_module
from modelcollapse.results.checkpoint import CHECKPOINT_DIR
from modelcollapse.results.store import load_results, verify_run, write_run

STUDY = {"name": "tiny", "task": "gaussian",
         "task_params": {"n_features": 2, "n_samples": 20, "n_test": 30},
         "paradigms": ["replace", "accumulate"], "n_iterations": 3, "n_seeds": 3}
SWEEP = """\
name: tiny-grid
task: gaussian
task_params: {n_features: 2, n_test: 30}
paradigms: [replace, accumulate]
n_iterations: 3
n_seeds: 2
grid:
  task_params.n_samples: [15, 30]
"""


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categories as strings (the store's categories are those of the written table)."""
    df = df.copy()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(str)
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    seen = []
    run = mc.run(STUDY, out=out, plots=False, progress=seen.append)
    return run, seen


def test_run_returns_the_run_with_run_study_results(finished):
    run, seen = finished
    assert isinstance(run, mc.Run) and run.directory.is_dir()
    expected = run_study(load_study(STUDY))
    pd.testing.assert_frame_equal(_plain(run.results), _plain(expected))
    assert list(run.summary.paradigm) == ["replace", "accumulate"]
    assert len(run.profile) == 2 * 8 and set(run.profile.definition) == set(range(1, 9))
    assert run.manifest["study"]["name"] == "tiny" and run.name == "tiny"
    # progress: once at the start, then after each of the 2 x 3 model-fitting iterations,
    # then the finishing stages (no figures: plots=False)
    assert [p.iterations for p in seen if not p.stage] == list(range(7))
    assert [(p.stage, p.done, p.total) for p in seen if p.stage] == [("analysis", 0, 1),
                                                                    ("analysis", 1, 1)]
    assert {p.total_iterations for p in seen} == {6}
    assert "'tiny'" in repr(run) and "3 seeds x 3 iterations" in repr(run)


def test_manifest_records_versions_git_plugins_provenance_and_every_file(finished):
    run, _ = finished
    m = run.manifest
    assert {"versions", "device", "plugins", "git", "provenance", "created", "elapsed_seconds",
            "command", "study_hash"} <= set(m)
    assert {"python", "modelcollapse", "numpy", "pandas"} <= set(m["versions"])
    assert m["provenance"] == {"gaussian-synthetic": {}}  # built-in data: nothing to record
    assert m["plugins"] == {}  # built-ins only
    assert m["git"] is None or len(m["git"]["commit"]) == 40
    assert set(m["files"]) == {"results.parquet", "summary.csv", "profile.csv"}
    assert m["files"]["results.parquet"]["rows"] == len(run.results)
    assert verify_run(run.directory) == []


def test_report_writes_html_and_is_recorded_in_the_manifest(finished):
    run, _ = finished
    path = run.report()
    assert path == run.directory / "report.html" and 'id="collapse-profile"' in path.read_text()
    assert "report.html" in run.manifest["files"]
    assert any(name.startswith("plots/") for name in run.manifest["files"])
    assert verify_run(run.directory) == []


def test_repr_html_has_the_summary_and_the_verdict_grid(finished):
    run, _ = finished
    page = run._repr_html_()
    assert "modelcollapse-summary" in page and "modelcollapse-profile" in page
    assert "Def. 8" in page and "tiny" in page and "w2_squared" in page
    head, *rows = _table_rows(page, "modelcollapse-profile")
    assert head == ["task", "paradigm", *(f"Def. {d}" for d in range(1, 9))]
    symbols = {"occurs": "✓", "does_not_occur": "✗", "inconclusive": "?", "not_applicable": "–"}
    for paradigm in ("replace", "accumulate"):
        verdicts = run.profile[run.profile.paradigm == paradigm].set_index("definition").verdict
        row = next(r for r in rows if r[1] == paradigm)
        assert row[2:] == [symbols[verdicts[d]] for d in range(1, 9)]


def _table_rows(page: str, css_class: str) -> list[list[str]]:
    """The cells' text, row by row, of the HTML table of class ``css_class`` in ``page``."""
    from html.parser import HTMLParser

    class Rows(HTMLParser):
        inside, cell, rows = False, None, []

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.inside = css_class in (dict(attrs).get("class") or "").split()
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag == "table":
                self.inside = False
            elif self.inside and tag in ("td", "th"):
                self.rows[-1].append(self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    parser = Rows()
    parser.rows = []
    parser.feed(page)
    return parser.rows


def test_open_run_gives_the_same_tables(finished):
    run, _ = finished
    again = mc.open_run(run.directory)
    pd.testing.assert_frame_equal(again.results, run.results)
    pd.testing.assert_frame_equal(again.summary, run.summary)
    pd.testing.assert_frame_equal(again.profile, run.profile)
    assert again.manifest["study_hash"] == run.manifest["study_hash"]


def test_tables_are_computed_when_the_files_are_absent(finished, tmp_path):
    run, _ = finished
    old = tmp_path / "old"  # a directory as the old code wrote it: results and manifest only
    write_run(old, load_results(run.directory),
              {k: v for k, v in run.manifest.items() if k not in ("files", "sealed")})
    legacy = json.loads((old / "manifest.json").read_text())
    del legacy["sealed"]  # the old code wrote no "sealed" key: a finished run
    (old / "manifest.json").write_text(json.dumps(legacy))
    assert verify_run(old) == []
    opened = mc.open_run(old)
    pd.testing.assert_frame_equal(opened.summary.reset_index(drop=True),
                                  run.summary, check_dtype=False, check_categorical=False)
    assert list(opened.profile.verdict) == list(run.profile.verdict)


def test_editing_a_derived_file_fails_validation(tmp_path):
    out = tmp_path / "run"
    mc.run(STUDY, out=out, plots=False)
    with open(out / "summary.csv", "a") as fh:
        fh.write("forged,row\n")
    assert verify_run(out) == ["summary.csv does not match its checksum in manifest.json"]
    (out / "profile.csv").unlink()
    assert "profile.csv: missing" in verify_run(out)


def test_interrupted_run_resumes_to_the_same_results(finished, tmp_path):
    out = tmp_path / "run"

    def interrupt(p):
        if p.iterations == 4:
            raise KeyboardInterrupt

    with pytest.raises(mc.api.RunInterrupted) as info:
        mc.run(STUDY, out=out, plots=False, progress=interrupt)
    assert info.value.directory == out and (out / CHECKPOINT_DIR).is_dir()
    assert "resume=True" in str(info.value)
    with pytest.raises(mc.RunError, match="interrupted run"):
        mc.run(STUDY, out=out, plots=False)
    resumed = mc.run(STUDY, out=out, plots=False, resume=True)
    pd.testing.assert_frame_equal(resumed.results, finished[0].results)
    assert not (out / CHECKPOINT_DIR).exists()


def test_study_forms_and_overrides(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(STUDY))  # JSON is YAML
    spec = mc.api.load(path, {"n_seeds": 2, "paradigms": ["replace"]})
    assert spec.n_seeds == 2 and [p.name for p in spec.paradigms] == ["replace"]
    assert mc.api.load(spec) is spec
    assert mc.api.load(spec, ["n_iterations=5"]).n_iterations == 5
    assert mc.api.load(STUDY, ["n_seeds=4"]).n_seeds == 4 and STUDY["n_seeds"] == 3
    assert mc.api.load("default").name == load_study("default").name


@pytest.mark.parametrize("call, error, needle", [
    (lambda out: mc.run({**STUDY, "n_seeds": 0}, out=out), StudyError, "n_seeds"),
    (lambda out: mc.run(42, out=out), StudyError, "allowed: a preset name"),
    (lambda out: mc.run(STUDY, out=out, jobs=0), ValueError, "jobs"),
    (lambda out: mc.run(STUDY, out=out, executor="dask"), ValueError, "local, ray"),
    (lambda out: mc.open_run(out), mc.RunError, "not a finished modelcollapse run"),
])
def test_errors_are_one_line_and_write_nothing(tmp_path, call, error, needle):
    out = tmp_path / "out"
    with pytest.raises(error) as info:
        call(out)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_finished_results_are_never_overwritten(finished, tmp_path, monkeypatch):
    run, _ = finished
    with pytest.raises(mc.RunError, match="already holds results"):
        mc.run(STUDY, out=run.directory, plots=False)
    monkeypatch.chdir(tmp_path)  # default: runs/<name>, then runs/<name>-2
    first = mc.run(STUDY, plots=False)
    second = mc.run(STUDY, plots=False)
    assert (first.directory, second.directory) == (Path("runs/tiny"), Path("runs/tiny-2"))


def test_sweep_writes_report_and_tables_by_grid_point(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(SWEEP)
    seen = []
    run = mc.sweep(path, out=tmp_path / "sweep", progress=seen.append)
    assert run.is_sweep and run.name == "tiny-grid"
    assert (run.directory / "report.html").is_file()
    assert 'id="points"' in (run.directory / "report.html").read_text()
    assert {"point", "grid.task_params.n_samples"} <= set(run.summary.columns)
    assert len(run.profile) == 2 * 2 * 8
    assert {"report.html", "summary.csv", "profile.csv"} <= set(run.manifest["files"])
    assert all("provenance" in p for p in run.manifest["points"])
    assert verify_run(run.directory) == []
    assert seen[-1].units == seen[-1].total_units == 4 and seen[-1].iterations == 12
    page = run._repr_html_()
    assert "grid.task_params.n_samples" in page and "modelcollapse-profile" in page
    assert "sweep of 2 points" in repr(run)


def test_plugins_are_the_non_builtin_modules_a_study_names(monkeypatch):
    from modelcollapse import registry

    # a registered plug-in, lazy: its module is recorded without being imported
    monkeypatch.setitem(registry.paradigms._entries, "api-test", "not_imported_pkg.mod:Cls")
    studies = [{"tasks": [{"task": "gaussian", "family": "yaml:SafeLoader"}],
                "paradigms": [{"name": "replace", "curation": [
                    {"policy": "verify", "verifier": "my_local_checks:accept"}]},
                    {"name": "api-test"}]}]
    found = manifest_module.plugins(studies)
    # built-in task, paradigm and policy: not listed
    assert set(found) == {"yaml", "my_local_checks", "not_imported_pkg.mod"}
    assert found["yaml"]["distribution"] == "PyYAML" and found["yaml"]["version"]
    assert found["my_local_checks"] == {"distribution": None, "version": None}


def test_versions_do_not_import_torch():
    code = ("import sys; from modelcollapse.results.manifest import versions, device; "
            "v = versions(); d = device(); print('torch' in sys.modules, 'torch' in d)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_git_state_is_none_when_git_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise subprocess.TimeoutExpired("git", 2.0)

    monkeypatch.setattr(manifest_module.subprocess, "run", broken)
    assert manifest_module.git_state() is None
