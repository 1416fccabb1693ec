"""Supervised regression with any regressor: the ``regression`` recipe.

A dataset (scikit-learn's ``diabetes``, or the user's own table with ``target: column``) and a
model of labels on the fixed training design: the built-in ``linear_regression`` (OLS,
Gerstgrasser et al. 2024, Sec. 3) or any scikit-learn-style regressor -- a registered name or
``"module:Class"`` such as ``sklearn.linear_model:Ridge`` -- made generative with Gaussian
label noise (``families.regressor``).  Each model-fitting iteration draws new labels at the
design rows from the previous model and refits.

Preprocessing as ``data.sklearn_datasets`` (step 4): rows ``[1, x_1..x_p, y]`` with features and
target standardised on the training split, so ``test_loss`` 1.0 = predicting the mean.
Metrics (squared standardised label units): ``test_loss`` (mean squared error on the held-out
real rows; the risk metric), ``tail_loss`` (on the 10% highest-leverage held-out rows, Def. 7),
``residual_variance`` (the fitted noise) and ``predictive_variance`` (noise + variance of the
predictions over the held-out x, Def. 4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from ..data.sklearn_datasets import REGRESSION_DATASETS, load_raw, regression_arrays
from ..families.plugin import FamilySpec
from ..families.regressor import RegressorFamily
from ..rng import Streams
from .base import LearningCurve, Task, TaskParams, curve_sizes, reference_moments, tail_rows

CURVE_SMALLEST = 3  #: smallest learning-curve subsample = this many times the design's columns


class RegressionTask:
    """The ``regression`` recipe (module docstring); default family ``linear_regression``."""

    family = "linear_regression"
    family_kinds = ("supervised", "regressor")
    #: constructor arguments the recipe gives a batched supervised family
    family_context = ("design",)

    class Params(TaskParams):
        dataset: str = Field(
            "diabetes", description="'diabetes' (scikit-learn) or a data file (.csv, .parquet, "
            ".npy; relative to the study file's folder, then the current directory)")
        target: str | None = Field(None, description="data file: the column to predict")
        features: list[str] | None = Field(
            None, description="data file: predictor columns (default: every numeric column "
            "except the target)")
        nan_policy: Literal["error", "drop"] = Field(
            "error", description="data file: rows with NaN or inf are an error, or dropped")
        n_samples: int | None = Field(None, ge=2, description="training rows (default: the "
                                      "whole training split)")
        test_size: float = Field(0.25, gt=0, lt=1, description="held-out fraction")
        data_scale: float = Field(1.0, gt=0, description="multiply features and target by this "
                                  "constant (the same data in other units)")
        _table: Any = PrivateAttr(None)

        @model_validator(mode="after")
        def _load(self, info: ValidationInfo):
            if self.dataset in REGRESSION_DATASETS:
                if self.target is not None or self.features is not None:
                    raise ValueError(f"target, features: only for a data file (dataset: "
                                     f"{self.dataset} is built in)")
                return self
            from ..data.files import is_data_path, load_table

            base_dir = (info.context or {}).get("base_dir")
            if not is_data_path(self.dataset, base_dir):
                raise ValueError(f"dataset: {self.dataset!r} is neither a built-in dataset nor "
                                 f"a data file; allowed: {', '.join(REGRESSION_DATASETS)}, or a "
                                 "path to a .csv, .parquet or .npy file")
            if self.target is None:
                raise ValueError("target: required with a data file (the column to predict)")
            self._table = load_table(self.dataset, base_dir=base_dir, target=self.target,
                                     features=self.features, nan_policy=self.nan_policy)
            n_rows = len(self._table.X)
            n_train = n_rows - max(1, int(round(self.test_size * n_rows)))
            if self.n_samples is not None and self.n_samples > n_train:
                raise ValueError(f"n_samples: {self.n_samples} exceeds the {n_train} training "
                                 f"rows of {self.dataset} (test_size {self.test_size:g})")
            return self

        def arrays(self) -> tuple[np.ndarray, np.ndarray]:
            """Features (n_rows, p) and target (n_rows,) of the dataset."""
            if self._table is None:
                return load_raw(self.dataset)
            return self._table.X, self._table.y

        def provenance(self) -> dict:
            return {} if self._table is None else {"datasets": {"dataset":
                                                                self._table.provenance()}}

        def dataset_name(self) -> str:
            return self.dataset if self._table is None else Path(self.dataset).stem

    @classmethod
    def build(cls, p: Params, streams: Streams, family: FamilySpec) -> Task:
        real, test = regression_arrays(*p.arrays(), n_samples=p.n_samples,
                                       test_size=p.test_size, streams=streams,
                                       data_scale=p.data_scale)
        design = real[..., :-1]
        if family.regressor:
            def make_model():
                return RegressorFamily(family.new, design)
        elif family.batched:
            def make_model():
                return family.new(design=design)
        else:
            raise ValueError(f"family: {family.ref} is neither a regressor (fit, predict) nor "
                             "a batched supervised family (batched = True, design=...)")

        x_test, y_test = test[..., :-1], test[..., -1]
        tail = tail_rows(x_test, *reference_moments(x_test))
        x_tail, y_tail = (np.take_along_axis(x_test, tail[..., None], 1),
                          np.take_along_axis(y_test, tail, 1))

        def test_loss(model) -> np.ndarray:
            with np.errstate(all="ignore"):
                return ((y_test - model.predict(x_test)) ** 2).mean(1)

        def evaluate(model, iteration: int = 0) -> dict[str, np.ndarray]:
            with np.errstate(all="ignore"):
                pred = model.predict(x_test)
                return {"test_loss": ((y_test - pred) ** 2).mean(1),
                        "tail_loss": ((y_tail - model.predict(x_tail)) ** 2).mean(1),
                        "residual_variance": np.asarray(model.noise_variance_, dtype=float),
                        "predictive_variance": model.noise_variance_ + pred.var(1)}

        sizes = curve_sizes(real.shape[1], CURVE_SMALLEST * design.shape[-1])
        reference = LearningCurve("test_loss", test_loss, sizes, 1) if sizes else None
        profile = {"variance": "predictive_variance", "tail": "tail_loss",
                   "tail_base": "test_loss", "tail_mode": "increment",
                   "scaling": {"metric": "test_loss"}}
        if reference is not None:
            profile["scaling"]["reference"] = reference.prefix
        return Task(
            name=f"{family.name}-{p.dataset_name()}", family=family.name, make_model=make_model,
            real=real, test=test, evaluate=evaluate, risk_metric="test_loss",
            profile=profile, reference=reference,
            provenance={**p.provenance(), "family": family.provenance()},
        )
