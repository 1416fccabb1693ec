"""``tasks._curve.BlockCurve`` (learning-curve subsamples from one block draw per size), the
linear-regression fit's factor reuse, and where the engine and the curated pool use block
draws."""

from __future__ import annotations

import numpy as np

from modelcollapse.config import Study
from modelcollapse.families.linear_regression import LinearRegression
from modelcollapse.rng import Role, Streams
from modelcollapse.tasks._curve import BlockCurve


def _curve(N: int = 30, repeats: int = 8) -> BlockCurve:
    return BlockCurve("population_risk", lambda m: m.coef_, (N,), repeats)


def test_block_subsamples_are_uniform_random_ordered_subsets():
    """Every subsample holds N distinct rows; each row is in it with probability N / n and is
    first with probability 1 / n (a sorted or fixed subset fails); replicates differ."""
    R, n, N, repeats = 3000, 20, 6, 4
    rows = _curve(N, repeats).subsamples(Streams(2, range(R)), N, n)
    assert rows.shape == (repeats, R, N)
    assert all(len(set(r)) == N for r in rows.reshape(-1, N).tolist())
    draws = repeats * R
    share = np.bincount(rows.ravel(), minlength=n) / draws
    assert np.all(np.abs(share - N / n) < 5 * np.sqrt((N / n) * (1 - N / n) / draws))
    first = np.bincount(rows[..., 0].ravel(), minlength=n) / draws
    assert np.all(np.abs(first - 1 / n) < 5 * np.sqrt((1 / n) * (1 - 1 / n) / draws))
    assert np.mean(rows[0, 0] == rows[0, 1]) < 0.5  # replicate 0 and 1 draw other subsets


def test_block_subsamples_do_not_depend_on_the_batch():
    full = _curve().subsamples(Streams(4, range(6)), 30, 100)
    alone = _curve().subsamples(Streams(4, [5, 2]), 30, 100)
    np.testing.assert_array_equal(full[:, [5, 2]], alone)
    # each size has its own stream (N, Role.REFERENCE): size 10 is no prefix of size 20
    s = Streams(4, range(6))
    assert not np.array_equal(_curve().subsamples(s, 10, 100),
                              _curve().subsamples(s, 20, 100)[..., :10])


def test_linear_regression_curve_has_the_ols_risk():
    """The recorded curve of the known-truth task: E ||w_hat - w*||^2 = sigma^2 d / (N - d - 1)
    for OLS on N iid rows of an isotropic Gaussian design (a random subset of iid rows)."""
    R, d = 1500, 3  # the mean over R within ~1.5%: a curve 10% off is many s.e. off
    study = Study.model_validate({"task": "linear_regression", "n_seeds": R,
                                  "task_params": {"n_features": d, "n_samples": 60,
                                                  "n_test": 10}})
    streams = Streams(study.seed, range(R))
    task = study.tasks[0].build(streams)
    assert isinstance(task.reference, BlockCurve)
    curve = task.learning_curve(streams)
    assert curve
    for key, risk in curve.items():
        N = int(key.rsplit("_n", 1)[1])
        expected = d / (N - d - 1)
        # each value is a mean of 8 dependent fits: the spread over replicates gives the s.e.
        assert abs(risk.mean() - expected) < 5 * risk.std() / np.sqrt(R), key


def test_linear_regression_factor_reused_only_for_the_same_matrix():
    rng = np.random.default_rng(0)
    design = rng.standard_normal((3, 20, 2))
    model = LinearRegression(design, noise_variance=1.0)
    data = np.concatenate([design, rng.standard_normal((3, 20, 1))], -1)
    stats = model.statistics(data)
    first = model.fit_statistics(stats).coef_.copy()
    other = dict(stats, xtx=stats["xtx"] * 2.0)  # another matrix: refactorised
    np.testing.assert_allclose(model.fit_statistics(other).coef_, first / 2.0, rtol=1e-12)
    same = dict(stats, xtx=stats["xtx"].copy())  # equal values, new object: refactorised too
    np.testing.assert_array_equal(model.fit_statistics(same).coef_, first)
    np.testing.assert_array_equal(model.fit_statistics(stats).coef_, first)


def test_curated_pool_draws_the_uncurated_rows():
    """A curated pool samples model t's batch from the same stream as an uncurated chain that
    keeps rows (here accumulate-subsample): for linear regression the block draws of
    (t, Role.SAMPLE)."""
    from modelcollapse.engine.curation import CuratedPool
    from modelcollapse.engine.loop import _Sources

    study = Study.model_validate({
        "task": "linear_regression", "task_params": {"n_features": 3, "n_samples": 20},
        "paradigms": ["accumulate-subsample",
                      {"name": "accumulate", "curation": [{"policy": "ratio_cap"}]}],
        "n_iterations": 3, "n_seeds": 4})
    streams = Streams(study.seed, range(4))
    task = study.tasks[0].build(streams)
    plain, curated = (spec.build() for spec in study.paradigms)
    model = task.make_model().fit(task.real)
    sources = _Sources(task, model, plain, capacity=60)
    pool = CuratedPool(task, model, curated.curation, 60, 3, streams)
    sources.add_batch(model, 20, streams.batch(1, Role.SAMPLE))
    pool.add_batch(model, 20, 1)
    np.testing.assert_array_equal(pool.rows[:, 20:40], sources.latest)


def test_engine_draws_linear_regression_batches_by_block():
    """Iteration 1 of a replace chain is the fit on the statistics of a block draw of stream
    (0, Role.SAMPLE) from model 0 (the engine passes an rng.Batch to a ``block_draws`` family)."""
    from modelcollapse.engine.loop import run_chain

    study = Study.model_validate({
        "task": "linear_regression", "task_params": {"n_features": 3, "n_samples": 20},
        "paradigms": ["replace"], "n_iterations": 2, "n_seeds": 3})
    streams = Streams(study.seed, range(3))
    task = study.tasks[0].build(streams)
    chain = run_chain(task, study.paradigms[0].build(), n_iterations=2, streams=streams)
    model = task.make_model().fit(task.real)
    model.fit_statistics(model.sample_statistics(20, rngs=streams.batch(0, Role.SAMPLE)))
    np.testing.assert_array_equal(chain.values["population_risk"][1],
                                  task.evaluate(model, 1)["population_risk"])
