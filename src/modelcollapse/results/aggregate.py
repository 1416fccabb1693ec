"""Mergeable accumulators over replicate chains: analyses whose memory does not grow with seeds.

The engine produces, per (task, paradigm) unit and metric, arrays of shape
``(n_iterations, R)`` -- one column per replicate chain (seed).  The accumulators here are fed
such arrays **block by block** (any number of columns at a time) and can be **merged**, so a
unit of 10^6 chains is summarised in memory proportional to ``n_iterations`` (or
``n_iterations^2`` for a covariance), never to ``n_seeds``; blocks computed by different
workers (processes, Ray) are merged afterwards.

Everything takes a ``(p, R)`` array: ``p`` *features* per seed (the iterations of a curve, or
a few derived per-seed values such as ``last - first``), ``R`` seeds (columns).  A 1-d array of
shape ``(R,)`` is one feature.  Values are float64 (converted).

=====================  ============================================================================
accumulator            what it holds; exact or approximate
=====================  ============================================================================
``CurveMoments``       count, mean ``(p,)`` and covariance ``(p, p)`` (or the variances only) of the
                       per-seed vectors over seeds whose every feature is finite; per feature also
                       the moments of its finite values and the counts of NaN, +inf, -inf.
                       **Exact** (to floating-point rounding: the merged result equals one pass
                       over all seeds to ~1e-13 relative whatever the block partition and order).
``QuantileSketch``     per-feature quantiles with relative value error <= ``relative_accuracy``
                       (a logarithmically bucketed histogram, DDSketch: Masson, Rim & Lee 2019).
                       Merging adds bucket counts, so the sketch is **bit-identical** for any
                       partition and order.
``PoissonBootstrap``   B bootstrap replicate means of the per-seed vectors with Poisson(1) weights
                       that depend only on (key, replicate index, b): identical weights for any
                       partition, so seed-level uncertainty of any smooth function of means.
                       **Approximate**: Monte Carlo error of an SE ~ 1 / sqrt(2 (B - 1)).
=====================  ============================================================================

Non-finite values are outcomes, not errors (a collapsed model's NLL is +inf): every
accumulator counts them per feature and states what its numbers mean then (each class's
docstring).

Why not a KLL sketch (Karnin, Lang & Liberty 2016, "Optimal quantile approximation in
streams", FOCS; Apache DataSketches): its compactions flip random coins from an unseeded
generator and its result depends on the merge order, so two runs of the same study would not
write the same bytes (the project's determinism rule); KLL's rank error (~1.3% at k = 200,
with probability 99%) is a probabilistic guarantee.  The bucketed sketch here is
deterministic, exactly mergeable and needs no dependency; its guarantee is in value
(relative), and every answer comes with the exact rank interval of its bucket
(``QuantileSketch.rank_bounds``), which is the rank error of that answer.

Helpers build the per-seed functionals the collapse profile needs that are not linear in the
curve: ``last_minus_first``, ``log_ratio``, ``log_ratio_curve``, ``block_means``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["CurveMoments", "QuantileSketch", "PoissonBootstrap", "merge_all",
           "last_minus_first", "log_ratio", "log_ratio_curve", "block_matrix", "block_means",
           "bootstrap_key", "poisson_weights"]


def _as_block(x, p: int | None = None, what: str = "x") -> np.ndarray:
    """``x`` as a float64 array of shape (p, R) (a 1-d array is one feature)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{what}: expected an array of shape (n_features, n_seeds), got "
                         f"shape {a.shape}")
    if p is not None and a.shape[0] != p:
        raise ValueError(f"{what}: {a.shape[0]} features per seed, this accumulator has {p}")
    return a


def merge_all(accumulators: Iterable):
    """Left fold of ``merge`` over accumulators, in the given order (give them in block order:
    moments and bootstrap sums are then the same bits however the blocks were computed).

    Raises
    ------
    ValueError
        If there are none, or two of them cannot be merged (different shape or settings).
    """
    it = iter(accumulators)
    try:
        out = next(it)
    except StopIteration:
        raise ValueError("merge_all: no accumulators to merge") from None
    for acc in it:
        out = out.merge(acc)
    return out


# -- moments ------------------------------------------------------------------------------------

def _chan(n_a, mean_a, m2_a, n_b, mean_b, m2_b, outer: bool):
    """Chan, Golub & LeVeque's pairwise update of (count, mean, centred second moments).

    n = n_a + n_b, delta = mean_b - mean_a, mean = mean_a + delta n_b / n,
    M2 = M2_a + M2_b + delta delta^T n_a n_b / n (Chan, Golub & LeVeque 1979, "Updating
    formulae and a pairwise algorithm for computing sample variances", Stanford CS report
    STAN-CS-79-773, eq. 2.1; 1983, Amer. Statist. 37: 242-247).  Welford's (1962) update is the
    case n_b = 1.  Works elementwise on arrays of counts (marginal moments) when ``outer`` is
    False and the counts are arrays.
    """
    n = n_a + n_b
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        frac = np.where(n > 0, n_b / np.where(n > 0, n, 1), 0.0)
        delta = mean_b - mean_a
        mean = mean_a + delta * frac
        weight = n_a * frac  # 0 when a is empty: b's moments exactly, even if delta^2 overflows
        if outer:
            cross = np.outer(delta, delta) * weight
        else:
            cross = delta * delta * weight
        m2 = m2_a + m2_b + np.where(weight > 0, cross, 0.0)
    return n, mean, m2


