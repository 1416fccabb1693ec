"""Collapse is data, never a crash: degenerate fits are recorded as a status and as values
(0 entropy, +inf NLL, 0 variance) and the chains keep running to the last iteration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelcollapse
from modelcollapse.cli import app
from modelcollapse.config import Study
from modelcollapse.engine import run_study
from modelcollapse.registry import tasks
from modelcollapse.rng import Streams

#: statuses that mean something went numerically wrong rather than "the model collapsed"
BROKEN = {"nan_metric", "non_finite", "fit_failed"}


def run(spec: dict) -> tuple[Study, pd.DataFrame]:
    study = Study.model_validate(spec)
    return study, run_study(study)


def metric(df: pd.DataFrame, name: str, **where) -> pd.DataFrame:
    sel = df.metric == name
    for col, val in where.items():
        sel &= df[col] == val
    return df[sel]


def wide(df: pd.DataFrame, name: str, paradigm: str, column: str = "value") -> pd.DataFrame:
    """(seed x iteration) table of one metric's values (or statuses)."""
    sub = metric(df, name, paradigm=paradigm)
    return sub.pivot(index="seed", columns="iteration", values=column)


def assert_complete(study: Study, df: pd.DataFrame) -> None:
    """Every (task, paradigm, seed, iteration, metric) row is there: nothing stopped early."""
    n_metrics = df.metric.nunique()
    assert len(df) == (len(study.tasks) * len(study.paradigms) * study.n_seeds
                       * study.n_iterations * n_metrics)
    counts = df.groupby(["paradigm", "seed", "metric"], observed=True).size()
    assert (counts == study.n_iterations).all()


def assert_no_nan(df: pd.DataFrame) -> None:
    nan = df[df.value.isna()]
    assert nan.empty, nan.head()


# -- discrete: Wright-Fisher fixation -------------------------------------------------------------

def test_discrete_replace_fixes_on_single_outcome_and_keeps_running():
    study, df = run({"task": "discrete", "task_params": {"n_outcomes": 5, "n_samples": 5},
                     "paradigms": ["replace", "accumulate"], "n_seeds": 20, "n_iterations": 60})
    assert_complete(study, df)
    assert_no_nan(df)
    assert not set(df.status.astype(str)) & BROKEN

    status = wide(df, "entropy", "replace", "status")
    entropy = wide(df, "entropy", "replace")
    support = wide(df, "support_size", "replace")
    gini = wide(df, "gini_simpson", "replace")
    tv = wide(df, "tv_distance", "replace")
    fixed = (status == "single_outcome").to_numpy()
    assert fixed[:, -1].any(), "no seed reached a single outcome in 60 iterations"
    # single_outcome is absorbing, and the fitted distribution is a point mass from then on
    for seed, row in zip(status.index, fixed):
        if row.any():
            assert row[row.argmax():].all(), f"seed {seed} left single_outcome"
    entropy, support, gini, tv = (x.to_numpy() for x in (entropy, support, gini, tv))
    assert (np.abs(entropy[fixed]) < 1e-12).all()
    assert (support[fixed] == 1).all()
    assert (np.abs(gini[fixed]) < 1e-12).all()
    # ok fits still have more than one outcome and positive entropy
    assert (entropy[~fixed] > 0).all() and (support[~fixed] > 1).all()
    # tv distance to uniform over 5 outcomes of a point mass is 1 - 1/5
    assert np.allclose(tv[fixed], 0.8)

    # accumulate keeps the real counts: support never shrinks below that of iteration 0
    acc = wide(df, "support_size", "accumulate")
    assert (acc.to_numpy() >= acc[[0]].to_numpy()).all()


def test_discrete_single_outcome_already_in_real_data():
    """n_samples 1: every real sample is one outcome; iteration 0 is already a point mass."""
    study, df = run({"task": "discrete", "task_params": {"n_outcomes": 4, "n_samples": 1},
                     "paradigms": ["replace", "accumulate", "accumulate-subsample",
                                   {"name": "mix", "real_fraction": 0.5}],
                     "n_seeds": 3, "n_iterations": 5})
    assert_complete(study, df)
    assert_no_nan(df)
    assert set(metric(df, "entropy").status.astype(str)) == {"single_outcome"}
    assert (metric(df, "entropy").value.abs() < 1e-12).all()


# -- gaussian -------------------------------------------------------------------------------------

def test_gaussian_fewer_samples_than_features_is_singular_with_infinite_nll():
    study, df = run({"task": "gaussian",
                     "task_params": {"n_samples": 3, "n_features": 5, "n_test": 50},
                     "paradigms": ["replace", "accumulate", "accumulate-subsample"],
                     "n_seeds": 4, "n_iterations": 3})
    assert_complete(study, df)
    assert_no_nan(df)
    nll = metric(df, "test_nll")
    # iteration 0 is fit on 3 real points in 5 dimensions: rank <= 2
    first = nll[nll.iteration == 0]
    assert (first.status == "singular_covariance").all()
    assert np.isposinf(first.value).all()
    # synthetic data from a singular fit stay in its affine subspace: singular forever
    assert (nll.status == "singular_covariance").all()
    assert np.isposinf(nll.value).all()
    for name in ("mean_sq_error", "cov_trace_ratio", "w2_squared"):
        assert np.isfinite(metric(df, name).value).all(), name


