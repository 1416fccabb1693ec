"""Loading a user's own data files (modelcollapse.data.files)."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from modelcollapse.data.files import (DataFileError, is_data_path, load_image_array,
                                      load_table, load_text_folder, resolve_path)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 30
    return pd.DataFrame({"alcohol": rng.normal(10, 2, n), "ash": rng.integers(0, 5, n),
                         "name": [f"w{i}" for i in range(n)], "red": rng.random(n) < 0.5,
                         "quality": rng.normal(size=n)})


def fails(field: str, match: str, call, *args, **kwargs) -> str:
    """Run ``call``; it must raise a one-line DataFileError starting with ``field:``."""
    with pytest.raises(DataFileError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{field}: ") and "\n" not in message, message
    assert match in message, message
    return message


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_round_trip(tmp_path, frame, suffix):
    path = tmp_path / f"wine{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    table = load_table(path, target="quality")
    # default features: every numeric column (booleans as 0/1) but the target, in file order
    assert table.feature_names == ("alcohol", "ash", "red")
    assert table.X.dtype == np.float64 and table.X.shape == (30, 3)
    expected = frame[["alcohol", "ash", "red"]].to_numpy(dtype=float)
    np.testing.assert_allclose(table.X, expected, rtol=1e-15)
    np.testing.assert_allclose(table.y, frame["quality"].to_numpy(), rtol=1e-15)
    assert table.path == str(path.resolve()) and table.n_rows_file == 30 and table.n_dropped == 0
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    prov = json.loads(json.dumps(table.provenance()))
    assert prov == {"path": str(path.resolve()), "sha256": table.sha256, "n_rows": 30,
                    "n_dropped": 0, "features": ["alcohol", "ash", "red"], "target": "quality"}
    assert not table.X.flags.writeable


def test_table_features_and_no_target(tmp_path, frame):
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    table = load_table(path, features=["red", "alcohol"])
    assert table.y is None and table.target is None and table.feature_names == ("red", "alcohol")
    np.testing.assert_allclose(table.X, frame[["red", "alcohol"]].to_numpy(dtype=float))
    assert load_table(path).feature_names == ("alcohol", "ash", "red", "quality")


def test_npy_table_and_column_index(tmp_path):
    data = np.random.default_rng(1).normal(size=(12, 4))
    np.save(tmp_path / "a.npy", data)
    for target in (3, "x3"):
        table = load_table(tmp_path / "a.npy", target=target)
        assert table.feature_names == ("x0", "x1", "x2") and table.target == "x3"
        np.testing.assert_array_equal(table.X, data[:, :3])
        np.testing.assert_array_equal(table.y, data[:, 3])
    fails("target", "'x7' not in a.npy; available: x0, x1, x2, x3",
          load_table, tmp_path / "a.npy", target=7)


def test_nan_policy(tmp_path, frame):
    frame = frame.astype({"ash": float})
    frame.loc[[16, 20], "alcohol"] = np.nan
    frame.loc[18, "ash"] = np.inf
    frame.loc[25, "name"] = None  # an unused column: not counted
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    fails("dataset", "3 rows of data.csv have NaN or inf (first: row 17, column 'alcohol'); "
          "clean the file or set nan_policy: drop", load_table, path, target="quality")
    table = load_table(path, target="quality", nan_policy="drop")
    assert table.n_dropped == 3 and table.n_rows_file == 30 and len(table.X) == len(table.y) == 27
    kept = frame.drop(index=[16, 18, 20])
    np.testing.assert_allclose(table.X, kept[["alcohol", "ash", "red"]].to_numpy(dtype=float))
    np.testing.assert_allclose(table.y, kept["quality"].to_numpy())
    assert load_table(path, features=["red"], target="quality").n_dropped == 0
    fails("dataset", "data.csv has 27 rows after dropping 3 rows with NaN or inf; at least 28",
          load_table, path, nan_policy="drop", min_rows=28, target="quality")
    fails("nan_policy", "must be one of error, drop, got 'skip'", load_table, path,
          nan_policy="skip")


def test_column_errors(tmp_path, frame):
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    fails("features", "column 'alcohl' not in wine.csv (did you mean 'alcohol'?); available: "
          "alcohol, ash, name, red, quality", load_table, path, features=["ash", "alcohl"])
    fails("target", "column 'qualty' not in wine.csv (did you mean 'quality'?)", load_table,
          path, target="qualty")
    fails("features", "column 'name' of wine.csv is not numeric (dtype", load_table, path,
          features=["name"])
    fails("target", "column 'name' of wine.csv is not numeric", load_table, path, target="name")
    fails("features", "'ash' is listed twice", load_table, path, features=["ash", "ash"])
    fails("features", "'quality' is the target", load_table, path, target="quality",
          features=["ash", "quality"])
    fails("features", "must be a non-empty list", load_table, path, features="ash")
    fails("features", "must be a non-empty list", load_table, path, features=[])
    frame[["name", "quality"]].to_csv(path, index=False)
    fails("features", "wine.csv has no numeric feature columns besides the target 'quality'",
          load_table, path, target="quality")
    frame["alcohol"] = frame["alcohol"].astype(object)
    frame.loc[4, "alcohol"] = "n/a?"
    frame.to_csv(path, index=False)
    fails("features", "column 'alcohol' of wine.csv is not numeric (dtype ", load_table, path,
          features=["alcohol"])
    fails("features", "row 5 holds 'n/a?'", load_table, path, features=["alcohol"])


def test_messages_are_one_line(tmp_path):
    """Column names and cell values with line breaks are flattened into the one line."""
    path = tmp_path / "multi.csv"
    pd.DataFrame({"first\nline": ["a\nb"] * 12, "y": range(12)}).to_csv(path, index=False)
    fails("features", "available: first line, y", load_table, path, features=["z"])
    fails("features", "is not numeric", load_table, path, features=["first\nline"])


def test_too_few_rows(tmp_path, frame):
    path = tmp_path / "small.csv"
    frame.head(4).to_csv(path, index=False)
    fails("dataset", "small.csv has 4 rows; at least 10 are needed", load_table, path)
    assert len(load_table(path, min_rows=4).X) == 4
    frame.head(0).to_csv(path, index=False)
    fails("dataset", "small.csv has no data rows", load_table, path)


@pytest.mark.parametrize("name, content, match", [
    ("binary.csv", bytes(range(256)) * 8, "binary.csv"),
    ("empty.csv", b"", "cannot read empty.csv as .csv"),
    ("latin.csv", "a,b\n\xe9t\xe9,1\n".encode("latin-1"), "latin.csv is not UTF-8 text (byte 0xe9)"),
    ("fake.parquet", b"a,b\n1,2\n", "cannot read fake.parquet as .parquet"),
    ("fake.npy", b"a,b\n1,2\n", "cannot read fake.npy as .npy (no NumPy .npy header"),
    ("short.npy", b"\x93NUMPY\x01\x00", "cannot read short.npy as .npy"),
    ("pickled.npy", None, "cannot read pickled.npy as .npy (Object arrays cannot be loaded"),
    ("text.npy", np.array([["a", "b"]] * 12), "text.npy holds <U1 values; a numeric"),
    ("cube.npy", np.zeros((12, 2, 2)), "cube.npy has shape (12, 2, 2); a table needs a 2-d"),
    ("notes.txt", b"hello", "'notes.txt' has an unsupported suffix; expected .csv, .parquet, .npy"),
])
def test_malformed_files(tmp_path, name, content, match):
    path = tmp_path / name
    if content is None:
        np.save(path, np.array([{"run": "code"}], dtype=object), allow_pickle=True)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_bytes(content)
    fails("dataset", match, load_table, name, base_dir=tmp_path)


def test_resolve_path_order(tmp_path, monkeypatch):
    study_dir, cwd = tmp_path / "study", tmp_path / "cwd"
    for folder in (study_dir, cwd):
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "d.csv").write_text("a\n1\n")
    (cwd / "only_here.csv").write_text("a\n1\n")
    monkeypatch.chdir(cwd)
    assert resolve_path("data/d.csv", study_dir) == study_dir / "data" / "d.csv"
    assert resolve_path("data/d.csv", None) == cwd / "data" / "d.csv"
    assert resolve_path("only_here.csv", study_dir) == cwd / "only_here.csv"
    absolute = cwd / "data" / "d.csv"
    assert resolve_path(str(absolute), study_dir) == absolute
    message = fails("dataset", f"file 'x.csv' not found (looked in {study_dir} and the current "
                    f"directory {cwd})", resolve_path, "x.csv", study_dir)
    assert message.startswith("dataset: file")
    fails("dataset", f"file '{tmp_path}/x.csv' not found", resolve_path, str(tmp_path / "x.csv"),
          None)
    fails("dataset", "expected a path to a file, got 3", resolve_path, 3, None)
    fails("dataset", "'data' is a folder", load_table, "data", base_dir=study_dir)


def test_is_data_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    assert all(map(is_data_path, ["wine.csv", "x.PARQUET", "a.npy", "data/wine", "corpus"]))
    assert not any(map(is_data_path, ["wine", "digits", "corpus2", 3, None]))
    assert is_data_path("texts", base_dir=tmp_path / "corpus") is False
    (tmp_path / "corpus" / "texts").mkdir()
    assert is_data_path("texts", base_dir=tmp_path / "corpus")


def test_text_folder(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "b.txt").write_text("second é", encoding="utf-8")
    (folder / "a.txt").write_bytes(b"\xef\xbb\xbffirst")  # a BOM is dropped
    (folder / "skip.md").write_text("not text data")
    texts = load_text_folder("corpus", base_dir=tmp_path)
    assert texts.names == ("a.txt", "b.txt") and texts.texts == ("first", "second é")
    assert texts.path == str(folder)
    first = texts.sha256
    (folder / "b.txt").write_text("second e", encoding="utf-8")
    assert load_text_folder(folder).sha256 != first  # the checksum covers the bytes
    (folder / "d.txt").write_bytes(b"ok \xff")
    fails("dataset", f"d.txt in {folder} is not UTF-8 text (byte 0xff at offset 3)",
          load_text_folder, folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    fails("dataset", f"folder {empty} has no .txt files", load_text_folder, empty)
    fails("dataset", "'corpus/a.txt' is a file; expected a folder", load_text_folder,
          "corpus/a.txt", base_dir=tmp_path)
    fails("dataset", "folder 'nowhere' not found", load_text_folder, "nowhere", base_dir=tmp_path)


def test_text_folder_checksum_names(tmp_path):
    """Renaming a file changes the checksum even when the bytes stay."""
    (tmp_path / "a.txt").write_text("x")
    before = load_text_folder(tmp_path).sha256
    (tmp_path / "a.txt").rename(tmp_path / "b.txt")
    assert load_text_folder(tmp_path).sha256 != before


@pytest.mark.parametrize("shape, image_shape", [((5, 3, 4), (3, 4)), ((5, 16), (4, 4)),
                                                ((5, 6), (1, 6))])
def test_image_array(tmp_path, shape, image_shape):
    images = np.random.default_rng(2).random(shape).astype(np.float32)
    np.save(tmp_path / "img.npy", images)
    loaded = load_image_array("img.npy", base_dir=tmp_path)
    assert loaded.shape == image_shape and loaded.X.dtype == np.float64
    np.testing.assert_array_equal(loaded.X, images.reshape(5, -1))
    assert loaded.sha256 == hashlib.sha256((tmp_path / "img.npy").read_bytes()).hexdigest()
    assert json.loads(json.dumps(loaded.provenance()))["shape"] == list(image_shape)


def test_image_array_errors(tmp_path):
    np.save(tmp_path / "bytes.npy", np.full((3, 2, 2), 255, dtype=np.uint8))
    fails("dataset", "image values must be finite and lie in [0, 1]; bytes.npy has min 255, "
          "max 255", load_image_array, tmp_path / "bytes.npy")
    np.save(tmp_path / "nan.npy", np.array([[0.5, np.nan]]))
    fails("dataset", "must be finite", load_image_array, tmp_path / "nan.npy")
    np.save(tmp_path / "flat.npy", np.zeros(4))
    fails("dataset", "flat.npy has shape (4,); expected (n, h, w) or (n, d)", load_image_array,
          tmp_path / "flat.npy")
    with open(tmp_path / "pickle.npy", "wb") as f:
        pickle.dump([1, 2], f)
    fails("dataset", "cannot read pickle.npy as .npy", load_image_array, tmp_path / "pickle.npy")
    (tmp_path / "img.csv").write_text("a\n1\n")
    fails("dataset", "'img.csv' is not a .npy file", load_image_array, "img.csv",
          base_dir=tmp_path)
