"""One tidy long table per run, plus a manifest.

``DIR/results.parquet`` has one row per (task, paradigm, seed, iteration, metric):

=============  ========  =========================================================================
column         dtype     meaning
=============  ========  =========================================================================
study          category  study name
task           category  task label, e.g. ``gaussian-wine``
family         category  model family, e.g. ``gaussian``
paradigm       category  paradigm label, e.g. ``accumulate`` or ``mix-0.5-fresh``
seed           int32     replicate index (chain); the study's root seed is in the manifest
iteration      int32     model-fitting iteration, 0 = fitted on real data only
metric         category  metric name (units in ``modelcollapse.metrics.METRICS``)
value          float64   the value; +inf is a legitimate outcome (e.g. NLL of a collapsed model)
status         category  ``ok`` or the degenerate-fit kind of that (seed, iteration)
=============  ========  =========================================================================

``DIR/manifest.json`` holds the resolved study, its hash, versions and provenance
(``results.manifest``), and under ``files`` the SHA-256 of every file of the run directory
(``results.parquet``, ``summary.csv``, ``profile.csv``, ``report.html``, ``plots/*.png``; not the
manifest itself, nor hidden files such as the lock and ``.checkpoints/``): ``verify_run`` checks
them.  Files are written to a temporary name in the same directory, flushed and renamed, so a
killed run leaves either the complete file or none (and at most a stale hidden ``.*.tmp`` file,
removed by the next run or resume: ``clean_temporary``); the manifest is sealed last.

States of a run directory (``run_state``; ``api`` moves a directory through them in this order,
and a kill at any point leaves one of them, which ``--resume`` completes):

``empty``        no run in it (absent, or no ``manifest.json`` and no ``.checkpoints/run.json``).
``interrupted``  ``.checkpoints/run.json`` and no ``manifest.json``: a run computing (while its
                 lock is held) or stopped; a ``results.parquet`` there is not yet committed.
                 Resume continues from the checkpoints (finished units are loaded, not re-run)
                 and rewrites ``results.parquet`` byte for byte.
``unsealed``     ``results.parquet`` and ``manifest.json`` with ``"sealed": false`` (the commit
                 point of the results: its checksum is recorded); summary, profile, report and
                 the seal may be missing and ``.checkpoints`` may linger.  Resume checks the
                 results against the manifest, rewrites ``summary.csv``, ``profile.csv`` and
                 the report from them, removes the checkpoints and seals.
``finished``     ``manifest.json`` sealed (``"sealed": true``, or no ``sealed`` key: written
                 before the key existed) and listing the SHA-256 of every file.  Never
                 overwritten; resume says it is complete.
``damaged``      anything else (a manifest that is not valid JSON, ``results.parquet`` without
                 a manifest or checkpoints): not made by a kill; refused with one line.

The lock (``RunLock``) is an ``fcntl.flock`` on ``.modelcollapse.lock``, which the kernel
releases when its holder dies: a lock can never be stale, and a reused PID never blocks.

Test hook (costs one ``if`` when unset): ``MODELCOLLAPSE_TEST_KILL_AT=NAME:K[:before]`` makes a
process SIGKILL itself just after (or, with ``:before``, just before the rename of) the K-th
``atomic_write`` of a file named NAME in that process; ``kill_point(NAME)`` marks other points
(``.checkpoints``: after each entry removed when the checkpoints are cleaned up).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "units", "without_attrs", "chain_frame", "concat_frames", "write_run", "seal_run",
           "run_files", "load_results", "load_manifest", "atomic_write", "RunLock", "RunLocked", "verify_run", "run_state",
           "clean_temporary", "ManifestError", "kill_point", "EMPTY", "INTERRUPTED", "UNSEALED",
           "FINISHED", "DAMAGED", "write_arrays", "read_arrays", "AGGREGATES_FILE", "CURVES_FILE"]

COLUMNS = ["study", "task", "family", "paradigm", "seed", "iteration", "metric", "value", "status"]
RESULTS_FILE, MANIFEST_FILE = "results.parquet", "manifest.json"
#: a streamed run's (``n_seeds > keep_seeds``) aggregates of all seeds and per-iteration curves
AGGREGATES_FILE, CURVES_FILE = "aggregates.npz", "curves.csv"
EMPTY, INTERRUPTED, UNSEALED, FINISHED, DAMAGED = (
    "empty", "interrupted", "unsealed", "finished", "damaged")


class ManifestError(ValueError):
    """A ``manifest.json`` that is not a JSON object (truncated, edited); one-line message."""


# -- test hook: SIGKILL at a chosen write (MODELCOLLAPSE_TEST_KILL_AT=NAME:K[:before]) ----------

_KILL_AT = os.environ.get("MODELCOLLAPSE_TEST_KILL_AT") or None
_kill_counts: dict[str, int] = {}


def kill_point(name: str, when: str = "after") -> None:
    """The test hook (module docstring): SIGKILL this process if it is the chosen point.
    Call it as ``if _KILL_AT: kill_point(...)`` where it matters that it cost nothing."""
    if not _KILL_AT:
        return
    target, _, rest = _KILL_AT.partition(":")
    k, _, at = rest.partition(":")
    if target != name or (at or "after") != when:
        return
    _kill_counts[name] = _kill_counts.get(name, 0) + 1
    if str(_kill_counts[name]) == k:
        os.kill(os.getpid(), signal.SIGKILL)


def chain_frame(values: dict[str, np.ndarray], status: np.ndarray, replicates: np.ndarray, *,
                study: str, task: str, family: str, paradigm: str) -> pd.DataFrame:
    """Long rows from per-metric arrays of shape (n_iterations, R) and status (n_iterations, R)."""
    T, R = status.shape
    names = list(values)
    M = len(names)
    n = M * T * R
    kinds, status_codes = np.unique(status.ravel().astype(str), return_inverse=True)
    constant = {"study": study, "task": task, "family": family, "paradigm": paradigm}
    columns = {col: pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[val])
               for col, val in constant.items()}
    columns.update({
        "seed": np.tile(np.asarray(replicates, dtype=np.int32), T * M),
        "iteration": np.tile(np.repeat(np.arange(T, dtype=np.int32), R), M),
        "metric": pd.Categorical.from_codes(np.repeat(np.arange(M), T * R), categories=names),
        "value": np.concatenate([values[k].ravel() for k in names]),
        "status": pd.Categorical.from_codes(np.tile(status_codes, M), categories=kinds),
    })
    return pd.DataFrame(columns)[COLUMNS]


CATEGORICAL = ("study", "task", "family", "paradigm", "metric", "status")


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The units' long tables as one, the categorical columns kept categorical with the sorted
    union of the units' categories (what ``astype("category")`` of the strings gives, so the
    written Parquet is the same).  pandas' ``concat`` of categoricals whose categories differ
    falls back to Python strings: 0.43 s against 0.09 s for 832,000 rows."""
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    frames = [f.copy(deep=False) for f in frames]
    for col in CATEGORICAL:
        if col in frames[0] and all(isinstance(f[col].dtype, pd.CategoricalDtype)
                                    for f in frames):
            union = sorted(set().union(*(f[col].cat.categories for f in frames)))
            for f in frames:
                f[col] = f[col].cat.set_categories(union)
    return pd.concat(frames, ignore_index=True)


