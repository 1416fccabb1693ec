"""The collapse profile: Table 1 of Schaeffer et al. 2025 and the other definitions' verdicts."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.config import Study, load_study
from modelcollapse.engine import run_study
from modelcollapse.profile import DEFINITIONS, ProfileSettings, collapse_profile

OCC, NOT, INC, NA = "occurs", "does_not_occur", "inconclusive", "not_applicable"

# Schaeffer et al. 2025, Appendix A, Table 1 (linear regression; ✗ = does not occur; the
# regression truth has one mode and full support, so Defs. 6 and 8 are not applicable here)
TABLE_1 = {  # definition: (accumulate, replace)
    1: (NOT, OCC), 2: (OCC, OCC), 3: (NOT, OCC), 4: (NOT, NOT),
    5: (OCC, OCC), 6: (NA, NA), 7: (NOT, NOT), 8: (NA, NA),
}


def profile_of(study: Study, settings=None) -> pd.DataFrame:
    results = run_study(study)
    return collapse_profile(results, results.attrs["profile_specs"], settings)


def verdicts(profile: pd.DataFrame, paradigm: str) -> dict[int, str]:
    rows = profile[profile.paradigm == paradigm]
    return dict(zip(rows.definition, rows.verdict))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_1_of_the_position_paper(seed):
    """The linear-regression preset reproduces Table 1 (every ✓ and every ✗ decided at
    family-wise alpha 0.05), for any seed."""
    profile = profile_of(load_study("gerstgrasser2024-linear-regression", [f"seed={seed}"]))
    for paradigm, column in (("accumulate", 0), ("replace", 1)):
        got = verdicts(profile, paradigm)
        assert got == {d: expected[column] for d, expected in TABLE_1.items()}, paradigm


@pytest.mark.parametrize("n_iterations", [20, 50, 100])
def test_divergence_verdict_does_not_depend_on_the_horizon(n_iterations):
    profile = profile_of(load_study("gerstgrasser2024-linear-regression",
                                    [f"n_iterations={n_iterations}", "n_seeds=100",
                                     "paradigms=[replace, accumulate]"]))
    assert verdicts(profile, "replace")[3] == OCC
    assert verdicts(profile, "accumulate")[3] == NOT


@pytest.mark.parametrize("n_iterations", [50, 100, 300])
def test_bounded_w2_of_mle_replace_is_never_called_diverging(n_iterations):
    """Kazdan's MLE Gaussian under replace: W2 is bounded (it saturates with a timescale of
    about n = 100 iterations), so Def. 3 must not be 'occurs' at any horizon, while the
    variance collapses (Def. 4) at every horizon."""
    rep = verdicts(profile_of(load_study("kazdan2024-gaussian", [
        f"n_iterations={n_iterations}", "paradigms=[replace]"])), "replace")
    assert rep[3] != OCC
    assert rep[4] == OCC


@pytest.mark.parametrize("seed", [0, 5])
def test_variance_collapses_but_risk_saturates_under_mle_replace(seed):
    """Kazdan's MLE Gaussian: replace collapses the variance (Def. 4) while W2 saturates (Def. 3
    does not occur); Shumailov's unbiased estimator diverges (the mean walks away)."""
    mle = profile_of(load_study("kazdan2024-gaussian", [f"seed={seed}", "n_seeds=100",
                                                        "n_iterations=300",
                                                        "paradigms=[replace, accumulate]"]))
    rep, acc = verdicts(mle, "replace"), verdicts(mle, "accumulate")
    assert rep[4] == OCC and acc[4] == NOT
    assert rep[3] != OCC and acc[3] == NOT
    assert rep[7] == OCC and acc[7] == NOT  # tails go first when the variance shrinks
    unbiased = profile_of(load_study("kazdan2024-gaussian", [
        f"seed={seed}", "n_seeds=300", "paradigms=[replace]",
        "task_params.covariance_estimator=unbiased"]))
    # the mean walks away (E W2 grows linearly) but 100 iterations of noisy random-walk curves
    # cannot exclude a plateau within one run length: never 'does not occur'
    assert verdicts(unbiased, "replace")[3] != NOT


