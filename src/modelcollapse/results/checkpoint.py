"""Checkpoints of an unfinished run, for ``modelcollapse run --resume`` and ``sweep --resume``.

Layout (everything under ``RUN_DIR/.checkpoints/``, removed once the final results are written)::

    run.json                what was started here: kind ("run" | "sweep"), its hash, and the
                            SHA-256 of those two (the run's identity)
    <unit>/                 one directory per unit = (point, task, paradigm); <unit> = "k-i-j"
        state.npz           the chain state after the last checkpointed model-fitting iteration,
                            with the SHA-256 of every pool segment it needs
        pool-<lo>.npy       synthetic rows lo.. of the accumulated pool (append-only segments;
                            only when the paradigm or family keeps pool rows)
        result.npz          the finished unit (metric values, status, labels, profile spec)
        partial.npz         a unit handed over in blocks of replicates (``engine.study.run_units``
                            with ``on_block``): what the caller merged of its first blocks, and
                            how many (``save_partial``; the blocks themselves are not kept)
        block-<lo>-<hi>/    the block of replicates lo .. hi-1 while it runs: state.npz and
                            pool segments as above (removed once the block is handed over)

Every file is written atomically (temporary name, rename; not flushed to disk, which would
cost ~5 ms a file), so a killed process leaves complete files only; ``state.npz`` is the commit
point of a checkpoint (it lists the pool segments it needs, so a segment written just before a
kill and never committed is ignored and later overwritten).  Files are NumPy ``.npz`` / ``.npy``
read with ``allow_pickle=False`` and JSON: no pickle anywhere.

Checksums.  Every file carries or is covered by a SHA-256 recorded in the same atomic rename
that makes it visible, so a kill can never leave a file without its checksum:

* ``state.npz`` and ``result.npz`` hold a member ``__sha256__``: the SHA-256 of the list of their
  other members' names and SHA-256s (of each member's ``.npy`` bytes);
* ``pool-<lo>.npy`` is covered by ``state.npz`` (its member ``pool_digests``: the SHA-256 of
  each segment file), written after the segment;
* ``run.json`` holds ``sha256``: the SHA-256 of its canonical ``{"kind", "hash"}`` JSON.

Everything is checked on load.  A unit file that is missing, unreadable (a power failure may
cut a file short: it is not flushed), without a checksum or failing it is never used: the unit
is computed again from iteration 0 (correct by construction, see below), with a one-line
notice on stderr naming the file and the unit.  A ``run.json`` that fails is refused
(``CheckpointCorrupt``: the interrupted run's identity is unknown; the fix is to delete the
``.checkpoints`` folder).  ``RunCheckpoints.verify`` checks every file without using it
(``modelcollapse validate`` on an unfinished run).  Hashing runs at ~1 GB/s; it is part of the
write time that the cost bound below measures, so it does not raise the overhead above
``max_overhead``.

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

import hashlib
import io
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from .store import _alive, atomic_write

__all__ = ["CHECKPOINT_DIR", "RunCheckpoints", "UnitCheckpoint", "CheckpointMismatch",
           "CheckpointCorrupt", "ChecksumError"]

CHECKPOINT_DIR = ".checkpoints"
RUN_FILE, STATE_FILE, RESULT_FILE = "run.json", "state.npz", "result.npz"
PARTIAL_FILE = "partial.npz"  #: a unit's merged first blocks (``UnitCheckpoint.save_partial``)
BLOCK_PREFIX = "block-"  #: ``block-<lo>-<hi>``: the directory of a block of replicates
DIGEST_MEMBER = "__sha256__"  #: the member of a checkpoint .npz that holds its checksum
SECONDS_PER_BYTE = 1 / 500e6  #: assumed write speed before the first write measures it
FIRST_STATE_BYTES = 1_000_000  #: assumed size of a unit's first chain state (~2 ms to write)
MAX_INTERVAL = 600.0  #: seconds between checkpoints at most, whatever they cost

#: why a checkpoint file is not used (``ChecksumError.reason``)
MISSING, UNREADABLE_FILE = "is missing", "is unreadable"
NO_CHECKSUM, BAD_CHECKSUM = "has no checksum", "failed its checksum"


class CheckpointMismatch(ValueError):
    """The checkpoints in a run directory belong to a different study or sweep."""


class CheckpointCorrupt(CheckpointMismatch):
    """``run.json`` (the identity of the interrupted run) is unreadable, has no checksum or
    fails it: the run cannot be resumed; the message gives the fix (delete ``.checkpoints``).
    ``reason``: as ``ChecksumError.reason``."""

    reason: str = ""


class ChecksumError(ValueError):
    """A checkpoint file that must not be used.

    Attributes
    ----------
    path : Path
        The file.
    reason : str
        "is missing", "is unreadable", "has no checksum" or "failed its checksum".
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


