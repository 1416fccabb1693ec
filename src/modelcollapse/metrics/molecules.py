"""Metrics of generated molecular conformations (heavy-atom coordinates in angstrom): aligned
RMSD, GeoDiff's coverage and matching (Xu et al. 2022), local geometry and diversity; used by
the diffusion task."""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric, register_metric

__all__ = ["kabsch_rmsd", "coverage_matching", "mean_pairwise", "bond_length_error"]

# the diffusion family's held-out loss (``ConformerDiffusion.score_samples``)
register_metric("test_denoising_loss", MetricInfo(
    False, "squared noise units per atom", "DDPM denoising loss (epsilon-MSE, squared norm of "
    "the unit-variance noise error per atom, fixed timesteps and noise) of held-out real "
    "conformers; a loss, not a log-likelihood", "mean"))


def kabsch_rmsd(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """RMSD after optimal superposition by a proper rotation and translation.

    P, Q : arrays (..., n, 3) (broadcast against each other)  ->  (...,) in the coordinates'
    unit.  Kabsch 1976: with centred P, Q and the SVD P^T Q = U S V^T, the best rotation maps P
    to P U D V^T, D = diag(1, 1, sign det(U V^T)) (excludes reflections); the RMSD is computed
    from the residuals (not from the closed form |P|^2 + |Q|^2 - 2 tr S, which loses precision
    near 0).
    """
    P = np.asarray(P, np.float64)
    Q = np.asarray(Q, np.float64)
    P, Q = np.broadcast_arrays(P - P.mean(-2, keepdims=True), Q - Q.mean(-2, keepdims=True))
    U, _, Vt = np.linalg.svd(np.swapaxes(P, -1, -2) @ Q)             # (..., 3, 3)
    d = np.sign(np.linalg.det(U @ Vt))
    d = np.where(d == 0, 1.0, d)
    U = U.copy()
    U[..., :, 2] *= d[..., None]
    residual = P @ U @ Vt - Q                                        # (..., n, 3)
    return np.sqrt((residual ** 2).sum((-1, -2)) / P.shape[-2])


@metric(cov_r=MetricInfo(True, "fraction", "COV-R: reference conformers with a generated one "
                         "within cov_threshold aligned RMSD (mean over molecules)", "fraction"),
        mat_r=MetricInfo(False, "angstrom", "MAT-R: mean over reference conformers of the "
                         "minimum aligned RMSD to a generated one (mean over molecules)", "mean"),
        cov_p=MetricInfo(True, "fraction", "COV-P: generated conformers within cov_threshold "
                         "of a reference conformer (precision; mean over molecules)", "fraction"),
        tail_cov_r=MetricInfo(True, "fraction", "coverage of each molecule's most isolated "
                              "reference conformers at tail_threshold (Def. 7)", "fraction"))
def coverage_matching(rmsd: np.ndarray, threshold: float) -> dict[str, float]:
    """COV-R, MAT-R, COV-P of one molecule from its (G generated, C reference) RMSD matrix
    (Xu et al. 2022 eqs. 15-16): ``cov_r`` = share of references with min_g RMSD <= threshold,
    ``mat_r`` = mean over references of min_g RMSD (the RMSD's unit; nan if a reference has no
    finite RMSD), ``cov_p`` = share of generated conformers with min_c RMSD <= threshold.
    Non-finite RMSDs count as infinitely far."""
    r = np.where(np.isfinite(rmsd), rmsd, np.inf)
    best_ref = r.min(0)                                              # (C,)
    best_gen = r.min(1)                                              # (G,)
    return {"cov_r": float(np.mean(best_ref <= threshold)),
            "mat_r": float(np.mean(best_ref)) if np.isfinite(best_ref).all() else np.nan,
            "cov_p": float(np.mean(best_gen <= threshold))}


@metric(diversity=MetricInfo(None, "angstrom", "mean pairwise aligned RMSD among a molecule's "
                             "generated conformers (mean over molecules)", "mean"),
        diversity_ratio=MetricInfo(None, "ratio", "diversity of the generated conformers / that "
                                   "of the reference conformers (sums over molecules)", "ratio"))
def mean_pairwise(rmsd: np.ndarray) -> float:
    """Mean of the off-diagonal upper triangle of a square (n, n) RMSD matrix; 0 for n < 2."""
    i, j = np.triu_indices(rmsd.shape[0], 1)
    return float(rmsd[i, j].mean()) if len(i) else 0.0


@metric(bond_length_error=MetricInfo(False, "angstrom", "mean absolute deviation of generated "
                                     "bond lengths from the reference conformers' mean length "
                                     "(mean over molecules)", "mean"))
def bond_length_error(coords: np.ndarray, i: np.ndarray, j: np.ndarray,
                      reference: np.ndarray) -> float:
    """Mean |d_b - reference_b| over conformers and bonds b = (i_b, j_b), where d_b is the
    length of bond b in each conformer: coords (G, n, 3), i, j, reference (bonds,) -> float,
    in the coordinates' unit."""
    d = np.linalg.norm(coords[:, i] - coords[:, j], axis=-1)           # (G, bonds)
    return float(np.abs(d - reference).mean())
