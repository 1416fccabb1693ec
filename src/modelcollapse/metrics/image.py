"""Metrics of generated images (rows of pixels in [0, 1]): variance kept and class coverage by a
real-data classifier; used by the vae task (k-NN precision / recall are in ``metrics.knn``)."""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric

__all__ = ["pixel_variance_ratio", "class_coverage", "classifier_features", "MIN_SHARE"]

MIN_SHARE = 0.1  #: a class is covered when it receives >= 10% of its expected share of samples


@metric(pixel_variance_ratio=MetricInfo(None, "ratio", "total pixel variance of samples / of "
                                        "held-out images", "ratio"))
def pixel_variance_ratio(samples: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Total per-pixel variance of samples / of test images: (R, s, D), (R, m, D) -> (R,)."""
    return samples.var(1).sum(-1) / test.var(1).sum(-1)


@metric(class_coverage=MetricInfo(True, "fraction", "classes receiving >= 10% of their expected "
                                  "share of samples (a real-data classifier)", "fraction"))
def class_coverage(classifiers, samples: np.ndarray, train_labels: np.ndarray) -> np.ndarray:
    """Share of classes whose share of the samples is >= ``MIN_SHARE`` x their share of the
    training pool, per replicate: R fitted classifiers (``predict``), (R, s, D), (R, n) -> (R,).
    Samples with non-finite pixels count as no class."""
    out = np.empty(len(classifiers))
    for r, clf in enumerate(classifiers):
        finite = np.isfinite(samples[r]).all(1)
        predicted = clf.predict(samples[r][finite]) if finite.any() else np.empty(0, np.int64)
        classes, counts = np.unique(train_labels[r], return_counts=True)
        expected = counts / counts.sum()
        got = np.array([(predicted == c).sum() for c in classes]) / len(samples[r])
        out[r] = np.mean(got >= MIN_SHARE * expected)
    return out


def classifier_features(clf, X: np.ndarray) -> np.ndarray:
    """Hidden-layer activations of a fitted scikit-learn ``MLPClassifier`` (ReLU), (n, D) ->
    (n, hidden units of its last hidden layer); non-finite pixels are set to 0 and pixels
    clipped to [0, 1] first.  The feature space of the images' k-NN metrics."""
    h = np.clip(np.nan_to_num(X, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0.0)
    return h