@pytest.mark.parametrize("seed", [0, 3])
def test_discrete_modes_and_tails_disappear_under_replace(seed):
    study = Study.model_validate({
        "task": "discrete", "seed": seed, "n_seeds": 200, "n_iterations": 60,
        "task_params": {"probabilities": [0.4, 0.3, 0.1, 0.1, 0.05, 0.05], "n_samples": 30},
        "paradigms": ["replace", "accumulate"]})
    profile = profile_of(study)
    rep, acc = verdicts(profile, "replace"), verdicts(profile, "accumulate")
    assert rep[6] == OCC and acc[6] == NOT
    # accumulate's median chain keeps ~0.9 of the tail mass: at the 0.1 margin, not decided
    assert rep[7] == OCC and acc[7] != OCC
    assert rep[4] == OCC and acc[4] == NOT
    assert rep[8] == NOT and acc[8] == NOT  # an empirical fit never leaves the real support


def _curves(mean: np.ndarray, n: int = 60, sd: float = 0.05, seed: int = 0) -> np.ndarray:
    """n noisy replicate curves around ``mean`` (per-seed offset + per-iteration noise)."""
    rng = np.random.default_rng(seed)
    scale = np.ptp(mean) or 1.0
    return (mean[None, :] + sd * scale * rng.normal(size=(n, 1))
            + sd * scale * rng.normal(size=(n, len(mean))))


def _p(curves):
    from modelcollapse.profile.definitions import diverging

    v = diverging(curves, "population_risk", ProfileSettings())
    return v.p_occurs, v.p_not


@pytest.mark.parametrize("seed", [0, 1])
def test_growth_test_separates_growth_laws(seed):
    t = np.arange(40.0)
    for unbounded in (1 + 0.5 * t, 1 + np.sqrt(t), 1 + 0.2 * t**1.5):
        p_occ, p_not = _p(_curves(unbounded, seed=seed))
        assert p_occ < 1e-3 and p_not > 1e-4  # a correct law is rejected w.p. 1e-4
    harmonic = np.cumsum(1 / np.arange(1, 41) ** 2)               # Gerstgrasser accumulate
    for bounded in (2 - 1 / (t + 1), 3 - 2 * np.exp(-t / 5), harmonic):
        p_occ, p_not = _p(_curves(bounded, seed=seed))
        assert p_occ > 1e-4 and p_not < 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_divergence_needs_the_curve_still_rising_at_the_end(seed):
    """A linear rise that stops flat for the last third is no saturating law's shape (S is
    rejected) but is not rising at the end: the intersection-union test never says 'occurs'."""
    t = np.arange(45.0)
    kinked = np.minimum(t, 30.0)
    p_occ, _ = _p(_curves(kinked, n=100, sd=0.01, seed=seed))
    assert p_occ > 0.05


@pytest.mark.parametrize("T", [10, 50, 300])
@pytest.mark.parametrize("tau_over_T", [0.5, 1.0])
def test_bounded_curves_with_unresolved_timescale_never_occur(T, tau_over_T):
    """Issue 10, finding 1: noise-free 1 - exp(-(t+1)/tau) with tau >= T/2 were called
    diverging.  Noise-free or noisy, they are not 'occurs' now."""
    t = np.arange(float(T))
    curve = 1 - np.exp(-(t + 1) / (tau_over_T * T))
    for curves in (np.tile(curve, (30, 1)), _curves(curve, sd=0.02)):
        p_occ, _ = _p(curves)
        assert not p_occ < 0.05


def test_infinite_risk_and_short_runs_are_results_not_errors():
    rows = []
    for seed in range(5):
        for it, value in enumerate([1.0, 2.0, np.inf]):
            rows.append(("s", "t", "f", "p", seed, it, "test_nll", value, "ok"))
    df = pd.DataFrame(rows, columns=["study", "task", "family", "paradigm", "seed", "iteration",
                                     "metric", "value", "status"])
    profile = collapse_profile(df, {"t": {"risk": "test_nll"}})
    got = dict(zip(profile.definition, profile.verdict))
    assert got[1] == OCC and got[2] == OCC and got[3] == OCC
    assert got[4] == NA and got[8] == NA
    assert set(profile.definition) == set(DEFINITIONS)


def test_settings_are_validated_and_change_verdicts():
    with pytest.raises(ValueError):
        ProfileSettings(alpha=0.7)
    study = load_study("gerstgrasser2024-linear-regression", ["paradigms=[accumulate]",
                                                               "n_seeds=100"])
    results = run_study(study)
    specs = results.attrs["profile_specs"]
    strict = collapse_profile(results, specs, {"catastrophic_ratio": 1.2})
    assert dict(zip(strict.definition, strict.verdict))[1] == OCC  # 1.6x counts at 1.2x


