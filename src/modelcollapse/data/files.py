"""A user's own data files: tables (``.csv``, ``.parquet``, ``.npy``), folders of ``.txt`` files
and ``.npy`` image arrays.

A study names a file in ``dataset`` (``dataset: data/wine.csv``); relative paths are looked up
first in the study file's folder, then in the current directory.  Every bad input raises
:class:`DataFileError` with one line that starts with the study field at fault (``dataset:``,
``target:``, ``features:``, ``nan_policy:``), so the CLI can print it without a traceback.
Every loaded file carries its absolute path and the SHA-256 of its bytes for the manifest.

Readers: pandas ``read_csv`` / ``read_parquet`` (pyarrow) and ``numpy.load(allow_pickle=False)``
(a pickled ``.npy`` is refused: loading a pickle runs code).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DataFileError", "DATA_SUFFIXES", "NAN_POLICIES", "is_data_path", "resolve_path",
           "Table", "load_table", "TextFolder", "load_text_folder", "ImageArray",
           "load_image_array"]

DATA_SUFFIXES = (".csv", ".parquet", ".npy")
NAN_POLICIES = ("error", "drop")


class DataFileError(ValueError):
    """A data file that cannot be used; ``str(err)`` is one line starting with ``field:``."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {_one_line(message)}")


