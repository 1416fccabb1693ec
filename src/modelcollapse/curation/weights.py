"""The ``weights`` curation policy: give real and synthetic rows fixed shares of the sample
weight."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from .base import Batch, Context, Policy, PolicyParams


class WeightsParams(PolicyParams):
    """Settings of ``weights``; default label ``w<real_weight>``."""

    real_weight: float = Field(0.5, ge=0, le=1, description="share of the total sample weight "
                               "carried by real rows")

    @property
    def uses_sample_weight(self) -> bool:
        return True

    def label(self) -> str:
        return f"w{self.real_weight:g}"


class Weights(Policy):
    """Sample weights for real vs synthetic rows: the rows believed real carry the share
    ``real_weight`` of the total weight and the synthetic rows the rest, the total being the
    number of live rows (He, Xu & Cheng 2025 weight real data by w; their optimum for equal
    parts is w = (sqrt 5 - 1) / 2, the golden ratio).  Within a class, relative weights (e.g.
    from ``detect: downweight``) are kept.  A class with no live rows is left as is.

    Metrics: ``weights_real_share`` (the real share actually applied)."""

    Params = WeightsParams
    stage = "training"

    def __init__(self, real_weight: float = 0.5) -> None:
        self.real_weight = float(real_weight)

    def apply(self, batch: Batch, ctx: Context):
        w = batch.weight
        live = w > 0
        n_live = live.sum(1, keepdims=True)
        real_sum = np.where(batch.believed, 0.0, w).sum(1, keepdims=True)
        syn_sum = np.where(batch.believed, w, 0.0).sum(1, keepdims=True)
        both = (real_sum > 0) & (syn_sum > 0)
        scale_real = np.where(both, self.real_weight * n_live / np.where(both, real_sum, 1), 1.0)
        scale_syn = np.where(both, (1 - self.real_weight) * n_live / np.where(both, syn_sum, 1),
                             1.0)
        new = np.where(batch.believed, w * scale_syn, w * scale_real)
        share = np.where(batch.believed, 0.0, new).sum(1) / np.maximum(new.sum(1), 1e-300)
        return new, {"weights_real_share": share}
