"""Closed-form theory vs Monte Carlo over many replicate chains of the real engine.

Iterations are 0-based: iteration 0 is fitted on the real sample only, so after the fit of
iteration t the chain has been through t + 1 fits.

Every check is ``|MC mean - theory| < Z * SE`` with SE = sample std / sqrt(n_seeds), at every
tested iteration, for several root seeds (the tests must hold for any seed).  With Z = 4.5 a
single check fails by chance with probability ~7e-6; the file makes ~550 such checks, so for an
arbitrary choice of root seeds it fails by chance with probability < 0.4% (union bound; a sweep
over 45 other root seeds gave max |z| = 3.6).  The runs are deterministic, so with the seeds
below the outcome never flips.  ``test_*_power`` shows the same data reject the formulas shifted
by one iteration (typically 10-70 SE away), so the tolerances are not vacuous.

Notation: T = n_samples, d = n_features, sigma^2 = noise_variance, n = real sample size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from modelcollapse.config import Study
from modelcollapse.engine import run_study

Z = 4.5  # tolerance in Monte Carlo standard errors
ROOT_SEEDS = [0, 7, 20240611]
N_SEEDS = 3000  # replicate chains per study
# mix with lambda = 0 trains on the whole latest synthetic batch: replace in distribution, but
# through the row-selecting code path (replace/accumulate may draw sufficient statistics
# directly), so every replace formula is checked on both
MIX0 = (("name", "mix"), ("real_fraction", 0.0))
REPLACE_LIKE = ["replace", "mix-0"]


# -- helpers ---------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _run(task: str, params: tuple, paradigms: tuple, n_iterations: int, seed: int,
         n_seeds: int = N_SEEDS):
    study = Study.model_validate(dict(
        task=task, task_params=dict(params),
        paradigms=[dict(p) if isinstance(p, tuple) else p for p in paradigms],
        n_iterations=n_iterations, n_seeds=n_seeds, seed=seed))
    return run_study(study)


def _table(df, paradigm: str, metric: str) -> np.ndarray:
    """Values of one metric as an array (n_seeds, n_iterations)."""
    sub = df[(df.paradigm == paradigm) & (df.metric == metric)]
    wide = sub.pivot(index="seed", columns="iteration", values="value").sort_index(axis=1)
    assert wide.notna().all().all()
    return wide.to_numpy()


def _mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert np.isfinite(values).all()
    return values.mean(0), values.std(0, ddof=1) / np.sqrt(values.shape[0])


def _z(values: np.ndarray, theory: np.ndarray) -> np.ndarray:
    mean, se = _mean_se(values)
    assert (se > 0).all()
    return (mean - theory) / se


def _assert_matches(values: np.ndarray, theory: np.ndarray, what: str) -> None:
    mean, se = _mean_se(values)
    z = (mean - theory) / se
    bad = np.flatnonzero(np.abs(z) >= Z)
    assert bad.size == 0, (
        f"{what}: Monte Carlo disagrees with theory at iterations {bad.tolist()}: "
        f"mean={mean[bad]}, theory={theory[bad]}, SE={se[bad]}, z={z[bad]}")


def _assert_rejected(values: np.ndarray, wrong: np.ndarray, what: str, where=slice(None)) -> None:
    z = _z(values, wrong)[where]
    assert (np.abs(z) >= Z).all(), f"{what}: the wrong formula is not rejected (z={z})"


# -- linear regression (Gerstgrasser et al. 2024) --------------------------------------------

LR_D, LR_T, LR_ITERS = 5, 30, 6


def _lr_run(sigma2: float, seed: int):
    params = (("n_features", LR_D), ("n_samples", LR_T), ("noise_variance", sigma2),
              ("label_noise", "true"), ("n_test", 4))
    return _run("linear_regression", params, ("replace", "accumulate", MIX0), LR_ITERS, seed)


def _lr_base(sigma2: float) -> float:
    # E tr (X^T X)^-1 = d / (T - d - 1) for X with iid N(0, 1) entries (inverse Wishart mean)
    return sigma2 * LR_D / (LR_T - LR_D - 1)


def _lr_replace(sigma2: float, fits: np.ndarray) -> np.ndarray:
    return _lr_base(sigma2) * fits


def _lr_accumulate(sigma2: float, fits: np.ndarray) -> np.ndarray:
    return _lr_base(sigma2) * np.array([np.sum(1.0 / np.arange(1, k + 1) ** 2) for k in fits])


@pytest.mark.parametrize("seed", ROOT_SEEDS)
@pytest.mark.parametrize("sigma2", [1.0, 0.25])
@pytest.mark.parametrize("paradigm", REPLACE_LIKE)
def test_linear_regression_replace(seed, sigma2, paradigm):
    """E[population_risk_t] = sigma^2 d / (T - d - 1) * (t + 1)."""
    values = _table(_lr_run(sigma2, seed), paradigm, "population_risk")
    t = np.arange(LR_ITERS)
    _assert_matches(values, _lr_replace(sigma2, t + 1), f"lr {paradigm} sigma2={sigma2}")


@pytest.mark.parametrize("seed", ROOT_SEEDS)
@pytest.mark.parametrize("sigma2", [1.0, 0.25])
def test_linear_regression_accumulate(seed, sigma2):
    """E[population_risk_t] = sigma^2 d / (T - d - 1) * sum_{i=1}^{t+1} 1 / i^2."""
    values = _table(_lr_run(sigma2, seed), "accumulate", "population_risk")
    t = np.arange(LR_ITERS)
    _assert_matches(values, _lr_accumulate(sigma2, t + 1), f"lr accumulate sigma2={sigma2}")


@pytest.mark.parametrize("seed", ROOT_SEEDS)
def test_linear_regression_power(seed):
    """The same data reject the formulas shifted by one iteration (t and t + 2 fits)."""
    df, t = _lr_run(1.0, seed), np.arange(LR_ITERS)
    rep = _table(df, "replace", "population_risk")
    _assert_rejected(rep, _lr_replace(1.0, t + 2), "lr replace, t+2")
    _assert_rejected(rep, _lr_replace(1.0, t), "lr replace, t")
    acc = _table(df, "accumulate", "population_risk")
    # the accumulate terms shrink like 1/t^2: an off-by-one is visible at the early iterations
    _assert_rejected(acc, _lr_accumulate(1.0, t + 2), "lr accumulate, t+2", where=slice(0, 1))
    _assert_rejected(acc, _lr_accumulate(1.0, t), "lr accumulate, t", where=slice(0, 2))
    # and accumulate is not replace
    _assert_rejected(acc, _lr_replace(1.0, t + 1), "lr accumulate vs replace", where=slice(1, None))


# -- Gaussian (Shumailov et al. 2024, Thm 3.1; Kazdan et al. 2024) ----------------------------

G_D, G_N, G_ITERS = 3, 10, 8


def _gauss_run(estimator: str, variance: float, seed: int, paradigms=("replace", MIX0), n=G_N):
    params = (("n_features", G_D), ("n_samples", n), ("n_test", 4), ("variance", variance),
              ("covariance_estimator", estimator))
    return _run("gaussian", params, paradigms, G_ITERS, seed)


@pytest.mark.parametrize("seed", ROOT_SEEDS)
@pytest.mark.parametrize("variance", [1.0, 2.5])
@pytest.mark.parametrize("paradigm", REPLACE_LIKE)
def test_gaussian_mle_replace(seed, variance, paradigm):
    """MLE: E[cov_trace_ratio_t] = (1 - 1/n)^(t+1), E[mean_sq_error_t] = tr S0 (1 - (1 - 1/n)^(t+1))."""
    df = _gauss_run("mle", variance, seed)
    shrink = (1 - 1 / G_N) ** (np.arange(G_ITERS) + 1)
    _assert_matches(_table(df, paradigm, "cov_trace_ratio"), shrink,
                    f"gaussian mle {paradigm} trace ratio")
    _assert_matches(_table(df, paradigm, "mean_sq_error"), G_D * variance * (1 - shrink),
                    f"gaussian mle {paradigm} mean error")


@pytest.mark.parametrize("seed", ROOT_SEEDS)
@pytest.mark.parametrize("paradigm", REPLACE_LIKE)
def test_gaussian_unbiased_replace(seed, paradigm):
    """Unbiased covariance (Shumailov Thm 3.1): E[mean_sq_error_t] = (t + 1) tr S0 / n and
    E[cov_trace_ratio_t] = 1 (the covariance is a martingale; it collapses only a.s.)."""
    df = _gauss_run("unbiased", 1.0, seed)
    t = np.arange(G_ITERS)
    _assert_matches(_table(df, paradigm, "mean_sq_error"), (t + 1) * G_D / G_N,
                    f"gaussian unbiased {paradigm} mean error")
    _assert_matches(_table(df, paradigm, "cov_trace_ratio"), np.ones(G_ITERS),
                    f"gaussian unbiased {paradigm} trace ratio")


@pytest.mark.parametrize("seed", ROOT_SEEDS)
def test_gaussian_power(seed):
    """Off-by-one exponents and the wrong estimator are rejected.

    An off-by-one changes the expectation by a fixed fraction while the spread of the chains
    grows with t, so it is checked at the early iterations, where it is ~10-70 SE away."""
    t = np.arange(G_ITERS)
    mle = _table(_gauss_run("mle", 1.0, seed), "replace", "cov_trace_ratio")
    _assert_rejected(mle, (1 - 1 / G_N) ** (t + 2), "gaussian mle, t+2", where=slice(0, 3))
    _assert_rejected(mle, (1 - 1 / G_N) ** t, "gaussian mle, t", where=slice(0, 3))
    unb = _table(_gauss_run("unbiased", 1.0, seed), "replace", "mean_sq_error")
    _assert_rejected(unb, (t + 2) * G_D / G_N, "gaussian unbiased mean, t+2", where=slice(0, 4))
    _assert_rejected(unb, t * G_D / G_N, "gaussian unbiased mean, t", where=slice(0, 4))
    unb_ratio = _table(_gauss_run("unbiased", 1.0, seed), "replace", "cov_trace_ratio")
    _assert_rejected(unb_ratio, (1 - 1 / G_N) ** (t + 1), "unbiased is not mle")


def _mix_fresh_theory(estimator: str, n: int, real_fraction: float, s0: float, iters: int):
    """Expected tr Sigma_t and ||mu_t - mu0||^2 under mix with fresh real data.

    Iteration t >= 1 fits k = round(lambda n) fresh draws from the truth N(mu0, S0) plus
    s = n - k samples of model t-1.  With M = E||mu - mu0||^2 and S = E tr Sigma:
      M_t = k s0 / n^2 + (s/n)^2 M_{t-1} + s S_{t-1} / n^2
      E tr scatter_t = (k-1) s0 + (s-1) S_{t-1} + (k s / n) (s0/k + S_{t-1}/s + M_{t-1})
      S_t = E tr scatter_t / D,  D = n (mle) or n - 1 (unbiased).
    """
    k = int(round(real_fraction * n))
    s = n - k
    D = n if estimator == "mle" else n - 1
    M, S = [s0 / n], [(n - 1) * s0 / D]
    for _ in range(1, iters):
        m_prev, s_prev = M[-1], S[-1]
        M.append(k * s0 / n**2 + (s / n) ** 2 * m_prev + s * s_prev / n**2)
        scatter = (k - 1) * s0 + (s - 1) * s_prev + (k * s / n) * (s0 / k + s_prev / s + m_prev)
        S.append(scatter / D)
    return np.array(M), np.array(S)


@pytest.mark.parametrize("seed", ROOT_SEEDS)
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_gaussian_mix_fresh(seed, estimator):
    """Mix with fresh real data (Alemohammad et al. 2023): exact moment recurrence."""
    n, lam, variance = 12, 0.5, 1.0
    paradigm = (("name", "mix"), ("real_fraction", lam), ("fresh_real", True))
    df = _gauss_run(estimator, variance, seed, paradigms=(paradigm,), n=n)
    M, S = _mix_fresh_theory(estimator, n, lam, G_D * variance, G_ITERS)
    label = f"mix-{lam:g}-fresh"
    _assert_matches(_table(df, label, "mean_sq_error"), M, f"mix fresh mean error {estimator}")
    _assert_matches(_table(df, label, "cov_trace_ratio"), S / (G_D * variance),
                    f"mix fresh trace ratio {estimator}")
    # the fresh real data stop the collapse: the trace ratio stays away from the replace decay
    if estimator == "mle":
        replace = (1 - 1 / n) ** (np.arange(G_ITERS) + 1)
        _assert_rejected(_table(df, label, "cov_trace_ratio"), replace, "mix fresh vs replace",
                         where=slice(3, None))


# -- discrete: Wright-Fisher (Shumailov et al. 2024; Schaeffer et al. 2025) --------------------

P0 = (0.4, 0.3, 0.15, 0.1, 0.05)
D_N, D_ITERS = 20, 8


def _discrete_run(seed: int):
    params = (("probabilities", P0), ("n_samples", D_N))
    return _run("discrete", params, ("replace", MIX0), D_ITERS, seed)


def _gini(fits: np.ndarray) -> np.ndarray:
    g0 = 1 - np.sum(np.square(P0))
    return g0 * (1 - 1 / D_N) ** fits


@pytest.mark.parametrize("seed", ROOT_SEEDS)
@pytest.mark.parametrize("paradigm", REPLACE_LIKE)
def test_discrete_replace_gini_simpson(seed, paradigm):
    """E[gini_simpson_t] = G0 (1 - 1/n)^(t+1), G0 = 1 - sum p0^2 (each fit multiplies by 1 - 1/n)."""
    values = _table(_discrete_run(seed), paradigm, "gini_simpson")
    _assert_matches(values, _gini(np.arange(D_ITERS) + 1), f"discrete {paradigm} gini-simpson")


@pytest.mark.parametrize("seed", ROOT_SEEDS)
def test_discrete_power(seed):
    values = _table(_discrete_run(seed), "replace", "gini_simpson")
    t = np.arange(D_ITERS)
    _assert_rejected(values, _gini(t + 2), "discrete gini, t+2", where=slice(0, 5))
    _assert_rejected(values, _gini(t), "discrete gini, t", where=slice(0, 5))


# -- exact limits of mix ----------------------------------------------------------------------

@pytest.mark.parametrize("task, params", [
    ("gaussian", (("n_features", 2), ("n_samples", 15), ("n_test", 5))),
    ("linear_regression", (("n_features", 3), ("n_samples", 15), ("n_test", 5))),
    ("discrete", (("n_outcomes", 4), ("n_samples", 15))),
])
def test_mix_limits_are_exact(task, params):
    """mix with lambda = 1 (same real rows) refits the real data every iteration, so every
    iteration repeats iteration 0 (= replace's iteration 0) exactly.  mix with lambda = 0 trains
    on synthetic data only, like replace: same iteration 0 and the same provenance counts (its
    values match replace only in distribution -- see the theory tests above)."""
    mix1 = (("name", "mix"), ("real_fraction", 1.0))
    df = _run(task, params, ("replace", MIX0, mix1), 5, 3, n_seeds=50)
    for metric in df.metric.unique():
        rep = _table(df, "replace", metric)
        fixed = _table(df, "mix-1", metric)
        np.testing.assert_array_equal(fixed, np.repeat(fixed[:, :1], fixed.shape[1], 1),
                                      err_msg=metric)
        np.testing.assert_array_equal(fixed[:, 0], rep[:, 0], err_msg=metric)
        mix0 = _table(df, "mix-0", metric)
        np.testing.assert_array_equal(mix0[:, 0], rep[:, 0], err_msg=metric)
        if metric in ("n_train", "n_real", "n_synthetic", "synthetic_to_real_ratio"):
            np.testing.assert_array_equal(mix0, rep, err_msg=metric)