def test_profile_command(tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["run", "gerstgrasser2024-linear-regression", "--out", str(out),
                              "--set", "n_seeds=40", "--set", "n_iterations=10", "--no-plots",
                              "-q"])
    assert res.exit_code == 0, res.output
    assert (out / "profile.csv").is_file()
    res = runner.invoke(app, ["profile", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)
    assert {"task", "paradigm", "definition", "verdict", "statistic", "value"} <= set(records[0])
    assert len(records) == 3 * 8
    res = runner.invoke(app, ["profile", str(out), "--format", "csv"])
    assert res.exit_code == 0 and res.stdout.startswith("task,paradigm,definition")
    res = runner.invoke(app, ["profile", str(out)])
    assert res.exit_code == 0 and "replace" in res.stdout
    res = runner.invoke(app, ["profile", str(out), "--format", "xml"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["profile", str(out), "--set", "nonsense=1"])
    assert res.exit_code == 2


def test_theory_and_verify_commands():
    runner = CliRunner()
    res = runner.invoke(app, ["theory"])
    assert res.exit_code == 0 and "accumulate_risk" in res.stdout
    res = runner.invoke(app, ["theory", "replace_risk", "--set", "n_features=10", "--set",
                              "n_samples=100", "--set", "noise_variance=1", "--iterations", "3"])
    assert res.exit_code == 0 and "0.224719" in res.stdout  # 2 * 10 / 89
    res = runner.invoke(app, ["theory", "replace_rsk"])
    assert res.exit_code == 2 and "replace_risk" in res.output
    res = runner.invoke(app, ["verify"])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.stdout and "FAIL" not in res.stdout


def test_knn_metrics_detect_collapse_and_hallucination():
    """k-NN precision/recall (Kynkäänniemi et al. 2019): a collapsed sample keeps precision but
    loses recall and modes; a shifted sample loses precision (hallucinated data)."""
    from modelcollapse.metrics.knn import knn_precision_recall

    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 300, 2))
    labels = (real[..., 0] > 0).astype(int)
    same = knn_precision_recall(real, rng.standard_normal((3, 300, 2)), labels=labels)
    assert (same[0] > 0.9).all() and (same[1] > 0.9).all() and (same[2] == 1).all()
    collapsed = knn_precision_recall(real, 0.3 * rng.standard_normal((3, 300, 2)) + [1.2, 0],
                                     labels=labels)
    assert (collapsed[0] > 0.9).all() and (collapsed[1] < 0.5).all()
    assert (collapsed[2] == 0.5).all()  # the x < 0 mode is gone
    shifted = knn_precision_recall(real, rng.standard_normal((3, 300, 2)) + 6)
    assert (shifted[0] < 0.05).all()


def test_mode_and_hallucination_verdicts_on_a_mixture():
    """A GMM on its own three-mode truth: replace with tiny samples loses modes (Def. 6) and
    accumulate keeps them; the KDE's bandwidth noise spreads samples off the real manifold."""
    study = Study.model_validate({
        "task": "gmm", "n_seeds": 12, "n_iterations": 25,
        "task_params": {"n_samples": 12, "n_test": 300, "n_components": 3},
        "paradigms": ["replace", "accumulate"]})
    profile = profile_of(study)
    assert verdicts(profile, "replace")[6] == OCC
    assert verdicts(profile, "accumulate")[6] == NOT
    kde = Study.model_validate({
        "task": "kde", "n_seeds": 12, "n_iterations": 15,
        "task_params": {"dataset": "moons", "bandwidth": 0.3, "n_test": 300},
        "paradigms": ["replace"]})
    assert verdicts(profile_of(kde), "replace")[8] == OCC


@pytest.mark.parametrize("c", [0.0, 0.35, 1.0, 2.2])
def test_growth_fit_recovers_the_exponent(c):
    """The profiled (variable-projection) GLS fit finds the exact Box-Cox exponent of a
    noiseless power law, including the logarithm (c = 0), on a 60-iteration curve."""
    from modelcollapse.profile.growth import growth_test

    x = np.arange(60.0) + 1
    y = 3 + 0.5 * (np.log(x) if c == 0 else (x**c - 1) / c)
    g = growth_test(np.tile(y, (20, 1)), n_blocks=8)
    assert g.p_unbounded > 0.5 and abs(g.exponent - c) < 1e-3


