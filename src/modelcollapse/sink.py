"""A run with more seeds than it keeps rows for: replicate blocks folded into exact aggregates.

When a study's ``n_seeds`` exceeds its ``keep_seeds``, the engine runs each unit's chains in
blocks of replicates (``engine.study.run_units(on_block=...)``).  ``fold_block`` runs where the
block ran (``run_units(reduce_block=...)``: a worker process, a Ray task): it folds the block
into a ``profile.streaming.UnitAggregate`` of its own (the moments, sketches and counts the
summary, the collapse profile and the curves need; memory independent of ``n_seeds``) and
copies out the rows of the replicates below ``keep_seeds`` (what ``results.parquet`` holds), so
what travels back is kilobytes, not the block's values.  ``StreamSink`` merges those folded
blocks, in block order, into the unit's aggregate (Chan merges: the same bytes as feeding the
blocks one after another into one aggregate).  It checkpoints a unit's merged state (aggregate
arrays, kept rows and the number of blocks folded: ``UnitCheckpoint.save_partial``) every
``save_every`` seconds and after the unit's last block, so an interrupted run resumes at the
first block not yet saved, with the same bytes as an uninterrupted one: blocks are folded in the
same order whatever the executor.

Files of such a run, beside the usual ones (``api._stream`` writes them): ``aggregates.npz``
(every unit's aggregate, ``UnitAggregate.to_arrays``; its meta in the manifest's ``streamed``
entry, read back by ``profile.stored``) and ``curves.csv`` (per unit, metric and iteration: n,
mean, sd, 95% interval and quantiles of all seeds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["FoldedBlock", "StreamSink", "fold_block"]


@dataclass
class FoldedBlock:
    """One block of a unit's replicate chains, folded (``fold_block``)."""

    aggregate: object          #: profile.streaming.UnitAggregate of the block's chains
    kept: object | None        #: UnitResult of its replicates < keep_seeds (a copy), or None
    meta: dict                 #: labels, profile_spec, provenance of the unit


def fold_block(job, result) -> FoldedBlock:
    """``reduce_block`` of ``engine.study.run_units``: the block ``result`` (a ``UnitResult``)
    of ``job`` (its ``UnitJob``) folded into a new ``UnitAggregate`` (settings:
    ``job.study.profile``; the growth test's blocks are fixed while streaming), with the rows
    of its replicates below ``job.study.keep_seeds`` copied out (blocks hold consecutive
    replicates, so those are a prefix of the block)."""
    from .engine.unit import UnitResult
    from .profile.streaming import UnitAggregate

    T = next(iter(result.values.values())).shape[0]
    aggregate = UnitAggregate(list(result.values), T, result.profile_spec, job.study.profile)
    aggregate.update(result.values, result.status)
    n_kept = int((np.asarray(result.replicates) < job.study.keep_seeds).sum())
    kept = UnitResult.concat([result.take(0, n_kept)]) if n_kept else None  # a copy
    return FoldedBlock(aggregate, kept, {"labels": result.labels,
                                         "profile_spec": result.profile_spec,
                                         "provenance": result.provenance})


