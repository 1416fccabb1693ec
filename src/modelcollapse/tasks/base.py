"""The ``Task`` a study runs, and the base of every task's parameter model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = ["Task", "TaskParams", "LearningCurve", "curve_sizes", "smallest_rows"]


class TaskParams(BaseModel):
    """Base of each task's ``task_params`` model: unknown keys are errors, and so are NaN and
    infinite numbers (no task parameter has a meaning for them; a study also refuses
    subnormal numbers and coercions such as ``true`` or ``'12'`` for a number,
    ``config._check_scalars``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass
class Task:
    """Everything the engine needs to run chains of one task for R replicates.

    Attributes
    ----------
    name : str
        Label in the results (e.g. ``"gaussian-wine"``).
    family : str
        Model-family name.
    make_model : callable () -> BatchedModel
        A fresh, unfitted model with the task's hyperparameters.
    real : ndarray of shape (R, n_real, ...)
        The real training pool of each replicate; iteration 0 is fitted on it.
    test : ndarray of shape (R, n_test, ...)
        Held-out **real** data, never trained on.
    evaluate : callable (model, iteration) -> dict[str, ndarray of shape (R,)]
        The task's metrics of a fitted model (``iteration`` positions the EVAL random streams of
        metrics that sample from the model).
    risk_metric : str
        The metric that summaries use as population risk (or its test-set estimate).
    sample_real : callable (n, rngs) -> ndarray, optional
        Fresh draws from the true distribution (known-truth tasks only); used by ``mix`` with
        ``fresh_real``.  Real-data tasks resample their real pool instead.
    truth : dict
        Parameters of the truth or reference distribution (for theory and reports).
    profile : dict
        Which recorded metric measures what for the collapse profile (``modelcollapse.profile``):
        ``variance`` (Def. 4), ``modes`` (Def. 6), ``tail`` and ``tail_base`` (Def. 7: tail risk
        relative to overall risk), ``tail_recall`` (Def. 7), ``hallucination`` (Def. 8), and
        ``scaling`` (Def. 5) = {"metric", "reference"} and, where the truth is known, "a", "b":
        the real-data-only reference learning curve E[metric](N) = a / (N - b) in closed form;
        ``reference`` is the prefix of the recorded empirical curve's metrics
        (``reference``: ``LearningCurve``).
    reference : LearningCurve, optional
        The task's real-data learning curve (Def. 5): fits of the task's family on real
        subsamples of several sizes, recorded with every chain as the metrics
        ``reference_<metric>_n<N>`` (``Task.learning_curve``; one value per chain, the same at
        every iteration).
    provenance : dict
        Where the task's data and model come from, for the manifest (JSON-able): ``datasets``
        = {name: {"path", "sha256", ...}} for data files, ``family`` = {"name", "source",
        "package", "version"} for a family plug-in.
    """

    name: str
    family: str
    make_model: Callable[[], Any]
    real: np.ndarray
    test: np.ndarray
    evaluate: Callable[[Any], dict[str, np.ndarray]]
    risk_metric: str
    sample_real: Callable[[int, list], np.ndarray] | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    reference: "LearningCurve | None" = None
    provenance: dict[str, Any] = field(default_factory=dict)
    _curves: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def learning_curve(self, streams) -> dict[str, np.ndarray]:
        """The real-data learning curve of each replicate of ``streams``: metric name
        ``reference_<metric>_n<N>`` -> risks of shape (R,) ({} without ``reference``).

        Computed once per task object and set of replicates (a task built once serves all its
        paradigms; the value is a pure function of the real pool and the streams, so a task
        rebuilt in another process gives identical numbers).
        """
        if self.reference is None:
            return {}
        key = (streams.seed, tuple(int(r) for r in streams.replicates))
        if key not in self._curves:
            self._curves = {key: self.reference.compute(self.make_model, self.real, streams)}
        return self._curves[key]

    @property
    def n_replicates(self) -> int:
        return self.real.shape[0]

    @property
    def n_real(self) -> int:
        return self.real.shape[1]


@dataclass
class LearningCurve:
    """A real-data-only learning curve: the task's risk of its model family fitted on real
    subsamples of sizes ``sizes`` (the reference scaling law of Def. 5).

    For each size N and replicate r, ``repeats`` subsamples of N rows are drawn without
    replacement from replicate r's real training pool (stream (N, ``Role.REFERENCE``), which
    also feeds the fit's own randomness), a fresh model is fitted on each, ``risk`` evaluates
    it on the held-out real test set and the replicate's value is the mean over the repeats.
    The streams depend only on (replicate, N), never on the paradigm, so every paradigm of a
    study records the same curve.  A family whose fit never draws random numbers declares the
    class attribute ``fit_uses_rngs = False``; its subsamples are then drawn for all replicates
    at once (``rng.Streams.choices``: the same rows, without a Python call per replicate) and
    its fits get ``rngs=None``.

    Attributes
    ----------
    metric : str
        The risk metric measured (e.g. ``test_loss``, ``test_nll``; the name in ``METRICS``).
    risk : callable (fitted model) -> ndarray of shape (R,)
        ``metric`` of a model fitted on R replicates, in the metric's units.
    sizes : tuple of int
        Subsample sizes N, each < the real pool's size (``curve_sizes``).
    repeats : int
        Subsamples per size and replicate (their risks are averaged).
    """

    metric: str
    risk: Callable[[Any], np.ndarray]
    sizes: tuple[int, ...]
    repeats: int = 1

    @property
    def prefix(self) -> str:
        """Prefix of the recorded metrics: ``reference_<metric>_n`` (then N)."""
        return f"reference_{self.metric}_n"

    def compute(self, make_model: Callable[[], Any], real: np.ndarray,
                streams) -> dict[str, np.ndarray]:
        """``{prefix + str(N): risks (R,)}`` for every size N; real of shape (R, n_real, ...)."""
        from ..rng import Role

        R, n_real = real.shape[:2]
        out = {}
        for N in self.sizes:
            if not 1 <= N <= n_real:
                raise ValueError(f"learning-curve size {N} outside 1..{n_real} (the real pool)")
            model = make_model()
            if getattr(model, "fit_uses_rngs", True):
                # the fits draw from the stream between the subsamples: one call per replicate
                gens = streams(N, Role.REFERENCE)
                subsamples = None
            else:  # the same rows for all replicates at once (``rng.Streams.choices``)
                subsamples = streams.choices(N, Role.REFERENCE, n_real, N, self.repeats)
                gens = None  # the fits never draw
            total = np.zeros(R)
            for j in range(self.repeats):
                if subsamples is None:
                    rows = np.stack([g.choice(n_real, size=N, replace=False) for g in gens])
                else:
                    rows = subsamples[j]
                model = model if j == 0 else make_model()
                model.fit(take_rows(real, rows), rngs=gens)
                with np.errstate(all="ignore"):
                    total = total + np.asarray(self.risk(model), dtype=float)
            out[f"{self.prefix}{N}"] = total / self.repeats
        return out


def curve_sizes(n_real: int, smallest: int, count: int = 5) -> tuple[int, ...]:
    """``count`` geometrically spaced subsample sizes from ``smallest`` up to (not including)
    ``n_real``: N_j = round(smallest (n_real / smallest)^(j / count)), j = 0..count-1, without
    repeats; () when ``smallest`` >= ``n_real`` (no room for a curve)."""
    smallest = int(smallest)
    if smallest >= n_real or count < 1:
        return ()
    ratio = n_real / smallest
    sizes = [int(round(smallest * ratio ** (j / count))) for j in range(count)]
    return tuple(sorted({n for n in sizes if smallest <= n < n_real}))


TAIL_FRACTION = 0.1  #: share of held-out real points that form the tail (Def. 7)


def tail_rows(X: np.ndarray, mean: np.ndarray, covariance: np.ndarray,
              fraction: float = TAIL_FRACTION) -> np.ndarray:
    """Rows of the held-out set in the tail of a reference Gaussian, shape (R, k).

    The ``fraction`` of points with the largest Mahalanobis distance under N(mean, covariance)
    (equivalently the lowest reference density), per replicate.

    Parameters
    ----------
    X : ndarray of shape (R, m, d)
    mean : ndarray of shape (R, d); covariance : ndarray of shape (R, d, d)
    """
    k = max(1, int(round(fraction * X.shape[1])))
    parts = []
    for lo, hi in _chunks(X):  # replicate by replicate: the same numbers, bounded temporaries
        Xc = X[lo:hi] - mean[lo:hi, None, :]
        precision = np.linalg.pinv(covariance[lo:hi])
        if X.shape[-1] == 1:  # a product with a 1 x 1 matrix is one multiplication: same numbers
            maha = ((Xc * precision) * Xc)[..., 0]
        else:
            maha = ((Xc @ precision) * Xc).sum(-1)
        parts.append(smallest_rows(-maha, k))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


#: bytes of a held-out set handled at once by ``tail_rows`` and ``reference_moments`` (their
#: temporaries stay small enough to be reused rather than mapped afresh for every block)
CHUNK_BYTES = 4 * 2**20


def _chunks(X: np.ndarray) -> list[tuple[int, int]]:
    """Ranges of replicates of X (R, m, ...) of about ``CHUNK_BYTES`` each (at least one)."""
    R = X.shape[0]
    per = max(1, CHUNK_BYTES // max(1, X[:1].size * 8))
    return [(lo, min(lo + per, R)) for lo in range(0, R, per)] or [(0, 0)]


def smallest_rows(values: np.ndarray, k: int) -> np.ndarray:
    """``np.argsort(values, axis=1, kind="stable")[:, :k]`` -- the positions of each row's k
    smallest values, smallest first, ties by position -- by a partial sort (O(m) per row
    instead of O(m log m)); values (R, m) -> (R, k) positions."""
    R, m = values.shape
    k = min(int(k), m)
    if k >= m or k <= 0 or np.isnan(values).any():  # NaN sorts last: leave it to argsort
        return np.argsort(values, axis=1, kind="stable")[:, :k]
    kth = np.partition(values, k - 1, axis=1)[:, k - 1:k]         # each row's k-th smallest
    below = values < kth
    tied = values == kth
    # every value below the k-th smallest, then the first tied ones (by position) up to k
    keep = below | tied
    extra = np.flatnonzero(keep.sum(1) > k)  # rows with more ties than places (rare)
    if extra.size:
        room = k - below[extra].sum(1, keepdims=True)
        keep[extra] = below[extra] | (tied[extra] & (np.cumsum(tied[extra], axis=1) <= room))
    rows = np.nonzero(keep)[1].reshape(R, k)                        # positions, increasing
    order = np.argsort(np.take_along_axis(values, rows, 1), axis=1, kind="stable")
    return np.take_along_axis(rows, order, 1)


def take_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[r, rows[r]]`` for every replicate r: (R, m, ...) and (R, k) -> (R, k, ...)."""
    return X[np.arange(X.shape[0])[:, None], rows]


def reference_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (R, d) and MLE covariance (R, d, d) of a held-out set X of shape (R, m, d)."""
    means, covs = [], []
    for lo, hi in _chunks(X):  # replicate by replicate: the same numbers, bounded temporaries
        mean = X[lo:hi].mean(1)
        Xc = X[lo:hi] - mean[:, None]
        means.append(mean)
        covs.append(np.swapaxes(Xc, 1, 2) @ Xc / X.shape[1])
    if len(means) == 1:
        return means[0], covs[0]
    return np.concatenate(means), np.concatenate(covs)
