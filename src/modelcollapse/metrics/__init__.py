"""Metrics: the pure functions that tasks record, by domain, each registered with its metadata
(``MetricInfo``: higher_is_better, units, description, aggregation) in the same file.

* ``base``: ``MetricInfo``, ``register_metric`` / ``@metric``, ``info``, ``is_log_loss``,
  ``METRICS`` (a read-only view of the registry);
* ``density``, ``regression``, ``discrete``, ``text``, ``image``, ``molecules``, ``knn``: the
  metric functions of each kind of data;
* ``provenance``: the metrics the engine records for every task.

Summaries, the profile and plots read the registry.  These modules import numpy only (never the
engine, tasks, config, report or profile).
"""

from __future__ import annotations

from . import density, discrete, image, knn, molecules, provenance, regression, text  # noqa: F401
from .base import AGGREGATIONS, METRICS, MetricInfo, info, is_log_loss, metric, register_metric
from .density import bures_wasserstein_squared, cov_trace_ratio, mean_nll, psd_sqrt
from .discrete import entropy, gini_simpson, sq_error, tv_distance
from .knn import knn_precision_recall
from .provenance import PROVENANCE

__all__ = ["AGGREGATIONS", "MetricInfo", "METRICS", "register_metric", "metric", "info",
           "is_log_loss", "PROVENANCE", "entropy", "gini_simpson", "tv_distance", "sq_error",
           "cov_trace_ratio", "mean_nll", "psd_sqrt", "bures_wasserstein_squared",
           "knn_precision_recall"]
