"""LM task: a small GPT-style transformer (``families.lm.LM``) pretrained from scratch on real
prose, one network per replicate -- Gerstgrasser et al. 2024 (arXiv 2404.01413), Sec. 3.2
(GPT-2 on TinyStories) at CPU size.

Data
----
* ``austen`` (default): Jane Austen's six novels (``modelcollapse data prepare austen``); one
  novel is held out (``held_out``, default ``persuasion``), the five others are the training text.
* ``brown``: the Brown Corpus (``modelcollapse data prepare brown``), one text unit per document
  (500).  ``held_out="every10"`` (default) holds out every 10th document in file order (ca10, ca20,
  ..., 50 documents spread over all genres); a genre name (``news``, ``humor``, ...) holds out that
  whole genre (an out-of-domain test set).
* ``toy``: a built-in synthetic "language" (a fixed random word-bigram chain over 300 pseudo-words,
  six 4,000-word "books"), generated deterministically in memory: no preparation and no cache;
  meant for tests (``held_out`` default ``book6``).

Paragraphs are kept as one line each (the novels' hard line wraps are joined with spaces).  A
byte-level BPE tokenizer (Hugging Face ``tokenizers``; ``<|endoftext|>`` is token 0 and serves as
BOS) is trained on the **training text only**, once per task build, deterministically, and cached
with the token ids under ``<dataset dir>/lm/`` keyed by (dataset, held_out, vocab_size); files are
written atomically (temporary file + rename).

Each replicate draws, from its DATA stream of iteration 0, ``n_samples`` training windows of
``context`` consecutive tokens (uniform start positions over the training text; a window never
crosses a novel / document boundary) and ``n_test`` windows of the held-out text.  A row is BOS +
window, so ``task.real`` is (R, n_samples, context + 1) and ``task.test`` (R, n_test, context + 1),
int64.

Metrics (each model-fitting iteration; "sample" = ``min(n_test, 200)`` rows drawn from the model
with the EVAL stream of the iteration)
-----------------------------------------------------------------------------------------------
* ``test_ce``: cross-entropy of the held-out real windows, nats per token (the risk metric; the
  quantity of the paper's LM figure).
* ``tail_ce``: cross-entropy, nats per token, of the 10% of held-out target tokens whose frequency
  in the replicate's real training windows is lowest (ties broken by position): the rare real data
  of Def. 7.
* ``distinct_1`` / ``distinct_2``: distinct n-grams / n-grams of the sample (n-grams within rows,
  BOS excluded) -- Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
  Conversation Models".
* ``unigram_entropy``: Shannon entropy (nats) of the sample's token frequencies;
  ``unigram_entropy_ratio``: that over the same entropy of as many real training tokens (the first
  rows of the replicate's real windows) -- the empirical entropy depends on the sample size, so the
  ratio compares equal sizes (the profile's variance metric, Def. 4).
* ``rare_token_recall``: share of the replicate's rare real token types -- the 10% of the types
  occurring in its real training windows with the lowest counts (ties by id) -- that occur at least
  once in the sample.  The sample has the same size at every iteration, so the values are comparable
  across iterations; ``truth["rare_token_recall_real"]`` gives the value of a real held-out sample
  of that size (what a perfect model would reach up to noise) (Def. 7, tail recall).
* ``novel_ngram_share``: share of the sample's token 3-grams that never occur in the whole real
  training text: a hallucination proxy (Def. 8).  3-grams rather than 4-grams because a BPE token is
  about a word: 74% of the held-out Austen novel's 4-grams (41% of its 3-grams, 9% of its 2-grams)
  never occur in the five training novels, so 4-gram novelty saturates.
  ``truth["novel_ngram_share_real"]`` is the value of a real held-out sample of the same size.
* ``train_steps``: optimizer steps of the iteration's fit.

Training budget (``tasks._budget``): ``train_budget: steps`` (default) gives every fit
``train_steps`` optimizer steps (default ``epochs`` x ceil(``n_samples`` / ``batch_size``), 350
with the defaults), the same compute for every paradigm and iteration; ``epochs`` gives every
fit ``epochs`` passes over its training set, as the paper does (accumulate then gets t + 1 times
the steps at iteration t).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..families.base import PerReplicate
from ..metrics.text import (distinct_n, novel_ngram_share, pack_ngrams, rare_types, type_recall,
                            unigram_entropy)
from ..rng import Role, Streams
from ._budget import TrainBudget, train_steps_taken
from .base import TAIL_FRACTION, Task, TaskParams

__all__ = ["LMTask", "LM_PROFILE", "load_units", "tail_token_positions"]

#: collapse-profile roles of the LM task's metrics (Def. 7 on the increments of the tail and
#: overall cross-entropies since iteration 0: the text's entropy floor cancels)
LM_PROFILE = {"variance": "unigram_entropy_ratio", "tail": "tail_ce", "tail_base": "test_ce",
              "tail_mode": "increment", "tail_recall": "rare_token_recall",
              "hallucination": "novel_ngram_share", "hallucination_mode": "mass"}

N_EVAL = 200  #: rows of the per-iteration model sample (at most n_test)
NOVEL_N = 3  #: n of novel_ngram_share (see the module docstring)
BOS = "<|endoftext|>"
AUSTEN = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
          "sensesensibility")
_HELD_OUT = {"austen": "persuasion", "brown": "every10", "toy": "book6"}
_TOKENIZER_VERSION = 1  # bump when the text normalisation or trainer settings change


# ----------------------------------------------------------------------------- text

def _paragraphs(text: str) -> str:
    """Hard-wrapped text -> one paragraph per line (lines of a paragraph joined by spaces)."""
    paras, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n".join(paras)


def toy_text(n_books: int = 6, words_per_book: int = 4000) -> dict[str, str]:
    """The built-in toy corpus {"book1": text, ...}: a fixed random word-bigram chain over 300
    pseudo-words with Zipf-like successor weights, sentences of 4-14 words."""
    g = np.random.default_rng(20240401)
    syll = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "shi", "gu", "ber", "ion"]
    words = sorted({"".join(g.choice(syll, size=g.integers(1, 4))) for _ in range(600)})[:300]
    V = len(words)
    succ = np.stack([g.permutation(V)[:12] for _ in range(V)])            # (V, 12)
    weights = 1.0 / np.arange(1, 13) ** 1.2
    weights /= weights.sum()
    books = {}
    for b in range(n_books):
        out, w, since = [], int(g.integers(V)), 0
        for _ in range(words_per_book):
            out.append(words[w].capitalize() if since == 0 else words[w])
            since += 1
            if since >= 4 and (since >= 14 or g.random() < 0.15):
                out[-1] += "."
                since = 0
            w = int(succ[w, g.choice(12, p=weights)])
        books[f"book{b + 1}"] = "\n".join(" ".join(out[i:i + 60]) for i in range(0, len(out), 60))
    return books


def held_out_book(dataset: str, held_out: str | None) -> str:
    """The held-out book of ``dataset`` (its default when None); ValueError (one line) for a
    book austen does not have.  Shared by the ``lm`` and ``sft`` tasks' parameters."""
    held_out = _HELD_OUT[dataset] if held_out is None else held_out
    if dataset == "austen" and held_out not in AUSTEN:
        raise ValueError(f"held_out: {held_out!r}; allowed for austen: " + ", ".join(AUSTEN))
    return held_out


