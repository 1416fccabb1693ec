"""Data paradigms: how the training set of model-fitting iteration t is built.

A paradigm returns the training set as a list of ``Part`` s -- references to the real pool, the
latest synthetic batch, the accumulated pool (real + every synthetic batch so far), or freshly
drawn real data -- optionally restricted to rows.  The engine resolves parts to data or to
sufficient statistics, so an ``accumulate`` chain never touches old data again.

Notation: n = ``n_real`` (the real sample size), m = ``n_synthetic`` (samples drawn per iteration).
Iteration 0 is always fitted on the n real samples only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..rng import Role

__all__ = ["Part", "ChainView", "Replace", "Accumulate", "AccumulateSubsample", "Mix",
           "RealMatched"]


@dataclass
class Part:
    """A piece of a training set.

    source : {"real", "latest", "pool", "fresh"}
        The real pool (n rows), the latest synthetic batch (m rows), the accumulated pool
        (real rows first, then synthetic batches in order), or fresh real data in ``data``.
    rows : ndarray of shape (R, k) of int, optional
        Rows of the source per replicate; ``None`` means all rows.
    data : ndarray, optional
        The data of a ``"fresh"`` part, shape (R, k, ...).
    weight : float
        Sample weight of every row of the part (frequency weights; default 1).
    """

    source: Literal["real", "latest", "pool", "fresh"]
    rows: np.ndarray | None = None
    data: np.ndarray | None = None
    weight: float = 1.0


@dataclass
class ChainView:
    """What a paradigm may read about the chain at iteration t."""

    iteration: int
    n_real: int
    pool_size: int
    latest_size: int
    streams: object
    sample_real: object = None

    def rngs(self, role: Role):
        return self.streams(self.iteration, role)


def _choose(rngs, population: int, k: int) -> np.ndarray:
    """k distinct rows out of ``population`` per replicate, sorted, shape (R, k)."""
    return np.stack([np.sort(g.choice(population, size=k, replace=False)) for g in rngs])


class Replace:
    """Iteration t >= 1 trains only on the m synthetic samples of model t-1 (size m).

    The fully synthetic loop of Shumailov et al. 2024 and Alemohammad et al. 2023.
    """

    pool = None  #: what of the accumulated pool the paradigm reads: None, "stats" or "rows"
    needs_rows = False  #: whether it selects rows of synthetic batches (False: statistics suffice)

    def parts(self, view: ChainView) -> list[Part]:
        return [Part("real")] if view.iteration == 0 else [Part("latest")]


class Accumulate:
    """Iteration t trains on the real data plus every synthetic batch so far (size n + t m).

    Gerstgrasser et al. 2024; "augment" in Dey & Donoho 2024.
    """

    pool = "stats"  # running sufficient statistics suffice (rows if the family has none)
    needs_rows = False

    def parts(self, view: ChainView) -> list[Part]:
        return [Part("pool")]


class AccumulateSubsample:
    """Iteration t trains on n rows drawn uniformly without replacement from the accumulated pool
    (real + all synthetic batches so far; size n).  Kazdan et al. 2024, Sec. 3."""

    pool = "rows"
    needs_rows = True

    def parts(self, view: ChainView) -> list[Part]:
        if view.iteration == 0:
            return [Part("pool")]
        return [Part("pool", rows=_choose(view.rngs(Role.SUBSAMPLE), view.pool_size, view.n_real))]


class Mix:
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
    """

    pool = None
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
                part = Part("real", rows=_choose(view.rngs(Role.REAL), n, n_real))
            part.weight = w_real
            parts.append(part)
        if n_syn:
            parts.append(Part("latest", rows=np.broadcast_to(np.arange(n_syn), (R, n_syn)),
                              weight=w_syn))
        return parts


class RealMatched:
    """A real-data-only control with accumulate's training-set size: iteration t trains on the n
    real rows repeated cyclically to n + m_0 + ... + m_{t-1} rows, the size of the pool
    ``accumulate`` has at t (synthetic batches are still drawn, never trained on).

    For families trained by minibatch epochs (``train_budget: epochs`` of the deep tasks) it
    gets exactly the optimizer steps of ``accumulate`` on real data alone -- the matched-compute
    control; under a fixed-steps budget it is real-only training at that budget (``mix`` with
    ``real_fraction: 1`` is the same without the repetition).  ``n_train`` / ``n_real`` count
    the repeated rows.  Not meant for closed-form families: repeating rows changes unbiased
    estimators (n - 1 becomes (t + 1) n - 1).
    """

    pool = None
    needs_rows = True

    def parts(self, view: ChainView) -> list[Part]:
        if view.pool_size == view.n_real:
            return [Part("real")]
        rows = np.arange(view.pool_size) % view.n_real                      # (N,)
        return [Part("real", rows=np.broadcast_to(rows, (len(view.streams), view.pool_size)))]
