"""``modelcollapse.theory``: closed forms against Monte Carlo, literature numbers, ``run_verify``.

Monte Carlo checks are ``|MC mean - theory| < Z * SE`` (Z = 4.5, SE = sample sd / sqrt(chains))
at every tested iteration, for two root seeds; the engine runs are deterministic, so the outcome
never flips for these seeds.  Engine runs use our real loop; "independent" Monte Carlo is plain
numpy for models the engine does not implement.  Iterations are 0-based (iteration 0 = the fit on
real data; the literature's n / G = t + 1).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import pytest

from modelcollapse.config import Study
from modelcollapse.engine import run_study
from modelcollapse.registry import tasks
from modelcollapse.rng import Streams
from modelcollapse.theory import discrete, gaussian, linear_regression as lr, location, weighting
from modelcollapse.checks import PREDICTIONS
from modelcollapse.checks.verify import COLUMNS, run_verify

Z = 4.5
SEEDS = [0, 1]


# -- helpers ---------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _run_json(study_json: str, seed: int):
    return run_study(Study.model_validate(dict(json.loads(study_json), seed=seed)))


def _run(study: dict, seed: int):
    return _run_json(json.dumps(study, sort_keys=True), seed)


def _table(df, paradigm: str, metric: str) -> np.ndarray:
    sub = df[(df.paradigm == paradigm) & (df.metric == metric)]
    wide = sub.pivot(index="seed", columns="iteration", values="value")
    return wide.sort_index(axis=1).to_numpy()


def _assert_matches(values: np.ndarray, theory_values, what: str) -> None:
    values = np.asarray(values, dtype=float)
    assert np.isfinite(values).all(), what
    mean = values.mean(0)
    se = values.std(0, ddof=1) / np.sqrt(values.shape[0])
    z = (mean - np.asarray(theory_values)) / se
    bad = np.flatnonzero(np.abs(z) >= Z)
    assert bad.size == 0, (f"{what}: iterations {bad.tolist()}: MC {mean[bad]} vs theory "
                           f"{np.asarray(theory_values)[bad]} (z={z[bad]})")


def _assert_proportion(hits: np.ndarray, p, what: str) -> None:
    """Proportions of ``hits`` (chains x iterations) against probabilities p, with the binomial
    standard error sqrt(p (1 - p) / N) of the theory (finite even when no chain hits)."""
    p = np.asarray(p, dtype=float)
    assert ((p > 0) & (p < 1)).all(), what
    se = np.sqrt(p * (1 - p) / hits.shape[0])
    z = (hits.mean(0) - p) / se
    assert (np.abs(z) < Z).all(), f"{what}: z = {z}"


def _gauss(estimator, *, d=3, n=10, iters=6, n_synthetic=None, scale=1.0,
           paradigms=("replace", "accumulate"), n_seeds=3000, variance=1.0):
    study = dict(task="gaussian",
                 task_params=dict(n_features=d, n_samples=n, n_test=4, variance=variance,
                                  covariance_estimator=estimator, sampling_scale=scale),
                 paradigms=list(paradigms), n_iterations=iters, n_seeds=n_seeds)
    if n_synthetic is not None:
        study["n_synthetic"] = n_synthetic
    return study


# -- the registry and run_verify ---------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_run_verify_all_pass(seed):
    table = run_verify(seed)
    assert list(table.columns) == COLUMNS
    assert len(table) == len(PREDICTIONS)
    failed = table[~table.passed]
    assert failed.empty, failed.to_string()


def test_predictions_registry_is_well_formed():
    names = [p.name for p in PREDICTIONS]
    assert len(set(names)) == len(names)
    kinds = {p.kind for p in PREDICTIONS}
    assert kinds == {"engine", "independent simulation"}
    for p in PREDICTIONS:
        assert np.isfinite(p.predicted) and p.source and p.formula
        assert p.exact == (p.rel_tol == 0.0), p.name  # approximations carry a relative tolerance
        if p.study is None:
            assert callable(p.simulate), p.name
            continue
        study = Study.model_validate(p.study)  # a valid study at a fast size
        assert "seed" not in p.study
        assert study.n_seeds * study.n_iterations <= 400_000, p.name
        assert p.paradigm in [s.label for s in study.paradigms], p.name
        assert p.iteration is None or 0 <= p.iteration < study.n_iterations, p.name


# -- linear regression -------------------------------------------------------------------------

LR_STUDY = dict(task="linear_regression",
                task_params=dict(n_features=4, n_samples=20, noise_variance=0.5,
                                 label_noise="true", n_test=4),
                paradigms=["replace", "accumulate"], n_iterations=6, n_seeds=2000)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_regression_fixed_design_identity(seed):
    """Per replicate design X: E[risk_t | X] = sigma^2 tr((X^T X)^-1) (t+1) resp. sum 1/i^2.
    Conditioning on the actual designs removes their variability from the check."""
    df = _run(LR_STUDY, seed)
    p = LR_STUDY["task_params"]
    task = tasks.get("linear_regression").build(
        tasks.get("linear_regression").Params.model_validate(p),
        Streams(seed, range(LR_STUDY["n_seeds"])))
    X = task.real[..., :-1]
    tr = np.trace(np.linalg.inv(np.swapaxes(X, 1, 2) @ X), axis1=1, axis2=2)
    t = np.arange(LR_STUDY["n_iterations"])
    for paradigm, fn in (("replace", lr.replace_risk_fixed_design),
                         ("accumulate", lr.accumulate_risk_fixed_design)):
        risk = _table(df, paradigm, "population_risk")
        predicted = np.stack([fn(t, trace_inv_gram=x, noise_variance=p["noise_variance"])
                              for x in tr])
        _assert_matches(risk - predicted, np.zeros(len(t)), f"fixed design {paradigm}")
    # and averaged over designs
    kw = dict(n_features=4, n_samples=20, noise_variance=0.5)
    _assert_matches(_table(df, "replace", "population_risk"), lr.replace_risk(t, **kw), "replace")
    _assert_matches(_table(df, "accumulate", "population_risk"), lr.accumulate_risk(t, **kw),
                    "accumulate")


def test_linear_regression_literature_numbers():
    kw = dict(n_features=10, n_samples=100, noise_variance=1.0)
    assert lr.replace_risk(0, **kw) == pytest.approx(0.112360, abs=5e-7)
    np.testing.assert_allclose(lr.replace_risk([0, 1, 4, 9], **kw),
                               [0.1124, 0.2247, 0.5618, 1.1236], atol=5e-5)
    np.testing.assert_allclose(lr.accumulate_risk([0, 1, 4, 9, 49], **kw),
                               [0.1124, 0.1404, 0.1645, 0.1741, 0.1826], atol=5e-5)
    assert lr.accumulate_risk_limit(**kw) == pytest.approx(0.18483, abs=1e-5)  # 0.184824
    assert lr.accumulate_risk_ratio(10**6) < math.pi**2 / 6
    assert lr.accumulate_risk_ratio(10**5) == pytest.approx(math.pi**2 / 6, abs=2e-5)
    np.testing.assert_array_equal(lr.replace_risk_ratio([0, 4]), [1.0, 5.0])
    # the authors' d = 32 grid (literature.md Sec. 8 item 4), n = 50 fits -> t = 49
    big = dict(n_features=32, n_samples=100, noise_variance=100.0)
    assert lr.replace_risk(49, **big) == pytest.approx(2388.1, abs=0.05)
    assert lr.accumulate_risk(49, **big) == pytest.approx(77.62, abs=0.005)
    assert lr.accumulate_risk_limit(**big) == pytest.approx(78.56, abs=0.005)
    big["n_samples"] = 1000
    assert lr.replace_risk(49, **big) == pytest.approx(165.5, abs=0.05)
    assert lr.accumulate_risk(49, **big) == pytest.approx(5.378, abs=0.0005)
    with pytest.raises(ValueError):
        lr.replace_risk(0, n_features=10, n_samples=11, noise_variance=1.0)


# -- gaussian ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("n_synthetic, scale", [(None, 1.0), (7, 0.8)])
def test_gaussian_moments(seed, estimator, n_synthetic, scale):
    """Replace and accumulate: cov trace ratio, mean error and E ratio^2 (the exact second
    moment), whole trajectories, including m != n and sampling bias lambda < 1."""
    d, n, iters = 3, 10, 6
    df = _run(_gauss(estimator, d=d, n=n, iters=iters, n_synthetic=n_synthetic, scale=scale),
              seed)
    t = np.arange(iters)
    kw = dict(n_samples=n, estimator=estimator, n_synthetic=n_synthetic, sampling_scale=scale)
    funcs = {"replace": (gaussian.replace_cov_trace_ratio, gaussian.replace_mean_sq_error),
             "accumulate": (gaussian.accumulate_cov_trace_ratio,
                            gaussian.accumulate_mean_sq_error)}
    for paradigm, (ratio, mse) in funcs.items():
        what = f"{paradigm} {estimator} m={n_synthetic} lambda={scale}"
        r = _table(df, paradigm, "cov_trace_ratio")
        _assert_matches(r, ratio(t, **kw), what + " trace ratio")
        _assert_matches(_table(df, paradigm, "mean_sq_error"), mse(t, trace_cov=d, **kw),
                        what + " mean error")
        _, q = gaussian.cov_trace_second_moments(t, paradigm=paradigm, n_features=d,
                                                 variance=1.0, **kw)
        _assert_matches(r**2, q / d**2, what + " E ratio^2")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_gaussian_one_dimension_w2_exact(seed, estimator):
    """d = 1: E W2^2 = mean term + sigma0^2 (1 + v - 2 kappa) exactly; E sigma_hat / sigma_0 =
    kappa (chi means); E sigma_hat^4 = the exact second moment."""
    variance, n, iters = 2.0, 8, 8
    df = _run(_gauss(estimator, d=1, n=n, iters=iters, variance=variance,
                     paradigms=("replace",)), seed)
    t = np.arange(iters)
    kw = dict(n_samples=n, estimator=estimator)
    _assert_matches(_table(df, "replace", "w2_squared"),
                    gaussian.replace_w2_squared_1d(t, variance=variance, **kw), "1-d W2")
    w2_cov = _table(df, "replace", "w2_squared") - _table(df, "replace", "mean_sq_error")
    _assert_matches(w2_cov, gaussian.replace_w2_cov_term_1d(t, variance=variance, **kw),
                    "1-d Bures term")
    ratio = _table(df, "replace", "cov_trace_ratio")
    _assert_matches(np.sqrt(ratio), gaussian.replace_expected_sd_ratio(t, **kw), "E sd ratio")
    p, q = gaussian.cov_trace_second_moments(t, paradigm="replace", n_features=1,
                                             variance=variance, **kw)
    np.testing.assert_allclose(p, q)  # d = 1: tr S^2 = (tr S)^2
    _assert_matches(ratio**2, q / variance**2, "E ratio^2")


@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_w2_bounds_and_approximation(seed):
    """d = 3: E W2^2 lies between mean term + lower and mean term + upper bound; the
    small-deviation approximation is close when Sigma_hat stays near Sigma_0."""
    d, n, iters = 3, 10, 6
    df = _run(_gauss("mle", d=d, n=n, iters=iters), seed)
    t = np.arange(iters)
    for paradigm in ("replace", "accumulate"):
        w2 = _table(df, paradigm, "w2_squared")
        mean, se = w2.mean(0), w2.std(0, ddof=1) / np.sqrt(len(w2))
        m = gaussian.w2_mean_term(t, paradigm=paradigm, n_samples=n, trace_cov=d)
        lower, upper = gaussian.w2_cov_term_bounds(t, paradigm=paradigm, n_samples=n,
                                                   n_features=d, variance=1.0)
        assert (mean >= m + lower - Z * se).all() and (mean <= m + upper + Z * se).all()
        assert (lower <= upper).all()
    # the Jensen bound is weaker than the marginal one under replace
    v = gaussian.replace_cov_trace_ratio(t, n_samples=n)
    lower, _ = gaussian.w2_cov_term_bounds(t, paradigm="replace", n_samples=n, n_features=d,
                                           variance=1.0)
    assert (gaussian.jensen_cov_term_lower_bound(v, trace_cov=d) <= lower + 1e-12).all()
    df = _run(_gauss("mle", d=d, n=200, iters=iters, paradigms=("accumulate",)), seed)
    cov = _table(df, "accumulate", "w2_squared") - _table(df, "accumulate", "mean_sq_error")
    approx = gaussian.w2_cov_term_small_deviation(t, paradigm="accumulate", n_samples=200,
                                                  n_features=d, variance=1.0)
    np.testing.assert_allclose(cov.mean(0), approx, rtol=0.04)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_gaussian_mix_fresh(seed, scale):
    d, n, rho, iters = 2, 12, 0.25, 6
    study = dict(_gauss("unbiased", d=d, n=n, iters=iters, scale=scale, paradigms=()),
                 paradigms=[dict(name="mix", real_fraction=rho, fresh_real=True)])
    df = _run(study, seed)
    t = np.arange(iters)
    kw = dict(n_samples=n, real_fraction=rho, estimator="unbiased", sampling_scale=scale)
    _assert_matches(_table(df, "mix-0.25-fresh", "mean_sq_error"),
                    gaussian.mix_fresh_mean_sq_error(t, trace_cov=d, **kw), "mix mean")
    _assert_matches(_table(df, "mix-0.25-fresh", "cov_trace_ratio"),
                    gaussian.mix_fresh_cov_trace_ratio(t, **kw), "mix trace")


@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_median_variance_independent_mc(seed):
    """Independent Monte Carlo of the 1-d unbiased chain: sigma_t^2/sigma_0^2 is a product of
    t + 1 independent chi^2_{n-1}/(n-1); its median vs the Cornish-Fisher form (error < 0.6%)
    and the simple exp(-(t+1)/(n-1)) (4-9% high at t = 19, 29)."""
    rng = np.random.default_rng(seed)
    n, t, N = 10, np.array([4, 9, 19, 29]), 400_000
    logs = np.sort(np.log(rng.chisquare(n - 1, size=(N, 30)) / (n - 1)).cumsum(1)[:, t], axis=0)
    log_median = np.median(logs, axis=0)
    half = int(np.ceil(1.96 * np.sqrt(N) / 2))  # distribution-free 95% interval of the median
    se = (logs[N // 2 + half] - logs[N // 2 - half]) / (2 * 1.96)
    cf = np.log(gaussian.replace_median_variance_ratio(t, n_samples=n))
    assert (np.abs(cf - log_median) < 0.006 + Z * se).all(), (cf - log_median, se)
    simple = np.log(gaussian.shumailov_median_variance_ratio(t, n_samples=n))
    assert (np.abs(simple - log_median) < 0.10).all()
    assert (simple[2:] - log_median[2:] > 0.006 + Z * se[2:]).all()  # the simple form is biased
    # literature.md Sec. 4: M = 10 -> 0.328, 0.101, 0.033; M = 100 -> 0.358, 0.128, 0.047
    np.testing.assert_allclose(gaussian.replace_median_variance_ratio([9, 19, 29], n_samples=10),
                               [0.328, 0.101, 0.033], rtol=0.035)
    np.testing.assert_allclose(
        gaussian.replace_median_variance_ratio([99, 199, 299], n_samples=100),
        [0.358, 0.128, 0.047], rtol=0.035)


def test_gaussian_literature_numbers():
    # Kazdan setup, d = 10, n = 100, MLE (literature.md Sec. 8 items 6-7), t = fits - 1
    kw = dict(n_samples=100, trace_cov=10.0)
    np.testing.assert_allclose(gaussian.replace_mean_sq_error([0, 9, 49, 99], **kw),
                               [0.100, 0.956, 3.950, 6.340], atol=5e-4)
    np.testing.assert_allclose(gaussian.replace_cov_trace_ratio([0, 9, 49, 99], n_samples=100),
                               [0.990, 0.904, 0.605, 0.366], atol=5e-4)
    assert gaussian.replace_cov_trace_ratio(99, n_samples=100) == pytest.approx(0.366, abs=5e-4)
    # accumulate: MC 0.1008, 0.1262, 0.1484, 0.1576, 0.1636 (+- 0.0016, correlated)
    np.testing.assert_allclose(gaussian.accumulate_mean_sq_error([0, 1, 4, 9, 29], **kw),
                               [0.1008, 0.1262, 0.1484, 0.1576, 0.1636], atol=0.0035)
    bound = gaussian.accumulate_mean_sq_error_bound(**kw)
    assert bound == pytest.approx(0.16449, abs=5e-6)
    assert (gaussian.accumulate_mean_sq_error(np.arange(0, 2000, 50), **kw) < bound).all()
    assert gaussian.accumulate_mean_sq_error(1000, estimator="unbiased", **kw) < bound
    # trace settles at ~0.982: exactly sqrt(n) sin(pi/sqrt(n))/pi for the MLE with m = n
    limit = math.sqrt(100) * math.sin(math.pi / 10) / math.pi
    assert gaussian.accumulate_cov_trace_ratio(20000, n_samples=100) == pytest.approx(limit,
                                                                                     abs=1e-5)
    assert limit == pytest.approx(0.982, abs=0.002)
    # unbiased replace (Shumailov): (t+1) trS0/M and E Sigma = Sigma_0; MAD lambda^t
    assert gaussian.replace_mean_sq_error(99, n_samples=100, trace_cov=1.0,
                                          estimator="unbiased") == pytest.approx(1.0)
    assert gaussian.replace_cov_trace_ratio(50, n_samples=10, estimator="unbiased") == 1.0
    np.testing.assert_allclose(gaussian.sampling_bias_cov_trace_ratio([0, 1, 2], sampling_scale=0.5,
                                                                      n_samples=10),
                               [1.0, 0.5, 0.25])


def test_gaussian_exact_identities():
    t = np.arange(12)
    for est in ("mle", "unbiased"):
        for scale in (1.0, 0.6):
            kw = dict(n_samples=9, estimator=est, sampling_scale=scale)
            # mix with no real data is replace
            np.testing.assert_allclose(
                gaussian.mix_fresh_mean_sq_error(t, real_fraction=0.0, trace_cov=2.0, **kw),
                gaussian.replace_mean_sq_error(t, trace_cov=2.0, **kw))
            np.testing.assert_allclose(
                gaussian.mix_fresh_cov_trace_ratio(t, real_fraction=0.0, **kw),
                gaussian.replace_cov_trace_ratio(t, **kw))
    # closed forms of the MLE replace chain
    np.testing.assert_allclose(gaussian.replace_cov_trace_ratio(t, n_samples=9),
                               (1 - 1 / 9) ** (t + 1))
    np.testing.assert_allclose(gaussian.replace_mean_sq_error(t, n_samples=9, trace_cov=2.0),
                               2.0 * (1 - (1 - 1 / 9) ** (t + 1)))
    # the literature recursion sum_i E tr S_{i-2} / (n i^2) with the exact E tr S
    n = 9
    v = gaussian.accumulate_cov_trace_ratio(t, n_samples=n)
    rec = [1 / n + sum(v[i] / (n * (i + 2) ** 2) for i in range(k)) for k in t]
    np.testing.assert_allclose(gaussian.accumulate_mean_sq_error(t, n_samples=n, trace_cov=1.0),
                               rec)
    # the MLE accumulate trace obeys the same product as the discrete Gini-Simpson index
    np.testing.assert_allclose(v, discrete.gini_simpson_accumulate(t, probabilities=[0.5, 0.5],
                                                                   n_samples=n) / 0.5)
    # the fixed point of mix with fresh data does not depend on iteration 0
    far = gaussian.mix_fresh_cov_trace_ratio([200, 400], n_samples=12, real_fraction=0.5)
    assert far[0] == pytest.approx(far[1]) and far[0] > 0.5
    # scalars in, floats out; arrays keep their shape
    assert isinstance(gaussian.replace_cov_trace_ratio(3, n_samples=5), float)
    assert gaussian.accumulate_mean_sq_error(np.zeros((2, 3), int), n_samples=5,
                                             trace_cov=1.0).shape == (2, 3)
    with pytest.raises(ValueError):
        gaussian.replace_cov_trace_ratio(-1, n_samples=5)
    with pytest.raises(ValueError):
        gaussian.replace_cov_trace_ratio(1.5, n_samples=5)


# -- discrete ----------------------------------------------------------------------------------

P0 = (0.4, 0.3, 0.15, 0.1, 0.05)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_synthetic", [None, 13])
def test_discrete_gini_simpson(seed, n_synthetic):
    study = dict(task="discrete", task_params=dict(probabilities=list(P0), n_samples=20),
                 paradigms=["replace", "accumulate"], n_iterations=8, n_seeds=2000)
    if n_synthetic:
        study["n_synthetic"] = n_synthetic
    df = _run(study, seed)
    t = np.arange(8)
    kw = dict(probabilities=P0, n_samples=20, n_synthetic=n_synthetic)
    _assert_matches(_table(df, "replace", "gini_simpson"), discrete.gini_simpson_replace(t, **kw),
                    "gini replace")
    _assert_matches(_table(df, "accumulate", "gini_simpson"),
                    discrete.gini_simpson_accumulate(t, **kw), "gini accumulate")
    if n_synthetic is None:
        _assert_matches(_table(df, "replace", "support_size"),
                        discrete.expected_support_size(t, probabilities=P0, n_samples=20),
                        "support size")
        # power: accumulate is not replace
        acc = _table(df, "accumulate", "gini_simpson")
        z = (acc.mean(0) - discrete.gini_simpson_replace(t, **kw)) / (
            acc.std(0, ddof=1) / np.sqrt(len(acc)))
        assert (np.abs(z[2:]) > Z).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_discrete_two_outcome_chain_exact(seed):
    """K = 2: P(model t still has both outcomes), P(outcome lost by t) and E min(T, L + 1)."""
    D, L, p = 8, 120, [0.3, 0.7]
    study = dict(task="discrete", task_params=dict(probabilities=p, n_samples=D),
                 paradigms=["replace"], n_iterations=L, n_seeds=2000)
    df = _run(study, seed)
    support = _table(df, "replace", "support_size")
    t = np.arange(0, 40, 3)  # P(alive) from 0.97 down to ~0.01
    _assert_proportion(support[:, t] > 1,
                       discrete.prob_not_single_outcome(t, probabilities=p, n_samples=D), "alive")
    tv = _table(df, "replace", "tv_distance")
    lost_first = (support == 1) & np.isclose(tv, 1 - p[1])  # absorbed at outcome 1
    _assert_proportion(lost_first[:, t], discrete.prob_outcome_lost(t, q=p[0], n_samples=D),
                       "outcome 0 lost")
    single = support == 1
    fits = np.where(single.any(1), single.argmax(1) + 1, L + 1).astype(float)
    _assert_matches(fits[:, None], [discrete.expected_fits_to_single_outcome_exact(
        p, n_samples=D, max_fits=L + 1)], "fits to collapse")


def test_discrete_exact_identities():
    # the untruncated mean is the limit of the truncated one
    exact = discrete.expected_fits_to_single_outcome_exact([0.5, 0.5], n_samples=10)
    assert discrete.expected_fits_to_single_outcome_exact(
        [0.5, 0.5], n_samples=10, max_fits=3000) == pytest.approx(exact, rel=1e-9)
    # diffusion approximation: O(1/D) relative error, exact as D grows
    for D, rel in ((10, 0.11), (100, 0.02), (400, 0.006)):  # +10.1%, +1.5%, +0.45%
        diff = discrete.expected_fits_to_single_outcome([0.5, 0.5], n_samples=D)
        assert diff == pytest.approx(discrete.expected_fits_to_single_outcome_exact(
            [0.5, 0.5], n_samples=D), rel=rel)
    # loss probabilities converge to 1 - q; support size to 1
    np.testing.assert_allclose(discrete.prob_outcome_lost(4000, q=0.2, n_samples=10),
                               discrete.loss_probability(0.2), atol=1e-9)
    assert discrete.expected_support_size(4000, probabilities=P0, n_samples=10) == pytest.approx(1)
    assert discrete.expected_support_size(0, probabilities=[1 / 3] * 3, n_samples=1) == \
        pytest.approx(1.0)
    # accumulate limit: Euler's product
    far = discrete.gini_simpson_accumulate(200_000, probabilities=P0, n_samples=20)
    assert far == pytest.approx(discrete.gini_simpson_accumulate_limit(probabilities=P0,
                                                                       n_samples=20), rel=1e-5)
    np.testing.assert_array_equal(discrete.absorption_probabilities(P0), P0)
    assert discrete.expected_collapse_iteration([0.5, 0.5], n_samples=10) == pytest.approx(
        2 * 10 * math.log(2) - 1)
    with pytest.raises(ValueError):
        discrete.prob_not_single_outcome(3, probabilities=[0.2, 0.3, 0.5], n_samples=10)


def test_discrete_literature_numbers():
    """literature.md Sec. 5 and Sec. 8 items 11-13 (uniform K: T/D = -2K(1-1/K) ln(1-1/K))."""
    for K, ratio in ((2, 1.386), (10, 1.8965), (100, 1.990)):
        value = discrete.expected_fits_to_single_outcome(np.full(K, 1 / K), n_samples=1)
        assert value == pytest.approx(ratio, abs=5e-4)
    uniform10 = np.full(10, 0.1)
    np.testing.assert_allclose([discrete.expected_fits_to_single_outcome(uniform10, n_samples=D)
                                for D in (10, 100, 1000)], [19.0, 189.6, 1896], rtol=2e-3)
    assert discrete.expected_fits_to_single_outcome(np.full(10**6, 1e-6), n_samples=1) == \
        pytest.approx(2, abs=1e-5)
    assert discrete.expected_fits_to_single_outcome([0.7, 0.2, 0.1], n_samples=50) == \
        pytest.approx(63.5, abs=0.05)
    assert discrete.loss_probability(0.2) == pytest.approx(0.8)
    # the diffusion value is not D H(p0) for K = 10
    assert discrete.expected_fits_to_single_outcome(uniform10, n_samples=1) != \
        pytest.approx(math.log(10), rel=0.1)


# -- location model and weighting (independent simulation) --------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_location_model_independent_mc(seed):
    """Sample mean: augment MSE = (sigma^2/n) sum 1/g^2, discard (t+1) sigma^2/n, per chain."""
    rng = np.random.default_rng(seed)
    R, n, T = 20000, 25, 6
    theta_aug = theta_dis = rng.standard_normal(R) / np.sqrt(n)
    err_aug, err_dis = [theta_aug**2], [theta_dis**2]
    total = theta_aug * n
    for t in range(1, T):
        total = total + n * theta_aug + np.sqrt(n) * rng.standard_normal(R)
        theta_aug = total / ((t + 1) * n)
        theta_dis = theta_dis + rng.standard_normal(R) / np.sqrt(n)
        err_aug.append(theta_aug**2)
        err_dis.append(theta_dis**2)
    t = np.arange(T)
    _assert_matches(np.stack(err_aug, 1), location.augment_mse(t, n_samples=n), "augment")
    _assert_matches(np.stack(err_dis, 1), location.discard_mse(t, n_samples=n), "discard")
    ratio, se = location.simulate_mse_ratio(3, workflow="augment", n_samples=30, seed=seed)
    assert abs(ratio - location.augment_mse_ratio(3)) < Z * se


@pytest.mark.parametrize("seed", SEEDS)
def test_location_and_weighting_on_engine(seed):
    """The known-variance Gaussian of the engine (known_covariance): replace / accumulate are
    Dey & Donoho's discard / augment; mix with fresh real data and real_weight is He, Xu &
    Cheng's weighting (iteration 0 fits all N real rows: x_0 = n / N)."""
    d, variance, n, iters = 2, 1.5, 15, 6
    params = dict(n_features=d, n_samples=n, n_test=4, variance=variance, known_covariance=True)
    df = _run(dict(task="gaussian", task_params=params, paradigms=["replace", "accumulate"],
                   n_iterations=iters, n_seeds=3000), seed)
    t = np.arange(iters)
    tr0 = d * variance
    _assert_matches(_table(df, "accumulate", "mean_sq_error"),
                    location.augment_mse(t, n_samples=n, variance=tr0), "augment")
    _assert_matches(_table(df, "replace", "mean_sq_error"),
                    location.discard_mse(t, n_samples=n, variance=tr0), "discard")
    N, rho, w = 40, 0.25, 0.7  # 10 fresh real + 30 synthetic rows: m / n = 3
    k = int(round(rho * N))
    spec = dict(name="mix", real_fraction=rho, fresh_real=True, real_weight=w)
    df = _run(dict(task="gaussian", task_params=dict(params, n_samples=N), paradigms=[spec],
                   n_iterations=iters, n_seeds=3000), seed)
    x = weighting.scaled_mse(t, weight=w, synthetic_to_real=(N - k) / k, initial_scaled_mse=k / N)
    _assert_matches(_table(df, f"mix-{rho:g}-fresh-w{w:g}", "mean_sq_error"), x * tr0 / k,
                    "weighted mix")


