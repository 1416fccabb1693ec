"""The batched SPD factorisation's one-by-one shortcut gives LAPACK's bits (``families._linalg``)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from modelcollapse.families._linalg import _cholesky_inverse, spd_factor


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_by_one_shortcut_gives_the_bits_of_cholesky_and_inv(seed):
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.lognormal(0.0, 30.0, 200_000), rng.random(1000) * 1e-300,
                        [5e-324, 1e-310, 2.2e-308, 1.0, 1.7e308]])  # subnormal to huge
    S = s.reshape(-1, 1, 1)
    L, P = _cholesky_inverse(S)
    with threadpool_limits(limits=1), np.errstate(over="ignore"):
        want_L, want_P = np.linalg.cholesky(S), np.linalg.inv(S)
    assert _bits(L) == _bits(want_L) and _bits(P) == _bits(want_P)
    f = spd_factor(S)
    assert not f.singular.any() or (s[f.singular] < 1e-290).all()


def test_a_non_positive_one_by_one_matrix_takes_the_exact_path():
    """A zero (or negative) variance is not Cholesky-factorable: the batch goes through eigh,
    as before the shortcut, and the matrix is flagged singular."""
    S = np.array([1.0, 0.0, 4.0]).reshape(-1, 1, 1)
    with pytest.raises(np.linalg.LinAlgError):
        _cholesky_inverse(S)
    f = spd_factor(S)
    assert f.singular.tolist() == [False, True, False]
    assert f.logdet[1] == -np.inf and f.precision[1, 0, 0] == 0.0
    np.testing.assert_allclose(f.root[[0, 2], 0, 0], [1.0, 2.0])
