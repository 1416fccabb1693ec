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

numpy's draws for all replicates at once (issue 15)
--------------------------------------------------
Where a family or task draws a few numbers per replicate from its own stream, the Python call
per replicate costs more than the numbers.  These give exactly the numbers of the per-replicate
generators, for all replicates at once -- the streams are unchanged:

* ``replicate_keys``: the replicates' keys, numpy's ``SeedSequence`` hash on arrays;
* ``philox``: Philox4x64-10 on arrays of keys, the raw words ``np.random.Philox`` gives;
* ``Streams.choices``: ``g.choice(population, size, replace=False)`` (repeated), numpy's
  algorithm for a population <= 10 000 -- Floyd's sampling of ``size`` values, then a
  Fisher-Yates shuffle of the sample, each bounded integer by Lemire's multiply-shift of one
  32-bit word (low half of a 64-bit word first) -- run on the word matrix column by column;
* ``Streams.normals_chisquares``: ``g.standard_normal(n); g.chisquare(df, k)`` on the common
  paths of numpy's ziggurat and of Marsaglia & Tsang's Gamma sampler (comment above ``philox``).

Each follows numpy's integer and floating-point operations exactly on its common path and hands
the rare rest to numpy itself (a word Lemire's method might reject, a normal off the ziggurat's
fast strips, a rejected Gamma proposal), and each is checked against numpy (the first replicate
of every call, or a few thousand replicates once per process): where this numpy differs, numpy
draws everything.  ``FLOYD_EXACT``, ``EXACT_NORMALS`` and ``SEED_KEYS_EXACT`` switch them off.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
from numpy.random.bit_generator import ISeedSequence

__all__ = ["Batch", "Role", "Streams", "philox", "philox_round_keys", "replicate_keys"]


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


def _numpy_keys(seed: int, replicates: np.ndarray) -> np.ndarray:
    """(R, 2) uint64: ``SeedSequence(seed, spawn_key=(r,)).generate_state(2, np.uint64)``."""
    keys = [np.random.SeedSequence(seed, spawn_key=(int(r),)).generate_state(2, np.uint64)
            for r in replicates]
    return np.stack(keys) if keys else np.empty((0, 2), dtype=np.uint64)


# numpy's SeedSequence (O'Neill's seed_seq_fe: hashmix / mix over a pool of 4 uint32 words)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_M32 = 0xFFFFFFFF


def _words32(n: int) -> list[int]:
    """A non-negative integer as uint32 words, lowest first ([0] for 0)."""
    words = [n & _M32] if n == 0 else []
    while n > 0:
        words.append(n & _M32)
        n >>= 32
    return words


def _seed_keys(seed: int, replicates: np.ndarray) -> np.ndarray:
    """``_numpy_keys`` for replicates < 2**32 (one spawn-key word), all at once: the entropy
    words -- the seed's, padded with zeros to the pool size, then r -- hashed as numpy's
    ``SeedSequence`` does (uint32 arithmetic held in uint64 arrays, masked after each step)."""
    R = len(replicates)
    m32, shift = np.uint64(_M32), np.uint64(16)
    run = _words32(seed)
    run += [0] * max(0, 4 - len(run))
    entropy = [np.full(R, w, dtype=np.uint64) for w in run] + [replicates.astype(np.uint64)]
    hash_a = _INIT_A  # the hash constants are the same for every replicate: Python ints

    def hashmix(value):
        nonlocal hash_a
        value = value ^ np.uint64(hash_a)
        hash_a = (hash_a * _MULT_A) & _M32
        value = (value * np.uint64(hash_a)) & m32
        return value ^ (value >> shift)

    def mix(x, y):
        out = (np.uint64(_MIX_L) * x - np.uint64(_MIX_R) * y) & m32
        return out ^ (out >> shift)

    with np.errstate(over="ignore"):
        pool = [hashmix(entropy[i]) for i in range(4)]
        for src in range(4):
            for dst in range(4):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(4, len(entropy)):
            for dst in range(4):
                pool[dst] = mix(pool[dst], hashmix(entropy[src]))
        hash_b = _INIT_B
        state = []
        for i in range(4):  # generate_state(2, uint64): 4 uint32 words, little-endian pairs
            value = pool[i] ^ np.uint64(hash_b)
            hash_b = (hash_b * _MULT_B) & _M32
            value = (value * np.uint64(hash_b)) & m32
            state.append(value ^ (value >> shift))
    return np.stack([state[0] | (state[1] << np.uint64(32)),
                     state[2] | (state[3] << np.uint64(32))], axis=1)


