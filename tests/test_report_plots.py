"""The report's figures: log scale when curves differ by orders of magnitude, whole-number
iteration ticks, and panel grids of at most three columns (issue 13)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from modelcollapse.report import plots
from modelcollapse.report.plots import grid_shape, plot_provenance, plot_task, wants_log
from modelcollapse.report.practices import plot_tail_vs_synthetic_share


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, kept open for inspection."""
    import matplotlib.pyplot as plt

    kept, close, save = [], plt.close, plots.save_figure
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))  # pyplot figures

    def saved(fig, path, **kw):  # the figures report.plots draws without pyplot
        kept.append(fig)
        return save(fig, path, **kw)

    monkeypatch.setattr(plots, "save_figure", saved)
    yield kept
    for fig in list(kept):
        if fig is not None and fig.canvas.manager is not None:  # pyplot's: close
            close(fig)


def _results(tasks=("t",), paradigms=("replace", "accumulate"), n_iterations=4, n_seeds=3,
             growth=1000.0):
    """Long-format results: population_risk grows ``growth``× per iteration under replace and
    stays at 1 otherwise; n_real / n_train / n_synthetic and a tail metric for provenance."""
    rows = []
    for task in tasks:
        for k, paradigm in enumerate(paradigms):
            for seed in range(n_seeds):
                for it in range(n_iterations):
                    risk = growth ** it if k == 0 else 1.0 + 0.01 * seed
                    n_syn = 0 if it == 0 else 100 * it
                    real = 0 if (k == 0 and it) else 100
                    for metric, value in [("population_risk", risk * (1 + 0.01 * seed)),
                                          ("tail_recall", 0.9 - 0.01 * it),
                                          ("n_real", real), ("n_synthetic", n_syn),
                                          ("n_train", real + n_syn)]:
                        rows.append(dict(task=task, paradigm=paradigm, seed=seed, iteration=it,
                                         metric=metric, value=float(value)))
    return pd.DataFrame(rows)


def test_wants_log_decides_from_the_data():
    assert wants_log([[1.0, 2.0], [150.0]])
    assert not wants_log([[1.0, 2.0], [90.0]])  # within 100x: linear
    assert not wants_log([[0.0, 1.0], [1e6]])  # a zero cannot be drawn on a log axis
    assert not wants_log([[-1.0, 1e6]])
    assert wants_log([[1.0, np.inf, np.nan], [1e3]])  # non-finite values are ignored
    assert not wants_log([])


def test_orders_of_magnitude_apart_go_on_a_log_axis(tmp_path, figures):
    plot_task(_results(growth=1000.0), "t", tmp_path / "t.png",
              overlays={"population_risk": {"accumulate": np.ones(4)}})
    ax = next(a for a in figures[-1].axes if a.get_title().startswith("population_risk"))
    assert ax.get_yscale() == "log" and "log scale" in ax.get_title()
    plot_task(_results(growth=1.5), "t", tmp_path / "t2.png")
    ax = next(a for a in figures[-1].axes if a.get_title().startswith("population_risk"))
    assert ax.get_yscale() == "linear"


def test_iteration_ticks_are_whole_numbers(tmp_path, figures):
    plot_task(_results(n_iterations=4, growth=1.5), "t", tmp_path / "t.png")
    plot_provenance(_results(n_iterations=4), tmp_path / "p.png")
    for fig in figures:
        for ax in fig.axes:
            if ax.get_visible() and ax.get_xlabel() == "model-fitting iteration":
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_panel_groups_wrap_into_rows_of_three(tmp_path, figures):
    assert grid_shape(5) == (2, 3) and grid_shape(1) == (1, 1) and grid_shape(3) == (1, 3)
    results = _results(tasks=[f"task{k}" for k in range(5)])
    plot_provenance(results, tmp_path / "p.png")
    specs = {f"task{k}": {"tail_recall": "tail_recall"} for k in range(5)}
    plot_tail_vs_synthetic_share(results, specs, tmp_path / "s.png")
    for fig in figures:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        assert len(shown) == 5
        width, height = fig.get_size_inches()
        assert width <= 4.6 * 3 + 0.1 and height > 6  # two rows, not five squeezed in one
        columns = {round(ax.get_position().x0, 2) for ax in shown}
        assert len(columns) == 3


def test_many_paradigms_get_distinct_colours():
    from matplotlib.colors import to_hex

    colours = {to_hex(plots.paradigm_color(k, 14)) for k in range(14)}
    assert len(colours) == 14
    assert plots.paradigm_color(3, 4) == "C3"  # the default cycle up to ten paradigms
