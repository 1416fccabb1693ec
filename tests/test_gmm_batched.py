"""The batched Gaussian-mixture family (``families.gmm``): scikit-learn's EM as the reference,
per-replicate independence of the batch, recovery of a known mixture, degenerate data as
statuses, checkpoints."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from modelcollapse.families.gmm import GaussianMixture, kmeans_plusplus

TYPES = ["full", "diag", "spherical", "tied"]


def _rngs(R, offset=0):
    return [np.random.default_rng(offset + r) for r in range(R)]


def _seed_of(g: np.random.Generator) -> int:
    """The integer the family draws from a replicate's FIT stream."""
    return int(g.integers(2**31 - 1))


def _wine(R, seed=0):
    """R bootstrap resamples of 4 standardised principal components of wine (the main job's
    data), (R, 178, 4)."""
    from sklearn.datasets import load_wine
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X = PCA(4).fit_transform(StandardScaler().fit_transform(load_wine().data))
    g = np.random.default_rng(seed)
    return np.stack([X[g.choice(len(X), len(X))] for _ in range(R)])


def _sk_full_cov(sk, d):
    cov = sk.covariances_
    if sk.covariance_type == "tied":
        return np.broadcast_to(cov, (sk.n_components, d, d))
    if sk.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    if sk.covariance_type == "spherical":
        return cov[:, None, None] * np.eye(d)
    return cov


# -- scikit-learn as the reference -----------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_kmeans_plusplus_chooses_scikit_learns_rows(k):
    g = np.random.default_rng(k)
    A, n, d = 12, 90, 3
    X = g.normal(size=(A, n, d))
    seeds = g.integers(2**31 - 1, size=A)
    ours = kmeans_plusplus(X, np.ones((A, n)), k, seeds)
    ref = np.stack([sk_kmeans_plusplus(X[i], k, random_state=int(seeds[i]))[1]
                    for i in range(A)])
    np.testing.assert_array_equal(ours, ref)
    # weighted, with dropped rows (weight 0): scikit-learn on the rows kept
    w = g.uniform(0.2, 3.0, size=(A, n))
    w[:, ::4] = 0
    ours = kmeans_plusplus(X, w, k, seeds)
    for i in range(A):
        rows = np.flatnonzero(w[i] > 0)
        _, idx = sk_kmeans_plusplus(X[i, rows], k, sample_weight=w[i, rows],
                                    random_state=int(seeds[i]))
        np.testing.assert_array_equal(ours[i], rows[idx])


@pytest.mark.parametrize("covariance_type", TYPES)
def test_fit_equals_scikit_learn_em_from_the_same_start(covariance_type):
    """Same k-means++ start (the integer drawn from the FIT stream as scikit-learn's
    random_state): the same EM iterations, the same fixed point and log-likelihood."""
    R = 6
    X = _wine(R)
    d = X.shape[2]
    ours = GaussianMixture(n_components=3, covariance_type=covariance_type,
                           tol=1e-3).fit(X, rngs=_rngs(R))
    assert list(ours.status_) == ["ok"] * R
    for r, g in enumerate(_rngs(R)):
        sk = SkGaussianMixture(3, init_params="k-means++", covariance_type=covariance_type,
                               tol=1e-3,
                               random_state=_seed_of(g)).fit(X[r])
        assert ours.n_iter_[r] == sk.n_iter_
        np.testing.assert_allclose(ours.weights_[r], sk.weights_, atol=1e-9)
        np.testing.assert_allclose(ours.means_[r], sk.means_, atol=1e-9)
        np.testing.assert_allclose(ours.covariances_[r], _sk_full_cov(sk, d), atol=1e-9)
        np.testing.assert_allclose(ours.lower_bound_[r], sk.lower_bound_, rtol=1e-12)
        # and the fitted mixture's log-density is scikit-learn's
        np.testing.assert_allclose(ours.score_samples(X * 1.5)[r], sk.score_samples(X[r] * 1.5),
                                   rtol=1e-9)


