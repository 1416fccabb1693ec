"""What every data paradigm shares: training-set parts, the chain view, the parameter model.

A paradigm returns the training set of model-fitting iteration t as a list of ``Part`` s --
references to the real pool, the latest synthetic batch, the accumulated pool (real + every
synthetic batch so far), or freshly drawn real data -- optionally restricted to rows.  The engine
resolves parts to data or to sufficient statistics, so an ``accumulate`` chain never touches old
data again.

Notation: n = ``n_real`` (the real sample size), m = ``n_synthetic`` (samples drawn per iteration).
Iteration 0 is always fitted on the n real samples only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..rng import Role

__all__ = ["Part", "ChainView", "Paradigm", "ParadigmParams"]


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


class ParadigmParams(BaseModel):
    """A paradigm's own study settings (none by default); subclass it to add fields.

    The fields are written flat beside ``name`` in a study (``{name: mix, real_fraction: 0.5}``)
    and passed to the paradigm's constructor as keyword arguments.
    """

    model_config = ConfigDict(extra="forbid")

    @property
    def uses_sample_weight(self) -> bool:
        """Whether these settings make the training rows carry unequal sample weights."""
        return False

    def label(self, name: str) -> str:
        """The paradigm's default label in results, given its registered ``name``."""
        return name


class Paradigm:
    """Base class of data paradigms: override ``parts``; give ``Params`` for settings.

    Register a new one with ``modelcollapse.registry.paradigms.register(name, cls)``; a study
    then names it (``paradigms: [{name: <name>, <its Params fields>...}]``).
    """

    Params: type[ParadigmParams] = ParadigmParams
    pool = None  #: what of the accumulated pool the paradigm reads: None, "stats" or "rows"
    needs_rows = False  #: whether it selects rows of synthetic batches (False: statistics suffice)

    def parts(self, view: ChainView) -> list[Part]:
        """The training set of iteration ``view.iteration`` as parts."""
        raise NotImplementedError


def choose(rngs, population: int, k: int) -> np.ndarray:
    """k distinct rows out of ``population`` per replicate, sorted, shape (R, k)."""
    return np.stack([np.sort(g.choice(population, size=k, replace=False)) for g in rngs])
