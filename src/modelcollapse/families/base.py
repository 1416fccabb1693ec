"""The model-family protocol, batched across replicates.

Two protocols
-------------
``GenerativeModel`` is the per-replicate protocol of ``DESIGN.md`` (scikit-learn style): a user's
own family implements only this::

    fit(X, *, sample_weight=None, rng) -> self       # X of shape (n_samples, ...)
    sample(n_samples, *, rng) -> ndarray              # of shape (n_samples, ...)
    score_samples(X) -> ndarray                       # of shape (n_samples,), log-likelihood (nats)

``BatchedModel`` is what the engine drives: the same three methods with a leading replicate axis
``R`` on every array and one generator per replicate (``rngs``), plus

* ``status_`` -- array of shape (R,) of str: ``"ok"`` or the kind of degenerate fit
  (``"zero_variance"``, ``"singular_covariance"``, ``"single_outcome"``, ``"fit_failed"``,
  ``"non_finite"``).  Degenerate fits are results, never exceptions.
* optionally ``statistics(X, sample_weight)`` / ``combine(a, b)`` / ``fit_statistics(stats)``:
  sufficient statistics, so that an accumulating pool is fitted in O(1) per model-fitting
  iteration instead of refitting a growing pool.
* optionally the class attribute ``block_draws = True``: ``sample`` and ``sample_statistics``
  then also accept an ``rng.Batch`` as ``rngs`` (``Batch.normal(shape)`` -> (R, *shape), one
  call for all replicates; ``Batch.generators`` for per-replicate draws), and the engine passes
  one for synthetic samples.

``PerReplicate`` turns any ``GenerativeModel`` factory into a ``BatchedModel`` by looping.

Checkpoints (optional)
----------------------
For ``modelcollapse run --resume`` a model may offer an exact round trip of its fitted state::

    get_state() -> dict[str, ndarray]    # plain numeric / str arrays (saved without pickle)
    set_state(state) -> self             # on a fresh, unfitted model from the same factory

so that a resumed chain continues from the last checkpointed model-fitting iteration.  A family
whose ``fit`` never reads anything left by a previous fit may instead declare the class attribute
``stateless_fit = True`` (nothing about the model is saved).  A model with neither is simply not
checkpointed: on resume its (task, paradigm) unit runs again from iteration 0, with the same
results (random streams are counter-based, ``modelcollapse.rng``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["GenerativeModel", "BatchedModel", "PerReplicate", "Stats", "STATUS_OK", "stack_draws",
           "supports_sample_weight"]

STATUS_OK = "ok"
Stats = dict[str, np.ndarray]


@runtime_checkable
class GenerativeModel(Protocol):
    """A single-replicate generative model (the protocol a user implements)."""

    def fit(self, X: np.ndarray, *, sample_weight: np.ndarray | None = None,
            rng: np.random.Generator) -> "GenerativeModel": ...

    def sample(self, n_samples: int, *, rng: np.random.Generator) -> np.ndarray: ...

    def score_samples(self, X: np.ndarray) -> np.ndarray: ...


class BatchedModel(Protocol):
    """A model family advancing R replicates at once (see module docstring)."""

    status_: np.ndarray

    def fit(self, X: np.ndarray, *, sample_weight: np.ndarray | None = None,
            rngs: Sequence[np.random.Generator]) -> "BatchedModel": ...

    def sample(self, n_samples: int, *, rngs: Sequence[np.random.Generator]) -> np.ndarray: ...

    def score_samples(self, X: np.ndarray) -> np.ndarray: ...


def stack_draws(rngs: Sequence[np.random.Generator], draw: Callable[[np.random.Generator], np.ndarray]
                ) -> np.ndarray:
    """``np.stack([draw(g) for g in rngs])``: one independent draw per replicate stream."""
    return np.stack([draw(g) for g in rngs])


def supports_sample_weight(cls: type) -> bool:
    """Whether ``cls.fit`` honours ``sample_weight``: its ``supports_sample_weight`` attribute,
    else whether the signature of ``fit`` has that parameter."""
    declared = getattr(cls, "supports_sample_weight", None)
    if declared is not None:
        return bool(declared)
    try:
        return "sample_weight" in inspect.signature(cls.fit).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def _weighted_rows(model, X: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """(rows, keyword arguments) to fit ``model`` on rows ``X`` with weights ``w``.

    A family without ``sample_weight`` gets the rows of positive weight only: curation that
    drops rows (weight 0) works for it; unequal positive weights cannot be honoured and raise
    (``config`` refuses weighting curation for such a family before a run starts).
    """
    if w is None:
        return X, {}
    if supports_sample_weight(type(model)):
        return X, {"sample_weight": w}
    w = np.asarray(w, dtype=float)
    kept = w > 0
    if kept.any() and not np.allclose(w[kept], w[kept][0]):
        raise ValueError(f"{type(model).__name__}.fit has no sample_weight; unequal weights "
                         "cannot be applied")
    return X[kept], {}


class PerReplicate:
    """Adapter: a ``BatchedModel`` made of one ``GenerativeModel`` per replicate.

    Parameters
    ----------
    factory : callable () -> GenerativeModel
        Builds a fresh, unfitted model (hyperparameters only).
    n_replicates : int
        R, the number of replicates.
    warm_start : bool
        Refit each replicate's existing model object (``init: warm_start``: iterative retraining
        from the predecessor) instead of a fresh one from ``factory`` (``init: fresh``).

    Notes
    -----
    A fit that raises is recorded as ``status_ == "fit_failed"`` and the replicate keeps its
    previous fitted model (so the chain can go on); the error text is kept in ``messages_``.
    """

    def __init__(self, factory: Callable[[], Any], n_replicates: int, *,
                 warm_start: bool = False) -> None:
        self.factory = factory
        self.n_replicates = n_replicates
        self.warm_start = warm_start
        self.models_: list[Any] = [None] * n_replicates
        self.status_ = np.full(n_replicates, STATUS_OK, dtype=object)
        self.messages_: list[str] = [""] * n_replicates

    def fit(self, X, *, sample_weight=None, rngs):
        for r, rng in enumerate(rngs):
            reuse = self.warm_start and self.models_[r] is not None
            model = self.models_[r] if reuse else self.factory()
            data, weights = _weighted_rows(model, X[r],
                                           None if sample_weight is None else sample_weight[r])
            try:
                model.fit(data, rng=rng, **weights)
            except Exception as exc:  # collapse is data: record and go on
                if self.models_[r] is None:
                    raise
                self.status_[r] = "fit_failed"
                self.messages_[r] = f"{type(exc).__name__}: {exc}"
                continue
            self.models_[r] = model
            self.status_[r] = getattr(model, "status_", STATUS_OK)
            self.messages_[r] = ""
        return self

    def sample(self, n_samples, *, rngs):
        return np.stack([m.sample(n_samples, rng=g) for m, g in zip(self.models_, rngs)])

    def get_state(self) -> dict[str, np.ndarray]:
        """Every replicate model's ``get_state()`` (keys prefixed ``"<r>."``), plus ``status_``
        and ``messages_``.

        Raises
        ------
        NotImplementedError
            If the replicate models have no ``get_state`` (the unit is then not checkpointed).
        """
        state = {"fitted": np.array([m is not None for m in self.models_]),
                 "status_": np.asarray(self.status_).astype(str),
                 "messages_": np.array(self.messages_, dtype=str)}
        for r, model in enumerate(self.models_):
            if model is None:
                continue
            get_state = getattr(model, "get_state", None)
            if get_state is None:
                raise NotImplementedError(f"{type(model).__name__} has no get_state")
            state.update({f"{r}.{k}": np.asarray(v) for k, v in get_state().items()})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "PerReplicate":
        """Inverse of ``get_state``: replicate models built by ``factory`` and ``set_state``."""
        for r, fitted in enumerate(np.asarray(state["fitted"]).tolist()):
            prefix = f"{r}."
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            self.models_[r] = self.factory().set_state(sub) if fitted else None
        self.status_ = np.asarray(state["status_"]).astype(object)
        self.messages_ = [str(m) for m in np.asarray(state["messages_"]).tolist()]
        return self

    def score_samples(self, X):
        return np.stack([m.score_samples(x) for m, x in zip(self.models_, X)])
