"""The ``real-matched`` paradigm: real data only, repeated to accumulate's pool size."""

from __future__ import annotations

import numpy as np

from .base import ChainView, Paradigm, Part


class RealMatched(Paradigm):
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

    needs_rows = True

    def parts(self, view: ChainView) -> list[Part]:
        if view.pool_size == view.n_real:
            return [Part("real")]
        rows = np.arange(view.pool_size) % view.n_real                      # (N,)
        return [Part("real", rows=np.broadcast_to(rows, (len(view.streams), view.pool_size)))]
