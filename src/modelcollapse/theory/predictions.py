"""The registry of theory-vs-simulation checks: ``PREDICTIONS``.

Each ``Prediction`` names a closed-form value (computed here from the theory functions) and how
to measure it:

* **engine** checks run a small study through ``modelcollapse.engine.run_study`` (``study`` is a
  dict for ``modelcollapse.config.Study.model_validate``; the root ``seed`` is set by the caller)
  and reduce one metric of one paradigm at one iteration over the replicate chains
  (``statistic``, see ``modelcollapse.theory.verify.STATISTICS``);
* **independent simulation** checks call ``simulate(seed_sequence) -> (estimate, std_error)``, a
  self-contained numpy Monte Carlo (``np.random.Generator`` only) of the Dey & Donoho location
  model (including the sample median, which the engine has no counterpart for) and of He, Xu &
  Cheng's weighting -- the closed forms checked independently of the engine, whose own
  known-variance Gaussian and weighted ``mix`` are checked by engine entries as well.

Tolerance rule: a check passes when |simulated - predicted| <= z SE + rel_tol |predicted|
(+ ``extra``, a bound of the censoring bias where chains may not have finished; one-sided for
bounds).  z = 4.5 standard errors of the Monte Carlo estimate (a false alarm ~7e-6 per check for a
Gaussian estimate); ``rel_tol`` is non-zero only where the formula is an approximation and says by
how much it is known to be off at the size used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import discrete, gaussian, linear_regression, location, weighting

__all__ = ["Prediction", "PREDICTIONS", "Z"]

Z = 4.5  #: tolerance in Monte Carlo standard errors


@dataclass(frozen=True)
class Prediction:
    """One theory-vs-simulation check.

    Attributes
    ----------
    name : str
        Unique check name.
    source : str
        Citation (paper and equation / section) of the formula.
    formula : str
        The formula with the values used.
    predicted : float
        The theory value.
    study : dict, optional
        Engine check: input of ``Study.model_validate`` (without ``seed``).
    paradigm, metric : str, optional
        Paradigm label and metric read from the engine results.
    iteration : int, optional
        0-based iteration read (``None``: the statistic uses the whole chain).
    statistic : str
        ``"mean"``, ``"median"``, ``"fits_to_single_outcome"``, ``"absorbed_at:<i>"`` or
        ``"lost:<i>"`` (see ``verify.STATISTICS``).
    simulate : callable, optional
        Independent simulation: ``simulate(np.random.SeedSequence) -> (estimate, std_error)``.
    z : float
        Standard errors allowed.
    rel_tol : float
        Relative tolerance for approximate formulas (0 for exact ones).
    comparison : {"equal", "at_most", "at_least"}
        ``at_most``: the prediction is an upper bound of the simulated quantity (passes when
        simulated <= predicted + tolerance); ``at_least``: a lower bound.
    exact : bool
        Whether the formula is exact for the simulated setting (else an approximation or an
        asymptotic result, covered by ``rel_tol``).
    note : str
        Assumptions or caveats.
    """

    name: str
    source: str
    formula: str
    predicted: float
    study: dict[str, Any] | None = None
    paradigm: str | None = None
    metric: str | None = None
    iteration: int | None = None
    statistic: str = "mean"
    simulate: Callable[[np.random.SeedSequence], tuple[float, float]] | None = field(
        default=None, repr=False)
    z: float = Z
    rel_tol: float = 0.0
    comparison: Literal["equal", "at_most", "at_least"] = "equal"
    exact: bool = True
    note: str = ""

    @property
    def kind(self) -> str:
        """``"engine"`` or ``"independent simulation"``."""
        return "engine" if self.study is not None else "independent simulation"

    def tolerance(self, std_error: float, extra: float = 0.0) -> float:
        """z SE + rel_tol |predicted| + extra."""
        return self.z * std_error + self.rel_tol * abs(self.predicted) + extra

    def passes(self, simulated: float, tolerance: float) -> bool:
        diff = simulated - self.predicted
        if not np.isfinite(simulated):
            return False
        if self.comparison == "at_most":
            return bool(diff <= tolerance)
        if self.comparison == "at_least":
            return bool(diff >= -tolerance)
        return bool(abs(diff) <= tolerance)


# -- studies (fast sizes: each well under 2 s) -------------------------------------------------

LR = dict(d=5, T=30, sigma2=1.0, iters=5)
_LR_STUDY = dict(task="linear_regression",
                 task_params=dict(n_features=LR["d"], n_samples=LR["T"],
                                  noise_variance=LR["sigma2"], label_noise="true", n_test=4),
                 paradigms=["replace", "accumulate"], n_iterations=LR["iters"], n_seeds=2000)

G = dict(d=3, n=10, iters=6)


def _gauss_study(estimator: str, *, d: int = G["d"], n: int = G["n"], iters: int = G["iters"],
                 paradigms=("replace", "accumulate"), n_seeds: int = 3000,
                 sampling_scale: float = 1.0) -> dict:
    return dict(task="gaussian",
                task_params=dict(n_features=d, n_samples=n, n_test=4, variance=1.0,
                                 covariance_estimator=estimator, sampling_scale=sampling_scale),
                paradigms=list(paradigms), n_iterations=iters, n_seeds=n_seeds)


P_GINI = (0.4, 0.3, 0.15, 0.1, 0.05)
_GINI_STUDY = dict(task="discrete", task_params=dict(probabilities=list(P_GINI), n_samples=20),
                   paradigms=["replace", "accumulate"], n_iterations=8, n_seeds=2000)
P_ABS = (0.7, 0.2, 0.1)
_ABS_STUDY = dict(task="discrete", task_params=dict(probabilities=list(P_ABS), n_samples=10),
                  paradigms=["replace"], n_iterations=150, n_seeds=2000)
_TWO_STUDY = dict(task="discrete", task_params=dict(probabilities=[0.5, 0.5], n_samples=10),
                  paradigms=["replace"], n_iterations=150, n_seeds=2000)
_K10_STUDY = dict(task="discrete", task_params=dict(n_outcomes=10, n_samples=20),
                  paradigms=["replace"], n_iterations=250, n_seeds=1000)

_GERST = "Gerstgrasser et al. 2024, arXiv 2404.01413, Sec. 3 (literature.md 1a, 8.1-8.2)"
_KAZDAN = "Kazdan et al. 2024, arXiv 2410.16713, Sec. 2.1 (literature.md 2a, 8.6-8.7)"
_SHUM = "Shumailov et al. 2024, Nature 631:755, Thm 3.1 (literature.md 4, 8.9)"
_MAD = "Alemohammad et al. 2023, arXiv 2307.01850, Sec. 3.1 (literature.md 6, 8.10)"
_SCH = "Schaeffer et al. 2025, arXiv 2503.03150, Sec. 2.1 (W2 = mean term + covariance term)"
_WF = "Wright-Fisher; Shumailov et al. 2024 (discrete); literature.md 5"
_DD = "Dey & Donoho 2024, arXiv 2410.22812 (literature.md 3, 8.15)"
_HXC = "He, Xu & Cheng 2025, arXiv 2502.18049 (literature.md 7, 8.16)"


def _lr() -> list[Prediction]:
    t = LR["iters"] - 1
    kw = dict(n_features=LR["d"], n_samples=LR["T"], noise_variance=LR["sigma2"])
    return [
        Prediction("lr_replace_risk", _GERST,
                   f"sigma^2 d/(T-d-1) (t+1), d={LR['d']}, T={LR['T']}, t={t}",
                   linear_regression.replace_risk(t, **kw), _LR_STUDY, "replace",
                   "population_risk", t),
        Prediction("lr_accumulate_risk", _GERST,
                   f"sigma^2 d/(T-d-1) sum_{{i<=t+1}} 1/i^2, t={t}",
                   linear_regression.accumulate_risk(t, **kw), _LR_STUDY, "accumulate",
                   "population_risk", t),
        Prediction("lr_accumulate_below_pi2_6", _GERST,
                   "accumulate risk <= (pi^2/6) sigma^2 d/(T-d-1)",
                   linear_regression.accumulate_risk_limit(**kw), _LR_STUDY, "accumulate",
                   "population_risk", t, comparison="at_most"),
    ]


def _gauss() -> list[Prediction]:
    d, n, t = G["d"], G["n"], G["iters"] - 1
    out = []
    for est in ("mle", "unbiased"):
        study = _gauss_study(est)
        kw = dict(n_samples=n, estimator=est)
        source = _KAZDAN if est == "mle" else _SHUM
        out += [
            Prediction(f"gaussian_{est}_replace_cov_trace_ratio", source,
                       ("(1-1/n)^(t+1)" if est == "mle" else "1 (martingale)") + f", n={n}, t={t}",
                       gaussian.replace_cov_trace_ratio(t, **kw), study, "replace",
                       "cov_trace_ratio", t),
            Prediction(f"gaussian_{est}_replace_mean_sq_error", source,
                       ("trS0 (1-(1-1/n)^(t+1))" if est == "mle" else "(t+1) trS0/n")
                       + f", d={d}, n={n}, t={t}",
                       gaussian.replace_mean_sq_error(t, trace_cov=d, **kw), study, "replace",
                       "mean_sq_error", t),
            Prediction(f"gaussian_{est}_accumulate_cov_trace_ratio", _KAZDAN,
                       "exact recursion S_{t+1} = S_t + V_t[(m-1) + N_t/N_{t+1}]" + f", t={t}",
                       gaussian.accumulate_cov_trace_ratio(t, **kw), study, "accumulate",
                       "cov_trace_ratio", t),
            Prediction(f"gaussian_{est}_accumulate_mean_sq_error", _KAZDAN,
                       "trS0 [1/n + sum_s m V_s / N_{s+1}^2]" + f", t={t}",
                       gaussian.accumulate_mean_sq_error(t, trace_cov=d, **kw), study,
                       "accumulate", "mean_sq_error", t),
        ]
    study = _gauss_study("mle")
    bounds = dict(n_samples=n, n_features=d, variance=1.0, estimator="mle")
    for par in ("replace", "accumulate"):
        mean_term = gaussian.w2_mean_term(t, paradigm=par, n_samples=n, trace_cov=d)
        lower, upper = gaussian.w2_cov_term_bounds(t, paradigm=par, **bounds)
        how = ("sum of 1-d marginal W2" if par == "replace" else "Jensen (concave fidelity)")
        out += [
            Prediction(f"gaussian_mle_{par}_w2_lower_bound", _SCH,
                       f"E W2^2 >= mean term + {how} bound, d={d}, t={t}", mean_term + lower,
                       study, par, "w2_squared", t, comparison="at_least"),
            Prediction(f"gaussian_mle_{par}_w2_upper_bound", _SCH,
                       f"E W2^2 <= mean term + Hoelder bound (exact E tr S^2), d={d}, t={t}",
                       mean_term + upper, study, par, "w2_squared", t, comparison="at_most"),
        ]
    # the leading-order (small-deviation) covariance term, accurate when Sigma_hat ~ Sigma_0
    n_big = 100
    big = _gauss_study("mle", n=n_big, paradigms=("accumulate",))
    out.append(Prediction(
        "gaussian_mle_accumulate_w2_small_deviation", _SCH,
        f"E W2^2 ~ mean term + E||S - S0||_F^2 / 4, d={d}, n={n_big}, t={t}",
        gaussian.w2_mean_term(t, paradigm="accumulate", n_samples=n_big, trace_cov=d)
        + gaussian.w2_cov_term_small_deviation(t, paradigm="accumulate", n_samples=n_big,
                                               n_features=d, variance=1.0),
        big, "accumulate", "w2_squared", t, rel_tol=0.03, exact=False,
        note="second order in Sigma_hat - Sigma_0: the covariance term is ~2.5% low at n=100 "
        "(~13% at n=10), i.e. ~1.3% of E W2^2 here"))
    # 1-d: the covariance term is exact (chi-distribution mean)
    for est in ("mle", "unbiased"):
        study1 = _gauss_study(est, d=1, paradigms=("replace",))
        out.append(Prediction(
            f"gaussian_{est}_replace_w2_1d", _SCH + "; " + _SHUM,
            f"E W2^2 = M_t + s0^2 (1 + v_t - 2 kappa_t), d=1, n={n}, t={t}",
            gaussian.replace_w2_squared_1d(t, n_samples=n, variance=1.0, estimator=est),
            study1, "replace", "w2_squared", t))
    # sampling bias lambda (MAD): E Sigma_t = lambda^t Sigma_0 with unbiased refits
    lam, tl = 0.5, 3
    mad = _gauss_study("unbiased", paradigms=("replace",), iters=tl + 1, sampling_scale=lam)
    out += [
        Prediction("gaussian_sampling_bias_cov_trace_ratio", _MAD,
                   f"lambda^t, lambda={lam}, t={tl}",
                   gaussian.sampling_bias_cov_trace_ratio(tl, sampling_scale=lam, n_samples=n),
                   mad, "replace", "cov_trace_ratio", tl),
        Prediction("gaussian_sampling_bias_mean_sq_error", _MAD,
                   f"trS0 [1/n + lambda (1 - lambda^t) / (n (1 - lambda))], lambda={lam}, t={tl}",
                   gaussian.replace_mean_sq_error(tl, n_samples=n, trace_cov=d,
                                                  estimator="unbiased", sampling_scale=lam),
                   mad, "replace", "mean_sq_error", tl),
    ]
    # the median variance collapses although the mean variance is conserved
    tm = 19
    med = _gauss_study("unbiased", d=1, paradigms=("replace",), iters=tm + 1, n_seeds=4000)
    out += [
        Prediction("gaussian_unbiased_median_variance_cornish_fisher", _SHUM,
                   f"exp(K1 - K3/(6 K2)) of the log chi-square sum, n={n}, t={tm}",
                   gaussian.replace_median_variance_ratio(tm, n_samples=n), med, "replace",
                   "cov_trace_ratio", tm, statistic="median", rel_tol=0.01, exact=False,
                   note="Cornish-Fisher approximation of the median: within 0.5% at n=10, t<=29"),
        Prediction("gaussian_unbiased_median_variance_shumailov", _SHUM,
                   f"exp(-(t+1)/(n-1)), n={n}, t={tm}",
                   gaussian.shumailov_median_variance_ratio(tm, n_samples=n), med, "replace",
                   "cov_trace_ratio", tm, statistic="median", rel_tol=0.06, exact=False,
                   note="first-order approximation: 4.4% high at n=10, t=19 (8.6% at t=29)"),
    ]
    # mix with fresh real data (Alemohammad et al.'s fresh-data loop), exact recursion
    nf, rho = 12, 0.5
    fresh = dict(_gauss_study("mle", n=nf, paradigms=()),
                 paradigms=[dict(name="mix", real_fraction=rho, fresh_real=True)])
    label = f"mix-{rho:g}-fresh"
    out += [
        Prediction("gaussian_mle_mix_fresh_mean_sq_error", _MAD,
                   f"M_t = (k + s^2 M + s V)/n^2, n={nf}, rho={rho}, t={t}",
                   gaussian.mix_fresh_mean_sq_error(t, n_samples=nf, real_fraction=rho,
                                                    trace_cov=d),
                   fresh, label, "mean_sq_error", t),
        Prediction("gaussian_mle_mix_fresh_cov_trace_ratio", _MAD,
                   f"V_t recursion, n={nf}, rho={rho}, t={t}",
                   gaussian.mix_fresh_cov_trace_ratio(t, n_samples=nf, real_fraction=rho),
                   fresh, label, "cov_trace_ratio", t),
    ]
    return out


def _discrete() -> list[Prediction]:
    t = _GINI_STUDY["n_iterations"] - 1
    kw = dict(probabilities=P_GINI, n_samples=20)
    out = [
        Prediction("discrete_replace_gini_simpson", _WF, f"G0 (1-1/n)^(t+1), n=20, t={t}",
                   discrete.gini_simpson_replace(t, **kw), _GINI_STUDY, "replace",
                   "gini_simpson", t),
        Prediction("discrete_accumulate_gini_simpson", "derived here (pooled-count recursion)",
                   f"G0 (1-1/n) prod_j (1 - m/N_j^2), t={t}",
                   discrete.gini_simpson_accumulate(t, **kw), _GINI_STUDY, "accumulate",
                   "gini_simpson", t),
        Prediction("discrete_replace_support_size", _WF + " (exact binomial marginal chains)",
                   f"sum_i P(outcome i survives t+1 generations), t={t}",
                   discrete.expected_support_size(t, **kw), _GINI_STUDY, "replace",
                   "support_size", t),
    ]
    L = _TWO_STUDY["n_iterations"]
    out.append(Prediction(
        "discrete_two_outcome_fits_to_collapse", _WF + "; Ewens 2004 Sec. 2.4 (exact chain)",
        f"E min(T_WF, {L + 1}) by the exact (D+1)-state chain, p0=(1/2,1/2), D=10",
        discrete.expected_fits_to_single_outcome_exact([0.5, 0.5], n_samples=10, max_fits=L + 1),
        _TWO_STUDY, "replace", "support_size", None, statistic="fits_to_single_outcome"))
    D, K = 20, 10
    out.append(Prediction(
        "discrete_uniform10_fits_to_collapse_diffusion",
        "Littler 1975 / Kimura diffusion; Schaeffer et al. 2025, Sec. 4 (literature.md 5, 8.11)",
        f"-2D sum (1-x_i) ln(1-x_i) = 1.8965 D, K={K}, D={D}",
        discrete.expected_fits_to_single_outcome(np.full(K, 1 / K), n_samples=D), _K10_STUDY,
        "replace", "support_size", None, statistic="fits_to_single_outcome", rel_tol=0.08,
        exact=False, note="diffusion approximation, O(1/D) high: +8% at D=10, +5% at D=20 "
        "(chains still alive after the last iteration count as n_iterations + 1 fits)"))
    absorb = discrete.absorption_probabilities(P_ABS)
    out += [
        Prediction(f"discrete_absorbed_at_{i}", _WF + " (martingale: absorption = p0)",
                   f"P(absorbed at outcome {i}) = p0[{i}] = {P_ABS[i]}", float(absorb[i]),
                   _ABS_STUDY, "replace", "tv_distance", None, statistic=f"absorbed_at:{i}",
                   note="outcome read from tv_distance = 1 - p0[i] of a single-outcome model")
        for i in (0, 2)
    ]
    out.append(Prediction(
        "discrete_lost_outcome_1", _SHUM.split(",")[0] + " (discrete: 'equal to 1 - q')",
        f"P(outcome of q={P_ABS[1]} eventually lost) = 1 - q",
        discrete.loss_probability(P_ABS[1]), _ABS_STUDY, "replace", "tv_distance", None,
        statistic="lost:1"))
    return out


def _location_weighting_engine() -> list[Prediction]:
    """The known-variance Gaussian mean on the engine: ``gaussian`` with ``known_covariance``."""
    n, tl = 20, 4
    loc = dict(task="gaussian", task_params=dict(n_features=1, n_samples=n, n_test=4,
                                                 known_covariance=True),
               paradigms=["replace", "accumulate"], n_iterations=tl + 1, n_seeds=4000)
    out = [
        Prediction("location_augment_mean_mse_engine", _DD,
                   f"(sigma^2/n) sum_{{g<=t+1}} 1/g^2, n={n}, t={tl} (accumulate, known variance)",
                   float(location.augment_mse(tl, n_samples=n)), loc, "accumulate",
                   "mean_sq_error", tl),
        Prediction("location_discard_mean_mse_engine", _DD,
                   f"(t+1) sigma^2/n, n={n}, t={tl} (replace, known variance)",
                   float(location.discard_mse(tl, n_samples=n)), loc, "replace",
                   "mean_sq_error", tl),
    ]
    k, tw = 20, 11  # k fresh real + k synthetic rows, training size N = 2k
    for w, label in ((weighting.golden_ratio_weight(), "golden"), (0.5, "half")):
        spec = dict(name="mix", real_fraction=0.5, fresh_real=True, real_weight=w)
        study = dict(task="gaussian", task_params=dict(n_features=1, n_samples=2 * k, n_test=4,
                                                       known_covariance=True),
                     paradigms=[spec], n_iterations=tw + 1, n_seeds=4000)
        x = weighting.scaled_mse(tw, weight=w, initial_scaled_mse=0.5)
        out.append(Prediction(
            f"weighting_{label}_mse_engine", _HXC,
            f"sigma^2/n x_t, x_t -> [w^2 + (1-w)^2] / (1 - (1-w)^2), w={w:.6f}, n=m={k}, t={tw}",
            float(x) / k, study, f"mix-0.5-fresh-w{w:g}", "mean_sq_error", tw,
            note="mix with fresh real data and real_weight w on the known-variance Gaussian"))
    return out


def _independent() -> list[Prediction]:
    out = []
    tl = 4
    for workflow, estimator, pred, rel, n in (
            ("augment", "mean", location.augment_mse_ratio(tl), 0.0, 100),
            ("discard", "mean", location.discard_mse_ratio(tl), 0.0, 100),
            ("augment", "median", location.augment_mse_ratio(tl), 0.06, 200)):
        def sim(ss, workflow=workflow, estimator=estimator, n=n):
            return location.simulate_mse_ratio(tl, workflow=workflow, estimator=estimator,
                                               n_samples=n, n_chains=4000, seed=ss)
        formula = "sum_{g<=G} 1/g^2" if workflow == "augment" else "G"
        out.append(Prediction(
            f"location_{workflow}_{estimator}_mse_ratio", _DD,
            f"MSE_G/MSE_1 = {formula}, G={tl + 1}, n={n}", float(pred), simulate=sim,
            rel_tol=rel, exact=rel == 0.0,
            note="" if rel == 0.0 else "asymptotic (n -> inf) for the median: Monte Carlo "
            "is ~3% lower at n = 100-400"))
    tw = 50
    for w, ratio, label in ((weighting.golden_ratio_weight(), 1.0, "golden"),
                            (0.5, 1.0, "half"), (1.0, 1.0, "real_only"),
                            (weighting.optimal_real_weight(synthetic_to_real=2.0), 2.0,
                             "optimal_m2n")):
        def sim(ss, w=w, ratio=ratio):
            return weighting.simulate_scaled_mse(tw, weight=w, synthetic_to_real=ratio,
                                                 n_real=50, n_chains=20000, seed=ss)
        out.append(Prediction(
            f"weighting_{label}_stationary_mse", _HXC,
            f"n MSE/sigma^2 = [w^2 + (1-w)^2/(m/n)] / (1 - (1-w)^2), w={w:.6f}, m/n={ratio:g}",
            float(weighting.stationary_scaled_mse(w, synthetic_to_real=ratio)), simulate=sim,
            note=f"simulated at t={tw}; the transient (1-w)^(2t) is negligible"))
    return out


PREDICTIONS: list[Prediction] = (_lr() + _gauss() + _discrete() + _location_weighting_engine()
                                 + _independent())