#: what reading a file that a power failure cut short may raise
UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


class _Hashing:
    """A write-only file object passing bytes on to ``fh`` and hashing them (SHA-256)."""

    def __init__(self, fh) -> None:
        self.fh, self.sha = fh, hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.fh.write(data)


def _combine(digests: dict[str, str]) -> str:
    """The checksum of a .npz: SHA-256 of its members' names and SHA-256s, sorted by name."""
    h = hashlib.sha256()
    for name in sorted(digests):
        h.update(f"{name}\0{digests[name]}\n".encode())
    return h.hexdigest()


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz (as ``np.savez``) plus the member
    ``__sha256__`` (``_combine`` of the others), atomically; no pickle (object arrays raise
    ValueError)."""
    if DIGEST_MEMBER in arrays:
        raise ValueError(f"{DIGEST_MEMBER}: a reserved checkpoint array name")

    def write(tmp: Path) -> None:
        digests = {}
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, value in arrays.items():
                name = f"{key}.npy"
                with zf.open(name, "w", force_zip64=True) as fh:
                    out = _Hashing(fh)
                    np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)
                digests[name] = out.sha.hexdigest()
            with zf.open(f"{DIGEST_MEMBER}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.array(_combine(digests)), allow_pickle=False)
    atomic_write(path, write, fsync=False)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a checkpoint .npz (fresh, writable, owned), after checking its checksum.

    Raises
    ------
    ChecksumError
        Missing, unreadable (including a member failing the zip's CRC-32, reported as a failed
        checksum), without ``__sha256__`` or not matching it.
    """
    raw: dict[str, bytes] = {}
    recorded = None
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as fh:
                    data = fh.read()  # zipfile checks the member's CRC-32 at its end
                if info.filename == f"{DIGEST_MEMBER}.npy":
                    recorded = str(np.load(io.BytesIO(data), allow_pickle=False))
                else:
                    raw[info.filename] = data
    except FileNotFoundError:
        raise ChecksumError(path, MISSING) from None
    except zipfile.BadZipFile as exc:
        raise ChecksumError(path, BAD_CHECKSUM if "CRC" in str(exc) else UNREADABLE_FILE) \
            from None
    except UNREADABLE:
        raise ChecksumError(path, UNREADABLE_FILE) from None
    if recorded is None:
        raise ChecksumError(path, NO_CHECKSUM)
    if recorded != _combine({name: hashlib.sha256(data).hexdigest()
                             for name, data in raw.items()}):
        raise ChecksumError(path, BAD_CHECKSUM)
    try:
        return {name.removesuffix(".npy"): np.load(io.BytesIO(raw.pop(name)), allow_pickle=False)
                for name in list(raw)}
    except UNREADABLE:
        raise ChecksumError(path, UNREADABLE_FILE) from None


def _save_npy(path: Path, array: np.ndarray) -> str:
    """Write ``array`` as .npy atomically; its SHA-256 (hashed while written)."""
    digest = []

    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise ValueError("checkpoint arrays hold no Python objects (no pickle)")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            out = _Hashing(fh)
            np.lib.format.write_array_header_1_0(
                out, np.lib.format.header_data_from_array_1_0(array))
            out.sha.update(array.reshape(-1).view(np.uint8))  # no copy, unlike write_array
            array.tofile(fh)
        digest.append(out.sha.hexdigest())
    atomic_write(path, write, fsync=False)
    return digest[0]


