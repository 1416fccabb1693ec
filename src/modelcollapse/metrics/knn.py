"""k-nearest-neighbour precision and recall of generated samples (Kynkäänniemi et al. 2019,
"Improved precision and recall metric for assessing generative models", NeurIPS; the metric
Alemohammad et al. 2023 use with k = 5).

Each point's neighbourhood is the ball reaching its k-th nearest neighbour within its own set.
*Precision*: the share of synthetic samples inside some real point's ball (the rest lie off the
real manifold -- hallucinated data, Def. 8).  *Recall*: the share of real points inside some
synthetic sample's ball (real data the model no longer produces, Defs. 6-7).  With class labels
of the real points, *mode coverage* is the share of classes of which at least ``min_recall`` of
the points are recalled.
"""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric

__all__ = ["knn_precision_recall"]


def _radii(D: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point to its k-th nearest neighbour in its own set (D: square)."""
    k = min(k, D.shape[0] - 1)
    return np.partition(D, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0, None)


@metric(precision=MetricInfo(True, "fraction", "k-NN precision: synthetic samples on the real "
                            "manifold (1 - hallucinated share)", "fraction"),
        recall=MetricInfo(True, "fraction", "k-NN recall: held-out real points the model covers",
                          "fraction"),
        mode_coverage=MetricInfo(True, "fraction", "real modes (outcomes, classes, components) "
                                 "still produced", "fraction"),
        tail_recall=MetricInfo(True, "fraction", "k-NN recall of the 10% held-out real points "
                               "farthest from their mean (Mahalanobis)", "fraction"))
def knn_precision_recall(real: np.ndarray, synthetic: np.ndarray, *, k: int = 5,
                         labels: np.ndarray | None = None, min_recall: float = 0.1,
                         tail: np.ndarray | None = None):
    """Precision, recall and mode coverage per replicate.

    Parameters
    ----------
    real : ndarray of shape (R, m, d) -- held-out real points
    synthetic : ndarray of shape (R, s, d) -- samples of the model
    k : int -- neighbourhood size
    labels : ndarray of shape (R, m) of int, optional -- classes (modes) of the real points
    tail : ndarray of shape (R, k_tail) of int, optional -- rows of ``real`` that form its tail;
        when given, a fourth value is returned: the recall of those rows only (Def. 7)

    Returns
    -------
    precision, recall : ndarrays of shape (R,) in [0, 1]
    coverage : ndarray of shape (R,) in [0, 1], or None without labels
    tail_recall : ndarray of shape (R,) in [0, 1], only with ``tail``
    """
    R = real.shape[0]
    precision, recall = np.empty(R), np.empty(R)
    coverage = None if labels is None else np.empty(R)
    tail_recall = np.empty(R)
    for r in range(R):
        x, y = real[r], synthetic[r]
        real_radius = _radii(_sq_dist(x, x), k)
        syn_radius = _radii(_sq_dist(y, y), k)
        cross = _sq_dist(y, x)                                   # (s, m)
        precision[r] = (cross <= real_radius[None, :]).any(1).mean()
        recalled = (cross <= syn_radius[:, None]).any(0)          # (m,)
        recall[r] = recalled.mean()
        if labels is not None:
            classes = np.unique(labels[r])
            coverage[r] = np.mean([recalled[labels[r] == c].mean() >= min_recall
                                   for c in classes])
        if tail is not None:
            tail_recall[r] = recalled[tail[r]].mean()
    if tail is not None:
        return precision, recall, coverage, tail_recall
    return precision, recall, coverage