class CurveMoments:
    """Exact, mergeable count, mean and covariance of per-seed vectors (curves).

    Parameters
    ----------
    n_features : int
        p, features per seed: ``n_iterations`` for a curve, or the number of derived per-seed
        values.
    covariance : bool
        Keep the full (p, p) matrix of centred cross products (default) or only the p
        variances (memory 8 p^2 vs 8 p bytes).

    Meaning with non-finite values
    ------------------------------
    * ``n``, ``mean``, ``cov``: over the **complete** seeds, those whose p values are all
      finite (a well-defined covariance matrix over one set of seeds).  ``n_seen - n`` seeds
      had some NaN or infinite value.
    * ``marginal_count``, ``marginal_mean``, ``marginal_var``: per feature, over the seeds
      whose value of *that* feature is finite (a seed NaN at one iteration still counts at
      the others).
    * ``n_nan``, ``n_posinf``, ``n_neginf``: per feature, how many seeds had NaN, +inf, -inf.
    * ``t_summary()``: the per-feature numbers of the profile's one-sample t-test
      (``profile._stats.mean_test``): NaN seeds dropped, an infinite value makes the mean
      infinite (NaN if infinities of both signs).

    Determinism: the same blocks in the same order give the same bits when BLAS runs one
    thread (as the engine runs, ``threadpool_limits(1)``: a multi-threaded matrix product may
    round differently, and on a busy machine it is also ~20x slower).

    Method: within a block, the exact two-pass mean and centred cross products; blocks are
    combined by Chan, Golub & LeVeque's pairwise formula (``_chan``; Welford 1962 is its
    one-seed case).  ``a.merge(b)`` equals one pass over all seeds to rounding (~1e-13
    relative in tests) for any partition into blocks and any order; the same blocks merged in
    the same order give the same bits.

    Raises
    ------
    ValueError
        ``update`` with an array of the wrong shape; ``merge`` of accumulators of different p or
        ``covariance``.
    """

    def __init__(self, n_features: int, *, covariance: bool = True) -> None:
        p = int(n_features)
        if p < 1:
            raise ValueError(f"n_features: {n_features}; must be >= 1")
        self.p, self.covariance = p, bool(covariance)
        self.n_seen = 0
        self.n = 0
        self._mean = np.zeros(p)
        self._m2 = np.zeros((p, p) if self.covariance else p)
        self.marginal_count = np.zeros(p, dtype=np.int64)
        self._mmean = np.zeros(p)
        self._mm2 = np.zeros(p)
        self.n_nan = np.zeros(p, dtype=np.int64)
        self.n_posinf = np.zeros(p, dtype=np.int64)
        self.n_neginf = np.zeros(p, dtype=np.int64)

    # feeding
    def update(self, x) -> "CurveMoments":
        """Add a block of seeds: ``x`` of shape (p, R) (columns are seeds; (R,) if p = 1).
        Returns self."""
        x = _as_block(x, self.p)
        R = x.shape[1]
        if R == 0:
            return self
        finite = np.isfinite(x)
        self.n_seen += R
        if finite.all():  # the usual case: one set of moments serves both
            mean_b = x.mean(1)
            c = x - mean_b[:, None]
            m2_b = c @ c.T if self.covariance else np.einsum("ij,ij->i", c, c)
            self.n, self._mean, self._m2 = _chan(self.n, self._mean, self._m2, R, mean_b,
                                                 m2_b, self.covariance)
            self.marginal_count, self._mmean, self._mm2 = _chan(
                self.marginal_count, self._mmean, self._mm2, np.full(self.p, R), mean_b,
                np.diagonal(m2_b).copy() if self.covariance else m2_b, False)
            return self
        self.n_nan += np.isnan(x).sum(1)
        self.n_posinf += (x == np.inf).sum(1)
        self.n_neginf += (x == -np.inf).sum(1)
        # complete seeds: full moments
        complete = finite.all(0)
        xc = x[:, complete] if not complete.all() else x
        nb = xc.shape[1]
        if nb:
            mean_b = xc.mean(1)
            c = xc - mean_b[:, None]
            m2_b = c @ c.T if self.covariance else np.einsum("ij,ij->i", c, c)
            self.n, self._mean, self._m2 = _chan(self.n, self._mean, self._m2, nb, mean_b,
                                                 m2_b, self.covariance)
        # marginal moments per feature over its finite values
        cnt = finite.sum(1)
        z = np.where(finite, x, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mm = np.where(cnt > 0, z.sum(1) / np.where(cnt > 0, cnt, 1), 0.0)
        d = np.where(finite, x - mm[:, None], 0.0)
        mm2 = np.einsum("ij,ij->i", d, d)
        self.marginal_count, self._mmean, self._mm2 = _chan(
            self.marginal_count, self._mmean, self._mm2, cnt, mm, mm2, False)
        return self

    def merge(self, other: "CurveMoments") -> "CurveMoments":
        """A new accumulator holding the seeds of both (``self`` first).

        Raises
        ------
        ValueError
            Different ``n_features`` or ``covariance``.
        """
        if not isinstance(other, CurveMoments) or (other.p, other.covariance) != (
                self.p, self.covariance):
            raise ValueError("merge: CurveMoments with different n_features or covariance "
                             "setting cannot be merged")
        out = CurveMoments(self.p, covariance=self.covariance)
        out.n_seen = self.n_seen + other.n_seen
        out.n, out._mean, out._m2 = _chan(self.n, self._mean, self._m2, other.n, other._mean,
                                          other._m2, self.covariance)
        out.marginal_count, out._mmean, out._mm2 = _chan(
            self.marginal_count, self._mmean, self._mm2, other.marginal_count, other._mmean,
            other._mm2, False)
        out.n_nan = self.n_nan + other.n_nan
        out.n_posinf = self.n_posinf + other.n_posinf
        out.n_neginf = self.n_neginf + other.n_neginf
        return out

    # results
    @property
    def mean(self) -> np.ndarray:
        """(p,) mean over the complete seeds (NaN if there are none)."""
        return self._mean.copy() if self.n else np.full(self.p, np.nan)

    @property
    def cov(self) -> np.ndarray:
        """(p, p) sample covariance (divisor n - 1) over the complete seeds; NaN if n < 2.

        Raises
        ------
        ValueError
            If built with ``covariance=False``.
        """
        if not self.covariance:
            raise ValueError("cov: this CurveMoments keeps variances only (covariance=False)")
        return self._m2 / (self.n - 1) if self.n > 1 else np.full((self.p, self.p), np.nan)

    @property
    def var(self) -> np.ndarray:
        """(p,) sample variances (divisor n - 1) over the complete seeds; NaN if n < 2."""
        m2 = np.diagonal(self._m2) if self.covariance else self._m2
        return m2 / (self.n - 1) if self.n > 1 else np.full(self.p, np.nan)

    @property
    def se(self) -> np.ndarray:
        """(p,) standard error of the mean, sqrt(var / n), over the complete seeds."""
        return np.sqrt(self.var / self.n) if self.n > 1 else np.full(self.p, np.nan)

    @property
    def marginal_mean(self) -> np.ndarray:
        """(p,) per-feature mean of the finite values (NaN where there are none)."""
        return np.where(self.marginal_count > 0, self._mmean, np.nan)

    @property
    def marginal_var(self) -> np.ndarray:
        """(p,) per-feature sample variance of the finite values (NaN where fewer than 2)."""
        c = self.marginal_count
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 1, self._mm2 / np.where(c > 1, c - 1, 1), np.nan)

    def t_summary(self) -> dict[str, np.ndarray]:
        """Per feature, what ``profile._stats.mean_test`` computes from the per-seed values:
        ``n`` (seeds not NaN), ``mean`` (+inf / -inf when some value is infinite and all the
        infinite ones share a sign, NaN when both signs occur) and ``sd`` (sample standard
        deviation, divisor n - 1; NaN when the mean is not finite or n < 2).  Arrays (p,)."""
        n_inf = self.n_posinf + self.n_neginf
        n = self.marginal_count + n_inf
        mean = self.marginal_mean.copy()
        mean = np.where(self.n_posinf > 0, np.inf, mean)
        mean = np.where(self.n_neginf > 0, -np.inf, mean)
        mean = np.where((self.n_posinf > 0) & (self.n_neginf > 0), np.nan, mean)
        sd = np.where(n_inf > 0, np.nan, np.sqrt(self.marginal_var))
        return {"n": n, "mean": mean, "sd": sd}

    @property
    def nbytes(self) -> int:
        """Bytes held by the state arrays."""
        return sum(a.nbytes for a in self.to_arrays().values())

    # checkpoints
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The state as plain arrays (for ``np.savez``; no pickle); ``from_arrays`` inverts."""
        return {"p": np.array(self.p), "covariance": np.array(self.covariance),
                "n_seen": np.array(self.n_seen), "n": np.array(self.n), "mean": self._mean,
                "m2": self._m2, "marginal_count": self.marginal_count,
                "marginal_mean": self._mmean, "marginal_m2": self._mm2, "n_nan": self.n_nan,
                "n_posinf": self.n_posinf, "n_neginf": self.n_neginf}

    @classmethod
    def from_arrays(cls, a: dict) -> "CurveMoments":
        out = cls(int(a["p"]), covariance=bool(a["covariance"]))
        out.n_seen, out.n = int(a["n_seen"]), int(a["n"])
        out._mean, out._m2 = np.array(a["mean"], float), np.array(a["m2"], float)
        out.marginal_count = np.array(a["marginal_count"], np.int64)
        out._mmean, out._mm2 = np.array(a["marginal_mean"], float), np.array(a["marginal_m2"],
                                                                              float)
        for k in ("n_nan", "n_posinf", "n_neginf"):
            setattr(out, k, np.array(a[k], np.int64))
        return out


# -- derived per-seed functionals ---------------------------------------------------------------

def last_minus_first(x) -> np.ndarray:
    """(1, R): a curve's last minus first value per seed, from ``x`` of shape (T, R)
    (Defs. 1 for log-losses, 2, 6, 8: paired increases).  inf - inf is NaN."""
    x = _as_block(x)
    with np.errstate(invalid="ignore"):
        return x[-1:] - x[:1]


def log_ratio(num, den) -> np.ndarray:
    """log(num / den) elementwise, same shape as the (broadcast) inputs; -inf where num = 0 <
    den, +inf where den = 0 < num, NaN where the ratio is undefined or negative (no warnings).
    E.g. the per-seed log variance ratio last / first of Def. 4."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(num, float) / np.asarray(den, float))


