"""Power and calibration of ``modelcollapse verify`` (``checks.verify``).

Each check compares a predicted curve with the simulated mean curve at early to late iterations
by a simultaneous max-|z| statistic, calibrated by a bootstrap over whole chains, and passes
when p >= 0.01 / (number of checks) (Bonferroni; the level used by ``run_verify``).  Here:

* (a) formulas that are wrong in the ways a reviewer found to pass the old single-iteration
  checks are **rejected**, for several root seeds, by the same checking function on the same
  simulation (``dataclasses.replace`` of the right ``Prediction`` with the wrong curve);
* (b) the right formulas pass for the same seeds;
* (c) the bootstrap p-value is calibrated on skewed, correlated chains (a correct prediction is
  rejected at about the nominal rate).

Why (a) holds for any seed: rejection needs max_z above the bootstrap critical value, ~4.0 for
p < 2.3e-4 with up to 8 correlated iterations.  The expected z-scores of the wrong formulas
(computed from the formulas and the per-chain coefficients of variation, stated per case below)
are >= 9.7, i.e. >= 5.7 SD above the critical value: a miss has probability < 1e-8 per case
(measured at seeds 0, 1, 2: z = 8.0 to 9.7 for the d/(T-d) formulas, >= 13 for the others).
(b) and (c) hold with probability >= 1 - 2.3e-4 per check and seed, resp. ~1 - 1e-6.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from modelcollapse.checks import predictions as registry
from modelcollapse.checks.verify import (_EngineRuns, default_level, max_z_test,
                                         multinomial_counts, resampled_means, verify_one)

SEEDS = [0, 1, 2]
LEVEL = default_level()  # 0.01 / 43 = 2.3e-4, as in run_verify over PREDICTIONS


def _h2(k) -> np.ndarray:
    """sum_{i=1}^{k} 1/i^2 for an int array k (0 for k = 0), written out independently."""
    return np.array([sum(1.0 / i**2 for i in range(1, int(j) + 1)) for j in np.ravel(k)])


D, T, S2 = registry.LR["d"], registry.LR["T"], registry.LR["sigma2"]   # 10, 20, 1
N_G = registry.G["n"]                                                 # 10
N_LOC = 20  # location_augment_mean_mse_engine: n = 20 per generation, sigma^2 = 1

# check name -> (description, wrong curve, expected z of the wrong formula at its best iteration)
WRONG = {
    # d/(T-d) is 1/(T-d-1) = 11.1% below d/(T-d-1) at every t; the risk's coefficient of variation
    # is ~0.72 at d = 10, T = 20, so z ~ 0.111 sqrt(4000) / 0.72 ~ 9.7
    "replace sigma^2 d/(T-d) (t+1)": (
        "lr_replace_risk", lambda t: S2 * D / (T - D) * (np.asarray(t) + 1.0), 9.7),
    "accumulate sigma^2 d/(T-d) sum_{i<=t+1}": (
        "lr_accumulate_risk", lambda t: S2 * D / (T - D) * _h2(np.asarray(t) + 1), 9.7),
    # sum to t: 0 instead of sigma^2 d/(T-d-1) at t = 0, z ~ sqrt(4000) / 0.72 ~ 88
    "accumulate sum_{i<=t}": (
        "lr_accumulate_risk", lambda t: S2 * D / (T - D - 1) * _h2(np.asarray(t)), 88.0),
    # sum to t+2: 1.25 instead of 1 (x the t = 0 risk) at t = 0, z ~ 0.25 sqrt(4000) / 0.72 ~ 22
    "accumulate sum_{i<=t+2}": (
        "lr_accumulate_risk", lambda t: S2 * D / (T - D - 1) * _h2(np.asarray(t) + 2), 22.0),
    # (1-1/n)^(t+2) is 10% low at every t; at t = 0 tr S_0 / tr S has mean 0.9 and SD
    # sqrt(2 (n-1) / (d n^2)) = 0.245, so with 2000 chains z ~ 0.09 / (0.245 / sqrt(2000)) ~ 16
    "mle trace ratio (1-1/n)^(t+2)": (
        "gaussian_mle_replace_cov_trace_ratio", lambda t: (1 - 1 / N_G) ** (np.asarray(t) + 2.0),
        16.0),
    # (1-1/n)^t: 1 instead of 0.9 at t = 0, z ~ 0.1 / (0.245 / sqrt(2000)) ~ 18
    "mle trace ratio (1-1/n)^t": (
        "gaussian_mle_replace_cov_trace_ratio", lambda t: (1 - 1 / N_G) ** np.asarray(t, float),
        18.0),
    # Dey & Donoho's sum to t instead of t+1: 0 instead of sigma^2/n at t = 0; n theta_hat^2 is
    # chi^2_1 (CV sqrt 2), z ~ sqrt(2000 / 2) ~ 32
    "location augment sum_{g<=t} (engine)": (
        "location_augment_mean_mse_engine", lambda t: _h2(np.asarray(t)) / N_LOC, 32.0),
    # independent simulation, ratio MSE_t / MSE_0 from t = 1: 1 instead of 1.25 at t = 1; the
    # delta-method variance of the ratio is 1.25 / N, z ~ 0.25 / sqrt(1.25 / 4000) ~ 14
    "location augment sum_{g<=t} (independent)": (
        "location_augment_mean_mse_ratio", lambda t: _h2(np.asarray(t)), 14.0),
}


@pytest.fixture(scope="module")
def runs():
    """One engine-run and bootstrap cache per seed, shared by the right and wrong formulas."""
    return {seed: _EngineRuns(seed) for seed in SEEDS}


def _prediction(name: str) -> registry.Prediction:
    return next(p for p in registry.PREDICTIONS if p.name == name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", list(WRONG))
def test_wrong_formula_is_rejected(case, seed, runs):
    name, wrong, expected_z = WRONG[case]
    right = _prediction(name)
    bad = dataclasses.replace(right, curve=wrong)
    its, values = bad.predicted_values()
    assert not np.allclose(values, right.predicted_values()[1])  # really a different formula
    row = verify_one(bad, seed, runs[seed], level=LEVEL)
    assert not row["passed"], row
    assert row["p_value"] < LEVEL
    assert row["max_z"] > 4.0, (row["max_z"], expected_z)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted({v[0] for v in WRONG.values()}))
def test_right_formula_passes(name, seed, runs):
    row = verify_one(_prediction(name), seed, runs[seed], level=LEVEL)
    assert row["passed"], row
    assert row["p_value"] >= LEVEL


def test_checks_compare_early_and_late_iterations():
    """Every curve check reads at least three iterations, including its first and last."""
    for p in registry.PREDICTIONS:
        if p.curve is None:
            continue
        its = p.iterations
        assert len(its) >= 3 and list(its) == sorted(set(its)), p.name
        assert p.iteration == its[-1]
        if p.study is not None:
            assert its[-1] == p.study["n_iterations"] - 1, p.name  # the last simulated one
            assert its[0] == 0, p.name


def test_verify_one_is_deterministic():
    pred = _prediction("location_augment_mean_mse_ratio")
    a = verify_one(pred, 3, level=LEVEL)
    b = verify_one(pred, 3, level=LEVEL)
    c = verify_one(pred, 4, level=LEVEL)
    assert a == b
    assert a["simulated"] != c["simulated"]


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_max_z_is_calibrated_on_skewed_correlated_chains(seed):
    """Chains x_t = exp(W_t), W a Gaussian random walk (a log-normal process like the trace
    ratios: skewness ~ 2 to 6.2 across t, correlation ~0.7 between neighbours), N = 500 chains,
    5 iterations, true means known.  Over R = 300 data sets the test at level 0.05 must reject
    about 15 times (binomial SD 3.8); [3, 36] leaves > 5 SD on either side, while a test
    ignoring the correlation and the skew, or a mis-scaled one, drifts out of it."""
    rng = np.random.default_rng(seed)
    N, k, R, B = 500, 5, 300, 999
    step = 0.3
    t = np.arange(1, k + 1)
    target = np.exp(step**2 * t / 2)  # E exp(W_t), Var W_t = step^2 t
    rejected = 0
    for _ in range(R):
        x = np.exp(np.cumsum(step * rng.standard_normal((N, k)), axis=1))
        boot = resampled_means(x, multinomial_counts(N, B, rng))
        _, p, _ = max_z_test(x.mean(0), boot, target, np.zeros(k), np.zeros(k))
        rejected += p < 0.05
    assert 3 <= rejected <= 36, rejected


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_resamples_whole_chains_uniformly(seed):
    """Each resample draws N chains with replacement, all chains equally likely, and keeps a
    chain's values at all iterations together; the bootstrap SD of a mean matches SD/sqrt(N).
    Tolerances: mean count per chain 1 +- 0.2 is > 6 SD (SD 1/sqrt(999)); the SD of a
    bootstrap SD is ~1/sqrt(2B) = 2.2%, so 10% is > 4 SD."""
    rng = np.random.default_rng(seed)
    N, B = 500, 999
    counts = multinomial_counts(N, B, rng)
    assert counts.shape == (B, N) and (counts.sum(1) == N).all()
    assert np.abs(counts.mean(0) - 1).max() < 0.2
    x = rng.standard_normal((N, 3)) + np.arange(3)
    boot = resampled_means(x, counts)
    for b in range(3):  # the same as averaging the resampled chains (rows) explicitly
        rows = np.repeat(np.arange(N), counts[b].astype(int))
        np.testing.assert_allclose(boot[b], x[rows].mean(0), atol=1e-6)
    np.testing.assert_allclose(boot.std(0, ddof=1), x.std(0, ddof=1) / math.sqrt(N), rtol=0.1)


def test_max_z_test_sides_and_band():
    """One-sided checks ignore deviations in the allowed direction; the band absorbs known
    model error; a non-finite estimate fails."""
    rng = np.random.default_rng(0)
    boot = 1.0 + 0.01 * rng.standard_normal((999, 1))
    est = np.array([1.0])
    # far above the target: two-sided and upper-bound checks fail, a lower bound passes
    for side, fails in ((0, True), (1, True), (-1, False)):
        z, p, _ = max_z_test(est, boot, np.array([0.9]), np.zeros(1), np.array([side]))
        assert (p < 0.01) == fails, (side, z, p)
    z, p, _ = max_z_test(est, boot, np.array([0.9]), np.array([0.1]), np.zeros(1))
    assert z == 0.0 and p == 1.0
    z, p, _ = max_z_test(np.array([math.nan]), boot, np.array([1.0]), np.zeros(1), np.zeros(1))
    assert p == 0.0
