"""The collapse profile: Table 1 of Schaeffer et al. 2025 and the other definitions' verdicts."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.config import Study, load_study
from modelcollapse.engine import run_study
from modelcollapse.profile import DEFINITIONS, ProfileSettings, collapse_profile, growth_verdict

OCC, NOT, NA = "occurs", "does_not_occur", "not_applicable"

# Schaeffer et al. 2025, Appendix A, Table 1 (linear regression; ✗ = does not occur or n/a)
TABLE_1 = {  # definition: (accumulate, replace)
    1: (False, True), 2: (True, True), 3: (False, True), 4: (False, False),
    5: (True, True), 6: (False, False), 7: (False, False), 8: (False, False),
}


def profile_of(study: Study) -> pd.DataFrame:
    results = run_study(study)
    return collapse_profile(results, results.attrs["profile_specs"])


def verdicts(profile: pd.DataFrame, paradigm: str) -> dict[int, str]:
    rows = profile[profile.paradigm == paradigm]
    return dict(zip(rows.definition, rows.verdict))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_1_of_the_position_paper(seed):
    """The linear-regression preset reproduces Table 1 exactly, for any seed."""
    profile = profile_of(load_study("gerstgrasser2024-linear-regression", [f"seed={seed}"]))
    for paradigm, column in (("accumulate", 0), ("replace", 1)):
        got = verdicts(profile, paradigm)
        for definition, expected in TABLE_1.items():
            assert (got[definition] == OCC) == expected[column], (paradigm, definition, got)


@pytest.mark.parametrize("n_iterations", [20, 50, 100])
def test_divergence_verdict_does_not_depend_on_the_horizon(n_iterations):
    profile = profile_of(load_study("gerstgrasser2024-linear-regression",
                                    [f"n_iterations={n_iterations}", "n_seeds=100",
                                     "paradigms=[replace, accumulate]"]))
    assert verdicts(profile, "replace")[3] == OCC
    assert verdicts(profile, "accumulate")[3] == NOT


def test_dey_donoho_efficiency_floor_under_accumulate():
    """ESS / n_real under accumulate stays above 6/pi^2 (Dey & Donoho 2024), while ESS / n_train
    (the relative efficiency of the training set) falls like 1/(t+1)."""
    profile = profile_of(load_study("gerstgrasser2024-linear-regression",
                                    ["paradigms=[accumulate]"]))
    row = profile[profile.definition == 5].iloc[0]
    ess_over_real = float(row.detail.split("ESS / n_real = ")[1].split(" ")[0])
    assert 6 / np.pi**2 - 0.05 < ess_over_real < 1.0
    assert row.value < 0.05  # n_train = 50 n_real


@pytest.mark.parametrize("seed", [0, 5])
def test_variance_collapses_but_risk_saturates_under_mle_replace(seed):
    """Kazdan's MLE Gaussian: replace collapses the variance (Def. 4) while W2 saturates (Def. 3
    does not occur); Shumailov's unbiased estimator diverges (the mean walks away)."""
    mle = profile_of(load_study("kazdan2024-gaussian", [f"seed={seed}", "n_seeds=100",
                                                        "n_iterations=300",
                                                        "paradigms=[replace, accumulate]"]))
    rep, acc = verdicts(mle, "replace"), verdicts(mle, "accumulate")
    assert rep[4] == OCC and acc[4] == NOT
    assert rep[3] == NOT and acc[3] == NOT
    assert rep[7] == OCC and acc[7] == NOT  # tails go first when the variance shrinks
    unbiased = profile_of(load_study("kazdan2024-gaussian", [
        f"seed={seed}", "n_seeds=300", "paradigms=[replace]",
        "task_params.covariance_estimator=unbiased"]))
    assert verdicts(unbiased, "replace")[3] == OCC


@pytest.mark.parametrize("seed", [0, 3])
def test_discrete_modes_and_tails_disappear_under_replace(seed):
    study = Study.model_validate({
        "task": "discrete", "seed": seed, "n_seeds": 200, "n_iterations": 60,
        "task_params": {"probabilities": [0.4, 0.3, 0.1, 0.1, 0.05, 0.05], "n_samples": 30},
        "paradigms": ["replace", "accumulate"]})
    profile = profile_of(study)
    rep, acc = verdicts(profile, "replace"), verdicts(profile, "accumulate")
    assert rep[6] == OCC and acc[6] == NOT
    assert rep[7] == OCC and acc[7] == NOT
    assert rep[4] == OCC and acc[4] == NOT
    assert rep[8] == NOT and acc[8] == NOT  # an empirical fit never leaves the real support


def test_growth_models():
    t = np.arange(40.0)
    assert growth_verdict(1 + 0.5 * t)[0]                          # linear: unbounded
    assert growth_verdict(1 + np.log1p(t))[0]                      # logarithmic: unbounded
    assert growth_verdict(1 + np.sqrt(t))[0]                       # power: unbounded
    assert not growth_verdict(2 - 1 / (t + 1))[0]                  # 1/t approach: saturating
    assert not growth_verdict(3 - 2 * np.exp(-t / 5))[0]           # plateau within the run
    harmonic = np.cumsum(1 / np.arange(1, 41) ** 2)               # Gerstgrasser accumulate
    assert not growth_verdict(harmonic)[0]


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
    """The profiled (variable-projection) fit finds the exact Box-Cox exponent of a noiseless
    power law, including the logarithm (c = 0), on a 60-iteration curve."""
    t = np.arange(60.0)
    x = t + 1
    y = 3 + 0.5 * (np.log(x) if c == 0 else (x**c - 1) / c)
    unbounded, exponent, delta = growth_verdict(y)
    assert unbounded and delta < 0 and abs(exponent - c) < 1e-3
