"""Real datasets that ship inside scikit-learn (no download): wine, digits, diabetes.

Preprocessing (per replicate, so that replicates also sample the train/test split):

1. shuffle with the replicate's DATA stream and hold out ``test_size`` of the rows as the real
   test set (never trained on);
2. features: drop columns constant on the training split, standardise with training-split mean
   and standard deviation;
3. vector data (wine, digits): project on the first ``n_features`` principal components of the
   training split (scikit-learn PCA; no whitening).  Default: wine keeps all 13 dimensions,
   digits 10 of its 64 pixel dimensions;
4. regression (diabetes): standardised features plus an intercept column; the target is
   standardised with training-split statistics, so test loss is a fraction of target variance;
5. ``data_scale`` (default 1) multiplies the result -- the features (not the intercept column)
   and the regression target -- by a constant: the same data in other units (a test that
   verdicts do not depend on the data's units).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..rng import Role, Streams

__all__ = ["VECTOR_DATASETS", "REGRESSION_DATASETS", "load_raw", "vector_split", "vector_arrays",
           "regression_split", "regression_arrays"]

VECTOR_DATASETS = {"wine": 13, "digits": 10}  # name -> default n_features
REGRESSION_DATASETS = ("diabetes",)


@cache
def load_raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, p) and target (n,) of a scikit-learn bundled dataset."""
    from sklearn import datasets

    loader = {"wine": datasets.load_wine, "digits": datasets.load_digits,
              "diabetes": datasets.load_diabetes}[name]
    bunch = loader()
    return np.asarray(bunch.data, dtype=float), np.asarray(bunch.target, dtype=float)


def _split(n_rows: int, test_size: float, n_train: int | None, rng: np.random.Generator):
    perm = rng.permutation(n_rows)
    n_test = max(1, int(round(test_size * n_rows)))
    train, test = perm[n_test:], perm[:n_test]
    if n_train is not None:
        if n_train > len(train):
            raise ValueError(f"n_samples={n_train} exceeds the {len(train)} training rows available")
        train = train[:n_train]
    return train, test


def _check_scale(data_scale: float) -> None:
    if not (np.isfinite(data_scale) and data_scale > 0):
        raise ValueError(f"data_scale: must be a finite number > 0, got {data_scale!r}")


def _standardise(train: np.ndarray, test: np.ndarray):
    keep = train.std(0) > 0
    train, test = train[:, keep], test[:, keep]
    mean, std = train.mean(0), train.std(0)
    return (train - mean) / std, (test - mean) / std


def vector_split(name: str, *, n_features: int, n_samples: int | None, test_size: float,
                 streams: Streams, data_scale: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real training pool (R, n, n_features), real test set (R, m, n_features) and the test
    set's class labels (R, m) (wine cultivars, digit classes: the modes of Def. 6).

    ``data_scale`` (> 0) multiplies the features after standardisation and projection (units
    of the data); raises ``ValueError`` if it is not positive."""
    X, y = load_raw(name)
    return vector_arrays(X, y.astype(np.int64), n_features=n_features, n_samples=n_samples,
                         test_size=test_size, streams=streams, data_scale=data_scale)


def vector_arrays(X: np.ndarray, labels: np.ndarray | None, *, n_features: int | None,
                  n_samples: int | None, test_size: float, streams: Streams,
                  data_scale: float = 1.0):
    """Steps 1-3 and 5 of the module docstring on any table ``X`` (n_rows, p) with optional
    class ``labels`` (n_rows,): (train (R, n, k), test (R, m, k), test labels (R, m) or None),
    k = ``n_features`` principal components (None: every non-constant column).

    Raises ``ValueError`` for a non-positive ``data_scale`` or ``n_samples`` above the training
    rows."""
    _check_scale(data_scale)
    from sklearn.decomposition import PCA

    trains, tests, test_labels = [], [], []
    for g in streams(0, Role.DATA):
        tr, te = _split(len(X), test_size, n_samples, g)
        Xtr, Xte = _standardise(X[tr], X[te])
        if n_features is not None and n_features < Xtr.shape[1]:
            pca = PCA(n_components=n_features, svd_solver="full").fit(Xtr)
            Xtr, Xte = pca.transform(Xtr), pca.transform(Xte)
        trains.append(Xtr * data_scale)
        tests.append(Xte * data_scale)
        if labels is not None:
            test_labels.append(labels[te])
    return (np.stack(trains), np.stack(tests),
            np.stack(test_labels) if labels is not None else None)


def regression_split(name: str, *, n_samples: int | None, test_size: float, streams: Streams,
                     data_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[1, x_1..x_p, y]``: training pool (R, n, p + 2) and test set (R, m, p + 2).

    ``data_scale`` (> 0) multiplies the standardised features and target (not the intercept
    column); raises ``ValueError`` if it is not positive."""
    return regression_arrays(*load_raw(name), n_samples=n_samples, test_size=test_size,
                             streams=streams, data_scale=data_scale)


def regression_arrays(X: np.ndarray, y: np.ndarray, *, n_samples: int | None, test_size: float,
                      streams: Streams, data_scale: float = 1.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Step 4 of the module docstring on any features ``X`` (n_rows, p) and target ``y``
    (n_rows,): rows ``[1, x.., y]`` of the training pool (R, n, k + 2) and test set
    (R, m, k + 2), k = the non-constant feature columns."""
    _check_scale(data_scale)
    trains, tests = [], []
    for g in streams(0, Role.DATA):
        tr, te = _split(len(X), test_size, n_samples, g)
        Xtr, Xte = _standardise(X[tr], X[te])
        mu, sd = y[tr].mean(), y[tr].std()
        if not sd > 0:
            raise ValueError("target: constant on the training split; a regression needs a "
                             "target that varies")
        rows = [np.column_stack([np.ones(len(a)), a * data_scale, (t - mu) / sd * data_scale])
                for a, t in ((Xtr, y[tr]), (Xte, y[te]))]
        trains.append(rows[0])
        tests.append(rows[1])
    return np.stack(trains), np.stack(tests)