def replicate_keys(seed: int, replicates: np.ndarray) -> np.ndarray:
    """(R, 2) uint64: the Philox key of each replicate, ``SeedSequence(seed, spawn_key=(r,))
    .generate_state(2, np.uint64)`` (module docstring) -- computed for all replicates at once
    and checked against numpy on the first one (numpy itself where they differ, and for
    negative or huge replicate indices).

    Raises
    ------
    ValueError
        A negative seed or replicate index (as ``SeedSequence``).
    """
    replicates = np.asarray(replicates, dtype=np.int64)
    if (not SEED_KEYS_EXACT or seed < 0 or len(replicates) < 2 or replicates.min() < 0
            or replicates.max() >= 2**32):
        return _numpy_keys(seed, replicates)
    keys = _seed_keys(seed, replicates)
    if not np.array_equal(keys[:1], _numpy_keys(seed, replicates[:1])):
        return _numpy_keys(seed, replicates)
    return keys


#: whether ``replicate_keys`` may hash all replicates at once (tests switch it off to compare)
SEED_KEYS_EXACT = True


class _KeySeed(ISeedSequence):
    """A replicate's Philox key handed to ``np.random.Philox`` as its seed sequence: the same
    generator as ``Philox(key=key)``, without the fresh ``SeedSequence`` from OS entropy that
    the ``key=`` form builds and discards (about 2/3 of the cost of making a generator)."""

    __slots__ = ("key",)

    def __init__(self, key: np.ndarray) -> None:
        self.key = key

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 2 or np.dtype(dtype) != np.uint64:
            raise ValueError("_KeySeed holds one Philox key: 2 words of uint64")
        return self.key


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
        keys = replicate_keys(self.seed, self.replicates)
        self._keys_cache = keys
        self._keys = list(keys)
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
            self._bitgens[role] = [np.random.Philox(_KeySeed(k)) for k in self._keys]
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

    def choices(self, iteration: int, role: Role, population: int, size: int,
                repeats: int = 1) -> np.ndarray:
        """``repeats`` successive ``g.choice(population, size, replace=False)`` of each
        replicate's generator ``g`` of stream (iteration, role), drawn from the start of the
        stream: shape (repeats, R, size), int64 -- the same numbers, computed for all replicates
        at once (module docstring, "numpy's draws for all replicates at once").

        Only where nothing else draws from that stream between or after the choices (the
        generators ``self(iteration, role)`` are not used).

        Raises
        ------
        ValueError
            ``size`` outside 0..``population``, or ``repeats`` < 0.
        """
        population, size, repeats = int(population), int(size), int(repeats)
        if not 0 <= size <= population or repeats < 0:
            raise ValueError(f"choices: size {size} of population {population}, repeats "
                             f"{repeats}: need 0 <= size <= population and repeats >= 0")
        R = len(self)
        if not FLOYD_EXACT or population > FLOYD_MAX_POPULATION or size > FLOYD_MAX_SIZE:
            return self._choices_numpy(iteration, role, population, size, repeats)
        n32 = repeats * _floyd_uint32s(population, size)
        words = (n32 + 1) // 2
        raw = self._words(iteration, role, words)
        u32 = np.empty((R, 2 * words), dtype=np.uint64)  # next_uint32: low half, then high
        np.bitwise_and(raw, np.uint64(0xFFFFFFFF), out=u32[:, 0::2])
        np.right_shift(raw, np.uint64(32), out=u32[:, 1::2])
        out, unsure = _floyd_choices(u32, population, size, repeats)
        redo = np.flatnonzero(unsure)
        if R and (redo.size == 0 or redo[0] != 0):
            redo = np.concatenate([[0], redo])  # replicate 0 always: a check of the emulation
        for i in redo.tolist():
            g = self._scratch(i, iteration, role)
            exact = [g.choice(population, size, replace=False) for _ in range(repeats)]
            exact = np.stack(exact) if repeats else out[:, i]
            if i == 0 and not unsure[0] and not np.array_equal(exact, out[:, 0]):
                # this numpy's choice is not the algorithm emulated: draw every replicate
                return self._choices_numpy(iteration, role, population, size, repeats)
            out[:, i] = exact
        return out

    def normals_chisquares(self, iteration: int, role: Role, n_normal: int, df: float,
                           n_chisquare: int) -> tuple[np.ndarray, np.ndarray]:
        """What each replicate's generator g of stream (iteration, role), from the start of the
        stream, gives for ``g.standard_normal(n_normal)`` then ``g.chisquare(df,
        size=n_chisquare)``: (R, n_normal) and (R, n_chisquare) float64 -- the same numbers,
        for all replicates at once where numpy's common path allows (module comment above
        ``philox``), by numpy replicate by replicate elsewhere.

        The generators ``self(iteration, role)`` are not used.
        """
        global EXACT_NORMALS
        n_normal, n_chisquare, df = int(n_normal), int(n_chisquare), float(df)
        if EXACT_NORMALS is None and len(self) >= EXACT_MIN_REPLICATES:
            EXACT_NORMALS = _check_exact_normals()
        if (not EXACT_NORMALS or not df > 2.0 or n_normal + 2 * n_chisquare > 64
                or len(self) < EXACT_MIN_REPLICATES):
            # Gamma(df / 2 <= 1) takes other paths in numpy; long draws rarely stay common
            return _numpy_normals_chisquares(self(iteration, role), n_normal, df, n_chisquare)
        z, chi, sure = _emulated_normals_chisquares(self._key_array(), int(iteration),
                                                    int(role), n_normal, df, n_chisquare,
                                                    self._round_keys())
        scalar = n_normal == 1 and n_chisquare == 1  # the same draws as size-1 arrays
        for i in np.flatnonzero(~sure).tolist():  # numpy itself off the common path
            g = self._scratch(i, iteration, role)
            if scalar:
                z[i, 0] = g.standard_normal()
                chi[i, 0] = g.chisquare(df)
            else:
                z[i] = g.standard_normal(n_normal)
                chi[i] = g.chisquare(df, size=n_chisquare)
        return z, chi

    def _round_keys(self) -> np.ndarray:
        """``philox_round_keys`` of the replicates' keys (computed once)."""
        keys = self.__dict__.get("_round_keys_cache")
        if keys is None:
            keys = self._round_keys_cache = philox_round_keys(self._key_array())
        return keys

    def _words(self, iteration: int, role: Role, n: int) -> np.ndarray:
        """(R, n) uint64: the first n raw words of each replicate's stream (iteration, role),
        as ``self(iteration, role)[i].bit_generator.random_raw(n)`` gives them."""
        blocks = -(-int(n) // 4)
        out = np.empty((len(self), 4 * blocks), dtype=np.uint64)
        for b in range(blocks):  # numpy increments the counter before each block
            out[:, 4 * b:4 * b + 4] = philox(self._key_array(), [b + 1, 0, int(iteration),
                                                                 int(role)], self._round_keys())
        return out[:, :n]

    def _key_array(self) -> np.ndarray:
        """(R, 2) uint64: each replicate's Philox key."""
        return self._keys_cache

    def _scratch(self, position: int, iteration: int, role: Role) -> np.random.Generator:
        """One generator shared by all replicates, put at the start of stream (iteration, role)
        of the replicate at ``position``: the same numbers as ``self(iteration, role)[position]``
        without a Philox object per replicate (valid until the next ``_scratch`` call)."""
        if self.__dict__.get("_scratch_gen") is None:
            bg = np.random.Philox(key=[0, 0])
            self._scratch_gen = np.random.Generator(bg)
            self._scratch_state = {"bit_generator": "Philox",
                                   "state": {"counter": None, "key": None},
                                   "buffer": np.zeros(4, dtype=np.uint64), "buffer_pos": 4,
                                   "has_uint32": 0, "uinteger": 0}
        state = self._scratch_state
        counter = state["state"]["counter"]
        if counter is None or counter[2] != iteration or counter[3] != role:
            state["state"]["counter"] = np.array([0, 0, int(iteration), int(role)],
                                                 dtype=np.uint64)
        state["state"]["key"] = self._keys[position]
        self._scratch_gen.bit_generator.state = state
        return self._scratch_gen

    def _choices_numpy(self, iteration, role, population, size, repeats) -> np.ndarray:
        """``choices`` by numpy's own ``Generator.choice``, replicate by replicate."""
        gens = self(iteration, role)
        out = np.empty((repeats, len(self), size), dtype=np.int64)
        for i, g in enumerate(gens):
            for j in range(repeats):
                out[j, i] = g.choice(population, size, replace=False)
        return out


#: whether ``Streams.choices`` may use the batched emulation (tests switch it off to compare)
FLOYD_EXACT = True
#: beyond these, ``Streams.choices`` calls numpy per replicate (numpy's choice changes algorithm
#: above 10 000; the emulation's work grows as size^2)
FLOYD_MAX_POPULATION = 10_000
FLOYD_MAX_SIZE = 64
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def _floyd_uint32s(population: int, size: int) -> int:
    """32-bit words one ``choice(population, size, replace=False)`` consumes (no rejection):
    one per Floyd step with a nonzero range, one per shuffle step."""
    floyd = sum(1 for j in range(population - size, population) if j > 0)
    return floyd + max(size - 1, 0)


def _bounded(u: np.ndarray, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Lemire's multiply-shift of 32-bit words ``u`` (uint64 holding < 2**32) onto 0..high:
    (values int64, unsure bool) -- unsure where the low product word is below high + 1, the only
    case where numpy's bounded draw may reject the word and draw again."""
    m = u * np.uint64(high + 1)
    return (m >> _SHIFT32).astype(np.int64), (m & _LOW32) < np.uint64(high + 1)


def _floyd_choices(u32: np.ndarray, population: int, size: int,
                   repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy's ``Generator.choice(population, size, replace=False)`` (population <= 10 000:
    Floyd's sampling, then a Fisher-Yates shuffle of the sample; bounded integers by Lemire's
    method on 32-bit words) for every replicate at once, ``repeats`` times in a row.

    ``u32`` (R, n) holds each replicate's successive 32-bit words.  Returns (rows of shape
    (repeats, R, size), unsure (R,)): a replicate is unsure where a word may have been rejected
    (probability < size / 2**32 per word), after which its words no longer line up; the caller
    recomputes those with numpy.
    """
    R = u32.shape[0]
    out = np.empty((repeats, R, size), dtype=np.int64)
    unsure = np.zeros(R, dtype=bool)
    starts = np.arange(R) * size  # row starts in a repeat's flat (R * size) rows
    bitset = population <= 64     # the values drawn so far as one word's bits
    one = np.uint64(1)
    col = 0
    for rep in range(repeats):
        sel = out[rep]
        drawn = np.zeros(R, dtype=np.uint64)
        for k, j in enumerate(range(population - size, population)):
            if j == 0:  # a range of one value draws nothing
                val = np.zeros(R, dtype=np.int64)
            else:
                val, maybe = _bounded(u32[:, col], j)
                unsure |= maybe
                col += 1
            # Floyd: a value drawn before is replaced by j (never drawn before: all are < j)
            if bitset:
                dup = ((drawn >> val.astype(np.uint64)) & one).astype(bool)
            else:
                dup = (sel[:, :k] == val[:, None]).any(1)
            sel[:, k] = np.where(dup, j, val)
            if bitset:
                drawn |= one << sel[:, k].astype(np.uint64)
        flat = sel.reshape(-1)
        for i in range(size - 1, 0, -1):  # shuffle: swap position i with a uniform one <= i
            jj, maybe = _bounded(u32[:, col], i)
            unsure |= maybe
            col += 1
            other = starts + jj
            held = flat[other]
            flat[other] = flat[starts + i]
            flat[starts + i] = held
    return out, unsure


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


# -- numpy's per-replicate draws, computed for all replicates at once ---------------------------
#
# ``Streams.normals_chisquares`` gives, for every replicate, exactly the numbers its generator g
# of stream (iteration, role) gives for ``g.standard_normal(n); g.chisquare(df, size=k)``, without
# a Python call per replicate: the replicates' Philox words are computed as arrays (``philox``),
# and numpy's algorithms are followed on them as far as their common path goes -- the ziggurat's
# fast strip test for a normal (one word), and the squeeze test of Marsaglia & Tsang for a
# Gamma(df / 2) (one normal, one uniform word; the log test with the C library's ``log`` where
# the squeeze fails).  A replicate that leaves the common path anywhere (about 1 in 30 for one
# normal and one chi-square) is drawn by numpy itself.  The ziggurat's
# tables are read from numpy's own ``standard_normal`` (words fed through the documented
# ``Philox.state`` buffer), and the whole emulation is compared with numpy on a few thousand
# replicates before first use: where they differ (another numpy, another platform's rounding)
# every replicate is drawn by numpy.  The streams are unchanged either way.

_M0, _M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)  # Philox multipliers
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)  # Weyl key increments
_PHILOX_ROUNDS = 10


def _mulhilo(a: np.uint64, b) -> tuple:
    """(high, low) 64-bit halves of the 128-bit products a * b (b uint64 scalar or array), by
    32-bit halves (Warren, Hacker's Delight, 2nd ed., Sec. 8-2: ``mulhu``)."""
    al, ah = a & _LOW32, a >> _SHIFT32
    bl, bh = b & _LOW32, b >> _SHIFT32
    t = ah * bl + ((al * bl) >> _SHIFT32)     # < 2**64: no carry lost
    w1 = al * bh + (t & _LOW32)
    return ah * bh + (t >> _SHIFT32) + (w1 >> _SHIFT32), a * b


def philox_round_keys(keys: np.ndarray) -> np.ndarray:
    """(rounds, 2, R) uint64: the key of every Philox round for keys (R, 2) (``philox``)."""
    bumps = np.arange(_PHILOX_ROUNDS, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        return np.stack([keys[:, 0][None, :] + bumps * _W0, keys[:, 1][None, :] + bumps * _W1],
                        axis=1)


def philox(keys: np.ndarray, counter, round_keys: np.ndarray | None = None) -> np.ndarray:
    """Philox4x64-10 (Salmon et al. 2011) of each row: keys (R, 2) uint64 and one counter (4,)
    -> (R, 4) uint64, the four words ``np.random.Philox`` buffers for that counter.
    ``round_keys``: ``philox_round_keys(keys)``, if already computed."""
    rk = philox_round_keys(keys) if round_keys is None else round_keys
    c0, c1, c2, c3 = (np.uint64(int(x)) for x in counter)  # the first round on scalars
    with np.errstate(over="ignore"):
        for rnd in range(_PHILOX_ROUNDS):
            hi0, lo0 = _mulhilo(_M0, c0)
            hi1, lo1 = _mulhilo(_M1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ rk[rnd, 0], lo1, hi0 ^ c3 ^ rk[rnd, 1], lo0
    return np.stack([c0, c1, c2, c3], axis=1)


class _Ziggurat:
    """numpy's ziggurat tables for ``standard_normal``, read from numpy itself: ``w[i]`` the
    scale of strip i and ``k[i]`` its fast-path bound (a word with strip i and 52-bit magnitude
    a < k[i] gives +-a w[i] from that one word)."""

    def __init__(self) -> None:
        bg = np.random.Philox(key=[0, 0])
        g = np.random.Generator(bg)
        state = bg.state  # counter 0

        def draw(word: int) -> tuple[float, bool]:  # (value, took one word)
            state["buffer"] = np.array([word, 0, 0, 0], dtype=np.uint64)
            state["buffer_pos"] = 0
            bg.state = state
            x = g.standard_normal()
            after = bg.state  # one word: the buffer's first, and no new block of words
            return x, after["buffer_pos"] == 1 and not after["state"]["counter"].any()

        self.w = np.empty(256)
        self.k = np.empty(256, dtype=np.uint64)
        for i in range(256):
            lo, hi = 0, 1 << 52  # fast below k[i]: the smallest magnitude that is not
            while lo < hi:
                mid = (lo + hi) // 2
                if draw(i | (mid << 9))[1]:
                    lo = mid + 1
                else:
                    hi = mid
            self.k[i] = lo
            # magnitude 1 gives the strip's scale itself (a strip without a fast path: unused)
            self.w[i] = draw(i | (1 << 9))[0] if lo > 1 else 0.0

    def normal(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, fast) of ``random_standard_normal`` on one word each (uint64 array)."""
        idx = (words & np.uint64(0xFF)).astype(np.intp)
        r = words >> np.uint64(8)
        magnitude = (r >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = magnitude.astype(np.float64) * self.w[idx]  # exact: magnitude < 2**53
        x = np.where((r & np.uint64(1)).astype(bool), -x, x)
        return x, magnitude < self.k[idx]


_ZIGGURAT: _Ziggurat | None = None
#: whether ``Streams.normals_chisquares`` may emulate numpy (None: not checked yet)
EXACT_NORMALS: bool | None = None
#: fewer replicates than this are drawn by numpy (the one-time check costs ~0.2 s)
EXACT_MIN_REPLICATES = 256


def _gamma_fast(shape: float, x: np.ndarray, u_words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, accepted) of numpy's ``random_standard_gamma(shape)`` (shape > 1) where its
    first proposal, normal ``x`` and uniform word ``u_words``, is accepted (by the squeeze
    test, or else by the log test, evaluated with the C library's ``log`` as numpy does)."""
    b = shape - 1.0 / 3.0
    c = 1.0 / np.sqrt(9 * b)
    v = 1.0 + c * x
    positive = v > 0.0
    v = v * v * v
    u = (u_words >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    squeeze = u < 1.0 - 0.0331 * (x * x) * (x * x)
    ok = positive & squeeze
    for i in np.flatnonzero(positive & ~squeeze).tolist():  # ~1 in 10: scalar C ``log``
        ui, xi, vi = float(u[i]), float(x[i]), float(v[i])
        if ui > 0.0 and math.log(ui) < 0.5 * xi * xi + b * (1. - vi + math.log(vi)):
            ok[i] = True
    return b * v, ok


def _emulated_normals_chisquares(keys: np.ndarray, iteration: int, role: int, n_normal: int,
                                 df: float, n_chi: int, round_keys: np.ndarray | None = None
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z (R, n_normal), chi (R, n_chi), sure (R,)) on the common path (module comment)."""
    if round_keys is None:
        round_keys = philox_round_keys(keys)
    R = len(keys)
    n_words = n_normal + 2 * n_chi
    blocks = -(-n_words // 4)
    words = np.empty((R, 4 * blocks), dtype=np.uint64)
    for b in range(blocks):  # numpy increments the counter before each block
        words[:, 4 * b:4 * b + 4] = philox(keys, [b + 1, 0, iteration, role], round_keys)
    zig = _ZIGGURAT
    z, sure = zig.normal(words[:, :n_normal])
    sure = sure.all(1)
    chi = np.empty((R, n_chi))
    for j in range(n_chi):
        col = n_normal + 2 * j
        x, fast = zig.normal(words[:, col])
        g, ok = _gamma_fast(0.5 * df, x, words[:, col + 1])
        chi[:, j] = 2.0 * g
        sure &= fast & ok
    return z, chi, sure


def _numpy_normals_chisquares(gens, n_normal: int, df: float, n_chi: int):
    z = np.empty((len(gens), n_normal))
    chi = np.empty((len(gens), n_chi))
    for r, g in enumerate(gens):
        z[r] = g.standard_normal(n_normal)
        chi[r] = g.chisquare(df, size=n_chi)
    return z, chi


def _check_exact_normals() -> bool:
    """Build the ziggurat tables and compare the emulation with numpy on 4096 replicates of a
    fixed stream (one normal and one chi-square, then 3 normals and 2 chi-squares)."""
    global _ZIGGURAT
    try:
        _ZIGGURAT = _Ziggurat()
    except (RuntimeError, ValueError, KeyError, TypeError):
        return False
    streams = Streams(20240, range(4096))
    keys = streams._key_array()
    for n_normal, df, n_chi in ((1, 9.0, 1), (3, 2.5, 2)):
        z, chi, sure = _emulated_normals_chisquares(keys, 7, int(Role.SAMPLE), n_normal, df,
                                                    n_chi)
        z0, chi0 = _numpy_normals_chisquares(streams(7, Role.SAMPLE), n_normal, df, n_chi)
        if not (sure.mean() > 0.5 and np.array_equal(z[sure], z0[sure])
                and np.array_equal(chi[sure], chi0[sure])):
            return False
    return True
