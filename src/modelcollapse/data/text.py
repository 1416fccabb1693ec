"""Word-level views of the prepared text corpora (``austen``, ``brown``).

Words are maximal runs of ASCII letters with inner apostrophes (``[a-z]+(?:'[a-z]+)*`` after
lower-casing and mapping the typographic apostrophe to ``'``): punctuation, digits and case are
dropped, so "Elizabeth's" and "elizabeth's" are one word type.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

__all__ = ["corpus_text", "word_counts", "WORD_RE"]

WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")
CORPORA = {"austen": None, "brown": ("brown.txt",)}  # None: every *.txt file (one per novel)


def corpus_text(dataset: str) -> str:
    """The whole prepared corpus ``dataset`` as one string.

    Raises
    ------
    ValueError
        ``dataset`` is not a text corpus, or it is not prepared (the message gives the command).
    """
    from .prepare import dataset_path, load_meta

    if dataset not in CORPORA:
        raise ValueError(f"dataset: {dataset!r} is not a text corpus; allowed: "
                         f"{', '.join(CORPORA)}")
    if load_meta(dataset) is None:
        raise ValueError(f"dataset: {dataset} is not prepared; run "
                         f"`modelcollapse data prepare {dataset}`")
    root = dataset_path(dataset)
    files = CORPORA[dataset] or sorted(p.name for p in root.glob("*.txt"))
    return "\n".join((root / f).read_text(encoding="utf-8") for f in files)


def word_counts(dataset: str) -> tuple[list[str], np.ndarray]:
    """Word types of a corpus and their counts, most frequent first (ties alphabetical).

    Returns
    -------
    words : list of str, length K
    counts : ndarray of shape (K,), int64, non-increasing
    """
    text = corpus_text(dataset).lower().replace("\u2019", "'")
    counter = Counter(WORD_RE.findall(text))
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in items], np.array([c for _, c in items], dtype=np.int64)
