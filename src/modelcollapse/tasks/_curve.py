"""A real-data learning curve whose subsamples come from one block draw per size.

``tasks.base.LearningCurve.compute`` draws each subsample with ``Generator.choice(n_real, N,
replace=False)``: ``repeats x R`` calls per size, which cost more than the fits themselves for a
family as cheap as OLS.  ``BlockCurve`` draws, per size N, every replicate's ``repeats`` rows of
``n_real`` uniform keys in one block draw (``streams.batch(N, Role.REFERENCE)``, ``rng.Batch``:
each replicate's keys depend only on its own index) and takes as subsample the N rows of smallest
key, in key order -- a uniformly random ordered N-subset, the law of ``choice``, from other
random numbers.  The fits and the averaging are those of the base class.

(Fitting the repeats of a size as one batch of ``repeats x R`` replicates was measured too: no
faster than one repeat at a time, so it is not done.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rng import Role
from .base import LearningCurve, take_rows

__all__ = ["BlockCurve"]


@dataclass
class BlockCurve(LearningCurve):
    """``LearningCurve`` with block-drawn subsamples (module docstring)."""

    def subsamples(self, streams, N: int, n_real: int) -> np.ndarray:
        """Rows of the ``repeats`` subsamples of size N, shape (repeats, R, N)."""
        keys = streams.batch(N, Role.REFERENCE).uniform((self.repeats, n_real))
        rows = np.argsort(keys, axis=-1, kind="stable")[..., :N]  # (R, repeats, N)
        return np.swapaxes(rows, 0, 1)

    def compute(self, make_model: Callable[[], Any], real: np.ndarray,
                streams) -> dict[str, np.ndarray]:
        R, n_real = real.shape[:2]
        out = {}
        for N in self.sizes:
            if not 1 <= N <= n_real:
                raise ValueError(f"learning-curve size {N} outside 1..{n_real} (the real pool)")
            gens = streams(N, Role.REFERENCE)  # the fits' own randomness, as in the base class
            total = np.zeros(R)
            for rows in self.subsamples(streams, N, n_real):
                model = make_model()
                model.fit(take_rows(real, rows), rngs=gens)
                with np.errstate(all="ignore"):
                    total = total + np.asarray(self.risk(model), dtype=float)
            out[f"{self.prefix}{N}"] = total / self.repeats
        return out