def test_too_few_seeds_or_iterations_are_not_verdicts():
    """n_seeds below min_seeds: inconclusive (never 'occurs' with p = 0); one iteration:
    not applicable on all eight."""
    few = profile_of(load_study("gerstgrasser2024-linear-regression", [
        "n_seeds=3", "paradigms=[replace]"]))
    assert set(few.verdict) <= {INC, NA} and (few.verdict == INC).sum() >= 5
    assert few[few.verdict == INC].reason.str.contains("min_seeds").all()
    one = profile_of(load_study("gerstgrasser2024-linear-regression", [
        "n_iterations=1", "paradigms=[replace]"]))
    assert (one.verdict == NA).all() and len(one) == 8


def test_real_data_tail_path_agrees_with_the_excess_risk_path():
    """Def. 7 on held-out losses (increments since iteration 0, no noise floor) and on exact
    excess risks (known truth) give the same verdicts, and values within their intervals."""
    results = run_study(load_study("gerstgrasser2024-linear-regression", [
        "n_iterations=20", "n_seeds=200"]))
    spec = dict(results.attrs["profile_specs"]["linear_regression-synthetic"])
    excess = collapse_profile(results, {"linear_regression-synthetic": spec})
    spec.update(tail="tail_loss", tail_base="test_loss", tail_mode="increment")
    held_out = collapse_profile(results, {"linear_regression-synthetic": spec})
    a, b = excess[excess.definition == 7], held_out[held_out.definition == 7]
    assert list(a.verdict) == list(b.verdict) == [NOT] * 3
    assert (abs(a.value.to_numpy() - b.value.to_numpy()) < 0.1).all()


def test_any_false_occurs_is_controlled_across_null_studies():
    """200 no-feedback null studies (mix with real fraction 1 and fresh real data: every
    iteration is an independent real-data fit, so no definition of collapse holds): the share
    with at least one false 'occurs' over all their verdicts is at most alpha = 0.05 within
    Monte Carlo error (3 standard errors: 0.05 + 3 x 0.0154)."""
    n_studies, n_seeds = 200, 20
    study = Study.model_validate({
        "tasks": [{"task": "gaussian", "task_params": {"n_features": 2, "n_samples": 50}},
                  {"task": "linear_regression", "task_params": {"n_features": 3,
                                                                "n_samples": 30}}],
        "paradigms": [{"name": "mix", "real_fraction": 1.0, "fresh_real": True}],
        "n_seeds": n_studies * n_seeds, "n_iterations": 8, "seed": 11})
    results = run_study(study)
    specs = results.attrs["profile_specs"]
    any_false = 0
    for k in range(n_studies):
        part = results[(results.seed >= k * n_seeds) & (results.seed < (k + 1) * n_seeds)]
        any_false += bool((collapse_profile(part, specs).verdict == OCC).any())
    assert any_false / n_studies <= 0.05 + 3 * 0.0154


def test_holm_matches_an_independent_implementation():
    """Our Holm step-down adjustment equals statsmodels' on random p-values with ties and
    NaN (no test)."""
    from statsmodels.stats.multitest import multipletests

    from modelcollapse.profile._stats import holm

    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(size=30) ** 3
        p[rng.integers(30, size=3)] = 0.01
        p[rng.integers(30, size=2)] = np.nan
        got = holm(p)
        ok = ~np.isnan(p)
        np.testing.assert_allclose(got[ok], multipletests(p[ok], method="holm")[1])
        assert np.isnan(got[~ok]).all()


