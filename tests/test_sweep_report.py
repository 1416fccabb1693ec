"""The sweep report (issue 11, item 5): a Sweep section with, per grid key with more than one
value, the final risk and the collapse verdicts against the key; the plotted numbers are the
summary's and the profile's, point by point (nothing averaged across grid points)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.report import plots as plots_module
from modelcollapse.report.html import write_report
from modelcollapse.report.sweep import (axis_scale, error_control, final_risk_table,
                                        grid_values, label_points, verdict_table)

SWEEP = """\
name: sweep-report-test
task: gaussian
task_params: {n_features: 2, n_test: 30}
n_iterations: 4
n_seeds: 5
grid:
  task_params.n_samples: [15, 40]
  paradigms: [[replace, accumulate], [accumulate-subsample]]
  seed: [3]
"""
VARIED = ["task_params.n_samples", "paradigms"]  # seed has one value: no plot


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_report")
    (root / "grid.yaml").write_text(SWEEP)
    res = CliRunner().invoke(app, ["sweep", str(root / "grid.yaml"), "--out",
                                   str(root / "sw"), "-q"])
    assert res.exit_code == 0, res.output
    return root / "sw"


@pytest.fixture(scope="module")
def page(sweep_dir):
    return write_report(sweep_dir).read_text()


def _manifest(directory):
    return json.loads((directory / "manifest.json").read_text())


def test_report_has_a_sweep_section_with_two_plots_per_varied_key(sweep_dir, page):
    section = page.split("<h2>Sweep: task_params.n_samples × paradigms × seed</h2>")[1]
    section = section.split("<h2>")[0]
    assert 'id="points"' in section
    assert re.findall(r"<h3>(.*?)</h3>", section) == [
        "Final risk against task_params.n_samples",
        "Collapse verdicts against task_params.n_samples",
        "Final risk against paradigms", "Collapse verdicts against paradigms",
        "Tests behind the verdicts"]
    assert len(re.findall(r'<img alt="sweep_[a-z]+_[^"]*" src="data:image/png;base64,',
                          section)) == 4
    assert "family-wise α = 0.05" in section and "seeds: 5" in section
    assert "horizon: iteration 3" in section
    names = sorted(p.name for p in (sweep_dir / "plots").glob("sweep_*"))
    assert names == sorted(f"sweep_{kind}_{key}.{ext}" for kind in ("risk", "verdicts")
                           for key in VARIED for ext in ("csv", "png"))


def test_plotted_risk_is_the_summary_final_of_each_point(sweep_dir, page):
    """The numbers behind each final-risk plot (written by the report) are summary.csv's
    final and its interval, one row per (point, task, paradigm); and the verdicts are
    profile.csv's."""
    summary = pd.read_csv(sweep_dir / "summary.csv")
    profile = pd.read_csv(sweep_dir / "profile.csv")
    keys = ["point", "task", "paradigm"]
    for key in VARIED:
        plotted = pd.read_csv(sweep_dir / "plots" / f"sweep_risk_{key}.csv")
        assert len(plotted) == len(summary) and not plotted.duplicated(keys).any()
        both = plotted.merge(summary, on=keys, suffixes=("", "_summary"))
        assert len(both) == len(summary)
        for col in ("final", "final_low", "final_high"):
            np.testing.assert_allclose(both[col], both[f"{col}_summary"], rtol=1e-12)
        verdicts = pd.read_csv(sweep_dir / "plots" / f"sweep_verdicts_{key}.csv")
        both = verdicts.merge(profile, on=keys + ["definition"], suffixes=("", "_profile"))
        assert len(both) == len(profile) == 6 * 8  # 6 (point, paradigm) units
        assert (both.verdict == both.verdict_profile).all()


def test_final_risk_table_by_key(sweep_dir):
    manifest = _manifest(sweep_dir)
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert grid_values(manifest) == {"task_params.n_samples": [15, 40],
                                     "paradigms": [["replace", "accumulate"],
                                                   ["accumulate-subsample"]],
                                     "seed": [3]}
    table = final_risk_table(summary, manifest, "task_params.n_samples")
    # one panel per value of the other keys, x the number itself
    assert list(dict.fromkeys(table.panel)) == [
        "paradigms = [replace, accumulate], seed = 3",
        "paradigms = [accumulate-subsample], seed = 3"]
    for row in table.itertuples():
        values = manifest["points"][row.point]["values"]
        assert row.x == values["task_params.n_samples"]
        ref = summary[(summary.point == row.point) & (summary.paradigm == row.paradigm)]
        assert row.final == ref.final.item()
    cat = final_risk_table(label_points(summary), manifest, "paradigms")  # report's labels
    assert set(cat.x) == {0.0, 1.0}
    assert set(cat.value) == {"[replace, accumulate]", "[accumulate-subsample]"}
    assert cat.set_index(["point", "paradigm"]).final.to_dict() == \
        summary.set_index(["point", "paradigm"]).final.to_dict()
    with pytest.raises(ValueError, match="grid key 'nope'.*allowed: task_params.n_samples"):
        final_risk_table(summary, manifest, "nope")


