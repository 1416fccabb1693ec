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
killed run leaves either the complete file or none; the manifest is sealed last.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "units", "chain_frame", "write_run", "seal_run", "run_files", "load_results",
           "load_manifest", "atomic_write", "RunLock", "RunLocked", "verify_run"]

COLUMNS = ["study", "task", "family", "paradigm", "seed", "iteration", "metric", "value", "status"]
RESULTS_FILE, MANIFEST_FILE = "results.parquet", "manifest.json"


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


def units(results: pd.DataFrame):
    """Iterate the (task, paradigm) units of a results table -- of every grid point in a sweep
    store.  Yields ``(where, task, paradigm, rows)``: ``where`` is ``{}`` for a run, or the
    unit's ``point`` and ``grid.<key>`` values in a sweep (columns that analyses put first)."""
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
    for col in ("study", "task", "family", "paradigm", "metric", "status"):
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    """Write ``results.parquet`` then ``manifest.json`` (with the results' checksum) atomically.

    Files written into the directory afterwards (summary, profile, report) are added to the
    manifest's checksums by ``seal_run``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / RESULTS_FILE,
                 lambda p: _categorise(frame).to_parquet(p, index=False))
    _write_manifest(directory, dict(manifest, files=_checksums(directory, [RESULTS_FILE])))


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
    """Record in the manifest the checksums of ``names`` (default: every file ``run_files``
    lists), keeping the other entries; rewrite the manifest atomically and return it.

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no manifest, or a named file is missing.
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    names = run_files(directory) if names is None else list(names)
    manifest["files"] = {**manifest.get("files", {}), **_checksums(directory, names)}
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
    manifest = Path(directory) / MANIFEST_FILE
    if manifest.is_file():  # as run_study returns it: which metric is each task's risk, etc.
        recorded = json.loads(manifest.read_text())
        frame.attrs["profile_specs"] = recorded.get("profile_specs", {})
        frame.attrs["provenance"] = recorded.get("provenance", {})
    return frame


def load_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a run directory (resolved study, hash, versions, checksums).

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no manifest.
    """
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {MANIFEST_FILE} (not a modelcollapse run "
                                "directory)")
    return json.loads(path.read_text())


LOCK_FILE = ".modelcollapse.lock"


class RunLocked(RuntimeError):
    """Another live process is writing into the run directory."""


class RunLock:
    """Exclusive lock on a run directory for the duration of a run (``with RunLock(dir):``).

    The lock is a file created with O_EXCL holding the owner's PID; a lock left by a process that
    no longer exists (a killed run) is taken over.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / LOCK_FILE

    def __enter__(self) -> "RunLock":
        self.created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner):
                    raise RunLocked(f"{self.path.parent}: another run (pid {owner}) is writing "
                                    "here; wait for it or choose another --out") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return self
        raise RunLocked(f"{self.path.parent}: could not take the run lock")

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc) -> None:
        if self._owner() == os.getpid():
            self.path.unlink(missing_ok=True)
        if self.created and not any(self.path.parent.iterdir()):
            self.path.parent.rmdir()  # a run that wrote nothing leaves nothing behind


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def verify_run(directory: str | os.PathLike) -> list[str]:
    """Problems found checking a run directory against its manifest's checksums (empty: valid):
    every file the manifest lists must be present and unchanged (a directory written before
    the manifest listed more than ``results.parquet`` is checked on that file).

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no manifest.
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    problems = []
    for name, meta in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != meta.get("sha256"):
            problems.append(f"{name}: checksum differs from the manifest (modified or corrupt)")
    return problems
