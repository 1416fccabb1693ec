"""Synthetic growth schedules, early stopping on total collapse, collapse times."""

import numpy as np
import pytest

from modelcollapse.config import Study, StudyError, load_study
from modelcollapse.engine import run_study
from modelcollapse.report.summary import collapse_times


def n_train(df, paradigm):
    rows = df[(df.metric == "n_train") & (df.paradigm == paradigm) & (df.seed == 0)]
    return rows.sort_values("iteration").value.to_numpy()


@pytest.mark.parametrize("growth, sizes", [
    ("constant", [20, 20, 20, 20]),
    ("linear", [20, 40, 60, 80]),
    ({"kind": "geometric", "rate": 1.5}, [20, 30, 45, 68]),
])
def test_synthetic_growth_schedules(growth, sizes):
    study = Study.model_validate(dict(
        task="gaussian", task_params={"n_samples": 20, "n_features": 2}, n_seeds=2,
        n_iterations=5, synthetic_growth=growth,
        paradigms=["replace", "accumulate", "accumulate-subsample"]))
    df = run_study(study)
    np.testing.assert_array_equal(n_train(df, "replace"), [20] + sizes)
    np.testing.assert_array_equal(n_train(df, "accumulate"), 20 + np.cumsum([0] + sizes))
    np.testing.assert_array_equal(n_train(df, "accumulate-subsample"), [20] * 5)
    real_fraction = df[(df.metric == "n_real") & (df.paradigm == "accumulate")].groupby(
        "iteration").value.mean().to_numpy() / n_train(df, "accumulate")
    assert (np.diff(real_fraction) < 0).all()


def test_growth_rate_is_validated():
    with pytest.raises(StudyError, match="synthetic_growth"):
        load_study("default", ["synthetic_growth={kind: geometric, rate: 0.5}"])
    with pytest.raises(StudyError, match="synthetic_growth"):
        load_study("default", ["synthetic_growth=exponential"])


def test_memory_guard_refuses_an_impossible_pool():
    study = Study.model_validate(dict(
        task="kde", task_params={"n_samples": 1000, "n_features": 50}, n_seeds=100,
        n_iterations=40, synthetic_growth={"kind": "geometric", "rate": 2}, paradigms=["accumulate"]))
    with pytest.raises(ValueError, match="GiB"):
        run_study(study)


def test_stop_when_collapsed_and_collapse_times():
    """Replace on a categorical chain is a Wright-Fisher chain: it stops once every replicate has
    one outcome left; accumulate never collapses and runs to the cap."""
    study = Study.model_validate(dict(
        task="discrete", task_params={"n_outcomes": 3, "n_samples": 10}, n_seeds=40,
        n_iterations=500, stop_when_collapsed=True, paradigms=["replace", "accumulate"]))
    df = run_study(study)
    times = collapse_times(df)
    rep = times[times.paradigm == "replace"]
    acc = times[times.paradigm == "accumulate"]
    assert rep.collapse_iteration.notna().all()
    assert rep.last_iteration.iloc[0] == rep.collapse_iteration.max() < 499
    assert acc.collapse_iteration.isna().all() and (acc.last_iteration == 499).all()


def test_mean_time_to_total_collapse_matches_the_diffusion_approximation():
    """E[fits until one outcome remains] ~ -2D sum (1-x) ln(1-x) (Littler 1975; the haploid
    Wright-Fisher chain of D samples), within the approximation's few-percent bias at D = 50
    (literature.md Sec. 5: MC 62.4 +- 0.4 vs 63.5 for p = (0.7, 0.2, 0.1))."""
    p = np.array([0.7, 0.2, 0.1])
    D = 50
    study = Study.model_validate(dict(
        task="discrete", task_params={"probabilities": p.tolist(), "n_samples": D}, seed=3,
        n_seeds=1500, n_iterations=5000, stop_when_collapsed=True, paradigms=["replace"]))
    fits = collapse_times(run_study(study)).collapse_iteration + 1
    theory = -2 * D * ((1 - p) * np.log(1 - p)).sum()
    se = fits.std() / np.sqrt(len(fits))
    assert abs(fits.mean() - 62.4) < 4.5 * np.hypot(se, 0.4)
    assert abs(fits.mean() / theory - 1) < 0.08


def test_a_metric_that_is_a_view_of_the_model_is_recorded_per_iteration():
    """The regressor family updates ``noise_variance_`` in place and the regression task
    records it: each iteration must keep its own value (all iterations once read as the last
    one's)."""
    from modelcollapse.config import Study
    from modelcollapse.engine import run_study

    study = Study.model_validate({
        "name": "alias", "task": "regression", "family": "sklearn.linear_model:Ridge",
        "family_params": {"alpha": 1.0}, "task_params": {"n_samples": 40},
        "paradigms": ["replace"], "n_iterations": 4, "n_seeds": 3})
    df = run_study(study)
    rv = df[df.metric == "residual_variance"].pivot(index="seed", columns="iteration",
                                                     values="value")
    assert (rv.nunique(axis=1) == 4).all(), rv
