"""Curation policies and realistic data ecosystems (modelcollapse.curation, engine.curation)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from modelcollapse.config import Study, StudyError, load_study
from modelcollapse.engine import run_study
from modelcollapse.theory.weighting import golden_ratio_weight, stationary_scaled_mse

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def study(paradigms, task="gaussian", params=None, n_iterations=5, n_seeds=10, **kw) -> Study:
    return Study.model_validate({
        "name": "t", "task": task, "n_iterations": n_iterations, "n_seeds": n_seeds,
        "task_params": params if params is not None else {"n_features": 2, "n_samples": 60},
        "paradigms": paradigms, **kw})


def wide(df: pd.DataFrame, metric: str, paradigm: str) -> np.ndarray:
    rows = df[(df.metric == metric) & (df.paradigm == paradigm)]
    return rows.pivot(index="seed", columns="iteration", values="value").to_numpy()


def test_ratio_cap_holds_exactly():
    df = run_study(study([{"name": "accumulate", "curation": [
        {"policy": "ratio_cap", "max_ratio": 1.5}]}], n_iterations=6))
    label = "accumulate+cap1.5"
    syn, real = wide(df, "n_synthetic", label), wide(df, "n_real", label)
    assert (real == 60).all()
    # iteration t has 60 t synthetic rows before the cap: min(60 t, floor(1.5 * 60) = 90)
    assert (syn == np.minimum(60 * np.arange(6), 90)[None, :]).all()
    assert (wide(df, "synthetic_to_real_ratio", label)[:, 2:] == 1.5).all()
    # the kept rows come from every source batch (a uniform subsample, not the oldest ones)
    sources = np.stack([wide(df, f"synthetic_from_{k}", label)[:, 5] for k in range(5)])
    assert (sources.sum(0) == 90).all() and (sources.mean(1) > 10).all()


@pytest.mark.parametrize("recall", [0.3, 0.9])
def test_detector_of_recall_r_removes_r_of_synthetic(recall):
    df = run_study(study([{"name": "accumulate", "curation": [
        {"policy": "detect", "recall": recall}]}], n_iterations=5, n_seeds=20))
    label = f"accumulate+detect-r{recall:g}"
    flagged = np.nansum(wide(df, "detect_flagged", label))
    total = 60 * 4 * 20                                   # 60 per batch x 4 batches x 20 seeds
    se = np.sqrt(total * recall * (1 - recall))
    assert abs(flagged - recall * total) < 5 * se
    # what is left in the pool: (1 - r) of each batch
    kept = wide(df, "n_synthetic", label)[:, -1].sum()
    assert abs(kept - (1 - recall) * total) < 5 * se


def test_fpr_drops_real_arrivals_under_scraping():
    df = run_study(study([{"name": "accumulate", "real_arrival": 20, "initial_real": 100,
                           "scraping": True, "curation": [
                               {"policy": "detect", "recall": 0.8, "fpr": 0.25}]}],
                         params={"n_features": 2, "n_samples": 180}, n_iterations=5, n_seeds=20))
    label = "accumulate+detect-r0.8-fpr0.25+arrival20+scraping"
    real = wide(df, "n_real", label)
    assert (real[:, 0] == 100).all()
    lost = (100 + 20 * 4 - real[:, -1]).sum()             # arrivals flagged as synthetic
    n = 20 * 4 * 20
    assert abs(lost - 0.25 * n) < 5 * np.sqrt(n * 0.25 * 0.75)
    fpr = wide(df, "detect_fpr", label)[:, 1:]
    assert abs(fpr.mean() - 0.25) < 0.05


def test_weights_reproduce_mix_real_weight_and_the_golden_ratio():
    w = round(golden_ratio_weight(), 3)
    params = {"n_features": 1, "n_samples": 100, "known_covariance": True}
    plain = {"name": "mix", "real_fraction": 0.5, "fresh_real": True, "real_weight": w}
    curated = {"name": "mix", "real_fraction": 0.5, "fresh_real": True,
               "curation": [{"policy": "weights", "real_weight": w}]}
    df = run_study(study([plain, curated], params=params, n_iterations=60, n_seeds=200))
    a = wide(df, "mean_sq_error", f"mix-0.5-fresh-w{w:g}")
    b = wide(df, "mean_sq_error", f"mix-0.5-fresh+w{w:g}")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)
    per_seed = 50 * a[:, 20:].mean(1)          # n = 50 real samples per iteration, sigma^2 = 1
    expected = stationary_scaled_mse(w)
    assert abs(per_seed.mean() - expected) < 5 * per_seed.std(ddof=1) / np.sqrt(len(per_seed))


def test_no_curation_is_the_plain_paradigm():
    a = run_study(study(["accumulate"]))
    b = run_study(study([{"name": "accumulate", "curation": []}]))
    pd.testing.assert_frame_equal(a, b)
    # a policy that never acts, on a family that keeps rows anyway: identical values
    params = {"n_features": 2, "n_samples": 40, "n_test": 50}
    plain = run_study(study(["accumulate"], task="kde", params=params, n_seeds=4))
    noop = run_study(study([{"name": "accumulate", "label": "accumulate", "curation": [
        {"policy": "ratio_cap", "max_ratio": 100}]}], task="kde", params=params, n_seeds=4))
    noop = noop[noop.metric.isin(plain.metric.unique())]
    for m in plain.metric.unique():
        np.testing.assert_array_equal(wide(plain, m, "accumulate"), wide(noop, m, "accumulate"))


def test_real_arrival_and_synthetic_growth_per_paradigm():
    df = run_study(study([
        {"name": "accumulate", "real_arrival": 10, "initial_real": 50},
        {"name": "accumulate", "synthetic_growth": {"kind": "geometric", "rate": 2}},
        {"name": "accumulate", "synthetic_growth": "linear"}],
        params={"n_features": 2, "n_samples": 100}, n_iterations=5, n_seeds=3))
    assert (wide(df, "n_real", "accumulate+arrival10") == [50, 60, 70, 80, 90]).all()
    assert (wide(df, "n_synthetic", "accumulate+geometric")
            == np.cumsum([0, 100, 200, 400, 800])).all()
    ratio = wide(df, "synthetic_to_real_ratio", "accumulate+linear")
    assert (ratio == np.cumsum([0, 1, 2, 3, 4])).all()      # the real fraction falls to zero


def test_verify_drops_off_support_outcomes():
    """A real-data verifier removes what the real data never produced (hallucinated mass)."""
    df = run_study(study([{"name": "accumulate", "curation": [{"policy": "verify"}]}],
                         task="discrete", params={"probabilities": [0.5, 0.3, 0.2, 0.0],
                                                  "n_samples": 50}, n_seeds=5))
    assert (df[df.metric == "hallucinated_mass"].value == 0).all()


def _error(tmp_path, curation: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(f"task: gaussian\nparadigms:\n  - name: accumulate\n    curation: {curation}\n")
    with pytest.raises(StudyError) as err:
        load_study(str(path))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_policy_is_one_line(tmp_path):
    message = _error(tmp_path, "[{policy: filter}]")
    assert all(p in message for p in ("verify", "detect", "ratio_cap", "weights"))
    assert "recall" in _error(tmp_path, "[{policy: detect, recall: 1.5}]")
    assert "at most once" in _error(tmp_path, "[{policy: weights}, {policy: weights}]")


# every policy with every family, through the protocol
FAMILIES = {
    "gaussian": {"n_features": 2, "n_samples": 40},
    "linear_regression": {"n_features": 3, "n_samples": 40, "n_test": 50},
    "discrete": {"n_outcomes": 5, "n_samples": 40},
    "kde": {"n_features": 2, "n_samples": 40, "n_test": 50},
    "gmm": {"n_features": 2, "n_samples": 60, "n_test": 50, "n_components": 2},
    "vae": {"dataset": "digits", "n_samples": 60, "n_test": 50, "hidden": 16, "latent": 2,
            "epochs": 2, "sample_metrics": False},
}
POLICIES = [{"policy": "verify"}, {"policy": "detect", "recall": 0.5},
            {"policy": "detect", "detector": "learned"}, {"policy": "tail_oversample"},
            {"policy": "ratio_cap", "max_ratio": 1.0}, {"policy": "weights", "real_weight": 0.7}]


@pytest.mark.parametrize("task", list(FAMILIES))
def test_every_policy_with_every_family(task):
    if task == "vae" and not HAS_TORCH:
        pytest.skip("torch not installed (extra 'torch')")
    policies = POLICIES
    paradigms = [{"name": "accumulate", "curation": [p]} for p in policies]
    s = study(paradigms, task=task, params=FAMILIES[task], n_iterations=3, n_seeds=2)
    df = run_study(s)
    assert df.paradigm.nunique() == len(policies)
    risk = df.attrs["profile_specs"][s.tasks[0].label]["risk"]
    values = df[df.metric == risk]
    assert len(values) == len(policies) * 3 * 2 and np.isfinite(values.value).all()
    assert not df.status.isin(["fit_failed"]).any()


def test_gmm_weighted_em_matches_duplicated_rows_and_scores_match_sklearn():
    from sklearn.mixture import GaussianMixture as Sk

    from modelcollapse.families.gmm import GaussianMixture

    def fit(X, w=None, seed=1):
        return GaussianMixture(n_components=2).fit(
            X[None], sample_weight=None if w is None else w[None],
            rngs=[np.random.default_rng(seed)])

    g = np.random.default_rng(0)
    X = np.concatenate([g.normal(-4, 1, (150, 2)), g.normal(4, 0.5, (150, 2))])
    w = np.where(np.arange(300) % 3 == 0, 2.0, 1.0)          # every third row counts twice
    weighted = fit(X, w)
    doubled = fit(np.concatenate([X, X[w == 2]]))
    order = np.argsort(weighted.means_[0, :, 0]), np.argsort(doubled.means_[0, :, 0])
    np.testing.assert_allclose(weighted.means_[0, order[0]], doubled.means_[0, order[1]],
                               atol=1e-3)
    np.testing.assert_allclose(weighted.covariances_[0, order[0]],
                               doubled.covariances_[0, order[1]], atol=1e-3)
    # a dropped row (weight 0) is absent (up to the order of floating-point sums)
    w0 = np.ones(300)
    w0[:10] = 0
    a, b = fit(X, w0, seed=2), fit(X[10:], seed=2)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12, atol=1e-12)
    # our mixture log-density equals scikit-learn's on the same parameters
    sk = Sk(n_components=2, random_state=0).fit(X)
    ours = fit(X, seed=3)
    ours.weights_, ours.means_ = sk.weights_[None], sk.means_[None]
    ours.precisions_cholesky_ = sk.precisions_cholesky_[None]
    np.testing.assert_allclose(ours.score_samples(X[None])[0], sk.score_samples(X), rtol=1e-10)


def test_ledger_command(tmp_path):
    from typer.testing import CliRunner

    from modelcollapse.cli import app

    path = tmp_path / "s.yaml"
    path.write_text("name: l\ntask: gaussian\ntask_params: {n_features: 2, n_samples: 30}\n"
                    "n_iterations: 4\nn_seeds: 3\nparadigms:\n  - accumulate\n"
                    "  - {name: accumulate, curation: [{policy: detect, recall: 0.5}, "
                    "{policy: ratio_cap, max_ratio: 1}]}\n")
    runner = CliRunner()
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(path), "--out", str(out), "-q", "--no-plots"]
                         ).exit_code == 0
    result = runner.invoke(app, ["ledger", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "ledger.csv")
    curated = table[table.paradigm == "accumulate+detect-r0.5+cap1"]
    assert list(curated.iteration) == [0, 1, 2, 3] and (curated.real == 30).all()
    assert (curated.synthetic <= 30).all() and {"from_0", "from_2", "detect_flagged",
                                                "ratio_cap_dropped"} <= set(table.columns)
    plain = table[table.paradigm == "accumulate"]
    assert list(plain.synthetic) == [0, 30, 60, 90]
    assert "ledger.csv" in result.output and "accumulate+detect" in result.output.replace("\n", "")
    missing = runner.invoke(app, ["ledger", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1


def test_user_verifier(tmp_path, monkeypatch):
    """verifier: 'module:function' is called per replicate on the incoming rows; what it rejects
    never reaches the training set."""
    (tmp_path / "my_checks.py").write_text("def not_zero(X):\n    return X != 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    df = run_study(study([{"name": "replace", "curation": [
        {"policy": "verify", "verifier": "my_checks:not_zero"}]}], task="discrete",
        params={"n_outcomes": 3, "n_samples": 300}, n_iterations=3, n_seeds=4))
    label = "replace+verify"
    kept, dropped = wide(df, "verify_kept", label), wide(df, "verify_dropped", label)
    assert (kept[:, 1:] + dropped[:, 1:] == 300).all()
    assert (dropped[:, 1] > 50).all() and (dropped[:, 2] == 0).all()  # zeros only from model 0
    assert (wide(df, "n_synthetic", label)[:, 1:] == kept[:, 1:]).all()
    assert (wide(df, "support_size", label)[:, 1:] == 2).all()  # outcome 0 gone from every refit
    assert (wide(df, "verify_fpr", label)[:, 1:] > 0).all()  # it also rejects real zeros
