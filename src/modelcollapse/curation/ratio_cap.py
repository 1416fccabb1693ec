"""The ``ratio_cap`` curation policy: cap the synthetic-to-real ratio of each training set."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from .base import Batch, Context, Policy, PolicyParams


class RatioCapParams(PolicyParams):
    """Settings of ``ratio_cap``; default label ``cap<max_ratio>``."""

    max_ratio: float = Field(1.0, ge=0, description="synthetic rows per real row, at most")

    def label(self) -> str:
        return f"cap{self.max_ratio:g}"


class RatioCap(Policy):
    """A hard cap on the training set's synthetic-to-real ratio: when more than
    floor(``max_ratio`` x real rows) rows believed synthetic carry weight, a uniform random
    subset of that size keeps its weight and the rest get weight 0.

    Metrics: ``ratio_cap_dropped``."""

    Params = RatioCapParams
    stage = "training"

    def __init__(self, max_ratio: float = 1.0) -> None:
        self.max_ratio = float(max_ratio)

    def apply(self, batch: Batch, ctx: Context):
        weight = batch.weight.copy()
        dropped = np.zeros(len(weight))
        live = weight > 0
        for r, g in enumerate(ctx.rngs()):
            syn = np.flatnonzero(live[r] & batch.believed[r])
            cap = int(np.floor(self.max_ratio * (live[r] & ~batch.believed[r]).sum() + 1e-9))
            if len(syn) > cap:
                drop = g.choice(syn, size=len(syn) - cap, replace=False)
                weight[r, drop] = 0.0
                dropped[r] = len(drop)
        return weight, {"ratio_cap_dropped": dropped}