def test_verdict_table_and_error_control(sweep_dir):
    manifest = _manifest(sweep_dir)
    profile = pd.read_csv(sweep_dir / "profile.csv")
    table = verdict_table(profile, manifest, "paradigms")
    assert sorted(table.definition.unique()) == list(range(1, 9))
    assert table.set_index(["point", "paradigm", "definition"]).verdict.to_dict() == \
        profile.set_index(["point", "paradigm", "definition"]).verdict.to_dict()
    assert error_control(profile) == (
        "one-sided tests per definition (docs/profile.md), decided at family-wise α = 0.05 "
        "over every verdict of the sweep (Holm); seeds: 5; horizon: iteration 3")
    mixed = profile.assign(n_seeds=np.where(profile.point == 0, 10, 5))
    assert "seeds: 5, 10 (by grid point)" in error_control(mixed)


@pytest.mark.parametrize("values, scale", [
    ([25, 100, 400], "log"), ([1, 2, 4, 8], "log"), ([1, 10], "log"), ([15, 40], "linear"),
    ([0, 1], "linear"), ([10, 20, 30, 40], "linear"), ([0.1, 0.2, 0.3], "linear"),
    ([True, False], "category"), ([["replace"], ["accumulate"]], "category"),
    (["mle", "unbiased"], "category")])
def test_axis_scale(values, scale):
    assert axis_scale(values) == scale


def test_drawn_points_are_the_table(sweep_dir, monkeypatch, tmp_path):
    """The final-risk plot draws the table's final (not its bounds) at the table's x, one
    panel per (task, other keys' values)."""
    manifest = _manifest(sweep_dir)
    table = final_risk_table(pd.read_csv(sweep_dir / "summary.csv"), manifest,
                             "task_params.n_samples")
    figure = plots_module.final_risk_figure(table, "task_params.n_samples", "linear")
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert len(axes) == 2
    for ax, (_, rows) in zip(axes, table.groupby(["task", "panel"], sort=False)):
        drawn = {(x, y) for c in ax.containers for x, y in zip(*c.lines[0].get_data())}
        assert drawn == set(zip(rows.x, rows.final))


def test_a_plain_run_report_has_no_sweep_section(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "gerstgrasser2024-linear-regression", "--out",
                                   str(out), "-q", "--no-plots", "--set", "n_seeds=5",
                                   "--set", "n_iterations=3"])
    assert res.exit_code == 0, res.output
    page = write_report(out).read_text()
    assert "<h2>Collapse profile</h2>" in page
    assert "<h2>Sweep" not in page and not list((out / "plots").glob("sweep_*"))


def test_a_precomputed_sweep_profile_by_point_is_used(sweep_dir, monkeypatch, tmp_path):
    """write_report(profile=...) takes a sweep's profile with point columns (profile.csv)."""
    monkeypatch.setattr(plots_module, "plot_run", lambda *a, **k: [])  # not under test
    sweep_dir = Path(shutil.copytree(sweep_dir, tmp_path / "sw", ignore=shutil.ignore_patterns(
        "plots", "report.html")))
    profile = pd.read_csv(sweep_dir / "profile.csv")
    profile.loc[profile.point == 0, "verdict"] = "occurs"
    page = write_report(sweep_dir, profile=profile, out=tmp_path / "r.html").read_text()
    table = page.split('id="collapse-profile"')[1].split("</table>")[0]
    assert "gaussian-synthetic@p3" in table  # a column per (point, task, paradigm)
    drawn = pd.read_csv(sweep_dir / "plots" / "sweep_verdicts_paradigms.csv")
    assert (drawn[drawn.point == 0].verdict == "occurs").all()
    assert drawn.set_index(["point", "paradigm", "definition"]).verdict.to_dict() == \
        profile.set_index(["point", "paradigm", "definition"]).verdict.to_dict()


def test_a_sweep_draws_per_point_figures_for_its_first_points_only(sweep_dir, tmp_path,
                                                                   monkeypatch):
    """Per-point figures cost per point: the report draws the first ``MAX_POINT_FIGURES``
    points' and says which are left out; ``--all-figures`` draws them all (issue 13)."""
    from modelcollapse.report import html

    run_dir = Path(shutil.copytree(sweep_dir, tmp_path / "sw"))
    figures = lambda page: re.findall(r"<h3>(gaussian-synthetic@p\d+)</h3>", page)  # noqa: E731
    assert figures((run_dir / "report.html").read_text()) == [
        f"gaussian-synthetic@p{k}" for k in range(4)]  # 4 points: under the default 12
    monkeypatch.setattr(html, "MAX_POINT_FIGURES", 2)
    res = CliRunner().invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    page = (run_dir / "report.html").read_text()
    assert figures(page) == ["gaussian-synthetic@p0", "gaussian-synthetic@p1"]
    assert "Figures are drawn for the first 2 of 4 grid points (points 0 to 1)" in page
    assert "--all-figures" in page
    res = CliRunner().invoke(app, ["report", str(run_dir), "--all-figures", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    page = (run_dir / "report.html").read_text()
    assert figures(page) == [f"gaussian-synthetic@p{k}" for k in range(4)]
    assert "Figures are drawn for the first" not in page
