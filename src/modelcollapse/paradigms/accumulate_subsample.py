"""The ``accumulate-subsample`` paradigm: n rows drawn from the accumulated pool."""

from __future__ import annotations

from ..rng import Role
from .base import ChainView, Paradigm, Part, choose


class AccumulateSubsample(Paradigm):
    """Iteration t trains on n rows drawn uniformly without replacement from the accumulated pool
    (real + all synthetic batches so far; size n).  Kazdan et al. 2024, Sec. 3."""

    pool = "rows"
    needs_rows = True

    def parts(self, view: ChainView) -> list[Part]:
        if view.iteration == 0:
            return [Part("pool")]
        return [Part("pool", rows=choose(view.rngs(Role.SUBSAMPLE), view.pool_size, view.n_real))]
