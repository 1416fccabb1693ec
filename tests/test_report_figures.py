"""The report's figures (issue 13): drawn from one grouped pass of aggregates, once per change
of what they show, the same PNG bytes whatever the number of drawing processes; the profile's
distribution functions match scipy.stats without importing it."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelcollapse.profile import _stats
from modelcollapse.report import figures, plots
from modelcollapse.report.summary import mean_ci


def _results(seed=0, n_seeds=7, n_iterations=5):
    """Long-format results with NaN and inf values in places, two tasks, two paradigms."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in ("a", "b"):
        for paradigm in ("replace", "accumulate"):
            for s in range(n_seeds):
                for it in range(n_iterations):
                    for metric in ("test_nll", "recall", "n_real", "n_train"):
                        value = float(rng.normal(it, 1.0))
                        if metric == "test_nll" and paradigm == "replace" and s == 0 and it == 3:
                            value = np.inf
                        if metric == "recall" and s == 1 and it == 2:
                            value = np.nan
                        if metric == "n_real":
                            value = 100.0
                        if metric == "n_train":
                            value = 100.0 + 50 * it
                        rows.append((task, paradigm, s, it, metric, value))
    return pd.DataFrame(rows, columns=["task", "paradigm", "seed", "iteration", "metric",
                                       "value"])


def test_bands_equal_the_per_group_mean_and_interval():
    """One grouped pass gives, per (task, paradigm, metric, iteration), summary.mean_ci over
    the finite values and the share of non-finite ones (an independent per-group loop)."""
    results = _results()
    band = plots.bands(results).set_index(["task", "paradigm", "metric", "iteration"])
    keys = ["task", "paradigm", "metric", "iteration"]
    assert len(band) == results.groupby(keys).ngroups
    for key, group in results.groupby(keys):
        v = group.value.to_numpy()
        finite = v[np.isfinite(v)]
        mean, low, high = mean_ci(finite)
        row = band.loc[key]
        assert row["mean"] == pytest.approx(mean, rel=1e-12)
        np.testing.assert_allclose([row.low, row.high], [low, high], rtol=1e-9, atol=1e-12)
        assert row.nonfinite == pytest.approx(1 - len(finite) / len(v))


def test_distribution_functions_match_scipy_stats():
    """profile._stats' scipy.special forms against scipy.stats (the reference)."""
    for df in (1, 2, 5, 29, 299):
        for t in (-7.5, -1.3, 0.0, 0.4, 2.2, 40.0):
            assert _stats.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-12, abs=1e-300)
            assert _stats.t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-12, abs=1e-300)
        for q in (0.025, 0.5, 0.95, 0.975, 0.999):
            assert _stats.t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-10)
    for dfn, dfd, f in ((1, 10, 3.0), (3, 20, 2.1), (4, 200, 0.5), (2, 5, 30.0)):
        assert _stats.f_sf(f, dfn, dfd) == pytest.approx(stats.f.sf(f, dfn, dfd), rel=1e-10)
    for n in (0, 1, 5, 30, 101):
        for k in range(0, n + 1, max(1, n // 7)):
            expected = stats.binomtest(k, n, 0.5, "greater").pvalue if n else 1.0
            assert _stats.binom_sf_at(k, n, 0.5) == pytest.approx(expected, rel=1e-10)
        for q in (0.01, 0.05, 0.5):
            if n:
                assert _stats.binom_ppf(q, n, 0.5) == int(stats.binom.ppf(q, n, 0.5))


def _jobs(results, directory):
    band = plots.bands(results)
    return [figures.FigureJob(directory / f"{t}.png", plots.task_figure,
                              (band[band.task == t].reset_index(drop=True), t, {}))
            for t in ("a", "b")]


def test_a_figure_is_redrawn_only_when_what_it_shows_changes(tmp_path, monkeypatch):
    drawn = []
    draw = figures._draw
    monkeypatch.setattr(figures, "_draw", lambda job, stamp: drawn.append(job.path) or
                        draw(job, stamp))
    seen = []
    results = _results()
    figures.draw_figures(_jobs(results, tmp_path), progress=lambda d, t: seen.append((d, t)))
    assert len(drawn) == 2 and seen == [(0, 2), (1, 2), (2, 2)]
    first = (tmp_path / "a.png").read_bytes()
    figures.draw_figures(_jobs(results, tmp_path), progress=lambda d, t: seen.append((d, t)))
    assert len(drawn) == 2 and seen[-1] == (2, 2)  # nothing changed: nothing drawn
    changed = results.copy()
    changed.loc[(changed.task == "b") & (changed.metric == "recall"), "value"] += 1.0
    figures.draw_figures(_jobs(changed, tmp_path))
    assert drawn[2:] == [tmp_path / "b.png"]  # only the figure whose data changed
    assert (tmp_path / "a.png").read_bytes() == first
    (tmp_path / "a.png").write_bytes(b"not a png")  # damaged: drawn again
    figures.draw_figures(_jobs(changed, tmp_path))
    assert drawn[3:] == [tmp_path / "a.png"] and (tmp_path / "a.png").read_bytes() == first


def test_the_pngs_do_not_depend_on_the_number_of_drawing_processes(tmp_path):
    results = _results()
    one, two = tmp_path / "one", tmp_path / "two"
    figures.draw_figures(_jobs(results, one), workers=1)
    seen = []
    figures.draw_figures(_jobs(results, two), workers=2, progress=lambda d, t: seen.append(d))
    assert seen == [0, 1, 2]
    for name in ("a.png", "b.png"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
        assert figures.png_stamp(one / name) == figures.digest(_jobs(results, one)[0]) \
            if name == "a.png" else True


def test_a_failing_figure_fails_the_report_in_a_worker_too(tmp_path):
    job = figures.FigureJob(tmp_path / "x.png", plots.task_figure, ("not a frame", "a", {}))
    for workers in (1, 2):
        with pytest.raises(AttributeError):
            figures.draw_figures([job, *_jobs(_results(), tmp_path)], workers=workers)
    assert not (tmp_path / "x.png").exists()
