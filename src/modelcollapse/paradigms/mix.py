"""The ``mix`` paradigm: a fixed real fraction of each training set, the rest synthetic."""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from ..rng import Role
from .base import ChainView, Paradigm, ParadigmParams, Part, choose


class MixParams(ParadigmParams):
    """Settings of ``mix``; default label ``mix-<real_fraction>[-fresh][-w<real_weight>]``."""

    real_fraction: float = Field(None, ge=0, le=1, validate_default=True,
                                 description="real fraction lambda of each training set "
                                 "(required)")
    fresh_real: bool = Field(False, description="draw the real part anew each iteration (from "
                             "the truth where the task knows it; on a real dataset a new "
                             "subsample of the same fixed real pool)")
    real_weight: float | None = Field(
        None, ge=0, le=1, description="total sample weight of the real part (the rest goes to "
        "the synthetic part); default proportional to counts")

    @field_validator("real_fraction", mode="before")
    @classmethod
    def _required(cls, value):
        if value is None:
            raise ValueError("required for mix (a number in [0, 1])")
        return value

    @property
    def uses_sample_weight(self) -> bool:
        return self.real_weight is not None

    def label(self, name: str) -> str:
        return (f"{name}-{self.real_fraction:g}{'-fresh' if self.fresh_real else ''}"
                + (f"-w{self.real_weight:g}" if self.real_weight is not None else ""))


class Mix(Paradigm):
    """Iteration t >= 1 trains on round(lambda n) real rows plus n - round(lambda n) rows of the
    latest synthetic batch (size n); lambda = ``real_fraction``.

    ``fresh_real=False``: the same real rows every iteration (the first ones of the real pool,
    itself a random sample).  ``fresh_real=True``: new real rows each iteration -- drawn from the
    truth when the task knows it (the fresh-data loop of Alemohammad et al. 2023), otherwise a
    new uniform subsample of the real pool.

    ``real_weight`` w: the real part carries total weight w and the synthetic part 1 - w (per-row
    weights w n / n_real and (1 - w) n / n_synthetic), so that e.g. a Gaussian mean is
    w * mean(real) + (1 - w) * mean(synthetic) (He, Xu & Cheng 2025; their optimum for equal
    parts is w = (sqrt 5 - 1) / 2).  Default: weights proportional to counts (w = lambda).

    Raises ``ValueError`` from ``parts`` if a batch holds fewer than n - round(lambda n) samples.
    """

    Params = MixParams
    needs_rows = True

    def __init__(self, real_fraction: float, fresh_real: bool = False,
                 real_weight: float | None = None) -> None:
        self.real_fraction = float(real_fraction)
        self.fresh_real = bool(fresh_real)
        self.real_weight = real_weight

    def parts(self, view: ChainView) -> list[Part]:
        if view.iteration == 0:
            return [Part("real")]
        n = view.n_real
        n_real = int(round(self.real_fraction * n))
        n_syn = n - n_real
        if n_syn > view.latest_size:
            raise ValueError(f"mix needs {n_syn} synthetic samples per iteration but n_synthetic "
                             f"is {view.latest_size}")
        R = len(view.streams)
        w_real = w_syn = 1.0
        if self.real_weight is not None and n_real and n_syn:
            w_real = self.real_weight * n / n_real
            w_syn = (1.0 - self.real_weight) * n / n_syn
        parts = []
        if n_real:
            if not self.fresh_real:
                part = Part("real", rows=np.broadcast_to(np.arange(n_real), (R, n_real)))
            elif view.sample_real is not None:
                part = Part("fresh", data=view.sample_real(n_real, view.rngs(Role.REAL)))
            else:
                part = Part("real", rows=choose(view.rngs(Role.REAL), n, n_real))
            part.weight = w_real
            parts.append(part)
        if n_syn:
            parts.append(Part("latest", rows=np.broadcast_to(np.arange(n_syn), (R, n_syn)),
                              weight=w_syn))
        return parts
