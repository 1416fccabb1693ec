"""Tabular density estimation with any vector model family: the ``density`` recipe.

A dataset (the standard-normal truth N(0, I_d), a scikit-learn toy or real dataset, or the
user's own ``.csv`` / ``.parquet`` / ``.npy`` file) and any family that models rows of numbers
(``family: gaussian | kde | gmm``, another registered family, or a ``"module:Class"`` plug-in;
``families.plugin``).  Only the protocol is used -- ``fit``, ``sample``, ``score_samples`` --
so every metric is computed the same way for every family:

* ``test_nll`` (nats per sample): mean negative log-likelihood of the held-out real points,
  -mean ``score_samples``; the population risk's test-set estimate (the risk metric);
* ``tail_nll``: the same on the 10% held-out points farthest (Mahalanobis) from the held-out
  mean (Def. 7);
* ``cov_trace_ratio``: tr(covariance of ``N_EVAL`` model samples) / tr(covariance of the
  held-out set) (Def. 4, Shumailov et al. 2024's variance collapse);
* k-NN ``precision`` / ``recall`` / ``tail_recall`` (and ``mode_coverage`` with class labels)
  of those samples against the held-out points (Kynkäänniemi et al. 2019, k = 5; Defs. 6-8).

Real and file data are standardised with training-split statistics (``data.sklearn_datasets``).
"""

from __future__ import annotations

import numpy as np

from ..families.plugin import FamilySpec
from ..metrics import cov_trace_ratio, mean_nll
from ..rng import Streams
from ._vector import (CURVE_SMALLEST, VECTOR_PROFILE, VectorParams, eval_sample, sample_metrics,
                      vector_curve, vector_data)
from .base import Task, reference_moments, tail_rows, take_rows

CURVE_REPEATS = 1  #: subsamples per size and replicate of the learning curve (a fit each)


class DensityTask:
    """The ``density`` recipe (module docstring); default family ``gaussian``."""

    family = "gaussian"
    #: the data kinds of family this recipe can feed (``families.plugin``)
    family_kinds = ("vector",)

    class Params(VectorParams):
        synthetic_n_features = 2

    @classmethod
    def build(cls, p: Params, streams: Streams, family: FamilySpec) -> Task:
        real, test, sample_real, labels = vector_data(
            p, streams, lambda g, n: (g.standard_normal((n, p.n_features)), None))
        R, d = real.shape[0], real.shape[-1]
        mean0, cov0 = reference_moments(test)
        tail = tail_rows(test, mean0, cov0)

        def test_nll(model) -> np.ndarray:
            with np.errstate(all="ignore"):
                return mean_nll(np.asarray(model.score_samples(test), dtype=float))

        def evaluate(model, iteration: int = 0) -> dict[str, np.ndarray]:
            synthetic = np.asarray(eval_sample(model, test, streams, iteration), dtype=float)
            with np.errstate(all="ignore"):
                scores = np.asarray(model.score_samples(test), dtype=float)
                cov = reference_moments(synthetic)[1]
                out = sample_metrics(model, test, labels, streams, iteration, p.sample_metrics,
                                     synthetic=synthetic)
            return {**out, "test_nll": mean_nll(scores),
                    "tail_nll": mean_nll(take_rows(scores, tail)),
                    "cov_trace_ratio": cov_trace_ratio(cov, cov0)}

        reference = vector_curve("test_nll", test_nll, real.shape[1], CURVE_SMALLEST * (d + 1),
                                 CURVE_REPEATS)
        profile = dict(VECTOR_PROFILE, scaling={"metric": "test_nll"})
        if reference is not None:
            profile["scaling"]["reference"] = reference.prefix
        return Task(
            name=f"{family.name}-{p.dataset_name()}", family=family.name,
            make_model=lambda: family.batch(R), real=real, test=test, evaluate=evaluate,
            risk_metric="test_nll", sample_real=sample_real,
            truth={"mean": mean0, "covariance": cov0}, profile=profile, reference=reference,
            provenance={**p.provenance(), "family": family.provenance()},
        )
