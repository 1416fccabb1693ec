"""Every shipped preset validates, and each paper reproduction gives its documented outcome at a
reduced size (tolerances from the Monte Carlo standard error or the stated approximation)."""

import numpy as np
import pandas as pd
import pytest

from modelcollapse.config import Study, list_presets, load_study
from modelcollapse.engine import run_study
from modelcollapse.report.summary import collapse_times

PAPER_PRESETS = ["gerstgrasser2024-linear-regression", "gerstgrasser2024-linear-regression-grid",
                 "kazdan2024-gaussian", "kazdan2024-kde", "shumailov2024-gaussian",
                 "schaeffer2025-timescales", "dey2024-universality", "he2025-golden-ratio",
                 "alemohammad2023-mad", "dey2024-million"]


def reduced(name: str, **changes) -> Study:
    data = load_study(name).resolved()
    data.update(changes)
    return Study.model_validate(data)


def curve(df: pd.DataFrame, metric: str, paradigm: str, task: str | None = None) -> pd.DataFrame:
    rows = df[(df.metric == metric) & (df.paradigm == paradigm)]
    if task is not None:
        rows = rows[rows.task == task]
    return rows.pivot(index="seed", columns="iteration", values="value")


def within(values: np.ndarray, expected: float, k: float = 4.5, rel: float = 0.0) -> bool:
    se = values.std(ddof=1) / np.sqrt(len(values))
    return abs(values.mean() - expected) <= k * se + rel * abs(expected)


def test_every_paper_preset_ships_with_a_source():
    presets = list_presets()
    for name in PAPER_PRESETS:
        assert name in presets
        assert "20" in presets[name]  # a year: the description starts with its source


def test_gerstgrasser_grid():
    df = run_study(reduced("gerstgrasser2024-linear-regression-grid", n_seeds=40,
                           n_iterations=50))
    d = 32
    for task in df.task.unique():
        T, s2 = int(task.split("-")[0][1:]), float(task.split("-s")[1])
        c = s2 * d / (T - d - 1)
        rep = curve(df, "population_risk", "replace", task)[49].to_numpy()
        acc = curve(df, "population_risk", "accumulate", task)[49].to_numpy()
        assert within(rep, c * 50), task
        assert within(acc, c * sum(1 / i**2 for i in range(1, 51))), task
    assert within(curve(df, "population_risk", "replace", "T100-s100")[49].to_numpy(), 2388.1)
    assert within(curve(df, "population_risk", "accumulate", "T100-s100")[49].to_numpy(), 77.62)


def test_kazdan_kde():
    df = run_study(reduced("kazdan2024-kde", n_seeds=6, n_iterations=20))
    for task in df.task.unique():
        rep = curve(df, "test_nll", "replace", task).mean()
        acc = curve(df, "test_nll", "accumulate", task).mean()
        sub = curve(df, "test_nll", "accumulate-subsample", task).mean()
        assert rep[19] > acc[19] + 0.5, task
        assert acc[19] < 1.3 * acc[0], task
        assert acc[19] - 0.05 <= sub[19] <= rep[19], task


def test_shumailov_mean_walks_away_while_variance_collapses():
    df = run_study(reduced("shumailov2024-gaussian", n_seeds=400, n_iterations=101,
                           paradigms=["replace"]))
    mse = curve(df, "mean_sq_error", "replace")
    for t in (0, 50, 100):
        assert within(mse[t].to_numpy(), (t + 1) / 100)
    median_var = curve(df, "cov_trace_ratio", "replace")[100].median()
    assert abs(median_var - np.exp(-100 / 99)) < 0.08  # literature MC: 0.358


def test_schaeffer_timescales():
    study = load_study("schaeffer2025-timescales")
    tasks = [t.model_dump() for t in study.tasks if t.label in ("K10-D10", "K10-D100",
                                                                  "K100-D10")]
    df = run_study(reduced("schaeffer2025-timescales", tasks=tasks, n_seeds=200,
                           n_iterations=900))
    times = collapse_times(df)
    for label, K, D in (("K10-D10", 10, 10), ("K10-D100", 10, 100), ("K100-D10", 100, 10)):
        fits = times[(times.task == label) & (times.paradigm == "replace")]
        assert fits.collapse_iteration.notna().all(), label
        theory = -2 * D * K * (1 - 1 / K) * np.log(1 - 1 / K)
        # the diffusion approximation overestimates by a few percent at small D
        assert within((fits.collapse_iteration + 1).to_numpy(), theory, rel=0.12), label
        acc = times[(times.task == label) & (times.paradigm == "accumulate")]
        assert acc.collapse_iteration.isna().all(), label
    entropy = curve(df, "entropy", "replace", "K10-D100").mean()
    assert entropy[0] > entropy[50] > entropy[150]


