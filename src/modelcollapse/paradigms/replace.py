"""The ``replace`` paradigm: train only on the latest synthetic batch."""

from __future__ import annotations

from .base import ChainView, Paradigm, Part


class Replace(Paradigm):
    """Iteration t >= 1 trains only on the m synthetic samples of model t-1 (size m).

    The fully synthetic loop of Shumailov et al. 2024 and Alemohammad et al. 2023.
    """

    def parts(self, view: ChainView) -> list[Part]:
        return [Part("real")] if view.iteration == 0 else [Part("latest")]
