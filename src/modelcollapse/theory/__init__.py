"""Closed-form theory of model-data feedback loops.

Pure functions (numpy only; nothing else of modelcollapse -- ``tests/test_layers.py`` holds it
to numpy and scipy), vectorised over the 0-based model-fitting iteration ``t`` (iteration 0 is
fitted on real data only, so the literature's "n" / "G" / generation is t + 1):

* ``linear_regression`` -- OLS on a fixed design (Gerstgrasser et al. 2024): replace risk
  grows as t + 1, accumulate risk as sum 1/i^2 < pi^2/6;
* ``gaussian`` -- refitted Gaussians (Kazdan et al. 2024; Shumailov et al. 2024; Alemohammad et
  al. 2023): covariance trace, mean error, squared W2 (mean + covariance term), median variance;
* ``discrete`` -- the Wright-Fisher chain of a refitted categorical distribution: Gini-Simpson
  decay, support size, time to a single outcome, absorption and loss probabilities;
* ``location`` -- Dey & Donoho 2024: augment MSE ratio -> pi^2/6, discard ratio G;
* ``weighting`` -- He, Xu & Cheng 2025: golden-ratio weighting of fresh real data.

The checks of these formulas against the engine and against independent simulations live apart,
in ``modelcollapse.checks`` (``PREDICTIONS``, ``run_verify``; ``modelcollapse verify``).
"""

from . import discrete, gaussian, linear_regression, location, weighting
from .discrete import (absorption_probabilities, expected_collapse_iteration,
                       expected_fits_to_single_outcome, expected_fits_to_single_outcome_exact,
                       expected_support_size, gini_simpson_accumulate,
                       gini_simpson_accumulate_limit, gini_simpson_replace, loss_probability,
                       prob_not_single_outcome, prob_outcome_lost)
from .gaussian import (accumulate_cov_trace_ratio, accumulate_mean_sq_error,
                       accumulate_mean_sq_error_bound, cov_trace_second_moments,
                       jensen_cov_term_lower_bound, mix_fresh_cov_trace_ratio,
                       mix_fresh_mean_sq_error, replace_cov_trace_ratio,
                       replace_expected_sd_ratio, replace_mean_sq_error,
                       replace_median_variance_ratio, replace_w2_cov_term_1d,
                       replace_w2_squared_1d, sampling_bias_cov_trace_ratio,
                       shumailov_median_variance_ratio, w2_cov_term_bounds,
                       w2_cov_term_small_deviation, w2_mean_term)
from .linear_regression import (accumulate_risk, accumulate_risk_fixed_design,
                                accumulate_risk_limit, accumulate_risk_ratio,
                                expected_trace_inverse_gram, replace_risk,
                                replace_risk_fixed_design, replace_risk_ratio)
from .location import (augment_mse, augment_mse_ratio, augment_mse_ratio_limit,
                       augment_relative_efficiency, discard_mse, discard_mse_ratio,
                       median_mse_asymptotic, relative_efficiency_floor)
from .weighting import (golden_ratio_weight, optimal_real_weight, scaled_mse,
                        stationary_scaled_mse)

__all__ = [
    "discrete", "gaussian", "linear_regression", "location", "weighting",
    # linear regression
    "expected_trace_inverse_gram", "replace_risk", "accumulate_risk", "accumulate_risk_limit",
    "replace_risk_fixed_design", "accumulate_risk_fixed_design", "replace_risk_ratio",
    "accumulate_risk_ratio",
    # gaussian
    "replace_cov_trace_ratio", "replace_mean_sq_error", "accumulate_cov_trace_ratio",
    "accumulate_mean_sq_error", "accumulate_mean_sq_error_bound", "mix_fresh_cov_trace_ratio",
    "mix_fresh_mean_sq_error", "sampling_bias_cov_trace_ratio", "w2_mean_term",
    "replace_expected_sd_ratio", "replace_w2_cov_term_1d", "replace_w2_squared_1d",
    "cov_trace_second_moments", "w2_cov_term_bounds", "w2_cov_term_small_deviation",
    "jensen_cov_term_lower_bound",
    "replace_median_variance_ratio", "shumailov_median_variance_ratio",
    # discrete
    "gini_simpson_replace", "gini_simpson_accumulate", "gini_simpson_accumulate_limit",
    "prob_outcome_lost", "expected_support_size", "prob_not_single_outcome",
    "expected_fits_to_single_outcome", "expected_collapse_iteration",
    "expected_fits_to_single_outcome_exact", "absorption_probabilities", "loss_probability",
    # location
    "augment_mse_ratio", "augment_mse_ratio_limit", "discard_mse_ratio", "augment_mse",
    "discard_mse", "augment_relative_efficiency", "relative_efficiency_floor",
    "median_mse_asymptotic",
    # weighting
    "stationary_scaled_mse", "scaled_mse", "optimal_real_weight", "golden_ratio_weight",
]
