"""Shared helpers of the closed-form theory: iteration arrays, series, special functions.

numpy (and the standard library's ``math.lgamma``) only.  Every public theory function takes
0-based model-fitting iterations ``t`` (iteration 0 is fitted on real data only, so the
literature's generation / "n" / "G" is ``t + 1``) and returns a float for a scalar ``t`` and an
array of the same shape for an array ``t``.
"""

from __future__ import annotations

import math

import numpy as np

PI2_OVER_6 = math.pi**2 / 6  #: sum_{i>=1} 1/i^2 = zeta(2)


def iterations(t) -> tuple[np.ndarray, bool]:
    """``t`` as an int64 array of 0-based iterations (>= 0) and whether it was a scalar."""
    arr = np.asarray(t)
    if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"iterations must be integers, got {t!r}")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"iterations are 0-based and must be >= 0, got {t!r}")
    return arr, arr.ndim == 0


def output(values, scalar: bool):
    """A float for a scalar input, else the array."""
    values = np.asarray(values, dtype=float)
    return float(values) if scalar else values


def harmonic2(k: np.ndarray) -> np.ndarray:
    """sum_{i=1}^{k} 1/i^2 for an integer array k >= 0 (0 for k = 0), exact partial sums."""
    k = np.asarray(k, dtype=np.int64)
    kmax = int(k.max()) if k.size else 0
    partial = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, kmax + 1, dtype=float) ** 2)])
    return partial[k]


def recursion_table(t: np.ndarray, step, init):
    """Run ``state_{s+1} = step(s, state_s)`` from ``state_0 = init`` up to max(t); return the
    list of states (tuples of floats) indexed by iteration."""
    tmax = int(t.max()) if t.size else 0
    states = [init]
    for s in range(tmax):
        states.append(step(s, states[-1]))
    return states


def chi_mean(k) -> np.ndarray:
    """E[sqrt(chi^2_k)] = sqrt(2) Gamma((k+1)/2) / Gamma(k/2), the chi-distribution mean (k > 0)."""
    k = np.asarray(k, dtype=float)
    flat = [math.sqrt(2.0) * math.exp(math.lgamma((x + 1) / 2) - math.lgamma(x / 2))
            for x in k.ravel()]
    return np.asarray(flat, dtype=float).reshape(k.shape)


def _shift(x: np.ndarray, order: int):
    """Recurrence part of the polygamma functions: shift x up to >= 10."""
    x = np.asarray(x, dtype=float).copy()
    if (x <= 0).any():
        raise ValueError("polygamma arguments must be > 0")
    acc = np.zeros_like(x)
    while (x < 10).any():
        small = x < 10
        if order == 0:
            acc[small] -= 1.0 / x[small]
        elif order == 1:
            acc[small] += 1.0 / x[small] ** 2
        else:
            acc[small] -= 2.0 / x[small] ** 3
        x[small] += 1.0
    return x, acc


def digamma(x) -> np.ndarray:
    """psi(x) = d/dx ln Gamma(x) for x > 0 (recurrence to x >= 10, then the asymptotic series;
    absolute error < 1e-12)."""
    x, acc = _shift(x, 0)
    x2 = 1.0 / x**2
    series = (np.log(x) - 0.5 / x
              - x2 * (1 / 12 - x2 * (1 / 120 - x2 * (1 / 252 - x2 * (1 / 240 - x2 * (1 / 132))))))
    return acc + series


def trigamma(x) -> np.ndarray:
    """psi'(x) for x > 0 (recurrence + asymptotic series; absolute error < 1e-12)."""
    x, acc = _shift(x, 1)
    x2 = 1.0 / x**2
    series = 1 / x + x2 / 2 + (x2 / x) * (1 / 6 - x2 * (1 / 30 - x2 * (1 / 42 - x2 * (1 / 30))))
    return acc + series


def tetragamma(x) -> np.ndarray:
    """psi''(x) for x > 0 (recurrence + asymptotic series; absolute error < 1e-12)."""
    x, acc = _shift(x, 2)
    x2 = 1.0 / x**2
    series = -x2 - x2 / x - x2**2 * (0.5 - x2 * (1 / 6 - x2 * (1 / 6 - x2 * (3 / 10))))
    return acc + series


def ratio_of_means(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """mean(a) / mean(b) over paired replicates and its delta-method standard error."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    ma, mb = a.mean(), b.mean()
    r = ma / mb
    cov = np.cov(a, b)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mb * mb)
    return float(r), float(math.sqrt(max(var, 0.0)))
