"""Contract every registered task (and its model family) must honour, on its known-truth
synthetic data and on a real scikit-learn dataset where the task supports one.

The engine relies on exactly these properties: batched shapes with a leading replicate axis,
sampling that is a pure function of the generators passed in (reproducibility), independent
streams per replicate, finite scores and metrics of a sane fit, and a per-replicate status.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from modelcollapse.config import TaskEntry
from modelcollapse.families.base import PerReplicate
from modelcollapse.registry import tasks
from modelcollapse.rng import Role, Streams

R = 4
SEED = 123


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """The per-replicate scikit-learn GMM fits work on tiny matrices; on a busy machine
    multi-threaded BLAS spin-waits dominate them (10x slower).  Results do not depend on it."""
    with threadpool_limits(limits=1):
        yield


# (task, task_params): every registered task on synthetic data, plus real datasets
REAL_DATA = {
    "linear_regression": [{"dataset": "diabetes"}],
    "gaussian": [{"dataset": "wine"}, {"dataset": "digits"}],
    "kde": [{"dataset": "wine"}, {"dataset": "digits", "n_features": 5}],
    "gmm": [{"dataset": "wine", "n_features": 4}, {"dataset": "digits", "n_features": 5}],
    # the recipes with their default families (density: gaussian; regression: OLS)
    "density": [{"dataset": "wine", "n_features": 3}],
    "regression": [{"dataset": "diabetes"}],
}
SYNTHETIC = {
    "linear_regression": {"n_features": 4, "n_samples": 40, "n_test": 50},
    "gaussian": {"n_features": 3, "n_samples": 40, "n_test": 50},
    "kde": {"n_features": 2, "n_samples": 40, "n_test": 50},
    "gmm": {"n_features": 2, "n_samples": 60, "n_test": 50, "n_components": 2},
    "discrete": {"n_outcomes": 6, "n_samples": 60},
    "density": {"n_features": 2, "n_samples": 40, "n_test": 50},
}

# torch families: tiny networks, and skipped without torch (an optional extra)
REAL_DATA["vae"] = [{"dataset": "digits", "n_samples": 60, "n_test": 50, "hidden": 16,
                     "latent": 2, "epochs": 2}]
REAL_DATA["lm"] = [{"dataset": "toy", "vocab_size": 300, "context": 16, "n_samples": 40,
                    "n_test": 30, "n_layer": 1, "n_head": 2, "d_model": 16, "epochs": 1}]
REAL_DATA["diffusion"] = [{
    "dataset": "smiles", "smiles": ["CCCCO", "CCOCC", "OCCOCCO", "CCN(CC)CC", "CC(C)CC(=O)O",
                                    "NCCCCN", "CCCOC(=O)C", "CCSCCC", "CCCCCCl", "OCCCc1ccccc1",
                                    "CCOc1ccncc1", "C1CCCCCC1"],  # flexible: diversity defined
    "n_molecules": 6, "n_test_molecules": 4, "n_conformers": 3, "n_eval_molecules": 2,
    "hidden": 8, "n_layers": 2, "n_steps": 8, "train_steps": 3, "batch_size": 8}]
REAL_DATA["sft"] = [{"dataset": "toy", "pretrained": "toy", "prompt_length": 4,
                     "completion_length": 6, "n_samples": 30, "n_test": 20, "n_eval": 8,
                     "lora_rank": 2, "batch_size": 8, "num_threads": 1}]
NEEDS_TORCH = {"vae", "lm", "diffusion", "sft"}
HAS_LLM = all(importlib.util.find_spec(m) is not None for m in ("transformers", "peft"))
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_TOKENIZERS = importlib.util.find_spec("tokenizers") is not None
HAS_RDKIT = importlib.util.find_spec("rdkit") is not None

CASES = []
for _name in tasks.names():
    _marks = (pytest.mark.skipif(not HAS_TORCH, reason="torch not installed (extra 'torch')"),
              ) if _name in NEEDS_TORCH else ()
    if _name == "lm":
        _marks += (pytest.mark.skipif(not HAS_TOKENIZERS,
                                      reason="tokenizers not installed (extra 'text')"),)
    if _name == "sft":
        _marks += (pytest.mark.skipif(not HAS_LLM, reason="transformers / peft not installed "
                                      "(extra 'llm')"),)
    if _name == "diffusion":
        _marks += (pytest.mark.skipif(not HAS_RDKIT, reason="rdkit not installed (extra 'chem')"),)
    if _name in SYNTHETIC or _name not in REAL_DATA:
        CASES.append(pytest.param((_name, SYNTHETIC.get(_name, {})), id=f"{_name}-synthetic",
                                  marks=_marks))
    for _params in REAL_DATA.get(_name, []):
        CASES.append(pytest.param((_name, _params), id=f"{_name}-{_params['dataset']}",
                                  marks=_marks))


def test_every_registered_task_is_covered():
    """A new task must be added to the contract suite (synthetic parameters at least)."""
    assert set(tasks.names()) >= {"linear_regression", "gaussian", "discrete", "kde", "gmm"}
    assert set(tasks.names()) <= set(SYNTHETIC) | set(REAL_DATA), tasks.names()


def _build(name, params, seed=SEED, replicates=range(R)):
    streams = Streams(seed, replicates)
    entry = TaskEntry.model_validate({"task": name, "task_params": params})
    return entry.build(streams), streams


def _fit(task, streams, X=None, iteration=0):
    model = task.make_model()
    X = task.real if X is None else X
    if isinstance(model, PerReplicate) or getattr(model, "batched", False):
        model.fit(X, rngs=streams(iteration, Role.FIT))  # the BatchedModel protocol
    else:
        model.fit(X)
    return model


def _sample(model, n, streams, iteration=0):
    return model.sample(n, rngs=streams(iteration, Role.SAMPLE))


@pytest.fixture(scope="module", params=CASES)
def case(request):
    name, params = request.param
    task, streams = _build(name, params)
    model = _fit(task, streams)
    return name, params, task, streams, model


def test_task_layout(case):
    name, params, task, streams, _ = case
    assert task.family == tasks.get(name).family
    assert task.n_replicates == R == len(streams)
    assert task.real.ndim >= 2 and task.test.ndim == task.real.ndim
    assert task.test.shape[0] == R and task.test.shape[2:] == task.real.shape[2:]
    assert task.n_real == task.real.shape[1] >= 2
    if np.issubdtype(task.real.dtype, np.floating):
        assert np.isfinite(task.real).all() and np.isfinite(task.test).all()
    if params.get("dataset", "synthetic") == "synthetic":
        assert task.sample_real is not None
        fresh = task.sample_real(7, streams(1, Role.REAL))
        assert fresh.shape == (R, 7) + task.real.shape[2:]
        assert fresh.dtype.kind == task.real.dtype.kind
    # replicates see different real data (own DATA stream: own draw or own train/test split)
    assert not np.array_equal(task.real[0], task.real[1])


@pytest.mark.parametrize("n", [1, 9, None])
def test_sample_shape_and_dtype(case, n):
    *_, task, streams, model = case
    n = task.n_real if n is None else n
    out = _sample(model, n, streams)
    assert out.shape == (R, n) + task.real.shape[2:]
    assert out.dtype.kind == task.real.dtype.kind
    if out.dtype.kind == "f":
        assert np.isfinite(out).all()
    else:  # discrete outcomes stay in range
        assert out.min() >= 0 and out.max() < task.truth["probabilities"].size


def test_same_generators_same_samples(case):
    *_, task, streams, model = case
    a = _sample(model, 25, streams, iteration=3)
    b = _sample(model, 25, streams, iteration=3)
    np.testing.assert_array_equal(a, b)
    # fresh Streams objects with the same seed: the same samples too
    again = Streams(SEED, range(R))
    np.testing.assert_array_equal(a, model.sample(25, rngs=again(3, Role.SAMPLE)))
    # another iteration's stream gives other samples
    assert not np.array_equal(a, _sample(model, 25, streams, iteration=4))


def test_sampling_depends_only_on_own_stream(case):
    """A replicate's samples come from its own stream only: swapping replicate 0's generator for
    another one changes replicate 0's samples and no other replicate's; and replicates fitted on
    the same data still sample differently (independent streams)."""
    *_, task, streams, model = case
    base = _sample(model, 30, streams, iteration=2)
    gens = list(streams(2, Role.SAMPLE))
    gens[0] = np.random.default_rng([SEED, 999])
    mixed = model.sample(30, rngs=gens)
    assert not np.array_equal(mixed[0], base[0])
    np.testing.assert_array_equal(mixed[1:], base[1:])

    same_data = np.broadcast_to(task.real[:1], task.real.shape).copy()
    twin = _fit(task, streams, X=same_data)
    twins = _sample(twin, 30, streams, iteration=2)
    for r in range(1, R):
        assert not np.array_equal(twins[0], twins[r]), f"replicates 0 and {r} sampled alike"


def test_score_samples_finite_on_training_data(case):
    *_, task, streams, model = case
    scores = model.score_samples(task.real)
    assert scores.shape == (R, task.n_real)
    assert np.isfinite(scores).all()
    sub = task.real[:, :5]
    np.testing.assert_allclose(model.score_samples(sub), scores[:, :5], rtol=1e-10, atol=1e-10)


def test_status_shape(case):
    *_, model = case
    status = np.asarray(model.status_)
    assert status.shape == (R,)
    assert all(isinstance(s, str) for s in status)


def test_metrics_shape_and_finite(case):
    *_, task, streams, model = case
    metrics = dict(task.evaluate(model))
    assert task.risk_metric in metrics
    for name, value in metrics.items():
        value = np.asarray(value, dtype=float)
        assert value.shape == (R,), name
        assert np.isfinite(value).all(), (name, value)


def test_refit_on_own_samples(case):
    """One step of the loop: a model fitted on its own synthetic data keeps the contract."""
    *_, task, streams, model = case
    synthetic = _sample(model, task.n_real, streams)
    refit = _fit(task, streams, X=synthetic, iteration=1)
    assert np.asarray(refit.status_).shape == (R,)
    out = _sample(refit, 11, streams, iteration=1)
    assert out.shape == (R, 11) + task.real.shape[2:]
    for name, value in dict(task.evaluate(refit)).items():
        assert np.asarray(value).shape == (R,), name


def test_replicate_subset_is_consistent(case):
    """Building the task for replicates {1, 3} gives exactly rows 1 and 3 of the full build, and
    sampling them gives the same samples (streams are per replicate, not per batch)."""
    name, params, task, streams, model = case
    sub_task, sub_streams = _build(name, params, replicates=[1, 3])
    np.testing.assert_array_equal(sub_task.real, task.real[[1, 3]])
    np.testing.assert_array_equal(sub_task.test, task.test[[1, 3]])
    sub_model = _fit(sub_task, sub_streams)
    np.testing.assert_array_equal(_sample(sub_model, 13, sub_streams, iteration=5),
                                  _sample(model, 13, streams, iteration=5)[[1, 3]])


def _fitted_params(model) -> dict[str, np.ndarray]:
    names = ("mean_", "covariance_", "coef_", "residual_variance_", "noise_variance_",
             "probabilities_")
    return {k: np.asarray(getattr(model, k)) for k in names if hasattr(model, k)}


def test_sufficient_statistics_merge(case):
    """Families with sufficient statistics (what ``accumulate`` uses): merging the statistics of
    the real data and of a synthetic batch fits the same model as fitting their concatenation."""
    *_, task, streams, model = case
    if not hasattr(model, "statistics"):
        pytest.skip("family has no sufficient statistics")
    synthetic = _sample(model, task.n_real, streams)
    pooled = task.make_model().fit(np.concatenate([task.real, synthetic], axis=1))
    merged = task.make_model()
    merged.fit_statistics(merged.combine(merged.statistics(task.real), merged.statistics(synthetic)))
    a, b = _fitted_params(pooled), _fitted_params(merged)
    assert a and a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_array_equal(np.asarray(merged.status_), np.asarray(pooled.status_))


def test_score_samples_on_test_set(case):
    *_, task, streams, model = case
    scores = model.score_samples(task.test)
    assert scores.shape == task.test.shape[:2]
    assert not np.isnan(scores).any()


def test_test_nll_is_mean_nll_of_test_set(case):
    """Where a task reports ``test_nll`` it is the mean negative log-likelihood (nats per sample)
    of its held-out real test set under the fitted model, however it is computed."""
    *_, task, streams, model = case
    metrics = dict(task.evaluate(model))
    if "test_nll" not in metrics:
        pytest.skip("task has no test_nll")
    direct = -model.score_samples(task.test).mean(1)
    np.testing.assert_allclose(metrics["test_nll"], direct, rtol=1e-8, atol=1e-10)


def test_sample_statistics_matches_statistics_layout(case):
    """Optional ``sample_statistics(n, rngs)`` (statistics of n draws, drawn directly): same keys,
    shapes and count as ``statistics(sample(n))``, a pure function of the generators, and
    fittable.  Its distribution is checked against theory in ``test_theory_mc``."""
    *_, task, streams, model = case
    if not hasattr(model, "sample_statistics"):
        pytest.skip("family draws no statistics directly")
    for n in (task.n_real, 3 * task.n_real + 1):
        direct = model.sample_statistics(n, rngs=streams(6, Role.SAMPLE))
        again = model.sample_statistics(n, rngs=streams(6, Role.SAMPLE))
        via_rows = model.statistics(_sample(model, n, streams, iteration=6))
        assert direct.keys() == via_rows.keys()
        for k in direct:
            assert np.shape(direct[k]) == np.shape(via_rows[k]), k
            assert np.isfinite(direct[k]).all(), k
            np.testing.assert_array_equal(direct[k], again[k], err_msg=k)
        count = direct.get("count", direct.get("counts"))
        total = count if count.ndim == 1 else count.sum(1)
        np.testing.assert_allclose(total, n)
        refit = task.make_model()
        refit.fit_statistics(refit.combine(refit.statistics(task.real), direct))
        assert np.asarray(refit.status_).shape == (R,)
        for name, value in dict(task.evaluate(refit)).items():
            assert np.isfinite(np.asarray(value, dtype=float)).all(), name


def test_kde_scores_each_replicate_as_alone_and_as_scipy_does():
    """KernelDensity.score_samples batches replicates (issue 13); each replicate's log-density
    is bit-identical to scoring it alone, and equals the weighted Gaussian mixture term by term."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    from modelcollapse.families.kde import KernelDensity

    rng = np.random.default_rng(3)
    R, n, m, d = 5, 30, 17, 2
    X, Y = rng.normal(size=(R, n, d)), rng.normal(size=(R, m, d))
    weights = rng.uniform(0.5, 2.0, size=(R, n))
    # chunk_size 70: one replicate x 2 rows per block; 1100: 2 replicates x all 17 rows
    for chunk in (70, 1100):
        model = KernelDensity(chunk_size=chunk).fit(X, sample_weight=weights)
        scores = model.score_samples(Y)
        for r in range(R):
            alone = KernelDensity(chunk_size=chunk).fit(X[r:r + 1],
                                                         sample_weight=weights[r:r + 1])
            assert np.array_equal(alone.score_samples(Y[r:r + 1])[0], scores[r])
            h = model.bandwidth_[r]  # the reference: sum_i w_i N(y; x_i, h^2 I), term by term
            w = weights[r] / weights[r].sum()
            terms = np.array([[multivariate_normal.logpdf(y, x, h * h * np.eye(d))
                               for x in X[r]] for y in Y[r]])
            np.testing.assert_allclose(scores[r], logsumexp(terms + np.log(w), axis=1),
                                       rtol=1e-10)


def test_kde_log_sum_exp_matches_scipy_with_infinite_and_nan_rows():
    from scipy.special import logsumexp

    from modelcollapse.families.kde import _log_sum_exp

    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 6, 40)) * 300.0  # spreads far beyond exp's range
    a[0, 0] = -np.inf                        # every weight dropped: -inf
    a[0, 1, :5] = -np.inf                    # some dropped
    a[1, 2, 7] = np.nan                      # NaN stays NaN
    a[2, 3] = 800.0                          # exp(800) overflows without the shift
    expected = logsumexp(a, axis=-1)
    got = _log_sum_exp(a.copy())
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)],
                               rtol=1e-13, atol=0)
    assert got[0, 0] == -np.inf and np.isnan(got[1, 2])
