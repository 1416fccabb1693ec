"""Block draws (``rng.Batch``): one call for all replicates, each replicate's numbers a function of
its own index only; the distributions of the fixed-consumption transforms; the linear-regression
family's block-drawn sufficient statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelcollapse.families.linear_regression import LinearRegression
from modelcollapse.rng import Batch, Role, Streams


def _draws(streams: Streams, t: int = 3, role: Role = Role.SAMPLE):
    b = streams.batch(t, role)
    return b.normal((2, 3)), b.chisquare(7.5), b.raw(5), b.gamma(0.4, 2)


@pytest.mark.parametrize("subset", [[0], [5], [9, 2, 3], [1, 3, 5, 7], [8, 9]])
def test_replicate_values_do_not_depend_on_the_batch(subset):
    """Alone, in the full batch, in an unsorted or gappy subset: the same numbers per replicate."""
    full = _draws(Streams(11, range(10)))
    part = _draws(Streams(11, subset))
    via_subset = _draws(Streams(11, range(10)).subset(subset))
    for a, b, c in zip(full, part, via_subset):
        np.testing.assert_array_equal(a[subset], b)
        np.testing.assert_array_equal(b, c)


def test_draws_differ_by_draw_iteration_role_seed_and_replicate():
    s = Streams(0, range(4))
    b = s.batch(1, Role.SAMPLE)
    first, second = b.raw(8), b.raw(8)
    assert not np.array_equal(first, second)  # draw j = 0, 1 of the batch
    assert np.array_equal(first, s.batch(1, Role.SAMPLE).raw(8))  # a new batch starts again
    others = [s.batch(2, Role.SAMPLE).raw(8), s.batch(1, Role.FIT).raw(8),
              Streams(1, range(4)).batch(1, Role.SAMPLE).raw(8)]
    for other in others:
        assert not np.any(other == first)
    assert len(np.unique(first)) == first.size  # replicates' blocks are disjoint
    # not the per-replicate generator stream of the same (iteration, role)
    gen_words = np.stack([g.bit_generator.random_raw(8) for g in s(1, Role.SAMPLE)])
    assert not np.any(gen_words == first)


def test_words_per_replicate_fix_the_block():
    """The block is ceil(words / 4) counters per replicate: a prefix of a longer draw of the same
    block size, and replicate r's block follows replicate r - 1's."""
    s = Streams(2, range(3))
    eight, seven = s.batch(0, Role.DATA).raw(8), s.batch(0, Role.DATA).raw(7)
    np.testing.assert_array_equal(eight[:, :7], seven)
    one_call = Streams(2, [0]).batch(0, Role.DATA).raw(24)  # replicate 0, blocks 0..5
    np.testing.assert_array_equal(one_call[0, 8:16], eight[1])
    np.testing.assert_array_equal(one_call[0, 16:24], eight[2])


def test_normal_moments_and_independence():
    s = Streams(5, range(40_000))
    z = s.batch(0, Role.SAMPLE).normal(5)  # (R, 5)
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(z.ravel())) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z.ravel())) < 5 * np.sqrt(24 / n)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4
    # independent across neighbouring replicates and within a replicate's block
    se = 5 / np.sqrt(len(z))
    assert abs(np.corrcoef(z[:-1, 0], z[1:, 0])[0, 1]) < se
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < se
    assert abs(np.corrcoef(z[:, 4], s.batch(1, Role.SAMPLE).normal(5)[:, 4])[0, 1]) < se


@pytest.mark.parametrize("df", [1.0, 2.5, 90.0, 5000.0])
def test_chisquare_distribution(df):
    c = Streams(9, range(50_000)).batch(4, Role.SAMPLE).chisquare(df)
    assert c.min() > 0
    assert abs(c.mean() - df) < 5 * np.sqrt(2 * df / len(c))
    assert stats.kstest(c, "chi2", args=(df,)).pvalue > 1e-4


def test_gamma_fallback_is_exact():
    """Where every Marsaglia-Tsang proposal is rejected the inverse CDF gives the value: with a
    tiny shape the boost path and the fallback both run; the law is still Gamma(a)."""
    g = Streams(3, range(60_000)).batch(0, Role.SAMPLE).gamma(0.3)
    assert stats.kstest(g, "gamma", args=(0.3,)).pvalue > 1e-4


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="df must be > 0"):
        Streams(0, range(2)).batch(0, Role.SAMPLE).chisquare(0)
    with pytest.raises(ValueError, match="64-bit counter"):
        Streams(0, [2**62]).batch(0, Role.SAMPLE).raw(64)


def test_batch_offers_the_generators():
    s = Streams(0, range(3))
    b = s.batch(2, Role.SAMPLE)
    assert isinstance(b, Batch) and len(b) == 3
    np.testing.assert_array_equal([g.random() for g in b.generators],
                                  [g.random() for g in s(2, Role.SAMPLE)])


def _fitted(R: int, n: int, d: int, noise: float | None = 1.0) -> LinearRegression:
    rng = np.random.default_rng(0)
    design = np.broadcast_to(rng.standard_normal((n, d)), (R, n, d)).copy()
    model = LinearRegression(design, noise_variance=noise)
    # the same fit everywhere; small coefficients, so that y^T y is mostly noise (a chi-square
    # one degree of freedom off is then many standard errors off)
    y = design @ (0.01 * np.arange(1.0, d + 1)) + rng.standard_normal(n)
    model.fit(np.concatenate([design, y[..., None]], -1))
    return model


@pytest.mark.parametrize("n", [40, 3])  # n < d: the singular-design fallback (rows drawn)
def test_block_statistics_have_the_law_of_the_sample(n):
    """E[X^T y] = G c and E[y^T y] = c^T G c + n sigma^2 for block-drawn statistics; a chi-square
    with one degree of freedom too many (or the noise left out) is many standard errors off."""
    R, d = 20_000, 4
    model = _fitted(R, n, d)
    got = model.sample_statistics(n, rngs=Streams(1, range(R)).batch(1, Role.SAMPLE))
    X = model.design[0, np.arange(n) % n]
    G, c, s2 = X.T @ X, model.coef_[0], model.noise_variance_[0]
    xty_se = np.sqrt(s2 * np.diag(G) / R)
    assert np.all(np.abs(got["xty"].mean(0) - G @ c) < 5 * xty_se)
    if n >= d:  # X^T y = G c + sigma L z: L^-1 (X^T y - G c) / sigma is standard normal
        z = np.linalg.solve(np.linalg.cholesky(G), (got["xty"] - G @ c).T).T / np.sqrt(s2)
        assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4
    yty = got["yty"]
    assert abs(yty.mean() - (c @ G @ c + n * s2)) < 5 * yty.std() / np.sqrt(R)
    assert np.array_equal(got["count"], np.full(R, float(n)))


def test_block_rows_equal_block_statistics_in_law():
    """``sample`` with a Batch: labels X c + sigma z with standard normal z."""
    R, n, d = 5_000, 30, 3
    model = _fitted(R, n, d, noise=2.0)
    rows = model.sample(n, rngs=Streams(4, range(R)).batch(0, Role.SAMPLE))
    resid = (rows[..., -1] - (rows[..., :-1] @ model.coef_[0])) / np.sqrt(2.0)
    assert stats.kstest(resid.ravel(), "norm").pvalue > 1e-4
    np.testing.assert_array_equal(rows[..., :-1], model.design)
