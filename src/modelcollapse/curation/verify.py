"""The ``verify`` curation policy: keep only the rows that pass a verifier."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from .base import Batch, Context, Policy, PolicyParams, flag_metrics, reference_scores


def resolve_verifier(ref: str, base_dir=None) -> Callable:
    """The function named by ``ref`` = ``"module:function"``, imported from ``base_dir`` (the
    study's folders, ``config.study_folders``) first, then ``sys.path``.  This imports, and so
    runs, the user's module.

    Raises
    ------
    families.importpath.ImportPathError (a ValueError)
        One line (without a field prefix): a malformed path, a module that cannot be imported,
        a missing attribute, or an attribute that is not callable.
    """
    from ..families.importpath import ImportPathError, resolve_import_path  # (lazy: light import)

    fn = resolve_import_path(ref, base_dir, field=None, example="my_checks:plausible")
    if not callable(fn):
        raise ImportPathError(f"{ref} is a {type(fn).__name__}, not a function "
                              "(X of one replicate -> bool per row)")
    return fn


class VerifyParams(PolicyParams):
    """Settings of ``verify``; default label ``verify``."""

    quantile: float = Field(0.05, gt=0, lt=1, description="real log-likelihood quantile a row "
                            "must reach under a real-data model")
    verifier: str | None = Field(
        None, description="a user's 'module:function' (X of one replicate -> bool per row). "
        "Runs the user's code: the module is imported from the study file's folder, then "
        "sys.path, when the study is validated (a missing module or function is an error then)")

    @field_validator("verifier")
    @classmethod
    def _importable(cls, ref: str | None, info: ValidationInfo) -> str | None:
        if ref is not None:
            resolve_verifier(ref, (info.context or {}).get("base_dir"))  # ValueError: one line
        return ref


class Verify(Policy):
    """Keep only rows that pass a verifier; the rest get weight 0.

    Default verifier: the log-likelihood of the row under a model of the task's own family fitted
    to the real pool must reach the ``quantile`` of the real rows' own log-likelihoods (a support
    check: it rejects samples no real-data model would produce).  ``verifier: "module:function"``
    plugs in a user's: ``function(X) -> bool array``, X of shape (k, ...) for one replicate.

    Metrics: ``verify_kept``, ``verify_dropped`` (rows of the incoming data) and, treating a
    rejection as a flag "synthetic", ``verify_recall`` (synthetic rows rejected),
    ``verify_fpr`` (real rows rejected: incoming real rows, plus the held-out real test set) and
    ``verify_precision``.
    """

    Params = VerifyParams
    stage = "incoming"
    #: folders searched for the verifier's module before ``sys.path`` (the study file's
    #: folders; set by ``config.ParadigmSpec.build``)
    base_dir: list[str] | None = None

    def __init__(self, quantile: float = 0.05, verifier: str | None = None) -> None:
        self.quantile, self.verifier = float(quantile), verifier
        self._fn = None

    def prepare(self, ctx: Context) -> None:
        if self.verifier is not None:
            self._fn = resolve_verifier(self.verifier, self.base_dir)
        else:
            self._ref, real_scores = reference_scores(ctx)
            self._threshold = np.quantile(real_scores, self.quantile, axis=1)  # (R,)
        # the verifier is fixed for the chain: its verdicts on the held-out real rows too
        self._test_flags = ~self.passes(ctx.task.test)                          # (R, m)

    def passes(self, X: np.ndarray) -> np.ndarray:
        """(R, k, ...) -> (R, k) bool."""
        if self._fn is not None:
            return np.stack([np.asarray(self._fn(x), dtype=bool) for x in X])
        scores = np.asarray(self._ref.score_samples(X), dtype=float)
        return np.nan_to_num(scores, nan=-np.inf) >= self._threshold[:, None]

    def apply(self, batch: Batch, ctx: Context):
        ok = self.passes(batch.X)
        weight = np.where(ok, batch.weight, 0.0)
        test_flags = self._test_flags
        metrics = {"verify_kept": ok.sum(1).astype(float),
                   "verify_dropped": (~ok).sum(1).astype(float)}
        metrics.update({k: v for k, v in flag_metrics("verify", ~ok, batch.synthetic,
                                                       test_flags).items()
                        if not k.endswith("_flagged")})
        return weight, metrics
