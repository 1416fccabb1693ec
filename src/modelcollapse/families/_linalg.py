"""Batched symmetric positive-definite algebra with an exact fallback for degenerate matrices.

Batched ``eigh`` of many small matrices costs ~7 us per matrix; Cholesky + inverse ~1 us.  The
fast path is taken for matrices whose condition-number bound tr(S) tr(S^-1) >= cond(S) is below
``1 / rel_tol``; the others (near-singular, singular, or where Cholesky fails) go through
``eigh``, where the singularity test  lambda_min <= rel_tol * lambda_max  is exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPDFactor", "spd_factor"]


class SPDFactor:
    """Factorisation of a batch of symmetric PSD matrices S, shape (R, d, d).

    Attributes
    ----------
    root : (R, d, d) with root @ root^T = S (Cholesky factor, or V sqrt(Lambda) on the eigen path)
    precision : (R, d, d), S^-1 where S is non-singular, else the pseudo-inverse
    logdet : (R,), log det S; -inf where singular
    singular : (R,) bool, lambda_min <= rel_tol * lambda_max (eigen path only)
    """

    def __init__(self, root, precision, logdet, singular):
        self.root, self.precision, self.logdet, self.singular = root, precision, logdet, singular


def _eigen(S: np.ndarray, rel_tol: float):
    vals, vecs = np.linalg.eigh(S)
    # round-off leaves "zero" eigenvalues at +-1e-18: make them exactly 0
    vals = np.where(vals <= rel_tol * vals[:, -1:], 0.0, vals)
    singular = vals[:, 0] <= 0.0
    with np.errstate(over="ignore"):  # 1 / a subnormal eigenvalue: inf, as inv gives
        inv_vals = np.where(vals > 0, 1.0 / np.where(vals > 0, vals, 1.0), 0.0)
    precision = (vecs * inv_vals[:, None, :]) @ np.swapaxes(vecs, 1, 2)
    with np.errstate(divide="ignore"):
        logdet = np.log(vals).sum(1)
    root = vecs * np.sqrt(vals)[:, None, :]
    return root, precision, logdet, singular


def _cholesky_inverse(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.cholesky(S)`` and ``np.linalg.inv(S)`` of finite S (R, d, d); raises
    ``LinAlgError`` as they do.  For d = 1 (all entries > 0) these are sqrt(s) and 1 / s, the
    bits LAPACK gives (both correctly rounded; checked in tests), by two array operations
    instead of R LAPACK calls."""
    if S.shape[-1] == 1 and (S > 0).all():
        with np.errstate(over="ignore"):  # 1 / subnormal: inf, as inv gives
            return np.sqrt(S), 1.0 / S
    return np.linalg.cholesky(S), np.linalg.inv(S)


def spd_factor(S: np.ndarray, rel_tol: float = 1e-12) -> SPDFactor:
    """Factorise a batch of symmetric PSD matrices (fast path + exact fallback, see module)."""
    R = S.shape[0]
    fast = np.zeros(R, dtype=bool)
    if np.isfinite(S).all():
        try:
            L, P = _cholesky_inverse(S)
            with np.errstate(invalid="ignore", over="ignore"):
                bound = np.trace(S, axis1=1, axis2=2) * np.trace(P, axis1=1, axis2=2)
            fast = np.isfinite(bound) & (bound > 0) & (bound < 1.0 / rel_tol)
        except np.linalg.LinAlgError:
            pass
    if fast.all():
        logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1)
        return SPDFactor(L, P, logdet, np.zeros(R, dtype=bool))
    slow = ~fast
    S_slow = np.nan_to_num(S[slow], nan=0.0, posinf=0.0, neginf=0.0)
    root_s, prec_s, logdet_s, sing_s = _eigen(S_slow, rel_tol)
    root = np.empty_like(S)
    precision = np.empty_like(S)
    logdet = np.empty(R)
    singular = np.zeros(R, dtype=bool)
    if fast.any():
        root[fast], precision[fast] = L[fast], P[fast]
        logdet[fast] = 2.0 * np.log(np.diagonal(L[fast], axis1=1, axis2=2)).sum(1)
    root[slow], precision[slow], logdet[slow], singular[slow] = root_s, prec_s, logdet_s, sing_s
    return SPDFactor(root, precision, logdet, singular)
