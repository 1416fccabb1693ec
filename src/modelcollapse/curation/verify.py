"""The ``verify`` curation policy: keep only the rows that pass a verifier."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from .base import Batch, Context, Policy, PolicyParams, flag_metrics, reference_scores


class VerifyParams(PolicyParams):
    """Settings of ``verify``; default label ``verify``."""

    quantile: float = Field(0.05, gt=0, lt=1, description="real log-likelihood quantile a row "
                            "must reach under a real-data model")
    verifier: str | None = Field(None, pattern=r"^[\w.]+:[\w]+$", description="a user's "
                                 "'module:function' (X of one replicate -> bool per row)")


class Verify(Policy):
    """Keep only rows that pass a verifier; the rest get weight 0.

    Default verifier: the log-likelihood of the row under a model of the task's own family fitted
    to the real pool must reach the ``quantile`` of the real rows' own log-likelihoods (a support
    check: it rejects samples no real-data model would produce).  ``verifier: "module:function"``
    plugs in a user's: ``function(X) -> bool array``, X of shape (k, ...) for one replicate.

    Metrics: ``verify_kept``, ``verify_dropped`` (rows of the incoming data) and, treating a
    rejection as a flag "synthetic", ``verify_recall`` (synthetic rows rejected),
    ``verify_fpr`` (real rows rejected: incoming real rows, plus the held-out real test set) and
    ``verify_precision``.
    """

    Params = VerifyParams
    stage = "incoming"

    def __init__(self, quantile: float = 0.05, verifier: str | None = None) -> None:
        self.quantile, self.verifier = float(quantile), verifier
        self._fn = None

    def prepare(self, ctx: Context) -> None:
        if self.verifier is not None:
            import importlib

            module, _, attr = self.verifier.partition(":")
            self._fn = getattr(importlib.import_module(module), attr)
        else:
            self._ref, real_scores = reference_scores(ctx)
            self._threshold = np.quantile(real_scores, self.quantile, axis=1)  # (R,)
        # the verifier is fixed for the chain: its verdicts on the held-out real rows too
        self._test_flags = ~self.passes(ctx.task.test)                          # (R, m)

    def passes(self, X: np.ndarray) -> np.ndarray:
        """(R, k, ...) -> (R, k) bool."""
        if self._fn is not None:
            return np.stack([np.asarray(self._fn(x), dtype=bool) for x in X])
        scores = np.asarray(self._ref.score_samples(X), dtype=float)
        return np.nan_to_num(scores, nan=-np.inf) >= self._threshold[:, None]

    def apply(self, batch: Batch, ctx: Context):
        ok = self.passes(batch.X)
        weight = np.where(ok, batch.weight, 0.0)
        test_flags = self._test_flags
        metrics = {"verify_kept": ok.sum(1).astype(float),
                   "verify_dropped": (~ok).sum(1).astype(float)}
        metrics.update({k: v for k, v in flag_metrics("verify", ~ok, batch.synthetic,
                                                       test_flags).items()
                        if not k.endswith("_flagged")})
        return weight, metrics
