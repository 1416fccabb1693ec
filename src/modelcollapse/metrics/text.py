"""Metrics of token sequences: held-out cross-entropy and the diversity, tail and novelty of a
model's sample (rows of token ids); used by the lm task."""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, metric, register_metric
from .discrete import entropy

__all__ = ["pack_ngrams", "distinct_n", "unigram_entropy", "novel_ngram_share", "rare_types",
           "type_recall"]

# computed by the lm task from the model's per-token log-likelihoods
register_metric("test_ce", MetricInfo(False, "nats per token", "cross-entropy of held-out real "
                                      "text", "mean"))
register_metric("tail_ce", MetricInfo(False, "nats per token", "cross-entropy of the 10% "
                                      "held-out tokens rarest in the real training windows "
                                      "(Def. 7)", "mean"))


def pack_ngrams(tokens: np.ndarray, n: int) -> np.ndarray:
    """n-grams within rows of tokens (..., T) -> uint64 codes (..., T-n+1) (ids < 2**16)."""
    tokens = tokens.astype(np.uint64)
    T = tokens.shape[-1]
    code = np.zeros(tokens.shape[:-1] + (T - n + 1,), dtype=np.uint64)
    for j in range(n):
        code = (code << np.uint64(16)) | tokens[..., j:T - n + 1 + j]
    return code


@metric(distinct_1=MetricInfo(None, "fraction", "distinct unigrams / unigrams of a model sample",
                              "fraction"),
        distinct_2=MetricInfo(None, "fraction", "distinct bigrams / bigrams of a model sample",
                              "fraction"))
def distinct_n(tokens: np.ndarray, n: int) -> float:
    """Distinct n-grams / n-grams of a corpus of rows (m, T) (n-grams within rows); nan if none."""
    codes = pack_ngrams(tokens, n).ravel()
    return len(np.unique(codes)) / len(codes) if len(codes) else np.nan


@metric(unigram_entropy=MetricInfo(None, "nats", "entropy of a model sample's token frequencies",
                                   "functional"),
        unigram_entropy_ratio=MetricInfo(None, "ratio", "sample unigram entropy / that of as "
                                         "many real tokens", "ratio"))
def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Shannon entropy (nats) of the empirical token distribution of ``tokens`` (any shape, ids
    < ``vocab_size``)."""
    counts = np.bincount(tokens.ravel(), minlength=vocab_size)
    return float(entropy(counts / counts.sum()))


@metric(novel_ngram_share=MetricInfo(False, "fraction", "sample 3-grams absent from the real "
                                     "training text (Def. 8)", "fraction"))
def novel_ngram_share(tokens: np.ndarray, reference: np.ndarray, n: int) -> float:
    """Share of the n-grams of rows ``tokens`` (m, T) absent from ``reference`` (sorted unique
    uint64 codes of ``pack_ngrams(.., n)``); nan if there are none."""
    codes = pack_ngrams(tokens, n).ravel()
    pos = np.searchsorted(reference, codes).clip(max=len(reference) - 1)
    return float(np.mean(reference[pos] != codes)) if len(codes) else np.nan


def rare_types(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Ids of the ``fraction`` of occurring types (count > 0) with the lowest counts (ties by
    id), at least one: counts (V,) -> (k,)."""
    present = np.flatnonzero(counts)
    k = max(1, int(round(fraction * len(present))))
    return present[np.argsort(counts[present], kind="stable")[:k]]


@metric(rare_token_recall=MetricInfo(True, "fraction", "rarest-decile real token types present "
                                     "in a model sample", "fraction"))
def type_recall(types: np.ndarray, tokens: np.ndarray) -> float:
    """Share of ``types`` (k,) that occur at least once in ``tokens`` (any shape)."""
    return float(np.isin(types, tokens).mean())