class StreamSink:
    """``on_block`` of ``engine.study.run_units`` with ``reduce_block=fold_block``: merge each
    unit's folded blocks, in order, into its ``UnitAggregate`` and keep the rows of its
    replicates < ``keep_seeds``.

    Parameters
    ----------
    checkpoints : results.checkpoint.RunCheckpoints, optional
        The unit's merged state goes to its ``UnitCheckpoint.save_partial`` (aggregate and kept
        rows; ``resume`` reads it back) after its last block, and after any block when
        ``save_every`` seconds have passed since the unit's last save (a resumed run reruns at
        most those seconds of blocks; what it writes does not depend on when states were saved).
    save_every : float
        Seconds between a unit's saves (0: after every block).

    Raises
    ------
    ValueError
        A block arrives out of order (an engine fault: blocks are delivered in order).
    """

    def __init__(self, checkpoints=None, *, save_every: float = 10.0) -> None:
        self.checkpoints = checkpoints
        self.save_every = float(save_every)
        self.saved_at: dict = {}        # key -> time.monotonic() of the unit's last save
        self.aggregates: dict = {}      # key -> UnitAggregate
        self.kept: dict = {}            # key -> list of UnitResult (kept replicates)
        self.meta: dict = {}            # key -> labels, profile_spec, provenance
        self.next_block: dict = {}      # key -> index of the next block to fold

    # -- checkpoints ------------------------------------------------------------------------
    def resume(self, keys) -> dict:
        """Read each unit's saved state; key -> the first block not yet folded
        (``run_units(start_blocks=...)``)."""
        from .engine.unit import UnitResult
        from .profile.streaming import UnitAggregate

        for key in keys:
            key = tuple(key)
            saved = self.checkpoints.unit(*key).load_partial() if self.checkpoints else None
            if saved is None:
                continue
            arrays, meta, done = saved
            part = {k[4:]: v for k, v in arrays.items() if k.startswith("agg.")}
            self.aggregates[key] = UnitAggregate.from_arrays(part, meta["aggregate"])
            kept = {k[5:]: v for k, v in arrays.items() if k.startswith("kept.")}
            self.kept[key] = [UnitResult.from_arrays(kept, meta["kept"])] if kept else []
            self.meta[key], self.next_block[key] = meta["unit"], done
        return dict(self.next_block)

    def _save(self, key) -> None:
        arrays, agg_meta = self.aggregates[key].to_arrays()
        arrays = {f"agg.{k}": v for k, v in arrays.items()}
        meta = {"aggregate": agg_meta, "unit": self.meta[key], "kept": None}
        kept = self._kept_result(key)
        if kept is not None:
            kept_arrays, meta["kept"] = kept.to_arrays()
            arrays.update({f"kept.{k}": v for k, v in kept_arrays.items()})
        self.checkpoints.unit(*key).save_partial(arrays, meta, self.next_block[key])

    # -- folding ----------------------------------------------------------------------------
    def __call__(self, key, block_index: int, n_blocks: int, block: FoldedBlock) -> None:
        key = tuple(key)
        expected = self.next_block.get(key, 0)
        if block_index != expected:
            raise ValueError(f"block {block_index} of unit {key} arrived; expected {expected}")
        if key not in self.aggregates:
            self.aggregates[key] = block.aggregate
            self.kept[key] = []
            self.meta[key] = block.meta
        else:
            self.aggregates[key].merge(block.aggregate)
        if block.kept is not None:
            self.kept[key].append(block.kept)
        self.next_block[key] = expected + 1
        if self.checkpoints is not None:
            now = time.monotonic()
            if (block_index + 1 == n_blocks
                    or now - self.saved_at.setdefault(key, now) >= self.save_every):
                self._save(key)
                self.saved_at[key] = time.monotonic()

    def _kept_result(self, key):
        parts = self.kept.get(key) or []
        if not parts:
            return None
        if len(parts) > 1:
            from .engine.unit import UnitResult

            self.kept[key] = parts = [UnitResult.concat(parts)]
        return parts[0]

    # -- outputs -----------------------------------------------------------------------------
    def results(self, keys) -> list:
        """The kept replicates' ``UnitResult`` of each unit of ``keys``, in that order."""
        return [self._kept_result(tuple(k)) for k in keys]

    def units(self, keys, where=None) -> list[tuple]:
        """(where, task, paradigm, UnitAggregate) of each unit of ``keys``, in that order
        (``profile.streaming.collapse_profile_streamed``'s input); ``where(key)`` gives the
        point columns of a sweep ({} for a run)."""
        out = []
        for key in keys:
            key = tuple(key)
            labels = self.meta[key]["labels"]
            out.append(({} if where is None else where(key), labels["task"], labels["paradigm"],
                        self.aggregates[key]))
        return out

    def arrays(self, keys) -> tuple[dict[str, np.ndarray], list[dict]]:
        """Every unit's aggregate as one array dict (``u<k>.<name>``) and a list of JSON-able
        entries (labels, profile spec, the aggregate's meta), for ``aggregates.npz`` and the
        manifest."""
        arrays, entries = {}, []
        for k, key in enumerate(keys):
            part, meta = self.aggregates[tuple(key)].to_arrays()
            arrays.update({f"u{k}.{name}": v for name, v in part.items()})
            entries.append({"key": list(key), **self.meta[tuple(key)], "aggregate": meta})
        return arrays, entries

