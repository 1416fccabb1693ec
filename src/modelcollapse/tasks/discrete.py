"""Discrete (categorical) task: the Wright-Fisher setting of Shumailov et al. 2024 and Schaeffer
et al. 2025 (Sec. 4).  Truth p_0 = ``probabilities`` or uniform over ``n_outcomes``.
Metrics: ``entropy`` (nats), ``support_size``, ``gini_simpson`` (1 - sum p^2) and
``tv_distance`` to p_0 (the population risk used by summaries)."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from ..families.discrete import Categorical
from ..metrics import entropy, gini_simpson
from ..rng import Role, Streams
from .base import Task, TaskParams


class DiscreteTask:
    family = "discrete"

    class Params(TaskParams):
        probabilities: list[float] | None = Field(
            None, description="initial distribution p_0 (non-negative, sums to 1)")
        n_outcomes: int | None = Field(None, ge=1, description="K for a uniform p_0")
        n_samples: int = Field(100, ge=1, description="samples per model-fitting iteration (D)")

        @model_validator(mode="after")
        def _resolve(self):
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
        p0 = np.asarray(p.probabilities)
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
                   "gini_simpson": gini_simpson(q), "tv_distance": 0.5 * np.abs(q - p0).sum(1),
                   "sq_error": ((q - p0) ** 2).sum(1),
                   "mode_coverage": (q[:, real_support] > 0).mean(1),
                   "hallucinated_mass": q[:, ~real_support].sum(1)}
            if tail.any():
                out["tail_mass_recall"] = q[:, tail].sum(1) / p0[tail].sum()
            return out

        profile = {"variance": "gini_simpson", "modes": "mode_coverage",
                   "hallucination": "hallucinated_mass",
                   # E ||p_hat - p_0||^2 = (1 - sum p_0^2) / N for N real samples
                   "scaling": {"metric": "sq_error", "a": float(1 - (p0**2).sum()), "b": 0.0}}
        if tail.any():
            profile["tail_recall"] = "tail_mass_recall"

        return Task(
            name="discrete", family=cls.family, make_model=lambda: Categorical(K),
            real=real, test=test, evaluate=evaluate, risk_metric="tv_distance",
            sample_real=lambda n, rngs: draw(rngs, n), truth={"probabilities": p0},
            profile=profile,
        )
