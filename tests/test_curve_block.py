"""``tasks._curve.BatchedCurve``: the repeats of a learning-curve size fitted as one batch give
exactly the numbers of ``LearningCurve.compute`` (one repeat at a time), degenerate subsamples
included; the linear-regression fit reuses its factor only for the very same X^T X."""

from __future__ import annotations

import numpy as np
import pytest

from modelcollapse.config import Study
from modelcollapse.families.gaussian import Gaussian
from modelcollapse.families.linear_regression import LinearRegression
from modelcollapse.rng import Role, Streams
from modelcollapse.tasks._curve import BatchedCurve
from modelcollapse.tasks.base import LearningCurve


def _both(curve: LearningCurve, make_model, real, streams):
    batched = BatchedCurve.of(curve).compute(make_model, real, streams)
    one_by_one = LearningCurve.compute(curve, make_model, real, streams)
    return batched, one_by_one


@pytest.mark.parametrize("params", [{"n_features": 3, "n_samples": 40},
                                    {"dataset": "wine", "n_samples": 60},
                                    {"dataset": "digits", "n_samples": 200}])
def test_gaussian_task_curve_is_the_one_repeat_at_a_time_curve(params):
    study = Study.model_validate({"task": "gaussian", "task_params": params, "n_seeds": 4})
    streams = Streams(study.seed, range(4))
    task = study.tasks[0].build(streams)
    assert isinstance(task.reference, BatchedCurve)
    batched, one_by_one = _both(task.reference, task.make_model, task.real, streams)
    assert batched.keys() == one_by_one.keys() and batched
    for key in batched:
        np.testing.assert_array_equal(batched[key], one_by_one[key], err_msg=key)


def test_a_degenerate_repeat_does_not_change_the_others():
    """Replicate 0's points lie on a line except two: subsamples missing both are singular, so
    the batch holds both positive-definite and singular matrices (the whole-batch eigen path);
    the curve must still equal the one-repeat-at-a-time curve."""
    rng = np.random.default_rng(1)
    R, n, d = 3, 12, 2
    real = rng.standard_normal((R, n, d))
    t = rng.standard_normal(n)
    real[0] = np.stack([t, 2 * t], axis=1)
    real[0, :2] = rng.standard_normal((2, d))
    def nll(m):  # reads the factorisation (a mean-only risk would not see the path taken)
        return m.cross_entropy(np.zeros((R, d)), np.broadcast_to(np.eye(d), (R, d, d)))

    curve = LearningCurve("test_nll", nll, (5, 8), repeats=6)
    batched, one_by_one = _both(curve, Gaussian, real, Streams(0, range(R)))
    for key in batched:
        np.testing.assert_array_equal(batched[key], one_by_one[key], err_msg=key)


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
