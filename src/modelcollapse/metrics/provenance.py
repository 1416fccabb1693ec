"""Metrics the engine records for every task: the training set's provenance (``engine.loop``)
and the optimiser steps of a fit (``tasks._budget``)."""

from __future__ import annotations

from .base import MetricInfo, register_metric

__all__ = ["PROVENANCE"]

#: provenance metrics the engine adds to every task's metrics
PROVENANCE = ("n_train", "n_real", "n_synthetic", "synthetic_to_real_ratio")

register_metric("n_train", MetricInfo(None, "samples", "training-set size", "count"))
register_metric("n_real", MetricInfo(None, "samples", "real samples in the training set", "count"))
register_metric("n_synthetic", MetricInfo(None, "samples", "synthetic samples in the training set",
                                          "count"))
register_metric("synthetic_to_real_ratio", MetricInfo(None, "ratio", "n_synthetic / n_real (inf "
                                                      "if no real)", "ratio"))
register_metric("train_steps", MetricInfo(None, "optimizer steps", "optimizer steps of the fit "
                                          "(train_budget: steps fixes it; epochs lets n_train "
                                          "decide)", "count"))