def test_gaussian_family_singular_status_means_infinite_nll():
    """Whenever the fit is flagged singular, held-out points off its support have density 0:
    score_samples -inf and cross_entropy +inf -- also when round-off leaves the 'zero'
    eigenvalues at +1e-18 instead of exactly 0."""
    from modelcollapse.families.gaussian import Gaussian

    rng = np.random.default_rng(0)
    R, n, d = 32, 3, 5
    model = Gaussian().fit(rng.standard_normal((R, n, d)))
    assert list(model.status_) == ["singular_covariance"] * R
    test = rng.standard_normal((R, 30, d))
    finite = ~np.isneginf(model.score_samples(test)).all(1)
    assert not finite.any(), (np.flatnonzero(finite), model.covariance_[finite])
    Xc = test - test.mean(1, keepdims=True)
    ce = model.cross_entropy(test.mean(1), np.einsum("rnd,rne->rde", Xc, Xc) / 30)
    assert np.isposinf(ce).all(), ce


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("n_features", [1, 3])
def test_gaussian_replace_with_two_samples_collapses_to_zero_variance(estimator, n_features):
    study, df = run({"task": "gaussian",
                     "task_params": {"n_samples": 2, "n_features": n_features, "n_test": 20,
                                     "covariance_estimator": estimator},
                     "paradigms": ["replace", "accumulate"], "n_seeds": 5, "n_iterations": 200})
    assert_complete(study, df)
    assert_no_nan(df)
    assert not set(df.status.astype(str)) & BROKEN
    ratio = wide(df, "cov_trace_ratio", "replace")
    last = ratio.iloc[:, -1]
    assert (last >= 0).all() and (last < 1e-6).all(), last
    # the variance never comes back once it has collapsed
    assert (ratio.iloc[:, 150:].max(axis=1) < 1e-3).all()
    # a collapsed model gives the held-out real data infinite (or astronomically large) NLL
    nll = wide(df, "test_nll", "replace").iloc[:, -1]
    assert (nll > 1e6).all() and not nll.isna().any()
    status = wide(df, "test_nll", "replace", "status").iloc[:, -1]
    assert set(status) <= {"zero_variance", "singular_covariance"}
    assert np.isposinf(nll[status == "zero_variance"]).all()
    # accumulating keeps the real data and therefore variance
    acc_last = wide(df, "cov_trace_ratio", "accumulate").iloc[:, -1]
    assert (acc_last > 0).all() and (acc_last > last).all()


def test_gaussian_tiny_sampling_scale_collapses_without_crash():
    study, df = run({"task": "gaussian",
                     "task_params": {"n_samples": 10, "n_features": 2, "n_test": 20,
                                     "sampling_scale": 1e-3},
                     "paradigms": ["replace", {"name": "mix", "real_fraction": 0.5}],
                     "n_seeds": 3, "n_iterations": 120})
    assert_complete(study, df)
    assert_no_nan(df)
    assert (wide(df, "cov_trace_ratio", "replace").iloc[:, -1] < 1e-12).all()
    # a real half keeps the mix chain's variance away from zero
    assert (wide(df, "cov_trace_ratio", "mix-0.5").iloc[:, -1] > 1e-3).all()