def test_dey_donoho_pi_squared_over_six():
    df = run_study(reduced("dey2024-universality", n_seeds=3000))
    acc = curve(df, "mean_sq_error", "accumulate").mean()
    rep = curve(df, "mean_sq_error", "replace").mean()
    sub = curve(df, "mean_sq_error", "accumulate-subsample").mean()
    for t in (1, 4, 19):
        assert abs(acc[t] / acc[0] / sum(1 / g**2 for g in range(1, t + 2)) - 1) < 0.08
        assert abs(rep[t] / rep[0] / (t + 1) - 1) < 0.08
    assert acc.max() / acc[0] < np.pi**2 / 6 * 1.08
    assert acc[19] < sub[19] < rep[19]


def test_dey_donoho_million_streams_to_the_closed_form(tmp_path):
    """The 10^6-chain preset at 3,000 chains (keeping 200), 20 generations: it runs streamed,
    and the summary's ratio of mean errors, last / first, computed from the aggregates of all
    chains, is the closed form (accumulate: sum_{g<=20} 1/g^2; replace: 20) within 4 standard
    errors (the summary's 95% interval is +-1.96 se)."""
    import modelcollapse as mc

    study = load_study("dey2024-million")
    assert study.n_seeds == 10**6 and study.keep_seeds < study.n_seeds
    run = mc.run("dey2024-million", out=tmp_path / "run", plots=False,
                 overrides={"n_seeds": 3000, "keep_seeds": 200, "n_iterations": 20})
    assert run.manifest["streamed"]["n_seeds"] == 3000
    assert sorted(run.results.seed.unique()) == list(range(200))
    theory = {"accumulate": sum(1 / g**2 for g in range(1, 21)), "replace": 20.0}
    for row in run.summary.itertuples():
        assert row.n_seeds == 3000 and row.contrast == "ratio of means"
        se = (row.ratio_high - row.ratio_low) / (2 * 1.96)
        assert abs(row.ratio - theory[row.paradigm]) < 4 * se, row


def test_he_golden_ratio_weighting():
    df = run_study(reduced("he2025-golden-ratio", n_seeds=400, n_iterations=120))
    late = df[(df.metric == "mean_sq_error") & (df.iteration >= 40)]
    stationary = late.groupby("paradigm", observed=True).value.mean() * 50
    weights = {p: float(p.split("-w")[1]) for p in stationary.index}
    for paradigm, w in weights.items():
        theory = (w**2 + (1 - w) ** 2) / (1 - (1 - w) ** 2)
        assert abs(stationary[paradigm] / theory - 1) < 0.06, paradigm
    best = weights[stationary.idxmin()]
    assert 0.55 <= best <= 0.7
    golden = stationary[[p for p, w in weights.items() if w == 0.618][0]]
    half = stationary[[p for p, w in weights.items() if w == 0.5][0]]
    assert golden < half


def test_alemohammad_sampling_bias_and_fresh_data():
    df = run_study(reduced("alemohammad2023-mad", n_seeds=20, n_iterations=30))
    trace = curve(df, "cov_trace_ratio", "fully-synthetic", "gaussian-lambda0.8").mean()
    for t in (5, 10):  # E Sigma_t = lambda^t Sigma_0 (Alemohammad et al. 2023, Sec. 3.1)
        assert abs(trace[t] / 0.8**t - 1) < 0.1
    for task in df.task.unique():
        w2 = {p: curve(df, "w2_squared", p, task).mean() for p in
              ("fully-synthetic", "synthetic-augmentation", "fresh-data")}
        assert w2["fresh-data"][29] < w2["fully-synthetic"][29]
        assert w2["synthetic-augmentation"][29] < w2["fully-synthetic"][29]
        fresh = w2["fresh-data"]
        assert abs(fresh[20:].mean() / fresh[10:20].mean() - 1) < 0.25  # a plateau