def without_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its ``attrs`` (a shallow copy: no data is copied).  pandas deep-copies
    ``attrs`` into every frame an operation returns; a run's attrs (profile specs, provenance)
    made each groupby slice cost ~0.2 ms, a third of the time of the summary and the plots."""
    if not frame.attrs:
        return frame
    frame = frame.copy(deep=False)
    frame.attrs = {}
    return frame


def units(results: pd.DataFrame):
    """Iterate the (task, paradigm) units of a results table -- of every grid point in a sweep
    store.  Yields ``(where, task, paradigm, rows)``: ``where`` is ``{}`` for a run, or the
    unit's ``point`` and ``grid.<key>`` values in a sweep (columns that analyses put first)."""
    results = without_attrs(results)
    grid = sorted(c for c in results.columns if str(c).startswith("grid."))
    keys = (["point"] if "point" in results.columns else []) + ["task", "paradigm"]
    for key, rows in results.groupby(keys, observed=True, sort=False):
        *point, task, paradigm = key
        where = ({"point": int(point[0]), **{c: rows[c].iloc[0] for c in grid}} if point
                 else {})
        yield where, str(task), str(paradigm), rows


def _categorise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.attrs = {}  # specs and provenance go to the manifest, not the Parquet metadata
    for col in CATEGORICAL:
        frame[col] = frame[col].astype("category")
    return frame