def log_ratio_curve(x) -> np.ndarray:
    """(T, R): log(x_t / x_0) per seed, from ``x`` of shape (T, R) (Def. 4's l_t; non-finite
    values are kept as they come: the accumulators count them)."""
    x = _as_block(x)
    return log_ratio(x, x[:1])


def block_matrix(n_iterations: int, n_blocks: int) -> np.ndarray:
    """(K, T) averaging matrix of K blocks of consecutive iterations: block k averages
    iterations [e_k, e_{k+1}) with e = round(linspace(0, T, K + 1)) -- the blocks of the growth
    test (``profile.growth``), so ``block_matrix(T, K) @ x`` are its block means.

    Raises
    ------
    ValueError
        If not 1 <= n_blocks <= n_iterations.
    """
    T, K = int(n_iterations), int(n_blocks)
    if not 1 <= K <= T:
        raise ValueError(f"n_blocks: {n_blocks}; must be between 1 and n_iterations = {T}")
    edges = np.linspace(0, T, K + 1).round().astype(int)
    A = np.zeros((K, T))
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        A[k, a:b] = 1.0 / (b - a)
    return A


def block_means(x, n_blocks: int) -> np.ndarray:
    """(K, R): per-seed block means of a curve ``x`` of shape (T, R) (``block_matrix``)."""
    x = _as_block(x)
    return block_matrix(x.shape[0], n_blocks) @ x


