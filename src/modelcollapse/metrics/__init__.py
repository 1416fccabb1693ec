"""Metric metadata and the pure metric functions shared by tasks.

Every metric a task records is described here once: whether higher is better, its units and what
it measures.  Summaries and plots read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MetricInfo", "METRICS", "info", "is_log_loss", "entropy", "gini_simpson", "cov_trace_ratio",
           "mean_nll"]


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool | None
    units: str
    description: str


METRICS: dict[str, MetricInfo] = {
    "population_risk": MetricInfo(False, "squared label units",
                                  "E_x[(x^T(w_hat - w*))^2], exact (known truth only)"),
    "test_loss": MetricInfo(False, "squared label units", "mean squared error on held-out real data"),
    "residual_variance": MetricInfo(None, "squared label units", "fitted label-noise variance"),
    "mean_sq_error": MetricInfo(False, "squared data units", "||mu_hat - mu_0||^2"),
    "cov_trace_ratio": MetricInfo(None, "ratio", "tr(Sigma_model) / tr(Sigma_0): variance kept"),
    "w2_squared": MetricInfo(False, "squared data units",
                             "squared Bures-Wasserstein distance to the reference Gaussian"),
    "test_nll": MetricInfo(False, "nats per sample", "negative log-likelihood of held-out real data"),
    "entropy": MetricInfo(None, "nats", "Shannon entropy of the fitted distribution"),
    "support_size": MetricInfo(None, "outcomes", "outcomes with non-zero probability"),
    "gini_simpson": MetricInfo(None, "probability", "1 - sum p^2"),
    "tv_distance": MetricInfo(False, "probability", "total-variation distance to the truth"),
    "tail_loss": MetricInfo(False, "squared label units",
                            "MSE on the 10% highest-leverage held-out real rows (Def. 7)"),
    "tail_risk": MetricInfo(False, "squared label units",
                            "excess risk on the 10% highest-leverage x (known truth, Def. 7)"),
    "predictive_variance": MetricInfo(None, "squared label units",
                                      "variance of the model's labels: noise + Var_x(x^T w_hat)"),
    "tail_nll": MetricInfo(False, "nats per sample",
                           "NLL of the 10% held-out real points of lowest reference density"),
    "sq_error": MetricInfo(False, "probability^2", "||p_hat - p_0||^2"),
    "mode_coverage": MetricInfo(True, "fraction", "real modes (outcomes, classes, components) "
                                "still produced"),
    "precision": MetricInfo(True, "fraction", "k-NN precision: synthetic samples on the real "
                            "manifold (1 - hallucinated share)"),
    "recall": MetricInfo(True, "fraction", "k-NN recall: held-out real points the model covers"),
    "tail_recall": MetricInfo(True, "fraction", "k-NN recall of the 10% held-out real points "
                              "farthest from their mean (Mahalanobis)"),
    "hallucinated_mass": MetricInfo(False, "probability", "mass outside the real support"),
    "tail_mass_recall": MetricInfo(True, "ratio",
                                   "mass on rarer-than-median real outcomes / its true mass"),
    "tail_support_recall": MetricInfo(True, "fraction",
                                      "rarer-than-median real outcomes still produced"),
    "pixel_variance_ratio": MetricInfo(None, "ratio", "total pixel variance of samples / of "
                                       "held-out images"),
    "class_coverage": MetricInfo(True, "fraction", "classes receiving >= 10% of their expected "
                                 "share of samples (a real-data classifier)"),
    "test_ce": MetricInfo(False, "nats per token", "cross-entropy of held-out real text"),
    "tail_ce": MetricInfo(False, "nats per token", "cross-entropy of the 10% held-out tokens "
                          "rarest in the real training windows (Def. 7)"),
    "distinct_1": MetricInfo(None, "fraction", "distinct unigrams / unigrams of a model sample"),
    "distinct_2": MetricInfo(None, "fraction", "distinct bigrams / bigrams of a model sample"),
    "unigram_entropy": MetricInfo(None, "nats", "entropy of a model sample's token frequencies"),
    "unigram_entropy_ratio": MetricInfo(None, "ratio", "sample unigram entropy / that of as "
                                        "many real tokens"),
    "rare_token_recall": MetricInfo(True, "fraction", "rarest-decile real token types present "
                                    "in a model sample"),
    "novel_ngram_share": MetricInfo(False, "fraction", "sample 3-grams absent from the real "
                                    "training text (Def. 8)"),
    "train_steps": MetricInfo(None, "optimizer steps", "optimizer steps of the fit "
                              "(train_budget: steps fixes it; epochs lets n_train decide)"),
    "tail_cov_r": MetricInfo(True, "fraction", "coverage of each molecule's most isolated "
                             "reference conformers at tail_threshold (Def. 7)"),
    "n_train": MetricInfo(None, "samples", "training-set size"),
    "n_real": MetricInfo(None, "samples", "real samples in the training set"),
    "n_synthetic": MetricInfo(None, "samples", "synthetic samples in the training set"),
    "synthetic_to_real_ratio": MetricInfo(None, "ratio", "n_synthetic / n_real (inf if no real)"),
}

PROVENANCE = ("n_train", "n_real", "n_synthetic", "synthetic_to_real_ratio")


def info(name: str) -> MetricInfo:
    """Metadata of a metric; unknown (user) metrics get a neutral entry.  A real-data learning
    curve point ``reference_<metric>_n<N>`` (Def. 5) has the units of ``<metric>``."""
    if name not in METRICS and name.startswith("reference_") and "_n" in name:
        base = name[len("reference_"):].rsplit("_n", 1)[0]
        if base in METRICS:
            b = METRICS[base]
            return MetricInfo(b.higher_is_better, b.units, f"{base} of a real-data-only fit on "
                              f"{name.rsplit('_n', 1)[1]} real samples (Def. 5 learning curve)")
    return METRICS.get(name, MetricInfo(None, "", name))


def is_log_loss(name: str) -> bool:
    """Whether a metric is a log-loss (units in nats): only its differences are unit-free (a
    log-density shifts by log|det A| under x -> A x + b), so it is contrasted by differences,
    never ratios."""
    return info(name).units.startswith("nats")


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of probability vectors, (..., K) -> (...), with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)


def gini_simpson(p: np.ndarray) -> np.ndarray:
    """Gini-Simpson diversity 1 - sum_i p_i^2, (..., K) -> (...)."""
    return 1.0 - (p**2).sum(-1)


def cov_trace_ratio(cov: np.ndarray, cov_ref: np.ndarray) -> np.ndarray:
    """tr(cov) / tr(cov_ref), (..., d, d) -> (...)."""
    return np.trace(cov, axis1=-2, axis2=-1) / np.trace(cov_ref, axis1=-2, axis2=-1)


def mean_nll(log_density: np.ndarray) -> np.ndarray:
    """Mean negative log-likelihood in nats per sample, (R, m) -> (R,); +inf if any point is -inf."""
    return -np.mean(log_density, axis=-1)