def atomic_write(path: Path, write, *, fsync: bool = True) -> None:
    """Call ``write(tmp_path)`` then fsync and rename onto ``path`` (never half-written).

    ``fsync=False`` skips the flush to disk (~0.3 ms instead of ~5 ms): the file is still
    complete or absent after a killed process, but may be lost or empty after a power failure
    (checkpoints, which are re-computable, use it)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        if _KILL_AT:
            kill_point(path.name, "before")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if _KILL_AT:
        kill_point(path.name, "after")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_run(directory: Path, frame: pd.DataFrame, manifest: dict) -> None:
    """Write ``results.parquet`` then ``manifest.json`` (with the results' checksum and
    ``"sealed": false``) atomically: the directory is then ``unsealed`` (module docstring).

    Files written into the directory afterwards (summary, profile, report) are added to the
    manifest's checksums by ``seal_run``, which seals it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / RESULTS_FILE,
                 lambda p: _categorise(frame).to_parquet(p, index=False))
    _write_manifest(directory, dict(manifest, sealed=False,
                                    files=_checksums(directory, [RESULTS_FILE])))


#: a fixed date for the members of ``write_arrays``' zip: the same arrays give the same bytes
_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz (``np.load`` reads it) whose bytes depend only
    on the arrays and their order (no timestamps, unlike ``np.savez``); no pickle (object
    arrays raise ValueError).  Not atomic: wrap in ``atomic_write``."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``write_arrays`` file (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def run_files(directory: str | os.PathLike) -> list[str]:
    """Every file of a run directory, as sorted '/'-separated relative paths: all regular files
    below it except ``manifest.json`` and hidden ones (the lock, ``.checkpoints/``, temporary
    files)."""
    directory = Path(directory)
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.name != MANIFEST_FILE
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def _checksums(directory: Path, names: list[str]) -> dict[str, dict]:
    out = {}
    for name in names:
        path = directory / name
        out[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        if name == RESULTS_FILE:
            import pyarrow.parquet as pq

            out[name]["rows"] = int(pq.ParquetFile(path).metadata.num_rows)
    return out


def _write_manifest(directory: Path, manifest: dict) -> None:
    atomic_write(directory / MANIFEST_FILE,
                 lambda p: p.write_text(json.dumps(manifest, indent=2, default=str) + "\n"))


def seal_run(directory: str | os.PathLike, names: list[str] | None = None) -> dict:
    """Seal the manifest (``"sealed": true``) with the checksums of every file ``run_files``
    lists (``names`` None: the list is replaced), or record those of ``names`` keeping the other
    entries; rewrite the manifest atomically and return it.

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no manifest, or a named file is missing.
    ManifestError
        If the manifest is not a JSON object.
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    if names is None:
        manifest["files"] = _checksums(directory, run_files(directory))
    else:
        manifest["files"] = {**manifest.get("files", {}), **_checksums(directory, list(names))}
    manifest["sealed"] = True
    _write_manifest(directory, manifest)
    return manifest


def load_results(directory: str | os.PathLike) -> pd.DataFrame:
    """The results of a run directory as a pandas DataFrame (columns ``COLUMNS``), with the
    manifest's per-task profile specs in ``attrs["profile_specs"]`` and its provenance in
    ``attrs["provenance"]`` (as ``run_study`` returns them).

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no ``results.parquet``.
    """
    path = Path(directory) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {RESULTS_FILE} (not a modelcollapse run directory)")
    frame = pd.read_parquet(path)
    if (Path(directory) / MANIFEST_FILE).is_file():  # as run_study returns it: which metric
        recorded = load_manifest(directory)  # is each task's risk, etc.
        frame.attrs["profile_specs"] = recorded.get("profile_specs", {})
        frame.attrs["provenance"] = recorded.get("provenance", {})
    return frame


def load_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a run directory (resolved study, hash, versions, checksums).

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no manifest.
    ManifestError
        If it is not a JSON object (truncated, edited): one line.
    """
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {MANIFEST_FILE} (not a modelcollapse run "
                                "directory)")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        why = (f"{exc.msg} at line {exc.lineno} column {exc.colno}"
               if isinstance(exc, json.JSONDecodeError) else type(exc).__name__)
        raise ManifestError(f"{path}: not valid JSON ({why}): truncated or edited, the run "
                            "cannot be verified; run the study again into a new --out") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: not a JSON object (edited); the run cannot be verified: "
                            "run the study again into a new --out")
    return manifest


LOCK_FILE = ".modelcollapse.lock"


class RunLocked(RuntimeError):
    """Another live process is writing into the run directory."""


_held_fds: set[int] = set()  # lock file descriptors this process holds


