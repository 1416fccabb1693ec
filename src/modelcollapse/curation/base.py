"""What every curation policy shares: the batch it acts on, its context, its parameter model,
the ``Policy`` base class, the ``Curation`` pipeline of one paradigm, and shared helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..rng import Role

__all__ = ["Batch", "Context", "PolicyParams", "Policy", "Curation", "STAGES"]

#: Where a policy acts: once on the real rows, on each incoming batch, on each training set.
STAGES = ("real", "incoming", "training")


@dataclass
class Batch:
    """Rows a policy acts on, for all R replicates.

    X : ndarray (R, k, ...) -- the rows
    weight : ndarray (R, k) -- current sample weights (0 = dropped)
    synthetic : ndarray (k,) of bool -- true provenance (the same layout for every replicate;
        ``None`` at the ``training`` stage, where rows are not aligned across replicates)
    believed : ndarray (R, k) of bool -- believed synthetic (true provenance unless scraping)
    """

    X: np.ndarray
    weight: np.ndarray
    synthetic: np.ndarray | None
    believed: np.ndarray


@dataclass
class Context:
    """What a policy may read: the iteration t (model t produced the batch), the task, the
    replicate streams, model t (``incoming`` stage) and whether provenance is labelled."""

    iteration: int
    task: Any
    streams: Any
    model: Any = None
    labelled: bool = True

    def rngs(self):
        """The ``CURATE`` generators of iteration t, one per replicate."""
        return self.streams(self.iteration, Role.CURATE)


class PolicyParams(BaseModel):
    """A policy's study settings: ``policy`` (its registered name) plus the policy's own fields.

    Subclass it to add fields (pydantic ``Field`` s with constraints and descriptions); the
    fields other than ``policy`` are passed to the policy's constructor as keyword arguments.
    """

    model_config = ConfigDict(extra="forbid")

    policy: str = Field(description="the registered policy name")

    @property
    def uses_sample_weight(self) -> bool:
        """Whether the policy gives rows weights other than 0 and 1.  (A dropped row is a row of
        weight 0 too: every curated chain relies on the family honouring ``sample_weight``.)"""
        return False

    def label(self) -> str:
        """Short label for default paradigm labels, e.g. ``detect-r0.9``."""
        return self.policy


class Policy:
    """Base class of curation policies.

    Set ``stage`` (one of ``STAGES``) and ``Params``; override ``apply`` and, for state fixed
    for the chain (a reference model, a verifier), ``prepare``.  ``apply`` returns the new
    weights (R, k) and a dict of metric arrays of shape (R,) named ``<policy>_<what>``.
    """

    Params: type[PolicyParams] = PolicyParams
    stage = "incoming"

    def prepare(self, ctx: Context) -> None:
        """Called once per chain before iteration 0 (e.g. fit a reference model on real data)."""

    def apply(self, batch: Batch, ctx: Context) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """New weights (R, k) of ``batch`` and metrics {name: (R,)}."""
        raise NotImplementedError


@dataclass
class Curation:
    """The policies of one paradigm, in the order given, and the ecosystem settings.

    real_arrival : int -- real rows joining the incoming data at each iteration t >= 1
    initial_real : int or None -- real rows available at iteration 0 (default: the rest)
    scraping : bool -- incoming data is an unlabelled mix (provenance only via detectors)

    Raises ``ValueError`` if a policy's ``stage`` is not one of ``STAGES``.
    """

    policies: list[Policy] = field(default_factory=list)
    real_arrival: int = 0
    initial_real: int | None = None
    scraping: bool = False

    def __post_init__(self) -> None:
        for policy in self.policies:
            if policy.stage not in STAGES:
                raise ValueError(f"curation policy {type(policy).__name__}: stage "
                                 f"{policy.stage!r} is not one of {', '.join(STAGES)}")

    def stage(self, name: str) -> list[Policy]:
        """The policies acting at stage ``name``, in order."""
        return [p for p in self.policies if p.stage == name]


# -- helpers shared by the policies --------------------------------------------------------------

def reference_scores(ctx: Context) -> tuple[Any, np.ndarray]:
    """A model of the task's family fitted on the real pool (CURATE stream of iteration 0) and
    the log-likelihood of every real row under it, shape (R, n)."""
    model = ctx.task.make_model()
    model.fit(ctx.task.real, rngs=ctx.streams(0, Role.CURATE))
    return model, np.asarray(model.score_samples(ctx.task.real), dtype=float)


def flag_metrics(name: str, flagged: np.ndarray, synthetic: np.ndarray,
                 extra_real_flagged: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Counts and detector quality of ``flagged`` (R, k) against true provenance (k,).

    recall = flagged synthetic / synthetic; fpr = flagged real / real; precision = flagged
    synthetic / flagged.  ``extra_real_flagged`` (R, k') are flags on held-out real rows, used
    when the batch holds no real rows (a labelled synthetic batch)."""
    syn, real = synthetic[None, :], ~synthetic[None, :]
    out = {f"{name}_flagged": flagged.sum(1).astype(float)}
    tp = (flagged & syn).sum(1)
    fp = (flagged & real).sum(1)
    n_real = real.sum()
    if extra_real_flagged is not None:
        fp = fp + extra_real_flagged.sum(1)
        n_real = n_real + extra_real_flagged.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if syn.sum():
            out[f"{name}_recall"] = tp / syn.sum()
        if n_real:
            out[f"{name}_fpr"] = fp / n_real
        out[f"{name}_precision"] = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
    return out


def auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties 1/2."""
    from scipy.stats import rankdata

    if len(scores_pos) == 0 or len(scores_neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([scores_pos, scores_neg]))
    n_pos, n_neg = len(scores_pos), len(scores_neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