def test_random_from_data_start_is_scikit_learns():
    X = _wine(4, seed=2)
    ours = GaussianMixture(n_components=3, init_params="random_from_data").fit(X, rngs=_rngs(4))
    for r, g in enumerate(_rngs(4)):
        sk = SkGaussianMixture(3, init_params="random_from_data",
                               random_state=_seed_of(g)).fit(X[r])
        assert ours.n_iter_[r] == sk.n_iter_
        np.testing.assert_allclose(ours.means_[r], sk.means_, atol=1e-9)


def test_converged_fit_is_scikit_learns_fixed_point():
    """Run to a tight tolerance both reach the same EM fixed point (to ~1e-6)."""
    R = 4
    X = _wine(R, seed=5)
    ours = GaussianMixture(n_components=3, tol=1e-10, max_iter=2000).fit(X, rngs=_rngs(R, 7))
    assert list(ours.status_) == ["ok"] * R
    for r, g in enumerate(_rngs(R, 7)):
        sk = SkGaussianMixture(3, init_params="k-means++", tol=1e-10, max_iter=2000,
                               random_state=_seed_of(g)).fit(X[r])
        np.testing.assert_allclose(ours.means_[r], sk.means_, atol=1e-6)
        np.testing.assert_allclose(ours.covariances_[r], sk.covariances_, atol=1e-6)
        np.testing.assert_allclose(ours.weights_[r], sk.weights_, atol=1e-6)
        np.testing.assert_allclose(ours.lower_bound_[r], sk.lower_bound_, atol=1e-9)