def _load_npy(path: Path, digest: str, *, load: bool = True) -> np.ndarray | None:
    """The array of a .npy whose SHA-256 must be ``digest`` (None if ``load`` is False: only
    checked).  Raises ``ChecksumError``."""
    if not digest:
        raise ChecksumError(path, NO_CHECKSUM)
    try:
        with open(path, "rb") as fh:
            if hashlib.file_digest(fh, "sha256").hexdigest() != digest:
                raise ChecksumError(path, BAD_CHECKSUM)
            if not load:
                return None
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except ChecksumError:
        raise
    except FileNotFoundError:
        raise ChecksumError(path, MISSING) from None
    except UNREADABLE:
        raise ChecksumError(path, UNREADABLE_FILE) from None


def _segment_name(lo: int) -> str:
    return f"pool-{lo:012d}.npy"


def _notice(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr, flush=True)


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
    label : str, optional
        How notices name the unit (e.g. "gaussian-wine, accumulate"; default: the directory
        name).
    """

    def __init__(self, directory: str | os.PathLike, *, max_overhead: float = 0.05,
                 owner_pid: int | None = None, label: str | None = None) -> None:
        self.directory = Path(directory)
        self.max_overhead = float(max_overhead)
        self.owner_pid = owner_pid
        self.label = label or self.directory.name
        self._last_end = time.perf_counter()  # when the previous write finished (or the unit began)
        self._seconds_per_byte = SECONDS_PER_BYTE  # measured by each write
        self._state_bytes = FIRST_STATE_BYTES  # size of the previous state file
        self._segments: list[tuple[int, int]] = []  # committed pool segments [lo, hi)
        self._digests: list[str] = []  # their SHA-256

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
        accumulated pool (only the part not yet written is written: a new segment, whose
        SHA-256 the state records)."""
        start = time.perf_counter()
        self.directory.mkdir(parents=True, exist_ok=True)
        segments, digests = list(self._segments), list(self._digests)
        done = segments[-1][1] if segments else pool_lo
        written = 0
        if pool_rows is not None and pool_hi > done:
            rows = np.ascontiguousarray(pool_rows[:, done:pool_hi])
            digests.append(_save_npy(self.directory / _segment_name(done), rows))
            segments.append((done, pool_hi))
            written += rows.nbytes
        state = dict(state, pool_segments=np.array(segments, dtype=np.int64).reshape(-1, 2),
                     pool_digests=np.array(digests, dtype="<U64"))
        _save_npz(self.directory / STATE_FILE, state)  # the commit point
        self._state_bytes = sum(np.asarray(v).nbytes for v in state.values()) + 4096
        written += self._state_bytes
        self._segments, self._digests = segments, digests
        self._last_end = time.perf_counter()
        self._seconds_per_byte = (self._last_end - start) / written

    def _read_state(self, *, load: bool = True):
        """(state, pool rows or None, segments, digests) of the committed chain state, every
        file checked (``load=False``: the pool segments are only checked, rows is None).
        Raises ``ChecksumError``."""
        path = self.directory / STATE_FILE
        state = _load_npz(path)
        try:
            segments = [(int(lo), int(hi)) for lo, hi in state.pop("pool_segments")]
            digests = [str(d) for d in state.pop("pool_digests")]
        except (KeyError, ValueError, TypeError):
            raise ChecksumError(path, NO_CHECKSUM) from None
        if len(digests) != len(segments):
            raise ChecksumError(path, NO_CHECKSUM)
        if any(a[1] != b[0] for a, b in zip(segments, segments[1:])):
            raise ChecksumError(path, UNREADABLE_FILE)
        parts = [_load_npy(self.directory / _segment_name(lo), digest, load=load)
                 for (lo, _), digest in zip(segments, digests)]
        rows = None
        if segments and load:
            try:
                rows = np.concatenate(parts, axis=1)
            except (ValueError, np.exceptions.AxisError):
                raise ChecksumError(path, UNREADABLE_FILE) from None
            if rows.shape[1] != segments[-1][1] - segments[0][0]:
                raise ChecksumError(path, UNREADABLE_FILE)
        return state, rows, segments, digests

    def load_state(self) -> tuple[dict[str, np.ndarray], np.ndarray | None] | None:
        """The last committed chain state and the synthetic pool rows it lists (concatenated
        along axis 1, or None), or None if there is none -- or if any of its files is missing,
        unreadable or fails its checksum: then the files are removed (the unit starts again
        from iteration 0) and a one-line notice goes to stderr."""
        if not (self.directory / STATE_FILE).is_file():
            return None
        try:
            state, rows, segments, digests = self._read_state()
        except ChecksumError as exc:
            self._restart(exc)
            return None
        self._segments, self._digests = segments, digests
        return state, rows

    def clear_state(self) -> None:
        """Remove the chain state and pool segments (the unit's result replaces them)."""
        (self.directory / STATE_FILE).unlink(missing_ok=True)  # the commit point first
        for path in self.directory.glob("pool-*.npy"):
            path.unlink(missing_ok=True)
        self._segments, self._digests = [], []

    # -- the finished unit -------------------------------------------------------------------
    def save_result(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Write the finished unit (arrays + JSON-able meta) in one file; drop its chain state."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _save_npz(self.directory / RESULT_FILE, dict(arrays, meta=np.array(json.dumps(meta))))
        self.clear_state()

    def _read_result(self) -> tuple[dict[str, np.ndarray], dict]:
        path = self.directory / RESULT_FILE
        arrays = _load_npz(path)
        try:
            return arrays, json.loads(str(arrays.pop("meta")))
        except (KeyError, ValueError):  # (json.JSONDecodeError is a ValueError)
            raise ChecksumError(path, UNREADABLE_FILE) from None

    def load_result(self) -> tuple[dict[str, np.ndarray], dict] | None:
        """The finished unit (arrays, meta), or None if there is none -- or if its file is
        unreadable or fails its checksum: then the unit's files are removed (it is computed
        again from iteration 0) and a one-line notice goes to stderr."""
        if not (self.directory / RESULT_FILE).is_file():
            return None
        try:
            return self._read_result()
        except ChecksumError as exc:
            self._restart(exc)
            return None

    # -- a unit handed over in blocks ----------------------------------------------------------
    def save_partial(self, arrays: dict[str, np.ndarray], meta: dict, blocks_done: int) -> None:
        """Write what the caller merged of the unit's first ``blocks_done`` blocks (plain arrays,
        no objects, + JSON-able meta) in one file, atomically, replacing the previous one; pass
        ``blocks_done`` as ``start_blocks`` on resume (``engine.study.run_units``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {"meta": meta, "blocks_done": int(blocks_done)}
        _save_npz(self.directory / PARTIAL_FILE,
                  dict(arrays, __partial__=np.array(json.dumps(record))))

    def _read_partial(self) -> tuple[dict[str, np.ndarray], dict, int]:
        path = self.directory / PARTIAL_FILE
        arrays = _load_npz(path)
        try:
            record = json.loads(str(arrays.pop("__partial__")))
            return arrays, record["meta"], int(record["blocks_done"])
        except (KeyError, ValueError, TypeError):
            raise ChecksumError(path, UNREADABLE_FILE) from None

    def load_partial(self) -> tuple[dict[str, np.ndarray], dict, int] | None:
        """(arrays, meta, blocks_done) saved by ``save_partial``, or None if there is none -- or
        if it is unreadable or fails its checksum: then it is removed (the unit starts again
        from its first block) and a one-line notice goes to stderr."""
        path = self.directory / PARTIAL_FILE
        if not path.is_file():
            return None
        try:
            return self._read_partial()
        except ChecksumError as exc:
            _notice(f"{self._where(exc.path)} {exc.reason}; unit ({self.label}) restarts from "
                    "its first block")
            path.unlink(missing_ok=True)
            return None

    def block(self, lo: int, hi: int, *, label: str | None = None) -> "UnitCheckpoint":
        """The checkpoint of the block of replicates ``lo .. hi-1`` of this unit (its own
        directory: a state saved for other replicates is never loaded for these)."""
        return UnitCheckpoint(self.directory / f"{BLOCK_PREFIX}{int(lo)}-{int(hi)}",
                              max_overhead=self.max_overhead, owner_pid=self.owner_pid,
                              label=label or f"{self.label}, replicates {lo}..{hi - 1}")

    def blocks(self) -> list["UnitCheckpoint"]:
        """The block checkpoints present in this unit's directory."""
        if not self.directory.is_dir():
            return []
        return [UnitCheckpoint(p, max_overhead=self.max_overhead, owner_pid=self.owner_pid,
                               label=f"{self.label}, {p.name}")
                for p in sorted(self.directory.iterdir())
                if p.is_dir() and p.name.startswith(BLOCK_PREFIX)]

    def remove(self) -> None:
        """Delete this checkpoint's directory and everything in it (a block handed over)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- checks ------------------------------------------------------------------------------
    def _where(self, path: Path) -> str:
        """``path`` as notices show it: relative to the run directory when under one."""
        if self.directory.parent.name == CHECKPOINT_DIR:
            return f"{CHECKPOINT_DIR}/{self.directory.name}/{path.name}"
        if self.directory.parent.parent.name == CHECKPOINT_DIR:
            return (f"{CHECKPOINT_DIR}/{self.directory.parent.name}/{self.directory.name}/"
                    f"{path.name}")
        return str(path)

    def _restart(self, exc: ChecksumError) -> None:
        """Never use a unit's files after one failed: remove them, say so in one line."""
        _notice(f"{self._where(exc.path)} {exc.reason}; unit ({self.label}) restarts from "
                "iteration 0")
        (self.directory / RESULT_FILE).unlink(missing_ok=True)
        self.clear_state()

    def verify(self) -> list[str]:
        """Problems with the files a resume would use (one line each; empty: all intact),
        without using or changing them: the result if there is one, else the chain state and
        the pool segments it lists; the merged blocks (``partial.npz``) and every block's chain
        state."""
        problems = []
        try:
            if (self.directory / RESULT_FILE).is_file():
                self._read_result()
                return []
            elif (self.directory / STATE_FILE).is_file():
                self._read_state(load=False)
        except ChecksumError as exc:
            return [f"{self._where(exc.path)}: {exc.reason} (unit {self.label} would restart "
                    "from iteration 0 on --resume)"]
        try:
            if (self.directory / PARTIAL_FILE).is_file():
                self._read_partial()
        except ChecksumError as exc:
            problems.append(f"{self._where(exc.path)}: {exc.reason} (unit {self.label} would "
                            "restart from its first block on --resume)")
        for block in self.blocks():
            problems += block.verify()
        return problems


def _identity(kind, key) -> str:
    """The checksum of a run's identity (``run.json``)."""
    return hashlib.sha256(json.dumps({"hash": key, "kind": kind}, sort_keys=True)
                          .encode()).hexdigest()


class RunCheckpoints:
    """The ``.checkpoints`` directory of a run or sweep directory.

    Parameters
    ----------
    run_dir : path
    kind : {"run", "sweep"}, optional
    key : str, optional
        Hash of what runs (the study hash, or the sweep hash); a directory started for another
        key is never resumed.  ``kind`` and ``key`` may be left out to only ``verify``.
    max_overhead : float
        See ``UnitCheckpoint``.
    """

    def __init__(self, run_dir: str | os.PathLike, kind: str | None = None,
                 key: str | None = None, *, max_overhead: float = 0.05) -> None:
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.kind, self.key = kind, key
        self.max_overhead = max_overhead

    def exists(self) -> bool:
        return (self.directory / RUN_FILE).is_file()

    def _identity(self) -> dict:
        """The checked content of ``run.json``; raises ``CheckpointCorrupt``."""
        path = self.directory / RUN_FILE
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            reason = NO_CHECKSUM
            if isinstance(info, dict) and isinstance(info.get("sha256"), str):
                reason = BAD_CHECKSUM
                if info["sha256"] == _identity(info.get("kind"), info.get("hash")):
                    return info
        except FileNotFoundError:
            reason = MISSING
        except UNREADABLE:  # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
            reason = UNREADABLE_FILE
        exc = CheckpointCorrupt(
            f"{path}: {reason} (the interrupted run's identity is unknown, it cannot be "
            f"resumed); delete {self.directory} to start over")
        exc.reason = reason
        raise exc

    def check(self) -> None:
        """Raise ``CheckpointMismatch`` unless the checkpoints here were started for this key
        (``CheckpointCorrupt``, a subclass, if ``run.json`` fails its checksum).  Once they
        match, the temporary files of writes a kill cut short are removed (call it before any
        unit runs, under the run's lock)."""
        info = self._identity()
        if info.get("kind") != self.kind or info.get("hash") != self.key:
            what = f"{info.get('kind')} {info.get('hash')}"
            raise CheckpointMismatch(
                f"{self.directory.parent}: the interrupted run there is a different "
                f"{'study' if self.kind == 'run' else 'sweep'} ({what}; this one: {self.kind} "
                f"{self.key}); resume with the same file and --set options, or choose another "
                "--out")
        for tmp in self.directory.rglob(".*.tmp"):  # (atomic_write's temporary names)
            tmp.unlink(missing_ok=True)

    def start(self) -> None:
        """Record what runs here (a fresh run).  Anything already in ``.checkpoints`` (units
        left without a ``run.json``: of unknown identity) is removed first, never resumed."""
        if self.directory.is_dir() and any(self.directory.iterdir()):
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        info = {"kind": self.kind, "hash": self.key, "sha256": _identity(self.kind, self.key)}
        atomic_write(self.directory / RUN_FILE, lambda p: p.write_text(json.dumps(info) + "\n"),
                     fsync=False)

    def unit(self, point: int, task_index: int, paradigm_index: int, *,
             owner_pid: int | None = None, label: str | None = None) -> UnitCheckpoint:
        """The checkpoint of unit (point, task, paradigm); ``label`` names it in notices."""
        return UnitCheckpoint(self.directory / f"{point}-{task_index}-{paradigm_index}",
                              max_overhead=self.max_overhead, owner_pid=owner_pid, label=label)

    def block(self, point: int, task_index: int, paradigm_index: int, lo: int, hi: int, *,
              owner_pid: int | None = None, label: str | None = None) -> UnitCheckpoint:
        """The checkpoint of the block of replicates ``lo .. hi-1`` of a unit
        (``<unit>/block-<lo>-<hi>/``)."""
        return self.unit(point, task_index, paradigm_index, owner_pid=owner_pid,
                         label=label).block(lo, hi, label=label)

    def verify(self) -> list[str]:
        """Problems with the checkpoints of an unfinished run, one line each (paths relative to
        the run directory); empty when there are none or every file a resume would use is
        intact.  Reads every file (SHA-256 at ~1 GB/s), changes nothing.

        A problem in ``run.json`` means the run cannot be resumed (delete ``.checkpoints``); a
        problem in a unit means that unit is computed again from iteration 0 on ``--resume``.
        """
        if not self.directory.is_dir():
            return []
        problems = []
        try:
            self._identity()
        except CheckpointCorrupt as exc:
            problems.append(f"{CHECKPOINT_DIR}/{RUN_FILE}: {exc.reason} (the run's identity; it "
                            f"cannot be resumed: delete {self.directory} to start over)")
        for unit_dir in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            problems += UnitCheckpoint(unit_dir).verify()
        return problems

    def remove(self) -> None:
        """Delete every checkpoint (after the final results are written)."""
        shutil.rmtree(self.directory, ignore_errors=True)
