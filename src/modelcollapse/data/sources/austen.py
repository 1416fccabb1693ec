"""Jane Austen's six novels from Debian ``r-cran-janeaustenr``, decoded without R.

The .deb is fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into a temporary
directory (R itself is never installed), or read from an installed R library if present.  The
novels are stored in an R lazy-load database (``data/Rdata.rdx`` + ``Rdata.rdb``) and decoded
with the pure-Python package ``rdata``.

Outputs: one UTF-8 text file per novel (``emma.txt``, ``mansfieldpark.txt``,
``northangerabbey.txt``, ``persuasion.txt``, ``prideprejudice.txt``, ``sensesensibility.txt``),
one line of the book per line (hard-wrapped at ~70 columns, blank lines between paragraphs).
"""

from __future__ import annotations

import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np

from . import DataUnavailable, require_module, run_tool

NAME = "austen"
DESCRIPTION = "Jane Austen's six novels as plain text (73k lines, 4.0M characters)"
SOURCE = "Debian package r-cran-janeaustenr (apt-get download + dpkg-deb -x; decoded with rdata)"
LICENSE = "public domain (texts), MIT (packaging)"
SIZE = "4 MB"
PACKAGE = "r-cran-janeaustenr"
PACKAGE_LABEL = "r-cran-janeaustenr (apt)"
REL = Path("usr/lib/R/site-library/janeaustenr/data")
INSTALLED = Path("/usr/lib/R/site-library/janeaustenr/data")
FIX = (f"cd /tmp && apt-get update && apt-get download {PACKAGE} && "
       f"dpkg-deb -x {PACKAGE}_*.deb janeaustenr, then rerun with --source /tmp/janeaustenr")
NOVELS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
          "sensesensibility")


def find_db(root: Path) -> Path | None:
    """The directory holding Rdata.rdx/.rdb under ``root`` (an unpacked .deb or the dir itself)."""
    for cand in (root, root / REL, root / "janeaustenr" / "data", root / "data"):
        if (cand / "Rdata.rdx").is_file() and (cand / "Rdata.rdb").is_file():
            return cand
    return None


def read_lazyload(db: Path) -> dict[str, np.ndarray]:
    """All objects of the R lazy-load database ``db/Rdata.{rdx,rdb}``, converted by rdata."""
    rdata = require_module("rdata", "rdata", NAME)

    def convert(raw: bytes):
        with warnings.catch_warnings():  # "Unknown file type: assumed RDS" (it is)
            warnings.simplefilter("ignore")
            return rdata.conversion.convert(rdata.parser.parse_data(raw, expand_altrep=True))

    index = convert((db / "Rdata.rdx").read_bytes())
    blob = (db / "Rdata.rdb").read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        offset, length = int(offset), int(length)
        # each object: 4-byte big-endian uncompressed length, then a zlib stream
        raw = zlib.decompress(blob[offset + 4: offset + length])
        out[name] = convert(raw)
    return out


def _fetch_deb(tmp: Path) -> Path | None:
    """apt-get download + dpkg-deb -x into ``tmp``; the unpacked root or None."""
    if run_tool(["apt-get", "download", PACKAGE], cwd=tmp) is None:
        return None
    debs = sorted(tmp.glob(f"{PACKAGE}_*.deb"))
    if not debs or run_tool(["dpkg-deb", "-x", str(debs[-1]), str(tmp / "root")], cwd=tmp) is None:
        return None
    return tmp / "root"


def _write(out: Path, objects: dict) -> dict:
    counts = {}
    for name in NOVELS:
        if name not in objects:
            raise ValueError(f"{NAME}: novel {name!r} missing from the R database "
                             f"(found {sorted(objects)})")
        lines = ["" if x is None or (isinstance(x, float) and x != x) else str(x)
                 for x in np.asarray(objects[name], dtype=object).ravel()]
        text = "\n".join(lines) + "\n"
        (out / f"{name}.txt").write_text(text, encoding="utf-8")
        counts[name] = {"lines": len(lines), "nonempty_lines": sum(1 for s in lines if s.strip()),
                        "chars": len(text)}
    counts["total"] = {k: sum(counts[n][k] for n in NOVELS)
                       for k in ("lines", "nonempty_lines", "chars")}
    return counts


def build(out: Path, source: Path | None = None) -> dict:
    require_module("rdata", "rdata", NAME)  # fail fast, before any download
    if source is not None:
        db = find_db(source)
        if db is None:
            raise DataUnavailable(f"{NAME}: no Rdata.rdx/Rdata.rdb under {source}; get them "
                                  f"with: {FIX}")
        return _write(out, read_lazyload(db))
    if find_db(INSTALLED) is not None:
        return _write(out, read_lazyload(INSTALLED))
    with tempfile.TemporaryDirectory(prefix="janeaustenr-") as tmp:
        root = _fetch_deb(Path(tmp))
        db = find_db(root) if root is not None else None
        if db is None:
            raise DataUnavailable(f"{NAME}: could not fetch the Debian package {PACKAGE} "
                                  f"(needs apt-get and dpkg-deb); get it with: {FIX}")
        return _write(out, read_lazyload(db))
