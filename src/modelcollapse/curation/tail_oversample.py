"""The ``tail_oversample`` curation policy: up-weight the real rows a real-data model finds
least likely."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from .base import Batch, Context, Policy, PolicyParams, reference_scores


class TailOversampleParams(PolicyParams):
    """Settings of ``tail_oversample``; default label ``tail<factor>x<fraction>``."""

    fraction: float = Field(0.1, gt=0, le=1, description="share of real rows that are the tail")
    factor: float = Field(3.0, gt=0, description="weight of a tail row")

    @property
    def uses_sample_weight(self) -> bool:
        return True

    def label(self) -> str:
        return f"tail{self.factor:g}x{self.fraction:g}"


class TailOversample(Policy):
    """Up-weight the real tails: the ``fraction`` of real rows with the lowest log-likelihood
    under a real-data model of the task's family get weight ``factor`` (Schaeffer et al. 2025,
    Sec. 4: tails vanish first; the playbook's "preserve the tails on purpose").

    Metrics: ``tail_oversample_rows`` and ``tail_oversample_weight_share`` (share of the real
    weight on the tail rows)."""

    Params = TailOversampleParams
    stage = "real"

    def __init__(self, fraction: float = 0.1, factor: float = 3.0) -> None:
        self.fraction, self.factor = float(fraction), float(factor)

    def apply(self, batch: Batch, ctx: Context):
        """Weights of the real rows at iteration 0 (the tail is chosen among all real rows of
        the task, ``ctx.task.real``; ``batch`` holds the first of them)."""
        _, scores = reference_scores(ctx)                                # (R, n)
        k = max(1, int(round(self.fraction * scores.shape[1])))
        tail = np.argsort(np.nan_to_num(scores, nan=-np.inf), axis=1, kind="stable")[:, :k]
        w = np.ones(scores.shape)
        np.put_along_axis(w, tail, self.factor, axis=1)
        metrics = {"tail_oversample_rows": np.full(len(w), float(k)),
                   "tail_oversample_weight_share": k * self.factor / w.sum(1)}
        return batch.weight * w[:, :batch.weight.shape[1]], metrics