def test_location_literature_numbers():
    np.testing.assert_allclose(location.augment_mse_ratio([1, 4, 19]), [1.25, 1.4636, 1.5962],
                               atol=5e-5)
    assert location.augment_mse_ratio_limit() == pytest.approx(1.644934, abs=5e-7)
    assert location.relative_efficiency_floor() == pytest.approx(0.6079, abs=5e-5)
    eff = location.augment_relative_efficiency(np.arange(1000))
    assert (eff >= location.relative_efficiency_floor()).all() and (np.diff(eff) < 0).all()
    assert location.discard_mse_ratio(19) == 20.0
    assert location.median_mse_asymptotic(n_samples=400) == pytest.approx(math.pi / 800)


@pytest.mark.parametrize("seed", SEEDS)
def test_weighting_trajectory_independent_mc(seed):
    """The finite-t scaled MSE, transient included, for several weights and ratios."""
    for w, r in ((0.3, 1.0), (weighting.golden_ratio_weight(), 1.0), (0.8, 0.5)):
        for t in (0, 1, 3):
            value, se = weighting.simulate_scaled_mse(t, weight=w, synthetic_to_real=r,
                                                      n_chains=20000, seed=[seed, t])
            assert abs(value - weighting.scaled_mse(t, weight=w, synthetic_to_real=r)) < Z * se


