"""The ``accumulate`` paradigm: train on the real data and every synthetic batch so far."""

from __future__ import annotations

from .base import ChainView, Paradigm, Part


class Accumulate(Paradigm):
    """Iteration t trains on the real data plus every synthetic batch so far (size n + t m).

    Gerstgrasser et al. 2024; "augment" in Dey & Donoho 2024.
    """

    pool = "stats"  # running sufficient statistics suffice (rows if the family has none)

    def parts(self, view: ChainView) -> list[Part]:
        return [Part("pool")]