def test_degenerate_run_through_cli_keeps_inf_in_results(tmp_path):
    """The whole pipeline (results, summary, plots) copes with +inf and singular fits."""
    path = tmp_path / "deg.yaml"
    path.write_text("name: deg\ntask: gaussian\n"
                    "task_params: {n_samples: 3, n_features: 4, n_test: 20}\n"
                    "paradigms: [replace, accumulate]\nn_seeds: 2\nn_iterations: 3\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, (result.stdout, result.stderr, repr(result.exception))
    df = modelcollapse.load_results(out)
    nll = metric(df, "test_nll")
    assert np.isposinf(nll.value).all()
    assert (nll.status == "singular_covariance").all()
    assert (out / "summary.csv").is_file()
    assert any((out / "plots").glob("*.png"))


# -- linear regression ----------------------------------------------------------------------------

def test_linear_regression_fewer_rows_than_features_uses_minimum_norm_fit():
    spec = {"task": "linear_regression",
            "task_params": {"n_samples": 5, "n_features": 10, "n_test": 50},
            "paradigms": ["replace", "accumulate", "accumulate-subsample"],
            "n_seeds": 3, "n_iterations": 4}
    study, df = run(spec)
    assert_complete(study, df)
    assert_no_nan(df)
    risk = metric(df, "population_risk")
    assert np.isfinite(risk.value).all() and (risk.value > 0).all()
    assert np.isfinite(metric(df, "test_loss").value).all()
    assert (risk[risk.iteration == 0].status == "singular_covariance").all()
    # synthetic labels on the same 5 design rows: still rank 5 < 10 for every paradigm
    assert (risk.status == "singular_covariance").all()

    # iteration 0 is the minimum-norm least-squares fit pinv(X) y: check its exact risk
    entry = study.tasks[0]
    task = tasks.get("linear_regression").build(entry.params(), Streams(study.seed,
                                                                         range(study.n_seeds)))
    X, y, w_star = task.real[..., :-1], task.real[..., -1], task.truth["coef"]
    w_min_norm = np.stack([np.linalg.pinv(X[r]) @ y[r] for r in range(study.n_seeds)])
    expected = ((w_min_norm - w_star) ** 2).sum(1)
    got = wide(df, "population_risk", "replace")[0].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_linear_regression_family_minimum_norm_directly():
    from modelcollapse.families.linear_regression import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 4, 7))
    y = rng.standard_normal((2, 4))
    model = LinearRegression(X, noise_variance=1.0).fit(np.concatenate([X, y[..., None]], axis=-1))
    assert list(model.status_) == ["singular_covariance"] * 2
    for r in range(2):
        np.testing.assert_allclose(model.coef_[r], np.linalg.pinv(X[r]) @ y[r], atol=1e-10)
    assert np.isfinite(model.sample(6, rngs=[np.random.default_rng(i) for i in range(2)])).all()


def test_linear_regression_real_data_interpolation_gives_zero_noise_not_crash():
    """diabetes with 5 training rows < 11 columns: the fit interpolates, the fitted noise is 0,
    sampled labels are exact -- the chain is stuck, not broken."""
    study, df = run({"task": "linear_regression",
                     "task_params": {"dataset": "diabetes", "n_samples": 5},
                     "paradigms": ["replace", "accumulate"], "n_seeds": 3, "n_iterations": 4})
    assert_complete(study, df)
    assert_no_nan(df)
    loss = metric(df, "test_loss")
    assert np.isfinite(loss.value).all()
    assert set(loss.status.astype(str)) <= {"zero_variance", "singular_covariance"}
    assert (metric(df, "residual_variance").value.abs() < 1e-8).all()


# -- kde and gmm on collapsed data ----------------------------------------------------------------

def _rngs(n):
    return [np.random.default_rng(i) for i in range(n)]


def test_kde_family_on_identical_points():
    from modelcollapse.families.kde import KernelDensity

    X = np.ones((2, 6, 3))
    model = KernelDensity().fit(X)
    assert list(model.status_) == ["zero_variance"] * 2
    scores = model.score_samples(np.zeros((2, 4, 3)))
    assert np.isfinite(scores).all()
    assert np.isfinite(model.sample(5, rngs=_rngs(2))).all()
    cov = model.covariance()
    np.testing.assert_allclose(cov, (model.bandwidth_**2)[:, None, None] * np.eye(3), atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gmm_family_on_identical_points(covariance_type):
    from modelcollapse.families.gmm import GaussianMixture

    X = np.ones((2, 6, 3))
    model = GaussianMixture(n_components=3, covariance_type=covariance_type)
    model.fit(X, rngs=_rngs(2))
    assert set(model.status_) <= {"merged_components", "ok"}
    assert not set(model.status_) & BROKEN
    assert np.isfinite(model.score_samples(np.zeros((2, 4, 3)))).all()
    assert np.isfinite(model.sample(5, rngs=_rngs(2))).all()


def test_gmm_task_with_fewer_points_than_components():
    study, df = run({"task": "gmm",
                     "task_params": {"n_samples": 2, "n_features": 2, "n_components": 3,
                                     "n_test": 20, "max_iter": 20},
                     "paradigms": ["replace", "accumulate-subsample"],
                     "n_seeds": 2, "n_iterations": 3})
    assert_complete(study, df)
    assert_no_nan(df)
    assert not set(df.status.astype(str)) & BROKEN
    assert np.isfinite(metric(df, "test_nll").value).all()


def test_kde_task_with_tiny_bandwidth_on_two_points():
    study, df = run({"task": "kde",
                     "task_params": {"n_samples": 2, "n_features": 2, "n_test": 20,
                                     "bandwidth": 1e-12},
                     "paradigms": ["replace", "accumulate", "accumulate-subsample"],
                     "n_seeds": 3, "n_iterations": 5})
    assert_complete(study, df)
    assert_no_nan(df)
    nll = metric(df, "test_nll").value
    assert (nll > 1e6).all() and not nll.isna().any()
    assert (metric(df, "cov_trace_ratio").value >= 0).all()
