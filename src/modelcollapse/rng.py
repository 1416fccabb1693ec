"""The random-number tree: replicate -> model-fitting iteration -> role.

Every random draw in modelcollapse comes from a ``np.random.Generator`` obtained here; nothing is
seeded globally and no model stores a ``random_state``.

Design
------
The root ``seed`` of a study and the replicate index ``r`` give a ``SeedSequence(seed,
spawn_key=(r,))`` -- exactly the child that ``SeedSequence(seed).spawn()`` would give replicate
``r``, built without materialising its siblings.  That child's 128-bit state is the *key* of a
counter-based Philox generator (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3",
SC'11).  The stream of (iteration ``t``, role ``k``) starts at counter ``[0, 0, t, k]``: streams
are disjoint blocks of 2**128 outputs, and the stream of one (replicate, iteration, role) is a
pure function of those three numbers.  Consequences:

* a replicate's chain is identical whether it runs alone, in a batch of 10 or of 10 000, in any
  process, and after any interruption (resume needs no generator state);
* getting a stream costs one counter reset (~1.5 us), not a ``SeedSequence`` hash (~10 us), which
  is what lets batched families advance many replicates per model-fitting iteration cheaply.

Block draws (one call for all replicates)
-----------------------------------------
A family that draws only a few numbers per replicate and iteration (the sufficient statistics of
a linear-regression sample: d normals and one chi-square) spends most of its time on R
generator resets and 2R small calls.  ``Streams.batch(t, k)`` gives a ``Batch`` instead: the
j-th draw of w words per replicate is one Philox call for a contiguous run of replicates,
keyed by the study seed alone (``SeedSequence(seed)``, the root of the tree, whose state differs
from every replicate's), with replicate r's fixed block of B = ceil(w / 4) counters starting at
``[r B, j, t, k + 2**32]`` (word 3 tagged: never a generator stream's counter).  A replicate's
block depends only on (seed, r, t, k, j, w) -- not on which other replicates are drawn with it --
so the guarantees above hold unchanged.  Words become numbers by fixed-consumption transforms:
uniforms ``((u >> 11) + 1/2) 2**-53`` in (0, 1) (one word each), normals by the inverse normal
CDF of one uniform (``scipy.special.ndtri``), Gamma and chi-square variates by Marsaglia & Tsang's
exact rejection sampler over a fixed number of proposals with an inverse-CDF fallback
(``Batch.gamma``).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["Batch", "Role", "Streams"]


class Role(IntEnum):
    """What a stream is used for; the value is the counter word, so never renumber."""

    DATA = 0  #: drawing the real data of a known-truth task, or splitting a real dataset
    FIT = 1  #: randomness inside a fit (e.g. EM initialisation)
    SAMPLE = 2  #: sampling synthetic data from the fitted model
    SUBSAMPLE = 3  #: paradigm choices (accumulate-subsample rows, mixed real rows)
    REAL = 4  #: fresh real data drawn during the loop
    EVAL = 5  #: randomness inside metrics
    CURATE = 6  #: curation policies (detector errors, reference fits, ratio-cap choices)
    REFERENCE = 7  #: the real-data learning curve (Def. 5); stream (N, REFERENCE) for size N


class Streams:
    """Per-replicate random streams for one study seed.

    Parameters
    ----------
    seed : int
        The study's root seed (``seed`` in the study file).
    replicates : sequence of int
        Replicate indices (the ``seed`` column of the results), e.g. ``range(n_seeds)``.

    Examples
    --------
    >>> streams = Streams(0, range(3))
    >>> gens = streams(iteration=2, role=Role.SAMPLE)   # list of 3 Generators
    """

    def __init__(self, seed: int, replicates) -> None:
        self.seed = int(seed)
        self.replicates = np.asarray(list(replicates), dtype=np.int64)
        self._keys = [
            np.random.SeedSequence(self.seed, spawn_key=(int(r),)).generate_state(2, np.uint64)
            for r in self.replicates
        ]
        # one Philox per (replicate, role): a call for one role never disturbs another role's
        # generators that a caller may still hold.
        self._bitgens: dict[int, list[np.random.Philox]] = {}
        self._gens: dict[int, list[np.random.Generator]] = {}
        self._states: dict[int, list[dict]] = {}
        self._block_state: dict | None = None

    def _runs(self) -> list[tuple[int, int]]:
        """Runs of consecutive replicate indices, [(first, stop), ...] (stop exclusive)."""
        runs = self.__dict__.get("_runs_cache")
        if runs is None:
            reps = [int(r) for r in self.replicates]  # >= 0: SeedSequence refuses negatives
            runs = []
            for r in reps:
                if runs and runs[-1][1] == r:
                    runs[-1][1] = r + 1
                else:
                    runs.append([r, r + 1])
            runs = [tuple(x) for x in runs]
            self._runs_cache = runs
        return runs

    def _block_bitgen(self) -> np.random.Philox:
        """The Philox of block draws (``Batch``), keyed by the root ``SeedSequence(seed)``."""
        if self._block_state is None:
            key = np.random.SeedSequence(self.seed).generate_state(2, np.uint64)
            self._block = np.random.Philox(key=key)
            self._block_state = {"bit_generator": "Philox",
                                 "state": {"counter": None, "key": key},
                                 "buffer": np.zeros(4, dtype=np.uint64), "buffer_pos": 4,
                                 "has_uint32": 0, "uinteger": 0}
        return self._block

    def __len__(self) -> int:
        return len(self.replicates)

    def batch(self, iteration: int, role: Role) -> "Batch":
        """All replicates' block draws of stream (iteration, role) (module docstring); its
        ``generators`` are ``self(iteration, role)``, for draws that need one per replicate."""
        return Batch(self, iteration, role)

    def subset(self, index) -> "Streams":
        """Streams for a subset of the replicates (positions ``index``)."""
        return Streams(self.seed, self.replicates[np.asarray(index)])

    def __call__(self, iteration: int, role: Role) -> list[np.random.Generator]:
        """One generator per replicate, positioned at the start of stream (iteration, role).

        The returned generators are reused by the next call with the same ``role``.
        """
        role = int(role)
        if role not in self._bitgens:
            self._bitgens[role] = [np.random.Philox(key=k) for k in self._keys]
            self._gens[role] = [np.random.Generator(bg) for bg in self._bitgens[role]]
            # one state mapping per replicate, reused: a reset only rewrites its counter
            self._states[role] = [{
                "bit_generator": "Philox",
                "state": {"counter": None, "key": key},
                "buffer": np.zeros(4, dtype=np.uint64),
                "buffer_pos": 4,
                "has_uint32": 0,
                "uinteger": 0,
            } for key in self._keys]
        counter = np.array([0, 0, int(iteration), role], dtype=np.uint64)
        for state, bg in zip(self._states[role], self._bitgens[role]):
            state["state"]["counter"] = counter  # the setter copies: the mapping stays ours
            bg.state = state
        return self._gens[role]


#: added to the role in counter word 3 of a block draw (``Batch``)
BLOCK_TAG = 1 << 32
_TWO_M53 = 2.0 ** -53
_TWO_M54 = 2.0 ** -54
_ELEVEN = np.uint64(11)


class Batch:
    """The block draws of one (iteration, role) for every replicate of a ``Streams``.

    Each method call is the next draw j = 0, 1, ... of the batch and returns one row per
    replicate (in the order of ``Streams.replicates``); replicate r's row is a pure function of
    (seed, r, iteration, role, j, words per replicate) -- see the module docstring.

    Raises
    ------
    ValueError
        A draw would need counters beyond 2**64 (more than 2**64 / (replicate + 1) blocks per
        replicate).
    """

    def __init__(self, streams: Streams, iteration: int, role: Role) -> None:
        self.streams, self.iteration, self.role = streams, int(iteration), int(role)
        self._draws = 0

    def __len__(self) -> int:
        return len(self.streams)

    @property
    def generators(self) -> list[np.random.Generator]:
        """The per-replicate generators of the same (iteration, role): ``streams(t, role)``."""
        return self.streams(self.iteration, self.role)

    def raw(self, words: int) -> np.ndarray:
        """(R, words) uint64: the next draw's raw Philox words of every replicate."""
        streams, words = self.streams, int(words)
        j, self._draws = self._draws, self._draws + 1
        runs = streams._runs()
        if not runs or words == 0:
            return np.empty((len(streams), words), dtype=np.uint64)
        blocks = -(-words // 4)
        if runs[-1][1] * blocks >= 2**64:
            raise ValueError(f"block draw: replicates up to {runs[-1][1] - 1} x {blocks} blocks "
                             "do not fit a 64-bit counter")
        bitgen, state = streams._block_bitgen(), streams._block_state
        tail = [j, self.iteration, self.role + BLOCK_TAG]
        parts = []
        for first, stop in runs:  # runs of consecutive replicates: one call each
            state["state"]["counter"] = np.array([first * blocks] + tail, dtype=np.uint64)
            bitgen.state = state
            parts.append(bitgen.random_raw((stop - first) * blocks * 4))
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = out.reshape(len(streams), blocks * 4)
        return out if words == blocks * 4 else out[:, :words]

    def uniform(self, shape=()) -> np.ndarray:
        """(R, *shape) float64 uniforms in the open interval (0, 1) (53 random bits each)."""
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        n = 1
        for k in shape:
            n *= int(k)
        u = (self.raw(n) >> _ELEVEN) * _TWO_M53
        u += _TWO_M54
        return u.reshape((len(self),) + shape)

    def normal(self, shape=()) -> np.ndarray:
        """(R, *shape) standard normals (inverse CDF of ``uniform``: |z| < 8.3)."""
        from scipy.special import ndtri

        return ndtri(self.uniform(shape))

    def chisquare(self, df: float, shape=()) -> np.ndarray:
        """(R, *shape) chi-square variates with ``df`` > 0 degrees of freedom: 2 ``gamma(df/2)``."""
        if not df > 0:
            raise ValueError(f"chisquare: df must be > 0, got {df}")
        return 2.0 * self.gamma(0.5 * float(df), shape)

    def gamma(self, a: float, shape=()) -> np.ndarray:
        """(R, *shape) Gamma(a, 1) variates, a > 0, from a fixed block of words per value.

        Marsaglia & Tsang's exact rejection sampler (2000, ACM TOMS 26(3)) for shape
        a' = max(a, a + 1 if a < 1) with ``GAMMA_TRIES`` (normal, uniform) proposals per value;
        the first accepted one is the value, and where all are rejected (probability < 1e-5 per
        value) the inverse CDF of one more uniform (``scipy.special.gammaincinv``) is.  Both are
        exact Gamma(a') draws, so the mixture is too.  For a < 1 the value is multiplied by
        U^(1/a) (Gamma(a) = Gamma(a + 1) U^(1/a)), one more word.
        """
        if not a > 0:
            raise ValueError(f"gamma: shape must be > 0, got {a}")
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        boost = a < 1
        a1 = a + 1.0 if boost else float(a)
        k = GAMMA_TRIES
        words = self.uniform(shape + (2 * k + 1 + boost,))
        from scipy.special import gammaincinv, ndtri

        d = a1 - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * d)

        def attempt(x, u):  # (accepted?, d v) of proposals x = ndtri(.), u
            v = 1.0 + c * x
            v = v * v * v
            with np.errstate(invalid="ignore", divide="ignore"):
                ok = (v > 0) & (np.log(u) < 0.5 * x * x + d - d * v + d * np.log(v))
            return ok, d * v

        ok, out = attempt(ndtri(words[..., 0]), words[..., k])
        pending = np.flatnonzero(~ok.ravel())  # rare: the next proposals, then the inverse CDF
        if pending.size:
            flat, rest = out.reshape(-1), words.reshape(-1, words.shape[-1])[pending]
            for i in range(1, k):
                ok_i, value = attempt(ndtri(rest[:, i]), rest[:, k + i])
                flat[pending[ok_i]] = value[ok_i]
                pending, rest = pending[~ok_i], rest[~ok_i]
            if pending.size:
                flat[pending] = gammaincinv(a1, rest[:, 2 * k])
            out = flat.reshape(out.shape)
        if boost:
            out = out * words[..., 2 * k + 1] ** (1.0 / a)
        return out


#: proposals per value of ``Batch.gamma`` (each accepted with probability > 0.95 for a >= 1)
GAMMA_TRIES = 4
