"""Shared data building for vector-density tasks (gaussian, kde, gmm): truth or real dataset."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from ..data.sklearn_datasets import VECTOR_DATASETS, vector_arrays, vector_split
from ..metrics.knn import knn_precision_recall
from ..rng import Role, Streams
from .base import (LearningCurve, TaskParams, curve_sizes, reference_moments,  # noqa: F401
                   tail_rows)


#: collapse-profile roles of the density tasks' metrics (see ``Task.profile``)
VECTOR_PROFILE = {"variance": "cov_trace_ratio", "tail": "tail_nll", "tail_base": "test_nll",
                  "tail_mode": "difference", "modes": "mode_coverage",
                  "hallucination": "precision", "hallucination_mode": "precision",
                  "tail_recall": "tail_recall"}


class VectorParams(TaskParams):
    synthetic_n_features: ClassVar[int] = 2
    synthetic_has_modes: ClassVar[bool] = False

    dataset: str = Field(
        "synthetic", description="'synthetic' = the task's known truth; 'moons', 'circles', "
        "'blobs' = scikit-learn's 2-d generators (Kazdan et al. 2024); 'wine' or 'digits' = "
        "real scikit-learn data; or a data file (.csv, .parquet, .npy; relative to the study "
        "file's folder, then the current directory)")
    features: list[str] | None = Field(
        None, description="data file: the columns to model (default: every numeric column "
        "except labels)")
    labels: str | None = Field(
        None, description="data file: a column of class labels -- the modes of Def. 6 (not "
        "modelled)")
    nan_policy: Literal["error", "drop"] = Field(
        "error", description="data file: rows with NaN or inf are an error, or dropped")
    n_features: int | None = Field(
        None, ge=1, description="dimension (synthetic) or principal components kept (real data; "
        "default for a data file: every feature)")
    n_samples: int | None = Field(
        None, ge=2, description="real training samples (synthetic default 100; real default: "
        "the whole training split)")
    n_test: int = Field(1000, ge=1, description="held-out test samples (synthetic)")
    test_size: float = Field(0.25, gt=0, lt=1, description="held-out fraction (real data)")
    data_scale: float = Field(
        1.0, gt=0, description="multiply the real (or toy) data by this constant: the same "
        "data in other units (not for the known truth: its scale is the task's own parameter)")
    sample_metrics: bool | None = Field(
        None, description="record k-NN precision / recall / mode coverage of fresh samples each "
        "iteration (Defs. 6-8; costs a sample and two distance matrices per replicate); default: "
        "on for real and toy datasets, off for the Gaussian truth (full support: nothing to "
        "hallucinate)")
    _table: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _resolve_sizes(self, info: ValidationInfo):
        builtin = ("synthetic", *TOY_DATASETS, *VECTOR_DATASETS)
        if self.dataset not in builtin:
            self._load_file((info.context or {}).get("base_dir"), builtin)
        elif self.features is not None or self.labels is not None or self.nan_policy != "error":
            raise ValueError("features, labels and nan_policy: only for a data file "
                             f"(dataset: {self.dataset} is built in)")
        if self.data_scale != 1.0 and self.dataset == "synthetic":
            raise ValueError("data_scale: only for real or toy datasets; the known truth's "
                             "scale is a parameter of the task")
        if self.sample_metrics is None:
            self.sample_metrics = self.dataset != "synthetic" or self.synthetic_has_modes
        if self.dataset == "synthetic":
            self.n_samples = 100 if self.n_samples is None else self.n_samples
            self.n_features = self.n_features or self.synthetic_n_features
        elif self.dataset in TOY_DATASETS:
            self.n_samples = 100 if self.n_samples is None else self.n_samples
            if self.n_features not in (None, 2):
                raise ValueError(f"n_features: {self.dataset} is 2-dimensional; allowed: 2")
            self.n_features = 2
        elif self._table is not None:
            width = self._table.X.shape[1]
            if self.n_features is not None and self.n_features > width:
                raise ValueError(f"n_features: {self.dataset} has {width} feature columns; "
                                 f"allowed: 1..{width}")
            self.n_features = self.n_features or width
            self._check_rows(len(self._table.X))
        else:
            self.n_features = self.n_features or VECTOR_DATASETS[self.dataset]
            if self.dataset == "wine" and self.n_features > 13:
                raise ValueError("n_features: wine has 13 features; allowed: 1..13")
            if self.dataset == "digits" and self.n_features > 61:
                raise ValueError("n_features: digits has 61 non-constant pixels; allowed: 1..61")
        return self

    def _load_file(self, base_dir, builtin) -> None:
        from ..data.files import is_data_path, load_table

        if not is_data_path(self.dataset, base_dir):
            raise ValueError(f"dataset: {self.dataset!r} is neither a built-in dataset nor a "
                             f"data file; allowed: {', '.join(builtin)}, or a path to a .csv, "
                             ".parquet or .npy file")
        self._table = load_table(self.dataset, base_dir=base_dir, labels=self.labels,
                                 features=self.features, nan_policy=self.nan_policy)

    def _check_rows(self, n_rows: int) -> None:
        n_test = max(1, int(round(self.test_size * n_rows)))
        if self.n_samples is not None and self.n_samples > n_rows - n_test:
            raise ValueError(f"n_samples: {self.n_samples} exceeds the {n_rows - n_test} "
                             f"training rows of {self.dataset} (test_size {self.test_size:g})")
        if n_rows - n_test < 2:
            raise ValueError(f"dataset: {self.dataset} leaves {n_rows - n_test} training rows "
                             "after the test split; need at least 2")

    def provenance(self) -> dict:
        """The data file's path and SHA-256 (``Task.provenance``); {} for built-in data."""
        return {} if self._table is None else {"datasets": {"dataset": self._table.provenance()}}

    def dataset_name(self) -> str:
        """The dataset's name for labels: built-in name, or the data file's stem."""
        from pathlib import Path

        return self.dataset if self._table is None else Path(self.dataset).stem


