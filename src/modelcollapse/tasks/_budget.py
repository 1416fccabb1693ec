"""The training budget of the deep tasks (``vae``, ``lm``, ``diffusion``): how many optimizer steps
one fit gets.

* ``train_budget: steps`` -- every fit takes the same number of optimizer steps,
  ``train_steps``, whatever the size of its training set: the same compute for every paradigm
  and model-fitting iteration.  ``replace`` (n rows) and ``accumulate`` (n + t m rows at
  iteration t) then differ only in their data, which is the comparison a paradigm study is about.
* ``train_budget: epochs`` -- every fit makes ``epochs`` passes over its training set, so the
  optimizer steps are ``epochs * ceil(N / batch_size)`` for N rows: an accumulating pool gets
  (t + 1) times the compute of the real-data fit at iteration t (as in Gerstgrasser et al. 2024,
  who train a fixed number of epochs per iteration).  A real-only control with the same compute
  is the ``real-matched`` paradigm (the real pool repeated to accumulate's pool size).

The steps each fit actually took are recorded as the metric ``train_steps`` (per replicate).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

__all__ = ["TrainBudget", "train_steps_taken"]


class TrainBudget(BaseModel):
    """Fields ``train_budget`` and ``train_steps`` of a deep task's params (a mixin for a
    params model that has ``epochs`` and ``batch_size``).

    ``resolve_budget(n_rows)`` (call it from the task's ``model_validator``) fills
    ``train_steps`` under the ``steps`` budget when it is None, and raises ValueError when
    ``train_steps`` was given under the ``epochs`` budget (it would be ignored).
    """

    train_budget: Literal["steps", "epochs"] = Field(
        "steps", description="'steps': every fit takes train_steps optimizer steps (the same "
        "compute for every paradigm and iteration); 'epochs': `epochs` passes over each "
        "training set (an accumulated pool gets more steps)")
    train_steps: int | None = Field(
        None, ge=1, description="optimizer steps per fit under train_budget 'steps' (default: "
        "epochs x ceil(n_samples / batch_size), the real-data fit's steps under 'epochs')")

    def resolve_budget(self, n_rows: int, default_steps: int | None = None) -> None:
        """Fill ``train_steps`` for the ``steps`` budget: ``default_steps`` if given, else
        ``epochs * ceil(n_rows / batch_size)`` (n_rows = the real training rows)."""
        if self.train_budget == "epochs":
            if "train_steps" in self.model_fields_set and self.train_steps is not None:
                raise ValueError("train_steps applies only with train_budget: steps (under "
                                 "'epochs' a fit takes epochs x ceil(rows / batch_size) steps)")
            self.train_steps = None
        elif self.train_steps is None:
            self.train_steps = (default_steps if default_steps is not None else
                                self.epochs * math.ceil(n_rows / self.batch_size))

    @property
    def family_train_steps(self) -> int | None:
        """What the family's ``train_steps`` argument gets: the steps, or None for epochs."""
        return self.train_steps if self.train_budget == "steps" else None


def train_steps_taken(model, n_replicates: int) -> np.ndarray:
    """Optimizer steps of each replicate's last fit, (n_replicates,) float (nan where a
    replicate has no fitted model, or the model is not a ``PerReplicate`` of a family that
    counts them)."""
    members = getattr(model, "models_", None)
    if members is None or len(members) != n_replicates:
        return np.full(n_replicates, np.nan)
    return np.array([float(getattr(m, "train_steps_", np.nan)) if m is not None else np.nan
                     for m in members])
