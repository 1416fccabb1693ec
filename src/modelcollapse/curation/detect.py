"""The ``detect`` curation policy: detect synthetic rows and drop, down-weight or label them."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .base import Batch, Context, Policy, PolicyParams, auc, flag_metrics


class DetectParams(PolicyParams):
    """Settings of ``detect``; default label ``detect-r<recall>`` or ``detect-learned``, then
    ``-fpr<fpr>`` if fpr > 0 and ``-<action>`` unless the action is drop."""

    recall: float = Field(0.9, ge=0, le=1, description="oracle: P(flag | synthetic)")
    fpr: float = Field(0.0, ge=0, le=1, description="oracle: P(flag | real)")
    action: Literal["drop", "downweight", "label"] = "drop"
    factor: float = Field(0.1, ge=0, le=1, description="downweight: weight multiplier")
    detector: Literal["oracle", "learned"] = "oracle"
    threshold: float = Field(0.5, gt=0, lt=1, description="learned: P(synthetic) to flag")
    n_train: int | None = Field(None, ge=2, description="learned: fresh model samples to "
                                "train on (default: the real pool size)")

    @property
    def uses_sample_weight(self) -> bool:
        return self.action == "downweight"

    def label(self) -> str:
        return (f"{self.policy}-{'learned' if self.detector == 'learned' else f'r{self.recall:g}'}"
                + (f"-fpr{self.fpr:g}" if self.fpr else "")
                + ("" if self.action == "drop" else f"-{self.action}"))


class Detect(Policy):
    """A detector of synthetic data; flagged rows are dropped, down-weighted or only labelled.

    ``detector: oracle`` (default) flags each synthetic row with probability ``recall`` and each
    real row with probability ``fpr`` (a detector of stated quality; provenance drives it).
    ``detector: learned``: per replicate, a scikit-learn logistic regression -- on standardised
    quadratic features of float rows (so it sees covariance as well as mean differences), on
    one-hot features of integer rows (outcomes, tokens) -- is trained each iteration on the
    real pool vs ``n_train`` fresh samples of the current model (a lab can always sample its
    own model), and flags rows with P(synthetic) > ``threshold``; ``detect_auc`` is its ROC AUC
    on the incoming rows (or, for a synthetic-only batch, incoming vs the held-out real test
    set), and its ``detect_fpr`` counts the held-out real test rows it flags as well.

    ``action``: ``drop`` (weight 0), ``downweight`` (weight x ``factor``) or ``label`` (weights
    unchanged; under scraping the flag only marks the row as believed synthetic).
    """

    Params = DetectParams
    stage = "incoming"

    def __init__(self, recall: float = 0.9, fpr: float = 0.0, action: str = "drop",
                 factor: float = 0.1, detector: str = "oracle", threshold: float = 0.5,
                 n_train: int | None = None) -> None:
        self.recall, self.fpr, self.action, self.factor = recall, fpr, action, factor
        self.detector, self.threshold, self.n_train = detector, threshold, n_train

    def _classifier(self, integer: bool):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

        head = LogisticRegression(max_iter=500, class_weight="balanced")
        if integer:  # outcomes / tokens: one-hot features
            return make_pipeline(OneHotEncoder(handle_unknown="ignore"), head)
        return make_pipeline(StandardScaler(), PolynomialFeatures(2), head)

    def _learned(self, batch: Batch, ctx: Context):
        real, test = ctx.task.real, ctx.task.test
        R = len(real)
        integer = np.issubdtype(real.dtype, np.integer)

        def rows(X):  # (R, k, ...) -> (R, k, features)
            X = np.asarray(X).reshape(R, X.shape[1], -1)
            return X if integer else np.nan_to_num(X.astype(float))

        n_train = self.n_train or real.shape[1]
        fake = rows(ctx.model.sample(n_train, rngs=ctx.rngs()))
        real, test, incoming = rows(real), rows(test), rows(batch.X)
        flags, aucs = np.zeros(batch.weight.shape, bool), np.empty(R)
        test_flags = np.zeros(test.shape[:2], bool)
        for r in range(R):
            clf = self._classifier(integer)
            clf.fit(np.concatenate([real[r], fake[r]]),
                    np.r_[np.zeros(len(real[r])), np.ones(len(fake[r]))])
            p = clf.predict_proba(incoming[r])[:, 1]
            flags[r] = p > self.threshold
            p_real = clf.predict_proba(test[r])[:, 1]
            test_flags[r] = p_real > self.threshold
            if batch.synthetic.all():
                aucs[r] = auc(p, p_real)
            else:
                aucs[r] = auc(p[batch.synthetic], p[~batch.synthetic])
        return flags, {"detect_auc": aucs}, test_flags

    def apply(self, batch: Batch, ctx: Context):
        test_flags = None
        if self.detector == "learned":
            flags, metrics, test_flags = self._learned(batch, ctx)
        else:
            u = np.stack([g.random(batch.weight.shape[1]) for g in ctx.rngs()])   # (R, k)
            rate = np.where(batch.synthetic, self.recall, self.fpr)[None, :]
            flags, metrics = u < rate, {}
        metrics.update(flag_metrics("detect", flags, batch.synthetic, test_flags))
        if self.action == "drop":
            weight = np.where(flags, 0.0, batch.weight)
        elif self.action == "downweight":
            weight = np.where(flags, batch.weight * self.factor, batch.weight)
        else:
            weight = batch.weight
        if not ctx.labelled:
            batch.believed[:] = flags
        return weight, metrics