BLOB_CENTERS = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])  # fixed for train AND test


def _toy(name: str):
    """A draw function (generator, n) -> (n, 2) for a scikit-learn toy generator, seeded from our
    stream.  Blob centres are fixed, so training and test data share them (unlike the two
    independent ``make_blobs`` calls criticised in research/literature.md Sec. 2b)."""
    from sklearn import datasets

    def draw(g: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        seed = int(g.integers(2**31 - 1))
        if name == "moons":
            return datasets.make_moons(n, noise=0.05, random_state=seed)
        if name == "circles":
            return datasets.make_circles(n, noise=0.05, factor=0.5, random_state=seed)
        return datasets.make_blobs(n, centers=BLOB_CENTERS, cluster_std=1.0, random_state=seed)

    return draw


TOY_DATASETS = ("moons", "circles", "blobs")


def vector_data(p: VectorParams, streams: Streams, draw_truth):
    """(real (R, n, d), test (R, m, d), sample_real or None, test labels (R, m) or None).

    ``draw_truth(generator, n) -> (X, labels or None)`` draws from the known truth.
    """
    if p.dataset in TOY_DATASETS:
        toy, scale = _toy(p.dataset), p.data_scale

        def draw_truth(g, n):
            X, labels = toy(g, n)
            return X * scale, labels
    if p.dataset == "synthetic" or p.dataset in TOY_DATASETS:
        gens = streams(0, Role.DATA)
        real = np.stack([draw_truth(g, p.n_samples)[0] for g in gens])
        tests = [draw_truth(g, p.n_test) for g in gens]
        test = np.stack([x for x, _ in tests])
        labels = None if tests[0][1] is None else np.stack([y for _, y in tests])

        def sample_real(n, rngs):
            return np.stack([draw_truth(g, n)[0] for g in rngs])

        return real, test, sample_real, labels
    if p._table is not None:
        table = p._table
        real, test, labels = vector_arrays(table.X, table.labels, n_features=p.n_features,
                                           n_samples=p.n_samples, test_size=p.test_size,
                                           streams=streams, data_scale=p.data_scale)
        return real, test, None, labels
    real, test, labels = vector_split(p.dataset, n_features=p.n_features,
                                      n_samples=p.n_samples, test_size=p.test_size,
                                      streams=streams, data_scale=p.data_scale)
    return real, test, None, labels


#: real-data learning curve (Def. 5): smallest subsample = this many times (n_features + 1)
CURVE_SMALLEST = 3


def vector_curve(metric: str, risk, n_real: int, smallest: int,
                 repeats: int) -> LearningCurve | None:
    """The task's real-data learning curve on subsamples of ``smallest`` .. ``n_real`` rows
    (``tasks.base.LearningCurve``), or None when the pool is too small for one."""
    sizes = curve_sizes(n_real, smallest)
    return LearningCurve(metric, risk, sizes, repeats) if sizes else None


N_EVAL = 300  #: held-out points (and synthetic samples) for the k-NN metrics


def sample_metrics(model, test: np.ndarray, labels: np.ndarray | None, streams: Streams,
                   iteration: int, enabled: bool = True, synthetic: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
    """k-NN precision / recall (and mode coverage with labels) of ``N_EVAL`` fresh samples of
    the model against ``N_EVAL`` held-out real points (Kynkäänniemi et al. 2019, k = 5), and
    ``tail_recall``: the recall of the 10% of those real points farthest from their mean in
    Mahalanobis distance (``tasks.base.tail_rows``; Def. 7).  ``synthetic`` (R, m, d): those
    samples if already drawn (``eval_sample``)."""
    if not enabled:
        return {}
    m = min(N_EVAL, test.shape[1])
    if synthetic is None:
        synthetic = eval_sample(model, test, streams, iteration)
    real = test[:, :m]
    tail = tail_rows(real, *reference_moments(np.asarray(real, dtype=float)))
    precision, recall, coverage, tail_recall = knn_precision_recall(
        real, synthetic, labels=None if labels is None else labels[:, :m], tail=tail)
    out = {"precision": precision, "recall": recall, "tail_recall": tail_recall}
    if coverage is not None:
        out["mode_coverage"] = coverage
    return out


def eval_sample(model, test: np.ndarray, streams: Streams, iteration: int) -> np.ndarray:
    """min(``N_EVAL``, test size) fresh samples of the model per replicate, (R, m, d), from the
    EVAL streams of ``iteration``."""
    return model.sample(min(N_EVAL, test.shape[1]), rngs=streams(iteration, Role.EVAL))