def _close_held_in_child() -> None:
    # a forked worker (--jobs) must not keep the run's lock alive after its parent dies:
    # flock locks belong to the open file, which fork shares; closing the child's copy leaves
    # the parent's lock in place
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks after boot (/proc; None elsewhere or if
    it does not exist): with the PID, it identifies a process (PIDs are reused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name may contain spaces


class RunLock:
    """Exclusive lock on a run directory for the duration of a run (``with RunLock(dir):``).

    An ``fcntl.flock`` on ``DIR/.modelcollapse.lock``: atomic, and released by the kernel when
    the holder exits or is killed (so a lock is never stale and a reused PID never blocks; no
    takeover step).  The file records its holder ({host, pid, start, since}) for the message
    another process gets; the record is informative only, so an empty or corrupt lock file is
    simply locked again.  Forked worker processes do not inherit the lock.

    Raises
    ------
    RunLocked
        Another process (or another ``RunLock`` of this process) holds the lock; one line.
    OSError
        The directory cannot be created or written (read-only, under a file...).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        self.created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):  # retried only when the file was replaced while we locked it
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                self._cleanup_created()
                raise RunLocked(f"{self.path.parent}: another run ({holder}) is writing here; "
                                "wait for it or choose another --out") from None
            except OSError as exc:
                os.close(fd)
                self._cleanup_created()
                raise RunLocked(f"{self.path.parent}: cannot lock the run directory "
                                f"({exc.strerror}); choose an --out on a local disk") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file as we locked it: lock the new one
                os.close(fd)
                continue
            record = {"host": socket.gethostname(), "pid": os.getpid(),
                      "start": _start_time(os.getpid()),
                      "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            self.fd = fd
            _held_fds.add(fd)
            return self
        raise RunLocked(f"{self.path.parent}: could not take the run lock (its file keeps "
                        "being replaced)")

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            record = json.loads(os.pread(fd, 4096, 0) or b"null")
            return f"pid {int(record['pid'])} on {record['host']} since {record['since']}"
        except (ValueError, TypeError, KeyError, OSError):
            return "holder unknown"

    def _cleanup_created(self) -> None:
        if self.created:
            try:
                self.path.parent.rmdir()  # only if empty
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()  # while still locked: a waiting opener sees a new file
        except FileNotFoundError:
            pass
        _held_fds.discard(fd)
        os.close(fd)  # releases the lock
        if self.created and self.path.parent.is_dir() and not any(self.path.parent.iterdir()):
            try:
                self.path.parent.rmdir()  # a run that wrote nothing leaves nothing behind
            except OSError:
                pass

    def held(self) -> bool:
        return self.fd is not None


def lock_holder(directory: str | os.PathLike) -> str | None:
    """Who holds the run lock of ``directory`` ("pid N on HOST since T"), or None if nobody
    does (probed without taking it for longer than a moment)."""
    import fcntl

    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return RunLock._holder(fd)
        except OSError:
            return None
        return None
    finally:
        os.close(fd)  # (releases the probe's shared lock)


def _alive(pid: int) -> bool:
    """Whether a process with this PID exists (used by checkpoint workers to notice that the
    run that started them is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_temporary(directory: str | os.PathLike) -> list[Path]:
    """Remove the stale temporary files (``.*.tmp``, as ``atomic_write`` names them) that a
    killed process left below ``directory`` (call it holding the run lock); return them."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for path in directory.rglob(".*.tmp"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def run_state(directory: str | os.PathLike) -> str:
    """The state of a run directory (module docstring): ``EMPTY``, ``INTERRUPTED``,
    ``UNSEALED``, ``FINISHED`` or ``DAMAGED``.  Reads only the manifest's ``sealed`` flag (no
    checksums: ``verify_run``)."""
    directory = Path(directory)
    manifest = directory / MANIFEST_FILE
    if manifest.is_file():
        try:
            recorded = load_manifest(directory)
        except ManifestError:
            return DAMAGED
        return UNSEALED if recorded.get("sealed") is False else FINISHED
    if (directory / ".checkpoints" / "run.json").is_file():
        return INTERRUPTED
    if (directory / RESULTS_FILE).is_file():
        return DAMAGED
    return EMPTY


def verify_run(directory: str | os.PathLike) -> list[str]:
    """Problems found checking a run directory against its manifest's checksums (empty: valid):
    every file the manifest lists must be present and unchanged (a directory written before
    the manifest listed more than ``results.parquet`` is checked on that file).

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no manifest.
    ManifestError
        If the manifest is not a JSON object, or its ``files`` entry is not a mapping.
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(m, dict) for m in files.values()):
        raise ManifestError(f"{directory}/{MANIFEST_FILE}: its 'files' entry is not a mapping "
                            "of file names to checksums (edited); the run cannot be verified")
    problems = []
    root = directory.resolve()
    for name, meta in files.items():
        path = directory / name
        if not path.resolve().is_relative_to(root):
            problems.append(f"{name}: outside the run directory (the manifest was edited)")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != meta.get("sha256"):
            problems.append(f"{name} does not match its checksum in {MANIFEST_FILE}")
    return problems
