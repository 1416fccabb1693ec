"""Checkpoints of an unfinished run, for ``modelcollapse run --resume`` and ``sweep --resume``.

Layout (everything under ``RUN_DIR/.checkpoints/``, removed once the final results are written)::

    run.json                what was started here: kind ("run" | "sweep") and its hash
    <unit>/                 one directory per unit = (point, task, paradigm); <unit> = "k-i-j"
        state.npz           the chain state after the last checkpointed model-fitting iteration
        pool-<lo>.npy       synthetic rows lo.. of the accumulated pool (append-only segments;
                            only when the paradigm or family keeps pool rows)
        result.npz          the finished unit (metric values, status, labels, profile spec)

Every file is written atomically (temporary name, rename; not flushed to disk, which would
cost ~5 ms a file), so a killed process leaves complete files only, and a file that a power
failure left empty or cut short is treated as absent (its work is computed again: correct by
construction, see below); ``state.npz`` is the commit point of a checkpoint (it lists the pool segments
it needs, so a segment written just before a kill and never committed is ignored and later
overwritten).  Files are NumPy ``.npz`` / ``.npy`` read with ``allow_pickle=False`` and JSON: no
pickle anywhere.

Correctness does not rest on checkpoints: random streams are counter-based (``modelcollapse.rng``),
so a unit re-run from iteration 0 gives the same numbers; a checkpoint only saves the time of the
iterations it holds.  How often a unit checkpoints is bounded by cost: after a model-fitting
iteration, a checkpoint is written when the time since the previous one (or since the unit
started) is at least ``1 / max_overhead`` times what writing it would take (its bytes -- the chain
state and the pool rows not yet written -- at the speed the previous write measured); default:
at most ~5 % of the run time is spent writing checkpoints, and at most 10 minutes pass between
two.  Deep families, whose iterations take seconds, thus checkpoint every iteration; analytic
families, whose iterations take microseconds, every few tens of milliseconds -- or, when their
pool grows faster than 5 % of the disk's write speed, only every 10 minutes.
"""

from __future__ import annotations

import json
import os
import zipfile
import shutil
import time
from pathlib import Path

import numpy as np

from .store import _alive, atomic_write

__all__ = ["CHECKPOINT_DIR", "RunCheckpoints", "UnitCheckpoint", "CheckpointMismatch"]

CHECKPOINT_DIR = ".checkpoints"
RUN_FILE, STATE_FILE, RESULT_FILE = "run.json", "state.npz", "result.npz"
SECONDS_PER_BYTE = 1 / 500e6  #: assumed write speed before the first write measures it
FIRST_STATE_BYTES = 1_000_000  #: assumed size of a unit's first chain state (~2 ms to write)
MAX_INTERVAL = 600.0  #: seconds between checkpoints at most, whatever they cost


class CheckpointMismatch(ValueError):
    """The checkpoints in a run directory belong to a different study or sweep."""


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **arrays)
    atomic_write(path, write, fsync=False)


#: what reading a file that a power failure cut short may raise
UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to a name
        np.save(fh, array, allow_pickle=False)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        # fresh, writable, owned arrays (as the engine's own are)
        return {k: np.array(data[k]) for k in data.files}