def _one_line(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def is_data_path(value: object, base_dir: str | Path | None = None) -> bool:
    """True if ``value`` reads as a file path rather than a built-in dataset name: a string
    ending in one of :data:`DATA_SUFFIXES`, containing a path separator, or naming an existing
    folder (relative to ``base_dir`` or the current directory)."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    if text.lower().endswith(DATA_SUFFIXES) or "/" in text or os.sep in text:
        return True
    return any((Path(d) / text).is_dir() for d in (*_dirs(base_dir), "."))


def _dirs(base_dir) -> list[Path]:
    """``base_dir`` -- None, a folder, or a list of folders -- as a list of absolute paths."""
    if base_dir is None:
        return []
    items = base_dir if isinstance(base_dir, (list, tuple)) else [base_dir]
    return [Path(d).expanduser().resolve() for d in items]


def resolve_path(value: str | Path, base_dir: str | Path | None, *, field: str = "dataset",
                 kind: str = "file") -> Path:
    """Absolute path of an existing file or folder ``value``.

    A relative path is tried in ``base_dir`` (the study file's folder) first, then in the
    current directory; ``~`` is expanded.  Raises :class:`DataFileError` if none exists."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise DataFileError(field, f"expected a path to a {kind}, got {value!r}")
    path = Path(value).expanduser()
    if path.is_absolute():
        if path.exists():
            return path.resolve()
        raise DataFileError(field, f"{kind} '{value}' not found")
    dirs = _dirs(base_dir)
    for d in dirs + [Path.cwd()]:
        if (d / path).exists():
            return (d / path).resolve()
    where = f"{dirs[0]} and the current directory" if dirs else "the current directory"
    raise DataFileError(field, f"{kind} '{value}' not found (looked in {where} {Path.cwd()})")


def _unreadable(path: Path, err: Exception, how: str = "") -> DataFileError:
    detail = getattr(err, "strerror", None) or str(err).strip()
    return DataFileError("dataset", f"cannot read {path.name}{how} ({detail})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise _unreadable(path, err) from None
    return digest.hexdigest()


def _load_npy(path: Path) -> np.ndarray:
    """A numeric (bool, int or float) array from a ``.npy`` file, never unpickling."""
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise ValueError("no NumPy .npy header; save it with numpy.save")
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise _unreadable(path, err, " as .npy") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise DataFileError("dataset", f"{path.name} holds {getattr(array, 'dtype', type(array))} "
                            "values; a numeric (bool, int or float) array is needed")
    return array


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Table:
    """A numeric table read from a data file.

    ``X`` (n_samples, n_features) float64 and ``y`` (n_samples,) float64 (None without a
    target) are read-only; rows with NaN/inf were dropped when ``nan_policy="drop"``."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...]
    target: str | None
    path: str
    sha256: str
    n_rows_file: int
    n_dropped: int
    labels: np.ndarray | None = None  #: (n_samples,) int class codes of the ``labels`` column

    def provenance(self) -> dict:
        """JSON-able record for the manifest."""
        return {"path": self.path, "sha256": self.sha256, "n_rows": self.n_rows_file,
                "n_dropped": self.n_dropped, "features": list(self.feature_names),
                "target": self.target}


def _read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _load_npy(path)
        if array.ndim != 2:
            raise DataFileError("dataset", f"{path.name} has shape {array.shape}; a table needs a "
                                "2-d array (rows, columns)")
        return pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except UnicodeDecodeError as err:
        raise DataFileError("dataset", f"{path.name} is not UTF-8 text (byte "
                            f"{err.object[err.start]:#04x}); save it as UTF-8") from None
    except (ValueError, OSError, ImportError) as err:  # pandas and pyarrow parse errors included
        raise _unreadable(path, err, f" as {suffix}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _rows(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


def _column(frame, name, field: str, file: str) -> str:
    """``name`` if it is a numeric column of ``frame``; else a DataFileError naming the cause."""
    columns = list(frame.columns)
    if name not in columns:
        close = difflib.get_close_matches(str(name), columns, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        listed = ", ".join(columns[:20]) + (f", ... ({len(columns)} in all)"
                                            if len(columns) > 20 else "")
        raise DataFileError(field, f"column '{name}' not in {file}{hint}; available: {listed}")
    series = frame[name]
    if series.dtype.kind not in "biuf":
        import pandas as pd

        bad = np.flatnonzero(pd.to_numeric(series, errors="coerce").isna() & series.notna())
        where = f"; row {bad[0] + 1} holds {series.iloc[bad[0]]!r}" if len(bad) else ""
        raise DataFileError(field, f"column '{name}' of {file} is not numeric (dtype "
                            f"{series.dtype}{where})")
    return name


def load_table(value: str | Path, *, base_dir: str | Path | None = None,
               target: str | int | None = None, features: list[str] | None = None,
               nan_policy: str = "error", min_rows: int = 10,
               labels: str | None = None) -> Table:
    """Read a ``.csv``, ``.parquet`` or ``.npy`` table as float64 arrays.

    ``target``: the column to predict (regression), or None.  For ``.npy`` (a 2-d numeric array)
    columns are named ``x0 .. x{d-1}`` and ``target`` may also be a column index.
    ``features``: columns to use; default every numeric column except the target and
    ``labels`` (booleans count as 0/1).  ``labels``: a column of class labels of any type
    (e.g. the modes of Def. 6), returned as integer codes in order of appearance; a missing
    label counts as a NaN.  ``nan_policy``: ``"error"`` or ``"drop"`` rows with NaN/inf in a used column.
    Rows are numbered from 1, the header not counted.

    Raises :class:`DataFileError` for a missing, unreadable or malformed file, a missing or
    non-numeric column, NaN/inf under ``"error"``, or fewer than ``min_rows`` rows left."""
    if nan_policy not in NAN_POLICIES:
        raise DataFileError("nan_policy", f"must be one of {', '.join(NAN_POLICIES)}, "
                            f"got {nan_policy!r}")
    path = resolve_path(value, base_dir)
    suffixes = ", ".join(DATA_SUFFIXES)
    if path.is_dir():
        raise DataFileError("dataset", f"'{value}' is a folder; expected a {suffixes} file")
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise DataFileError("dataset", f"'{value}' has an unsupported suffix; expected {suffixes}")
    frame = _read_frame(path)
    file = path.name
    if len(frame) == 0:
        raise DataFileError("dataset", f"{file} has no data rows; at least {min_rows} are needed")
    is_index = isinstance(target, (int, np.integer)) and not isinstance(target, bool)
    if is_index and path.suffix.lower() == ".npy":
        target = f"x{target}"
    if target is not None:
        target = _column(frame, target, "target", file)
    if labels is not None and labels not in frame.columns:
        _column(frame, labels, "labels", file)  # raises: the column is missing
    if features is None:
        names = [c for c in frame.columns
                 if c not in (target, labels) and frame[c].dtype.kind in "biuf"]
        if not names:
            raise DataFileError("features", f"{file} has no numeric feature columns"
                                + (f" besides the target '{target}'" if target else ""))
    else:
        if (isinstance(features, str) or not isinstance(features, (list, tuple)) or not features
                or not all(isinstance(f, str) for f in features)):
            raise DataFileError("features", f"must be a non-empty list of column names, "
                                f"got {features!r}")
        names = [_column(frame, f, "features", file) for f in features]
        if target in names:
            raise DataFileError("features", f"column '{target}' is the target; leave it out")
        if len(set(names)) < len(names):
            twice = next(f for f in names if names.count(f) > 1)
            raise DataFileError("features", f"column '{twice}' is listed twice")
    used = names + ([target] if target is not None else [])
    values = frame[used].to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    codes = None
    if labels is not None:
        import pandas as pd

        codes = pd.factorize(frame[labels])[0]
        finite = np.column_stack([finite, codes >= 0])
        used = used + [labels]
    bad = ~finite.all(axis=1)
    if bad.any() and nan_policy == "error":
        row, col = np.argwhere(~finite)[0]
        raise DataFileError("dataset", f"{_rows(bad.sum())} of {file} "
                            f"{'has' if bad.sum() == 1 else 'have'} NaN or inf (first: row "
                            f"{row + 1}, column '{used[col]}'); clean the file or set "
                            "nan_policy: drop")
    values = values[~bad]
    if len(values) < min_rows:
        dropped = f" after dropping {_rows(bad.sum())} with NaN or inf" if bad.any() else ""
        raise DataFileError("dataset", f"{file} has {_rows(len(values))}{dropped}; at least "
                            f"{min_rows} are needed")
    y = _readonly(values[:, -1].copy()) if target is not None else None
    return Table(X=_readonly(values[:, :len(names)].copy()), y=y, feature_names=tuple(names),
                 target=target, path=str(path), sha256=_sha256(path), n_rows_file=len(frame),
                 n_dropped=int(bad.sum()),
                 labels=None if codes is None else _readonly(codes[~bad].astype(np.int64)))


@dataclass(frozen=True, eq=False)
class TextFolder:
    """The ``.txt`` files of a folder, sorted by name; ``sha256`` covers each (name, bytes)."""

    texts: tuple[str, ...]
    names: tuple[str, ...]
    path: str
    sha256: str

    def provenance(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "files": len(self.names)}


def load_text_folder(value: str | Path, *, base_dir: str | Path | None = None) -> TextFolder:
    """Read every ``*.txt`` file (UTF-8, a leading BOM dropped) directly in folder ``value``.

    Raises :class:`DataFileError` if the folder is missing, is a file, has no ``.txt`` files,
    or a file is unreadable or not UTF-8 (the file is named)."""
    path = resolve_path(value, base_dir, kind="folder")
    if not path.is_dir():
        raise DataFileError("dataset", f"'{value}' is a file; expected a folder of .txt files")
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise DataFileError("dataset", f"folder {path} has no .txt files")
    digest, texts = hashlib.sha256(), []
    for file in files:
        try:
            data = file.read_bytes()
            texts.append(data.decode("utf-8-sig"))
        except OSError as err:
            raise _unreadable(file, err) from None
        except UnicodeDecodeError as err:
            raise DataFileError("dataset", f"{file.name} in {path} is not UTF-8 text (byte "
                                f"{data[err.start]:#04x} at offset {err.start})") from None
        for part in (file.name.encode(), len(data).to_bytes(8, "little"), data):
            digest.update(part)
    return TextFolder(texts=tuple(texts), names=tuple(f.name for f in files), path=str(path),
                      sha256=digest.hexdigest())


@dataclass(frozen=True, eq=False)
class ImageArray:
    """Images as rows: ``X`` (n, h*w) float64 in [0, 1] (read-only), ``shape`` = (h, w)."""

    X: np.ndarray
    shape: tuple[int, int]
    path: str
    sha256: str

    def provenance(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "n_rows": len(self.X),
                "shape": list(self.shape)}


def load_image_array(value: str | Path, *, base_dir: str | Path | None = None) -> ImageArray:
    """Read a ``.npy`` of images, shape (n, h, w), or (n, d) rows of flattened images (then
    ``shape`` is (s, s) when d = s*s, else (1, d)); values must be finite and lie in [0, 1].

    Raises :class:`DataFileError` for a missing, unreadable, pickled or non-numeric file, a
    wrong number of dimensions, or values outside [0, 1] (min and max are named)."""
    path = resolve_path(value, base_dir)
    if path.suffix.lower() != ".npy":
        raise DataFileError("dataset", f"'{value}' is not a .npy file; images are read from "
                            ".npy arrays")
    array = _load_npy(path)
    if array.ndim not in (2, 3) or array.shape[0] == 0 or array[0].size == 0:
        raise DataFileError("dataset", f"{path.name} has shape {array.shape}; expected (n, h, w) "
                            "or (n, d) with n, d > 0")
    X = array.reshape(len(array), -1).astype(np.float64)
    low, high = X.min(), X.max()
    if not (np.isfinite(X).all() and low >= 0 and high <= 1):
        raise DataFileError("dataset", f"image values must be finite and lie in [0, 1]; "
                            f"{path.name} has min {low:g}, max {high:g} (scale it, e.g. divide "
                            "by 255)")
    if array.ndim == 3:
        shape = array.shape[1:]
    else:
        side = int(round(np.sqrt(X.shape[1])))
        shape = (side, side) if side * side == X.shape[1] else (1, X.shape[1])
    return ImageArray(X=_readonly(X), shape=tuple(int(s) for s in shape), path=str(path),
                      sha256=_sha256(path))
