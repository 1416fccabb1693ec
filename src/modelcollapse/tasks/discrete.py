"""Discrete (categorical) task: the Wright-Fisher setting of Shumailov et al. 2024 and Schaeffer
et al. 2025 (Sec. 4).

Truth p_0
---------
* ``dataset: synthetic`` (default): ``probabilities``, or uniform over ``n_outcomes``.
* ``dataset: austen`` / ``brown``: the word distribution of a prepared real text corpus
  (``modelcollapse data prepare austen``; words as in ``modelcollapse.data.text``): outcome k is
  the k-th most frequent word type, p_0(k) its share of the corpus' words.  Austen: 14,072
  types, 724,858 words, 4,498 types seen once -- a long Zipf tail.  Real data are draws of words
  from the corpus (``n_samples`` per model-fitting iteration, default 20,000), so the
  timescale and tail questions (which words are lost, and when) are asked of a real vocabulary.

Metrics: ``entropy`` (nats), ``support_size``, ``gini_simpson`` (1 - sum p^2), ``tv_distance`` to
p_0 (the population risk used by summaries), ``sq_error``, ``mode_coverage`` (share of p_0's
support kept), ``hallucinated_mass`` and ``tail_mass_recall`` (mass kept on the outcomes rarer
than p_0's median outcome, relative to p_0's); for a corpus also ``tail_support_recall``
(share of those rare word types still produced, Def. 7 of the profile).
"""

from __future__ import annotations

import numpy as np
from typing import Literal

from pydantic import Field, model_validator

from ..families.discrete import Categorical
from ..metrics.discrete import entropy, gini_simpson, sq_error, tv_distance
from ..rng import Role, Streams
from .base import Task, TaskParams


class DiscreteTask:
    family = "discrete"

    class Params(TaskParams):
        dataset: Literal["synthetic", "austen", "brown"] = Field(
            "synthetic", description="'synthetic' (p_0 from probabilities / n_outcomes) or a "
            "prepared text corpus whose word distribution is p_0 ('austen', 'brown')")
        probabilities: list[float] | None = Field(
            None, description="initial distribution p_0 (non-negative, sums to 1)")
        n_outcomes: int | None = Field(None, ge=1, description="K for a uniform p_0")
        n_samples: int | None = Field(
            None, ge=1, description="samples per model-fitting iteration (D; default 100, "
            "20000 for a text corpus)")

        @model_validator(mode="after")
        def _resolve(self):
            if self.dataset != "synthetic":
                if self.probabilities is not None or self.n_outcomes is not None:
                    raise ValueError(f"probabilities / n_outcomes: not allowed with dataset="
                                     f"{self.dataset} (p_0 is the corpus' word distribution)")
                self.n_samples = self.n_samples or 20_000
                return self
            self.n_samples = self.n_samples or 100
            if (self.probabilities is not None and self.n_outcomes is not None
                    and len(self.probabilities) != self.n_outcomes):
                raise ValueError(f"n_outcomes={self.n_outcomes} but probabilities has "
                                 f"{len(self.probabilities)} entries; give one of them")
            if self.probabilities is None:
                self.n_outcomes = self.n_outcomes or 10
                self.probabilities = [1.0 / self.n_outcomes] * self.n_outcomes
            p = np.asarray(self.probabilities)
            if (p < 0).any() or abs(p.sum() - 1) > 1e-9:
                raise ValueError("probabilities: must be non-negative and sum to 1")
            self.n_outcomes = len(p)
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        if p.dataset == "synthetic":
            p0, name, truth = np.asarray(p.probabilities), "discrete", {}
        else:
            from ..data.text import word_counts

            words, counts = word_counts(p.dataset)
            p0, name = counts / counts.sum(), f"discrete-{p.dataset}"
            truth = {"words": words, "counts": counts}
        K, cdf = len(p0), np.cumsum(p0)

        def draw(rngs, n):
            return np.stack([cdf.searchsorted(g.random(n) * cdf[-1], side="right") for g in rngs])

        gens = streams(0, Role.DATA)
        real = draw(gens, p.n_samples)
        test = draw(gens, p.n_samples)

        real_support = p0 > 0
        # the tail (Def. 7): outcomes rarer than the median outcome of p_0 (none if p_0 is uniform)
        tail = real_support & (p0 < np.median(p0[real_support]))

        def evaluate(model: Categorical, iteration: int = 0) -> dict[str, np.ndarray]:
            q = model.probabilities_
            out = {"entropy": entropy(q), "support_size": (q > 0).sum(1).astype(float),
                   "gini_simpson": gini_simpson(q), "tv_distance": tv_distance(q, p0),
                   "sq_error": sq_error(q, p0),
                   "mode_coverage": (q[:, real_support] > 0).mean(1),
                   "hallucinated_mass": q[:, ~real_support].sum(1)}
            if tail.any():
                out["tail_mass_recall"] = q[:, tail].sum(1) / p0[tail].sum()
                if p.dataset != "synthetic":
                    out["tail_support_recall"] = (q[:, tail] > 0).mean(1)
            return out

        profile = {"variance": "gini_simpson", "modes": "mode_coverage",
                   "hallucination": "hallucinated_mass",
                   # E ||p_hat - p_0||^2 = (1 - sum p_0^2) / N for N real samples
                   "scaling": {"metric": "sq_error", "a": float(1 - (p0**2).sum()), "b": 0.0}}
        if tail.any():
            # a corpus' tail holds thousands of word types: its mass is a sum of many neutral
            # (martingale) frequencies and barely moves, while the types themselves vanish
            profile["tail_recall"] = ("tail_mass_recall" if p.dataset == "synthetic"
                                      else "tail_support_recall")

        return Task(
            name=name, family=cls.family, make_model=lambda: Categorical(K),
            real=real, test=test, evaluate=evaluate, risk_metric="tv_distance",
            sample_real=lambda n, rngs: draw(rngs, n), truth={"probabilities": p0, **truth},
            profile=profile,
        )