# -- quantiles ----------------------------------------------------------------------------------

class QuantileSketch:
    """Mergeable per-feature quantiles with a relative value error (a log-bucketed histogram).

    Parameters
    ----------
    n_features : int
        p: one sketch per feature (e.g. per iteration of a curve).
    relative_accuracy : float
        alpha in (0, 1): every quantile returned is within a factor (1 +- alpha) of the exact
        one (default 0.01).

    Method (DDSketch: Masson, Rim & Lee 2019, "DDSketch: a fast and fully-mergeable quantile
    sketch with relative-error guarantees", PVLDB 12(12): 2195-2205).  With
    gamma = (1 + alpha) / (1 - alpha), a value x != 0 goes to bucket k = ceil(log_gamma |x|)
    of its sign (bucket k holds (gamma^(k-1), gamma^k]); zeros, +inf, -inf and NaN are counted
    apart.  The answer for bucket k is 2 gamma^k / (gamma + 1), within relative error alpha of
    every value in the bucket.  Counts are integers and the bucket is a function of the value
    alone, so a merge (adding counts) is **exact**: the sketch is the same for any partition of
    the seeds into blocks and any merge order.

    Guarantees, for q in [0, 1] and the n finite-or-infinite (non-NaN) values of a feature
    sorted x_(0) <= ... <= x_(n-1):

    * ``quantile(q)`` returns v with |v - x_(j)| <= alpha |x_(j)|, j = floor(q (n - 1)) (the
      ``method="lower"`` empirical quantile); exactly 0 or +-inf when x_(j) is;
    * ``rank_bounds(q)``: (lo, hi), fractions of n: every value in v's bucket, x_(j) included,
      has rank in [lo, hi) -- the rank error of that answer is at most hi - lo (for a density
      f, about 2 alpha |x| f(x)).

    Memory: 8 bytes per bucket between the smallest and largest |x| of each feature and sign,
    i.e. ~ log(max / min) / (2 alpha) buckets (115 per decade at alpha = 0.01).

    NaN values are counted (``n_nan``), never ranked.

    Raises
    ------
    ValueError
        A bad ``relative_accuracy``, an update of the wrong shape, a merge of sketches with
        different p or alpha, or q outside [0, 1].
    """

    MAX_TABLE = 1 << 22  # largest (sign, feature, bucket) table of one block's bincount

    def __init__(self, n_features: int, *, relative_accuracy: float = 0.01) -> None:
        a = float(relative_accuracy)
        if not 0.0 < a < 1.0:
            raise ValueError(f"relative_accuracy: {relative_accuracy}; must be in (0, 1)")
        p = int(n_features)
        if p < 1:
            raise ValueError(f"n_features: {n_features}; must be >= 1")
        self.p, self.alpha = p, a
        self.gamma = (1.0 + a) / (1.0 - a)
        self._log_gamma = math.log(self.gamma)
        # per feature and sign: (offset, counts) of a dense store of buckets offset..offset+len-1
        self._pos: list[tuple[int, np.ndarray]] = [(0, np.zeros(0, np.int64))] * p
        self._neg: list[tuple[int, np.ndarray]] = [(0, np.zeros(0, np.int64))] * p
        self.n_zero = np.zeros(p, np.int64)
        self.n_posinf = np.zeros(p, np.int64)
        self.n_neginf = np.zeros(p, np.int64)
        self.n_nan = np.zeros(p, np.int64)

    def _index(self, mag: np.ndarray) -> np.ndarray:
        """Bucket indices of magnitudes > 0 (as ``update`` computes them)."""
        return np.ceil(np.log(mag) * (1.0 / self._log_gamma)).astype(np.int64)

    @staticmethod
    def _add(store: tuple[int, np.ndarray], k: np.ndarray | None, other=None):
        """store + bucket indices ``k`` (or + another store)."""
        off, cnt = store
        if other is not None:
            o_off, o_cnt = other
            if len(o_cnt) == 0:
                return store
            lo, hi = o_off, o_off + len(o_cnt)
            add = o_cnt
        else:
            if len(k) == 0:
                return store
            lo, hi = int(k.min()), int(k.max()) + 1
            add = np.bincount(k - lo, minlength=hi - lo)
        if len(cnt):
            lo2, hi2 = min(lo, off), max(hi, off + len(cnt))
        else:
            lo2, hi2 = lo, hi
        out = np.zeros(hi2 - lo2, np.int64)
        if len(cnt):
            out[off - lo2:off - lo2 + len(cnt)] += cnt
        out[lo - lo2:hi - lo2] += add
        return lo2, out

    def update(self, x) -> "QuantileSketch":
        """Add a block of seeds: ``x`` of shape (p, R) ((R,) if p = 1).  Returns self."""
        x = _as_block(x, self.p)
        if x.shape[1] == 0:
            return self
        a = np.abs(x)
        ok = np.isfinite(a) & (a > 0)
        every = bool(ok.all())
        if not every:
            self.n_nan += np.isnan(x).sum(1)
            self.n_posinf += (x == np.inf).sum(1)
            self.n_neginf += (x == -np.inf).sum(1)
            self.n_zero += (x == 0).sum(1)
            a[~ok] = 1.0
        # bucket k = ceil(log|x| / log gamma), computed in place (one temporary)
        np.log(a, out=a)
        a *= 1.0 / self._log_gamma
        np.ceil(a, out=a)
        used = a if every else a[ok]
        if not used.size:
            return self
        lo = int(used.min())
        W = int(used.max()) + 1 - lo
        a -= lo
        neg = x < 0
        if 2 * self.p * W > self.MAX_TABLE:  # values spanning many decades: feature by feature
            for j in range(self.p):
                for stores, side in ((self._pos, ok[j] & ~neg[j]), (self._neg, ok[j] & neg[j])):
                    if side.any():
                        kk = a[j][side].astype(np.intp)
                        k0 = int(kk.min())
                        stores[j] = self._add(stores[j], None,
                                              (lo + k0, np.bincount(kk - k0)))
            return self
        # one bincount over (sign, feature, bucket) for the whole block
        a += (np.arange(self.p) * float(W))[:, None]
        np.add(a, float(self.p * W), out=a, where=neg)
        key = (a if every else a[ok]).astype(np.intp).ravel()
        counts = np.bincount(key, minlength=2 * self.p * W).reshape(2, self.p, W)
        for stores, c in ((self._pos, counts[0]), (self._neg, counts[1])):
            for j in np.flatnonzero(c.any(1)):
                nz = np.flatnonzero(c[j])
                a0, b0 = int(nz[0]), int(nz[-1]) + 1
                stores[j] = self._add(stores[j], None, (lo + a0, c[j, a0:b0]))
        return self

    def merge(self, other: "QuantileSketch") -> "QuantileSketch":
        """A new sketch holding the values of both (the same whatever the order).

        Raises
        ------
        ValueError
            Different ``n_features`` or ``relative_accuracy``.
        """
        if not isinstance(other, QuantileSketch) or (other.p, other.alpha) != (self.p,
                                                                               self.alpha):
            raise ValueError("merge: QuantileSketch with different n_features or "
                             "relative_accuracy cannot be merged")
        out = QuantileSketch(self.p, relative_accuracy=self.alpha)
        out._pos = [self._add(a, None, b) for a, b in zip(self._pos, other._pos)]
        out._neg = [self._add(a, None, b) for a, b in zip(self._neg, other._neg)]
        for k in ("n_zero", "n_posinf", "n_neginf", "n_nan"):
            setattr(out, k, getattr(self, k) + getattr(other, k))
        return out

    def count(self) -> np.ndarray:
        """(p,) values ranked per feature (all but NaN)."""
        return (self.n_zero + self.n_posinf + self.n_neginf
                + np.array([c.sum() for _, c in self._pos], dtype=np.int64)
                + np.array([c.sum() for _, c in self._neg], dtype=np.int64))

    def _ordered(self, j: int):
        """Feature j's buckets in increasing order of value: (counts, representative values)."""
        g = self.gamma
        n_off, n_cnt = self._neg[j]
        p_off, p_cnt = self._pos[j]
        neg_k = n_off + np.arange(len(n_cnt))[::-1]           # larger |x| first
        pos_k = p_off + np.arange(len(p_cnt))
        counts = np.concatenate([[self.n_neginf[j]], n_cnt[::-1], [self.n_zero[j]], p_cnt,
                                 [self.n_posinf[j]]])
        values = np.concatenate([[-np.inf], -2.0 * g ** neg_k.astype(float) / (g + 1.0), [0.0],
                                 2.0 * g ** pos_k.astype(float) / (g + 1.0), [np.inf]])
        return counts, values

    def _locate(self, q: float, j: int):
        if not 0.0 <= float(q) <= 1.0:
            raise ValueError(f"q: {q}; must be in [0, 1]")
        counts, values = self._ordered(j)
        n = int(counts.sum())
        if n == 0:
            return None
        rank = math.floor(float(q) * (n - 1))
        cum = np.cumsum(counts)
        b = int(np.searchsorted(cum, rank, side="right"))
        return values[b], (cum[b] - counts[b]) / n, cum[b] / n

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Quantile(s) per feature: shape (p,) for a scalar q, (len(q), p) for a sequence;
        NaN for a feature with no (non-NaN) values.

        Raises
        ------
        ValueError
            q outside [0, 1].
        """
        qs = np.atleast_1d(np.asarray(q, dtype=float))
        out = np.full((len(qs), self.p), np.nan)
        for i, qq in enumerate(qs):
            for j in range(self.p):
                hit = self._locate(qq, j)
                if hit is not None:
                    out[i, j] = hit[0]
        return out[0] if np.ndim(q) == 0 else out

    def rank_bounds(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (p,): the rank interval (fractions of the count) of the bucket that
        answers ``quantile(q)``; NaN for a feature with no values."""
        lo, hi = np.full(self.p, np.nan), np.full(self.p, np.nan)
        for j in range(self.p):
            hit = self._locate(q, j)
            if hit is not None:
                lo[j], hi[j] = hit[1], hit[2]
        return lo, hi

    @property
    def nbytes(self) -> int:
        """Bytes held by the bucket counts and the per-feature counters."""
        return (sum(c.nbytes for _, c in self._pos) + sum(c.nbytes for _, c in self._neg)
                + 4 * self.n_zero.nbytes)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The state as plain arrays (no pickle); ``from_arrays`` inverts."""
        out = {"p": np.array(self.p), "alpha": np.array(self.alpha), "n_zero": self.n_zero,
               "n_posinf": self.n_posinf, "n_neginf": self.n_neginf, "n_nan": self.n_nan}
        for name, stores in (("pos", self._pos), ("neg", self._neg)):
            out[f"{name}_offset"] = np.array([o for o, _ in stores], np.int64)
            out[f"{name}_length"] = np.array([len(c) for _, c in stores], np.int64)
            out[f"{name}_counts"] = (np.concatenate([c for _, c in stores]) if stores
                                     else np.zeros(0, np.int64))
        return out

    @classmethod
    def from_arrays(cls, a: dict) -> "QuantileSketch":
        out = cls(int(a["p"]), relative_accuracy=float(a["alpha"]))
        for k in ("n_zero", "n_posinf", "n_neginf", "n_nan"):
            setattr(out, k, np.array(a[k], np.int64))
        for name in ("pos", "neg"):
            ends = np.cumsum(a[f"{name}_length"])
            counts = np.split(np.array(a[f"{name}_counts"], np.int64), ends[:-1])
            setattr(out, f"_{name}", [(int(o), c) for o, c in zip(a[f"{name}_offset"], counts)])
        return out


# -- the streaming (Poisson) bootstrap ----------------------------------------------------------

#: entropy tag of the bootstrap's key (distinct from the chains' streams in ``rng``)
_BOOT_TAG = (0x506F6973, 0x426F6F74)  # "Pois", "Boot"
#: upper thresholds of Poisson(1) on 64-bit integers: weight = #thresholds <= a raw draw
_POISSON1_CDF = None


def _poisson1_thresholds() -> np.ndarray:
    global _POISSON1_CDF
    if _POISSON1_CDF is None:
        pmf, cdf, k = math.exp(-1.0), [], 0
        total = 0.0
        while True:
            total += pmf
            if total >= 1.0 - 2.0 ** -60:
                break
            cdf.append(total)
            k += 1
            pmf /= k
        _POISSON1_CDF = np.array([int(c * 2.0 ** 64) for c in cdf], dtype=np.uint64)
    return _POISSON1_CDF


def bootstrap_key(seed: int, stream: int = 0) -> np.ndarray:
    """The Philox key (2 x uint64) of the bootstrap weights of study seed ``seed`` (and an
    optional ``stream``, e.g. a unit index): ``SeedSequence(seed, spawn_key=(tags..., stream))``.
    """
    return np.random.SeedSequence(int(seed), spawn_key=(*_BOOT_TAG, int(stream))).generate_state(
        2, np.uint64)


def poisson_weights(key: np.ndarray, replicates, n_boot: int) -> np.ndarray:
    """Poisson(1) bootstrap weights, shape (R, n_boot) uint8, of the given replicate indices.

    Seed ``r``'s weights are the 64-bit words of the counter-based generator Philox4x64-10
    (Salmon et al. 2011; numpy's ``Philox``) keyed by ``key``, from counter r * ceil(B / 4) on
    (4 words per counter value; the first B used), each mapped to Poisson(1) by its inverse CDF
    on 2^64 -- a function of (key, r, b) only, whatever block ``r`` comes in.

    Raises
    ------
    ValueError
        A negative replicate index or n_boot < 2.
    """
    B = int(n_boot)
    if B < 2:
        raise ValueError(f"n_boot: {n_boot}; must be >= 2")
    reps = np.asarray(replicates, dtype=np.int64).ravel()
    if len(reps) and reps.min() < 0:
        raise ValueError("replicates: indices must be >= 0")
    per = -(-B // 4)   # counter values per seed
    thr = _poisson1_thresholds()
    out = np.empty((len(reps), B), dtype=np.uint8)
    # runs of consecutive indices: one generator call each
    breaks = np.flatnonzero(np.diff(reps) != 1) + 1
    for run in np.split(np.arange(len(reps)), breaks):
        if not len(run):
            continue
        r0 = int(reps[run[0]])
        raw = np.random.Philox(key=key, counter=r0 * per).random_raw(len(run) * per * 4)
        out[run] = _poisson1(raw, thr).reshape(len(run), per * 4)[:, :B]
    return out


_LUT = None


def _poisson1(raw: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Poisson(1) variates (uint8) from raw 64-bit words: the number of thresholds <= each
    word, i.e. ``searchsorted(thr, raw, "right")``, computed by a 2^16-entry table on the top
    16 bits and exactly by ``searchsorted`` for the few words whose top bits share a bin
    with a threshold (same result, ~5x faster)."""
    global _LUT
    if _LUT is None:
        lo = np.arange(1 << 16, dtype=np.uint64) << np.uint64(48)
        hi = lo | np.uint64((1 << 48) - 1)
        table = np.searchsorted(thr, lo, side="right").astype(np.uint8)
        _LUT = (table, table != np.searchsorted(thr, hi, side="right"))
    table, ambiguous = _LUT
    top = (raw.view(np.uint16)[3::4] if sys.byteorder == "little"
           else (raw >> np.uint64(48)).astype(np.uint16))
    w = table[top]
    fix = np.flatnonzero(ambiguous[top])
    if len(fix):
        w[fix] = np.searchsorted(thr, raw[fix], side="right")
    return w


class PoissonBootstrap:
    """A streaming (Poisson) bootstrap of the mean of per-seed vectors.

    Parameters
    ----------
    n_features : int
        p, values per seed.
    n_boot : int
        B, bootstrap replicates (default 200: the Monte Carlo relative error of a standard
        error is then ~ 1 / sqrt(2 (B - 1)) = 5%).
    key : int
        The study's seed (``bootstrap_key``): the weights depend only on (key, stream,
        replicate index, b).
    stream : int
        Further separates weight streams (default 0; the same weights for every unit of a
        study make contrasts between units paired, as their seeds are).

    Method: each seed i gets weight w_ib ~ Poisson(1) in replicate b (``poisson_weights``) and
    replicate b's mean is sum_i w_ib x_i / sum_i w_ib -- the Poisson bootstrap (Hanley &
    MacGibbon 2006, "Creating non-parametric bootstrap samples using Poisson frequencies",
    Comput. Methods Programs Biomed. 83: 57-62; Chamandy, Muralidharan, Najmi & Naik 2012,
    "Estimating uncertainty for massive data streams", Google tech. report): asymptotically
    equivalent to the multinomial bootstrap, and computable one block at a time because the
    weights of different seeds are independent.  The sums are additive, so ``merge`` adds
    them; the weights are identical for any partition and order, and the sums equal one pass
    to rounding (same blocks in the same order: same bits).

    ``se()`` is the standard deviation over b of the replicate means, an estimate of the
    standard error of the mean over seeds; ``replicate_means()`` (B, p) gives the
    bootstrap distribution of any smooth function of the means (ratios of means, a curve
    fitted to means).

    Non-finite values: a seed with any non-finite feature is left out (weight 0) of every
    replicate and counted in ``n_dropped``: the replicate means are those of the complete
    seeds, as ``CurveMoments.mean``.

    Raises
    ------
    ValueError
        ``update`` with mismatched shapes; ``merge`` with different p, B or key.
    """

    CHUNK = 8192  # seeds per weight matrix (bounds the temporary to CHUNK * B * 8 bytes)

    def __init__(self, n_features: int, *, n_boot: int = 200, key: int = 0,
                 stream: int = 0) -> None:
        p = int(n_features)
        if p < 1:
            raise ValueError(f"n_features: {n_features}; must be >= 1")
        if int(n_boot) < 2:
            raise ValueError(f"n_boot: {n_boot}; must be >= 2")
        self.p, self.n_boot = p, int(n_boot)
        self.seed, self.stream = int(key), int(stream)
        self.key = bootstrap_key(self.seed, self.stream)
        self.weight_sum = np.zeros(self.n_boot)
        self.weighted = np.zeros((self.n_boot, p))
        self.n_seen = 0
        self.n_dropped = 0

    def update(self, x, replicates) -> "PoissonBootstrap":
        """Add a block of seeds: ``x`` of shape (p, R) ((R,) if p = 1) and their replicate
        indices ``replicates`` (R,) (the results' ``seed`` column).  Returns self."""
        x = _as_block(x, self.p)
        reps = np.asarray(replicates, dtype=np.int64).ravel()
        if len(reps) != x.shape[1]:
            raise ValueError(f"replicates: {len(reps)} indices for {x.shape[1]} seeds")
        complete = np.isfinite(x).all(0)
        self.n_seen += x.shape[1]
        self.n_dropped += int((~complete).sum())
        x, reps = x[:, complete], reps[complete]
        for lo in range(0, len(reps), self.CHUNK):
            w = poisson_weights(self.key, reps[lo:lo + self.CHUNK], self.n_boot).astype(
                np.float64)
            self.weight_sum += w.sum(0)
            self.weighted += w.T @ x[:, lo:lo + self.CHUNK].T
        return self

    def merge(self, other: "PoissonBootstrap") -> "PoissonBootstrap":
        """A new bootstrap holding the seeds of both.

        Raises
        ------
        ValueError
            Different ``n_features``, ``n_boot``, key or stream.
        """
        if not isinstance(other, PoissonBootstrap) or (other.p, other.n_boot, other.seed,
                                                       other.stream) != (
                self.p, self.n_boot, self.seed, self.stream):
            raise ValueError("merge: PoissonBootstrap with different n_features, n_boot, key or "
                             "stream cannot be merged")
        out = PoissonBootstrap(self.p, n_boot=self.n_boot, key=self.seed, stream=self.stream)
        out.weight_sum = self.weight_sum + other.weight_sum
        out.weighted = self.weighted + other.weighted
        out.n_seen = self.n_seen + other.n_seen
        out.n_dropped = self.n_dropped + other.n_dropped
        return out

    def replicate_means(self) -> np.ndarray:
        """(B, p): each bootstrap replicate's weighted mean (NaN for a replicate of weight 0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.weighted / self.weight_sum[:, None]

    def se(self) -> np.ndarray:
        """(p,): bootstrap standard error of the mean (sd over replicates, divisor B - 1)."""
        m = self.replicate_means()
        ok = np.isfinite(m).all(1)
        return m[ok].std(0, ddof=1) if ok.sum() > 1 else np.full(self.p, np.nan)

    @property
    def nbytes(self) -> int:
        return self.weight_sum.nbytes + self.weighted.nbytes

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The state as plain arrays (no pickle); ``from_arrays`` inverts."""
        return {"p": np.array(self.p), "n_boot": np.array(self.n_boot),
                "seed": np.array(self.seed), "stream": np.array(self.stream),
                "weight_sum": self.weight_sum, "weighted": self.weighted,
                "n_seen": np.array(self.n_seen), "n_dropped": np.array(self.n_dropped)}

    @classmethod
    def from_arrays(cls, a: dict) -> "PoissonBootstrap":
        out = cls(int(a["p"]), n_boot=int(a["n_boot"]), key=int(a["seed"]),
                  stream=int(a["stream"]))
        out.weight_sum = np.array(a["weight_sum"], float)
        out.weighted = np.array(a["weighted"], float)
        out.n_seen, out.n_dropped = int(a["n_seen"]), int(a["n_dropped"])
        return out