class UnitCheckpoint:
    """The checkpoint files of one unit (see module docstring).

    Parameters
    ----------
    directory : path
        The unit's directory (created on first write).
    max_overhead : float
        Largest share of the run time spent writing checkpoints (see module docstring); 0 writes
        none.
    owner_pid : int, optional
        PID of the process that owns the run (holds its lock).  A worker process (``--jobs``,
        a Ray worker on this machine) whose owner has died -- a killed run -- stops at its next
        checkpoint instead of computing on for nobody.
    """

    def __init__(self, directory: str | os.PathLike, *, max_overhead: float = 0.05,
                 owner_pid: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_overhead = float(max_overhead)
        self.owner_pid = owner_pid
        self._last_end = time.perf_counter()  # when the previous write finished (or the unit began)
        self._seconds_per_byte = SECONDS_PER_BYTE  # measured by each write
        self._state_bytes = FIRST_STATE_BYTES  # size of the previous state file
        self._segments: list[tuple[int, int]] = []  # committed pool segments [lo, hi)

    # -- the chain state ---------------------------------------------------------------------
    def due(self, pool_rows: np.ndarray | None = None, pool_lo: int = 0,
            pool_hi: int = 0) -> bool:
        """Whether to write a checkpoint now (cost-bounded, see module docstring); the
        arguments are those ``save_state`` would get (the pool rows not yet written count
        towards the cost of the write)."""
        if self.owner_pid is not None and self.owner_pid != os.getpid() \
                and not _alive(self.owner_pid):
            os._exit(3)  # the run was killed: an orphaned worker stops here
        if self.max_overhead <= 0:
            return False
        elapsed = time.perf_counter() - self._last_end
        if elapsed >= MAX_INTERVAL:
            return True
        pending = self._state_bytes
        if pool_rows is not None:
            done = self._segments[-1][1] if self._segments else pool_lo
            pending += max(pool_hi - done, 0) * (pool_rows[:, :1].nbytes)
        return elapsed >= self._seconds_per_byte * pending / self.max_overhead

    def save_state(self, state: dict[str, np.ndarray], pool_rows: np.ndarray | None = None,
                   pool_lo: int = 0, pool_hi: int = 0) -> None:
        """Write the chain state; ``pool_rows[:, pool_lo:pool_hi]`` are the synthetic rows of the
        accumulated pool (only the part not yet written is written)."""
        start = time.perf_counter()
        self.directory.mkdir(parents=True, exist_ok=True)
        segments = list(self._segments)
        done = segments[-1][1] if segments else pool_lo
        written = 0
        if pool_rows is not None and pool_hi > done:
            rows = np.ascontiguousarray(pool_rows[:, done:pool_hi])
            atomic_write(self.directory / f"pool-{done:012d}.npy", lambda p: _save_npy(p, rows),
                         fsync=False)
            segments.append((done, pool_hi))
            written += rows.nbytes
        state = dict(state, pool_segments=np.array(segments, dtype=np.int64).reshape(-1, 2))
        _save_npz(self.directory / STATE_FILE, state)
        self._state_bytes = sum(np.asarray(v).nbytes for v in state.values()) + 4096
        written += self._state_bytes
        self._segments = segments
        self._last_end = time.perf_counter()
        self._seconds_per_byte = (self._last_end - start) / written

    def load_state(self) -> tuple[dict[str, np.ndarray], np.ndarray | None] | None:
        """The last committed chain state and the synthetic pool rows it lists (concatenated
        along axis 1, or None), or None if there is none."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = _load_npz(path)
            segments = [(int(lo), int(hi)) for lo, hi in state.pop("pool_segments")]
            rows = None
            if segments:
                parts = [np.load(self.directory / f"pool-{lo:012d}.npy", allow_pickle=False)
                         for lo, _ in segments]
                rows = np.concatenate(parts, axis=1)
                if rows.shape[1] != segments[-1][1] - segments[0][0]:
                    raise ValueError("pool segments do not match the state")
        except UNREADABLE:
            self.clear_state()  # unreadable: the unit starts again from iteration 0
            return None
        self._segments = segments
        return state, rows

    def clear_state(self) -> None:
        """Remove the chain state and pool segments (the unit's result replaces them)."""
        for path in self.directory.glob("pool-*.npy"):
            path.unlink(missing_ok=True)
        (self.directory / STATE_FILE).unlink(missing_ok=True)
        self._segments = []

    # -- the finished unit -------------------------------------------------------------------
    def save_result(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Write the finished unit (arrays + JSON-able meta) in one file; drop its chain state."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _save_npz(self.directory / RESULT_FILE, dict(arrays, meta=np.array(json.dumps(meta))))
        self.clear_state()

    def load_result(self) -> tuple[dict[str, np.ndarray], dict] | None:
        path = self.directory / RESULT_FILE
        if not path.is_file():
            return None
        try:
            arrays = _load_npz(path)
            return arrays, json.loads(str(arrays.pop("meta")))
        except UNREADABLE:  # (json.JSONDecodeError is a ValueError)
            path.unlink(missing_ok=True)
            return None


class RunCheckpoints:
    """The ``.checkpoints`` directory of a run or sweep directory.

    Parameters
    ----------
    run_dir : path
    kind : {"run", "sweep"}
    key : str
        Hash of what runs (the study hash, or the sweep hash); a directory started for another
        key is never resumed.
    """

    def __init__(self, run_dir: str | os.PathLike, kind: str, key: str, *,
                 max_overhead: float = 0.05) -> None:
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.kind, self.key = kind, key
        self.max_overhead = max_overhead

    def exists(self) -> bool:
        return (self.directory / RUN_FILE).is_file()

    def check(self) -> None:
        """Raise ``CheckpointMismatch`` unless the checkpoints here were started for this key."""
        try:
            info = json.loads((self.directory / RUN_FILE).read_text())
        except UNREADABLE:
            info = {}
        if not isinstance(info, dict):
            info = {}
        if info.get("kind") != self.kind or info.get("hash") != self.key:
            what = f"{info.get('kind')} {info.get('hash')}"
            raise CheckpointMismatch(
                f"{self.directory.parent}: the interrupted run there is a different "
                f"{'study' if self.kind == 'run' else 'sweep'} ({what}; this one: {self.kind} "
                f"{self.key}); resume with the same file and --set options, or choose another "
                "--out")

    def start(self) -> None:
        """Record what runs here (a fresh run)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        info = {"kind": self.kind, "hash": self.key}
        atomic_write(self.directory / RUN_FILE, lambda p: p.write_text(json.dumps(info) + "\n"),
                     fsync=False)

    def unit(self, point: int, task_index: int, paradigm_index: int, *,
             owner_pid: int | None = None) -> UnitCheckpoint:
        return UnitCheckpoint(self.directory / f"{point}-{task_index}-{paradigm_index}",
                              max_overhead=self.max_overhead, owner_pid=owner_pid)

    def remove(self) -> None:
        """Delete every checkpoint (after the final results are written)."""
        shutil.rmtree(self.directory, ignore_errors=True)