def test_weighting_optimum_by_numerical_minimisation():
    w = np.linspace(1e-4, 1, 200_001)
    for r in (0.25, 0.5, 1.0, 2.0, 5.0):  # r = m / n
        f = weighting.stationary_scaled_mse(w, synthetic_to_real=r)
        best = weighting.optimal_real_weight(synthetic_to_real=r)
        assert w[f.argmin()] == pytest.approx(best, abs=1e-4)
        # the minimum value equals the optimal weight
        assert f.min() == pytest.approx(best, abs=1e-8)
        assert weighting.stationary_scaled_mse(best, synthetic_to_real=r) == pytest.approx(best)


def test_weighting_literature_numbers():
    g = weighting.golden_ratio_weight()
    assert g == pytest.approx(0.618034, abs=5e-7)
    assert weighting.optimal_real_weight() == pytest.approx(g)
    np.testing.assert_allclose(weighting.stationary_scaled_mse([g, 0.5, 1.0]),
                               [0.6180, 0.6667, 1.0], atol=5e-5)
    assert weighting.optimal_real_weight(synthetic_to_real=2.0) == pytest.approx(0.5)
    assert weighting.stationary_scaled_mse(0.0) == math.inf
    assert weighting.scaled_mse(0, weight=0.3) == 1.0
    assert weighting.scaled_mse(0, weight=0.3, initial_scaled_mse=0.5) == 0.5
    assert weighting.scaled_mse(500, weight=0.3) == pytest.approx(
        weighting.stationary_scaled_mse(0.3))