def load_units(dataset: str, held_out: str) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts) of a dataset: one string per novel / document / book.

    Raises ValueError if the dataset is not prepared or ``held_out`` is not one of its units.
    """
    if dataset == "toy":
        books = toy_text()
        if held_out not in books:
            raise ValueError(f"held_out: {held_out!r}; allowed for toy: {', '.join(books)}")
        return ([t for k, t in books.items() if k != held_out], [books[held_out]])
    from ..data.prepare import dataset_path, load_meta

    if load_meta(dataset) is None:
        raise ValueError(f"dataset: {dataset} is not prepared; run "
                         f"`modelcollapse data prepare {dataset}`")
    root = dataset_path(dataset)
    if dataset == "austen":
        if held_out not in AUSTEN:
            raise ValueError(f"held_out: {held_out!r}; allowed for austen: {', '.join(AUSTEN)}")
        texts = {n: _paragraphs((root / f"{n}.txt").read_text(encoding="utf-8")) for n in AUSTEN}
        return [texts[n] for n in AUSTEN if n != held_out], [texts[held_out]]
    # brown: group paragraphs by document
    import csv

    lines = (root / "brown.txt").read_text(encoding="utf-8").splitlines()
    docs: dict[str, list[str]] = {}
    genre: dict[str, str] = {}
    with open(root / "paragraphs.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            docs.setdefault(row["file"], []).append(lines[int(row["line"])])
            genre[row["file"]] = row["genre"]
    names = sorted(docs)
    if held_out == "every10":
        test = {n for i, n in enumerate(names) if i % 10 == 9}
    elif held_out in set(genre.values()):
        test = {n for n in names if genre[n] == held_out}
    else:
        raise ValueError(f"held_out: {held_out!r}; allowed for brown: every10, "
                         + ", ".join(sorted(set(genre.values()))))
    return ([("\n".join(docs[n])) for n in names if n not in test],
            [("\n".join(docs[n])) for n in names if n in test])


def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[BOS])
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file next to ``path``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tokenize(dataset: str, held_out: str, vocab_size: int):
    """(tokenizer, training units [int32 arrays], held-out units) for the task, from the cache
    ``<dataset dir>/lm/`` when present (not for ``toy``, which is built in memory)."""
    from tokenizers import Tokenizer

    cache = None
    if dataset != "toy":
        from ..data.prepare import dataset_path

        key = f"bpe-v{_TOKENIZER_VERSION}-{held_out}-{vocab_size}"
        cache = dataset_path(dataset) / "lm"
        tok_path, ids_path = cache / f"{key}.json", cache / f"{key}.npz"
        if tok_path.is_file() and ids_path.is_file():
            with np.load(ids_path) as z:
                n_train = int(z["n_train"])
                units = [z[f"u{i}"] for i in range(int(z["n_units"]))]
            return Tokenizer.from_file(str(tok_path)), units[:n_train], units[n_train:]
    train_texts, test_texts = load_units(dataset, held_out)
    tok = _train_tokenizer(train_texts, vocab_size)
    units = [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch(train_texts + test_texts)]
    if cache is not None:
        arrays = {f"u{i}": u for i, u in enumerate(units)}

        def write_ids(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, n_train=len(train_texts), n_units=len(units), **arrays)

        _atomic_write(ids_path, write_ids)
        _atomic_write(tok_path, lambda p: p.write_text(tok.to_str(), encoding="utf-8"))
    return tok, units[:len(train_texts)], units[len(train_texts):]


def draw_windows(units: list[np.ndarray], n: int, context: int, bos_id: int,
                 g: np.random.Generator) -> np.ndarray:
    """n rows (n, context + 1) int64: BOS + ``context`` consecutive tokens of one unit, start
    positions uniform over all windows that fit inside a unit."""
    lengths = np.array([len(u) for u in units])
    n_starts = np.maximum(lengths - context + 1, 0)                       # (U,)
    if n_starts.sum() == 0:
        raise ValueError(f"context: {context} tokens is longer than every text unit "
                         f"(longest {lengths.max()})")
    flat = np.concatenate(units).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])              # (U,)
    cum = np.cumsum(n_starts)                                             # (U,)
    k = g.integers(cum[-1], size=n)                                       # (n,) window index
    unit = np.searchsorted(cum, k, side="right")                          # (n,)
    start = offsets[unit] + k - (cum[unit] - n_starts[unit])              # (n,)
    rows = flat[start[:, None] + np.arange(context)]                      # (n, L)
    return np.concatenate([np.full((n, 1), bos_id, np.int64), rows], axis=1)


# ----------------------------------------------------------------------------- the tail

def sample_metrics(samples: np.ndarray, vocab_size: int, real_entropy, rare,
                   reference) -> dict[str, np.ndarray]:
    """Per-replicate metrics of sampled token sequences ``samples`` (R, m, L), each (R,):
    distinct-1 and -2, unigram entropy (nats) and its ratio to ``real_entropy``, recall of each
    replicate's ``rare`` real token types, and the share of ``NOVEL_N``-grams not in the packed
    real ``reference`` (``metrics.text``).  Shared by the ``lm`` and ``sft`` tasks."""
    h = np.array([unigram_entropy(x, vocab_size) for x in samples])
    return {"distinct_1": np.array([distinct_n(x, 1) for x in samples]),
            "distinct_2": np.array([distinct_n(x, 2) for x in samples]),
            "unigram_entropy": h, "unigram_entropy_ratio": h / real_entropy,
            "rare_token_recall": np.array([type_recall(t, x) for t, x in zip(rare, samples)]),
            "novel_ngram_share": np.array([novel_ngram_share(x, reference, NOVEL_N)
                                           for x in samples])}


def tail_token_positions(counts: np.ndarray, targets: np.ndarray,
                         fraction: float = TAIL_FRACTION) -> np.ndarray:
    """Flat positions of the ``fraction`` of target tokens (m, L) with the lowest training
    count ``counts[token]`` (ties by position), at least one: -> (k,)."""
    flat = counts[targets.ravel()]
    k = max(1, int(round(fraction * flat.size)))
    return np.argsort(flat, kind="stable")[:k]


class LMTask:
    family = "lm"

    class Params(TaskParams, TrainBudget):
        dataset: Literal["austen", "brown", "toy"] = Field(
            "austen", description="'austen' (needs `modelcollapse data prepare austen`), 'brown' "
            "(`modelcollapse data prepare brown`) or 'toy' (built-in synthetic text, for tests)")
        held_out: str | None = Field(
            None, description="held-out text: an Austen novel (default persuasion); for brown "
            "'every10' (default: every 10th document) or a genre; for toy book1..book6 (default "
            "book6)")
        vocab_size: int = Field(2048, ge=260, le=65536,
                                description="BPE vocabulary size (256 bytes + merges + BOS)")
        context: int = Field(64, ge=2, description="tokens per window (rows have context + 1 ids)")
        n_samples: int = Field(2800, ge=2, description="real training windows per replicate")
        n_test: int = Field(400, ge=10, description="held-out real test windows per replicate")
        n_layer: int = Field(2, ge=1, description="transformer blocks")
        n_head: int = Field(4, ge=1, description="attention heads")
        d_model: int = Field(64, ge=2, description="width (divisible by n_head)")
        epochs: int = Field(2, ge=1, description="passes over the training set per fit under "
                            "train_budget 'epochs' (under 'steps': sets the default train_steps)")
        batch_size: int = Field(16, ge=1, description="rows per optimizer step")
        lr: float = Field(5e-3, gt=0, description="peak AdamW learning rate")
        temperature: float = Field(1.0, gt=0, description="sampling temperature")
        init: Literal["fresh", "warm_start"] = Field(
            "fresh", description="'fresh': new weights each fit; 'warm_start': continue from the "
            "previous iteration's network")
        sample_metrics: bool = Field(
            True, description="record distinct-n, unigram entropy, rare-token recall and novel "
            "4-gram share of a fresh model sample each iteration")

        @model_validator(mode="after")
        def _check(self):
            self.held_out = held_out_book(self.dataset, self.held_out)
            if self.d_model % self.n_head:
                raise ValueError(f"d_model: {self.d_model} is not divisible by n_head = "
                                 f"{self.n_head}")
            self.resolve_budget(self.n_samples)
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        tok, train_units, test_units = tokenize(p.dataset, p.held_out, p.vocab_size)
        V = tok.get_vocab_size()
        bos = tok.token_to_id(BOS)
        real, test = [], []
        for g in streams(0, Role.DATA):
            real.append(draw_windows(train_units, p.n_samples, p.context, bos, g))
            test.append(draw_windows(test_units, p.n_test, p.context, bos, g))
        real, test = np.stack(real), np.stack(test)                  # (R, n, L+1), (R, m, L+1)
        R = real.shape[0]
        counts = np.stack([np.bincount(x[:, 1:].ravel(), minlength=V) for x in real])  # (R, V)
        tail = np.stack([tail_token_positions(counts[r], test[r, :, 1:]) for r in range(R)])
        m = min(N_EVAL, p.n_test)
        rare = [rare_types(c, TAIL_FRACTION) for c in counts]
        real_entropy = np.array([unigram_entropy(x[:m, 1:], V) for x in real])      # (R,)
        reference = np.unique(np.concatenate([pack_ngrams(u, NOVEL_N) for u in train_units
                                              if len(u) >= NOVEL_N]))
        corpus = np.bincount(np.concatenate(train_units), minlength=V)

        def evaluate(model: PerReplicate, iteration: int = 0) -> dict[str, np.ndarray]:
            ll = np.stack([mod.token_log_likelihood(x) for mod, x in
                           zip(model.models_, test)])               # (R, m, L)
            out = {"test_ce": -ll.mean(axis=(1, 2)),
                   "tail_ce": -np.take_along_axis(ll.reshape(R, -1), tail, 1).mean(1),
                   "train_steps": train_steps_taken(model, R)}
            if p.sample_metrics:
                s = model.sample(m, rngs=streams(iteration, Role.EVAL))[:, :, 1:]  # (R, m, L)
                out.update(sample_metrics(s, V, real_entropy, rare, reference))
            return out

        def make_model():
            from ..families.lm import LM  # torch is imported only when a model is built

            return PerReplicate(lambda: LM(
                vocab_size=V, context=p.context, n_layer=p.n_layer, n_head=p.n_head,
                d_model=p.d_model, epochs=p.epochs, train_steps=p.family_train_steps,
                batch_size=p.batch_size, lr=p.lr,
                temperature=p.temperature, bos_id=bos, init=p.init), R,
                warm_start=p.init == "warm_start")

        return Task(
            name=f"lm-{p.dataset}", family=cls.family, make_model=make_model,
            real=real, test=test, evaluate=evaluate, risk_metric="test_ce",
            truth={"vocab_size": V, "bos_id": bos, "probabilities": corpus / corpus.sum(),
                   "real_unigram_entropy": real_entropy.tolist(),
                   "rare_token_recall_real": [type_recall(t, x[:m, 1:])
                                              for t, x in zip(rare, test)],
                   "novel_ngram_share_real": [novel_ngram_share(x[:m, 1:], reference, NOVEL_N)
                                              for x in test],
                   "n_parameters": _n_params(V, p)},
            profile=LM_PROFILE,
        )


def _n_params(V: int, p) -> int:
    d = p.d_model
    return V * d + p.context * d + p.n_layer * (12 * d * d + 13 * d) + 2 * d
