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
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["Role", "Streams"]


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

    def __len__(self) -> int:
        return len(self.replicates)

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
        counter = np.array([0, 0, int(iteration), role], dtype=np.uint64)
        empty = np.zeros(4, dtype=np.uint64)
        for key, bg in zip(self._keys, self._bitgens[role]):
            bg.state = {
                "bit_generator": "Philox",
                "state": {"counter": counter, "key": key},
                "buffer": empty,
                "buffer_pos": 4,
                "has_uint32": 0,
                "uinteger": 0,
            }
        return self._gens[role]