def test_extreme_values_are_results_not_crashes():
    """Curves spanning 1e-9 to 1e300 (a rank-deficient or overflowing covariance) give a
    verdict or 'inconclusive' with the reason -- never an exception (the He et al. preset's
    variance curves once made the growth test's Cholesky fail)."""
    rows = []
    rng = np.random.default_rng(0)
    for seed in range(30):
        for it in range(12):
            value = 1.0 + 1e-9 * rng.normal() + (1e300 if (seed, it) == (0, 5) else 0.0)
            for metric in ("w2_squared", "cov_trace_ratio"):
                rows.append(("s", "t", "f", "p", seed, it, metric,
                             value if metric == "w2_squared" else 1e-12 * (seed == 3) + 1.0,
                             "ok"))
    df = pd.DataFrame(rows, columns=["study", "task", "family", "paradigm", "seed", "iteration",
                                     "metric", "value", "status"])
    profile = collapse_profile(df, {"t": {"risk": "w2_squared", "variance": "cov_trace_ratio"}})
    assert len(profile) == 8 and set(profile.verdict) <= {OCC, NOT, INC, NA}


@pytest.mark.parametrize("seed", [0, 1])
def test_summary_contrast_is_the_ratio_of_means(seed):
    """Issue 10, finding 8: the summary's last / first is mean(R_T) / mean(R_0) (it was the mean
    of per-chain ratios, 1.87 for Gerstgrasser's accumulate, above pi^2/6).  It matches
    E R_T / E R_0 = sum_{i<=T+1} 1/i^2 within 4 delta-method standard errors (the mean of
    ratios sits about 6 away at 200 seeds)."""
    from scipy import stats as st

    from modelcollapse.report.summary import final_vs_initial
    from modelcollapse.theory.linear_regression import accumulate_risk_ratio

    results = run_study(load_study("gerstgrasser2024-linear-regression",
                                   [f"seed={seed}", "paradigms=[accumulate]"]))
    row = final_vs_initial(results, {"linear_regression-synthetic": "population_risk"}).iloc[0]
    risk = results[results.metric == "population_risk"].pivot(index="seed", columns="iteration",
                                                              values="value")
    assert row.contrast == "ratio of means"
    assert row.ratio == pytest.approx(risk.iloc[:, -1].mean() / risk.iloc[:, 0].mean())
    se = (np.log(row.ratio_high) - np.log(row.ratio_low)) / (2 * st.t.ppf(0.975, len(risk) - 1))
    theory = float(accumulate_risk_ratio(int(risk.columns.max())))
    assert abs(np.log(row.ratio) - np.log(theory)) < 4 * se


@pytest.mark.parametrize("case", range(6))
def test_grid_min_finds_the_minimum_scipys_bounded_search_finds(case):
    """The nested-grid search of the growth test and the learning-curve fit against
    scipy.optimize.minimize_scalar (bounded) on the same bracket, and against the truth."""
    from scipy.optimize import minimize_scalar

    from modelcollapse.profile._stats import grid_min

    rng = np.random.default_rng(case)
    centre, width = rng.uniform(-2, 2), rng.uniform(0.05, 3)
    f = lambda v: np.log1p(((np.asarray(v) - centre) / width) ** 2) + 0.1 * np.sin(v)  # noqa
    grid = np.linspace(-5.0, 5.0, 48)
    value, x = grid_min(f, grid, 1e-7)
    k = int(np.argmin(f(grid)))
    ref = minimize_scalar(lambda v: float(f(v)), bounds=(grid[max(k - 1, 0)], grid[k + 1]),
                          method="bounded", options={"xatol": 1e-9})
    assert abs(x - ref.x) < 1e-5 and value <= ref.fun + 1e-12
    assert value == pytest.approx(float(f(x)), abs=0)
    # infeasible everywhere (inf): no crash, inf returned
    assert grid_min(lambda v: np.full(len(v), np.inf), grid, 1e-7)[0] == np.inf


def test_profile_reads_a_categorical_metric_column_as_its_strings():
    """The store's categorical ``metric`` (with categories no unit uses) gives the profile of
    the same table with plain strings."""
    study = Study.model_validate({"name": "cat", "task": "gaussian",
                                  "task_params": {"dataset": "synthetic", "n_features": 2,
                                                  "n_samples": 30},
                                  "paradigms": ["replace", "accumulate"], "n_iterations": 6,
                                  "n_seeds": 8})
    results = run_study(study)
    plain = results.assign(metric=results.metric.astype(str))
    names = sorted(plain.metric.unique())
    categorical = plain.assign(metric=pd.Categorical(
        plain.metric, categories=["zz_unused", *names[::-1], "aa_unused"]))
    a, b = collapse_profile(plain), collapse_profile(categorical)
    pd.testing.assert_frame_equal(a, b)
    assert (a.verdict != "not_applicable").any()