def test_not_converged_after_max_iter():
    X = _wine(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = [SkGaussianMixture(3, init_params="k-means++", max_iter=2,
                                random_state=_seed_of(g)).fit(X[r])
              for r, g in enumerate(_rngs(3))]
    ours = GaussianMixture(n_components=3, max_iter=2).fit(X, rngs=_rngs(3))
    assert list(ours.status_) == ["not_converged" if not s.converged_ else "ok" for s in sk]
    assert "not_converged" in ours.status_
    for r in range(3):
        np.testing.assert_allclose(ours.means_[r], sk[r].means_, atol=1e-9)


# -- weights -----------------------------------------------------------------------------------

def test_weighted_em_equals_duplicated_rows():
    """Frequency weights: weight 2 on a row is that row twice (same fixed point)."""
    g = np.random.default_rng(0)
    X = np.concatenate([g.normal(-4, 1, (150, 2)), g.normal(4, 0.5, (150, 2))])
    w = np.where(np.arange(300) % 3 == 0, 2.0, 1.0)
    doubled = np.concatenate([X, X[w == 2]])
    weighted = GaussianMixture(n_components=2, tol=1e-12, max_iter=1000).fit(
        X[None], sample_weight=w[None], rngs=_rngs(1))
    plain = GaussianMixture(n_components=2, tol=1e-12, max_iter=1000).fit(
        doubled[None], rngs=_rngs(1))
    a, b = np.argsort(weighted.means_[0, :, 0]), np.argsort(plain.means_[0, :, 0])
    np.testing.assert_allclose(weighted.means_[0, a], plain.means_[0, b], atol=1e-8)
    np.testing.assert_allclose(weighted.covariances_[0, a], plain.covariances_[0, b], atol=1e-8)
    np.testing.assert_allclose(weighted.weights_[0, a], plain.weights_[0, b], atol=1e-8)


def test_zero_weight_rows_are_absent():
    X = _wine(3)
    w = np.ones(X.shape[:2])
    w[:, :30] = 0
    X_nan = X.copy()
    X_nan[:, :30:3] = np.nan  # a dropped row may even hold NaN
    dropped = GaussianMixture(n_components=3).fit(X_nan, sample_weight=w, rngs=_rngs(3))
    alone = GaussianMixture(n_components=3).fit(X[:, 30:], rngs=_rngs(3))
    assert list(dropped.status_) == ["ok"] * 3
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(dropped, name), getattr(alone, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(dropped.n_iter_, alone.n_iter_)


# -- per-replicate independence ----------------------------------------------------------------

def _mixed_batch():
    """Replicates that converge at different iterations, one with fewer distinct rows than
    components, one with dropped rows, one with a NaN row, one with no row at all."""
    R = 9
    X = _wine(R, seed=3)
    w = np.ones(X.shape[:2])
    X[2] = X[2, :1]                      # one distinct row: merged_components
    X[3, 60:] = X[3, :2][np.arange(118) % 2]
    w[4, ::5] = 0                        # dropped rows
    w[4, 7] = 3.5                        # and unequal weights
    X[5, 10] = np.nan                    # non_finite
    w[6] = 0                             # fit_failed
    return X, w


def _state_of(model, r):
    return {k: v[r] for k, v in model.get_state().items()}


@pytest.mark.parametrize("covariance_type", TYPES)
def test_each_replicate_is_bit_identical_alone_in_a_batch_and_in_a_subset(covariance_type):
    X, w = _mixed_batch()
    R = len(X)
    rngs = _rngs(R, 40)
    make = lambda **kw: GaussianMixture(n_components=3, covariance_type=covariance_type,
                                        tol=1e-6, **kw)
    batch = make().fit(X, sample_weight=w, rngs=rngs)
    assert {"ok", "merged_components", "non_finite", "fit_failed"} <= set(batch.status_)
    if covariance_type != "tied":  # (scikit-learn's tied start converges at once on wine)
        assert len(set(batch.n_iter_[batch.status_ == "ok"])) > 1  # they leave the batch apart
    subset = [8, 4, 1, 2, 0]                                    # another order, other company
    part = make().fit(X[subset], sample_weight=w[subset], rngs=[_rngs(R, 40)[r] for r in subset])
    tiny = make(chunk_size=1).fit(X, sample_weight=w, rngs=_rngs(R, 40))  # blocks of 1
    for r in range(R):
        alone = make().fit(X[r:r + 1], sample_weight=w[r:r + 1], rngs=_rngs(R, 40)[r:r + 1])
        for other, i in [(alone, 0), (tiny, r)] + ([(part, subset.index(r))] if r in subset
                                                   else []):
            a, b = _state_of(batch, r), _state_of(other, i)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"replicate {r}: {k}")
    scores = batch.score_samples(X * 0.9)
    for r in subset:
        np.testing.assert_array_equal(part.score_samples(X[subset] * 0.9)[subset.index(r)],
                                      scores[r])


# -- a known mixture -----------------------------------------------------------------------------

def test_recovers_two_separated_components_within_monte_carlo_error():
    """0.3 N((-3, 0), diag(1, 0.5)) + 0.7 N((3, 1), [[0.5, 0.2], [0.2, 1]]): over 200 seeds the
    mean estimate of each parameter is within 4 standard errors of the truth."""
    R, n = 200, 400
    g = np.random.default_rng(11)
    truth_w = np.array([0.3, 0.7])
    truth_m = np.array([[-3.0, 0.0], [3.0, 1.0]])
    truth_c = np.array([[[1.0, 0.0], [0.0, 0.5]], [[0.5, 0.2], [0.2, 1.0]]])
    comp = (g.random((R, n)) < truth_w[1]).astype(int)
    roots = np.linalg.cholesky(truth_c)
    X = truth_m[comp] + (roots[comp] @ g.standard_normal((R, n, 2, 1)))[..., 0]
    model = GaussianMixture(n_components=2, tol=1e-8, max_iter=500).fit(X, rngs=_rngs(R))
    assert set(model.status_) == {"ok"}
    order = np.argsort(model.means_[:, :, 0], axis=1)                      # left one first
    rows = np.arange(R)[:, None]
    for est, truth in [(model.weights_[rows, order], truth_w),
                       (model.means_[rows, order], truth_m),
                       (model.covariances_[rows, order], truth_c)]:
        se = est.std(0) / np.sqrt(R)
        assert (np.abs(est.mean(0) - truth) < 4 * se + 1e-3 / n).all(), (est.mean(0), truth)
    # and the sampler draws that mixture: component frequencies and moments of the draws
    draws = model.sample(2000, rngs=_rngs(R, 1000))
    assert draws.shape == (R, 2000, 2)
    left = (draws[..., 0] < 0).mean()
    assert abs(left - 0.3) < 4 * np.sqrt(0.3 * 0.7 / draws[..., 0].size) + 2e-3
    cov = model.covariance()
    emp = np.stack([np.cov(x.T, bias=True) for x in draws])
    assert np.abs((emp - cov).mean(0)).max() < 0.02


# -- degenerate data ---------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", TYPES)
def test_degenerate_data_give_statuses_not_errors(covariance_type):
    X, w = _mixed_batch()
    X[0] = 7.0                     # all rows identical
    X[1, :, 1] = X[1, 0, 1]        # a zero-variance feature
    model = GaussianMixture(n_components=3, covariance_type=covariance_type).fit(
        X, sample_weight=w, rngs=_rngs(len(X)))
    status = list(model.status_)
    assert status[0] == status[2] == "merged_components"
    assert model.n_components_[0] == 1 and model.n_components_[2] == 1
    assert status[3] in ("ok", "not_converged") and model.n_components_[3] == 3
    assert status[5] == "non_finite" and status[6] == "fit_failed"
    assert model.n_iter_[5] == model.n_iter_[6] == 0  # never fitted: no EM iteration on them
    fitted = np.array([s not in ("non_finite", "fit_failed") for s in status])
    # a one-point component: reg_covar is its variance, its weight 1 (others weight 0)
    np.testing.assert_allclose(model.covariances_[0, 0], 1e-6 * np.eye(4), rtol=1e-9)
    np.testing.assert_array_equal(model.weights_[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(model.means_[0, 0], 7.0)
    assert np.isfinite(model.weights_[fitted]).all()
    assert np.isfinite(model.covariances_[fitted]).all()
    assert np.isnan(model.means_[~fitted]).all()           # no fitted mixture yet
    scores = model.score_samples(np.zeros((len(X), 5, 4)))
    assert np.isfinite(scores[fitted]).all() and np.isnan(scores[~fitted]).all()
    draws = model.sample(6, rngs=_rngs(len(X), 9))
    assert np.isfinite(draws[fitted]).all() and np.isnan(draws[~fitted]).all()
    np.testing.assert_allclose(draws[0], 7.0, atol=0.01)
    # a later fit on good data succeeds; a failing one keeps the previous mixture
    X2 = _wine(len(X), seed=8)
    w2 = np.ones(X2.shape[:2])
    w2[1] = 0
    before = model.fit(X2, rngs=_rngs(len(X))).get_state()
    after = model.fit(X2, sample_weight=w2, rngs=_rngs(len(X))).get_state()
    assert model.status_[1] == "fit_failed"
    np.testing.assert_array_equal(after["means_"][1], before["means_"][1])


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(covariance_type="banana")
    with pytest.raises(ValueError, match="n_components: expected a number >= 1"):
        GaussianMixture(n_components=0)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(reg_covar=-1.0)
    with pytest.raises(ValueError, match="init_params"):
        GaussianMixture(init_params="kmeans")
    with pytest.raises(ValueError, match=r"X: expected shape \(R, n, d\)"):
        GaussianMixture().fit(np.zeros((5, 2)), rngs=_rngs(5))
    with pytest.raises(ValueError, match="rngs: expected 2"):
        GaussianMixture().fit(np.zeros((2, 5, 2)), rngs=_rngs(3))


# -- checkpoints and streams ---------------------------------------------------------------------

def test_state_round_trip_through_a_file(tmp_path):
    X, w = _mixed_batch()
    model = GaussianMixture(n_components=3).fit(X, sample_weight=w, rngs=_rngs(len(X)))
    np.savez(tmp_path / "state.npz", **model.get_state())
    with np.load(tmp_path / "state.npz", allow_pickle=False) as saved:
        restored = GaussianMixture(n_components=3).set_state(dict(saved))
    for k, v in model.get_state().items():
        np.testing.assert_array_equal(restored.get_state()[k], v, err_msg=k)
    np.testing.assert_array_equal(restored.sample(7, rngs=_rngs(len(X), 3)),
                                  model.sample(7, rngs=_rngs(len(X), 3)))
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(restored.covariance(), model.covariance())
    # a failing fit after restoring keeps the restored mixture, as it would have without resume
    w[:] = 0
    a = model.fit(X, sample_weight=w, rngs=_rngs(len(X))).get_state()
    b = restored.fit(X, sample_weight=w, rngs=_rngs(len(X))).get_state()
    assert set(a["status_"]) == {"fit_failed"} and np.isfinite(a["means_"][0]).all()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_sample_is_a_pure_function_of_each_replicates_stream():
    X = _wine(4)
    model = GaussianMixture(n_components=3).fit(X, rngs=_rngs(4))
    a = model.sample(50, rngs=_rngs(4, 100))
    np.testing.assert_array_equal(a, model.sample(50, rngs=_rngs(4, 100)))
    alone = GaussianMixture(n_components=3).fit(X[2:3], rngs=_rngs(4)[2:3])
    np.testing.assert_array_equal(alone.sample(50, rngs=_rngs(4, 100)[2:3])[0], a[2])
    assert not np.array_equal(a[0], model.sample(50, rngs=_rngs(4, 200))[0])


def test_component_collapsed_onto_one_point_is_floored_by_reg_covar():
    """An outlier far from the rest takes a component of its own: variance reg_covar, weight
    1/n, finite scores everywhere (collapse is data, not an error)."""
    g = np.random.default_rng(4)
    X = np.concatenate([g.normal(0, 1, (50, 2)), [[1e3, 1e3]]])[None]
    model = GaussianMixture(n_components=2).fit(X, rngs=_rngs(1))
    assert model.status_[0] == "ok"
    lone = np.argmax(model.means_[0, :, 0])
    np.testing.assert_allclose(model.means_[0, lone], [1e3, 1e3])
    np.testing.assert_allclose(model.covariances_[0, lone], 1e-6 * np.eye(2), rtol=1e-6,
                               atol=1e-15)
    np.testing.assert_allclose(model.weights_[0, lone], 1 / 51, rtol=1e-9)
    assert np.isfinite(model.score_samples(np.array([[[0.0, 0.0], [1e3, 1e3], [5e2, 0.0]]]))).all()


def test_interrupted_gmm_study_resumes_from_its_checkpoint_to_identical_results(tmp_path):
    """The engine checkpoints the fitted mixtures (get_state) and a resumed run continues from
    them: the results equal the uninterrupted run's exactly."""
    import pandas as pd

    from modelcollapse.api import load
    from modelcollapse.engine.study import run_study
    from modelcollapse.results.checkpoint import RunCheckpoints

    study = load({"name": "gmm-resume", "n_iterations": 5, "n_seeds": 4,
                  "paradigms": ["replace", "accumulate"],
                  "tasks": [{"task": "gmm", "task_params": {"dataset": "wine", "n_features": 3,
                                                            "n_components": 2}}]})
    expected = run_study(study)
    ck = RunCheckpoints(tmp_path / "run", "run", "h", max_overhead=1e9)  # every iteration
    ck.start()
    calls = []

    def stop(t):
        calls.append(t)
        if len(calls) == 5 + 3:  # the second unit stopped in its iteration 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(study, checkpoints=ck, on_iteration=stop)
    state, _ = ck.unit(0, 0, 1).load_state()
    assert int(state["n_done"]) == 2 and "model.means_" in state
    pd.testing.assert_frame_equal(run_study(study, checkpoints=ck), expected)


def test_without_reg_covar_a_singular_start_is_a_status():
    """reg_covar = 0: the start's one-row components have covariance 0, which cannot be
    factorised (scikit-learn raises there): every replicate is ``singular_covariance``, with no
    mixture and no error; sampling and scoring give NaN for it."""
    X = _wine(3)
    model = GaussianMixture(n_components=3, reg_covar=0.0).fit(X, rngs=_rngs(3))
    assert list(model.status_) == ["singular_covariance"] * 3
    assert np.isnan(model.means_).all() and (model.n_iter_ == 0).all()
    assert np.isnan(model.sample(4, rngs=_rngs(3))).all()
    assert np.isnan(model.score_samples(X)).all()
