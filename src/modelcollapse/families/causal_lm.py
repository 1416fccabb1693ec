"""A pretrained Hugging Face causal language model, fine-tuned on prompt / completion rows (SFT).

Any ``transformers`` causal LM (``AutoModelForCausalLM``) read from a **local** folder
(``save_pretrained`` layout) or a single GGUF file (dequantised to float32 by ``transformers`` with
the ``gguf`` package), or the built-in ``toy`` model (a tiny randomly initialised Llama with a BPE
tokenizer trained on the toy corpus of ``tasks.lm``, built in memory: for tests).  Nothing is ever
downloaded: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True`` on every load.  Needs the extra
``llm`` (``pip install 'modelcollapse[llm]'``: transformers, peft, gguf, accelerate).

Data
----
A row is ``P + C`` token ids (int64): a prompt of ``P = prompt_length`` tokens and its completion
of ``C = completion_length`` tokens (no padding: every prompt and completion has exactly that
length).  The model reads ``[bos] + row`` (``bos_id``: the tokenizer's BOS, or none) and is
trained, scored and sampled on the C completion tokens only (with ``P = 0`` the row is all
completion, conditioned on BOS).

Training (``fit``)
------------------
``init="pretrained"``: every fit starts from the pretrained weights (the SFT setting of Kazdan et
al. 2024, arXiv 2410.16713, Sec. 2c: each iteration fine-tuned from the base checkpoint);
``init="warm_start"``: continues from this object's previous weights (and LoRA adapter).
``lora_rank=0``: full fine-tuning of every parameter; ``lora_rank=r > 0``: a fresh LoRA adapter
(peft; rank r, alpha ``lora_alpha``, no dropout) on ``lora_targets`` with the base frozen.
``epochs`` passes over the rows (``train_steps=None``) or exactly ``train_steps`` optimizer steps
(``families._torch.epoch_batches``), minibatches of ``batch_size`` rows in a random order, AdamW
(betas 0.9 / 0.999, ``weight_decay``), gradient-norm clipping at ``grad_clip``, a constant learning
rate after a linear warm-up over the first ``warmup`` share of the steps (Kazdan et al.'s
``constant_with_warmup``).  The loss of a row is its mean cross-entropy per completion token;
``sample_weight`` weights rows (rescaled to mean 1).  The network runs in eval mode (no dropout:
dropout would draw from torch's global RNG).  A non-finite loss stops the fit with
``status_ = "non_finite"``.

Sampling
--------
Each row's prompt is drawn uniformly (with replacement when ``n_samples`` exceeds the pool) from
the prompt pool (``prompts`` argument of ``sample``, else the ``prompts`` hyperparameter), then C
tokens are generated with a key/value cache, ``gen_batch_size`` rows at a time (prompts have one
length, so no padding or attention mask).  Token t of a row is the inverse CDF, at a uniform drawn
before generation (noise (n, C)), of softmax(logits / ``temperature``) restricted to the ``top_k``
most likely tokens and to the smallest set of mass >= ``top_p`` (the defaults 1.0 / 0 / 1.0 are
plain ancestral sampling, the model's own distribution).  Generation never stops early: an EOS
token is an ordinary token of the fixed-length completion.

Randomness and determinism
--------------------------
Every random choice comes from a ``torch.Generator`` seeded with ``rng.integers(2**63 - 1)`` (and
the prompt choice from ``rng`` itself); torch's global RNG is never drawn from (loading and LoRA
construction run under ``torch.random.fork_rng``, and the LoRA A matrices are then redrawn from the
generator: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), peft's default law).  On CPU everything runs under
``families._torch.Deterministic`` with ``num_threads`` threads: the same rng gives bit-identical
weights and samples for the same torch build and thread count.  ``score_samples`` runs in float64
(a float64 copy of the network), so a row's score does not depend on the rows scored with it.

State
-----
``get_state`` / ``set_state``: the trained parameters (all of them, or the LoRA adapter's) as numpy
arrays, plus ``status``, ``loss_history``, ``train_steps`` (exact round trip; the pretrained
weights are reloaded from ``pretrained``).
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from pathlib import Path

import numpy as np

from .base import PerReplicate

__all__ = ["CausalLM", "PromptedPerReplicate", "load_pretrained", "toy_pretrained", "require_llm",
           "LLM_FIX"]

LLM_FIX = "pip install 'modelcollapse[llm]'"
_CACHE: dict = {}  # (kind, path) -> (model, tokenizer), one per process


def require_llm(*modules: str) -> None:
    """Import ``modules`` (default transformers, peft) or raise ImportError with one line that
    names the fix (the extra ``llm``)."""
    import importlib

    for name in modules or ("transformers", "peft"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise ImportError(f"the causal_lm family needs the Python package {name!r}: "
                              f"{LLM_FIX}") from None


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def toy_pretrained():
    """(model, tokenizer): a tiny Llama (2 layers, width 32, 4 heads, 2 key/value heads, context
    256) with weights N(0, 0.02^2) (norms 1) from a fixed torch.Generator, and a byte-level
    tokenizer without merges (256 byte tokens, then BOS ``<s>`` = 256); built in memory,
    deterministic, never touching torch's global RNG."""
    key = ("toy", "")
    if key in _CACHE:
        return _CACHE[key]
    require_llm("transformers")
    _offline()
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([], trainer=trainers.BpeTrainer(
        vocab_size=257, show_progress=False, special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.add_special_tokens(["<s>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="<s>")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id,
                         tie_word_embeddings=True)
    g = torch.Generator().manual_seed(20241021)
    with torch.random.fork_rng(devices=[]):
        model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)                                   # RMSNorm weights
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _CACHE[key] = (model, tok)
    return _CACHE[key]


def _quiet_gguf_progress():
    """Silence the progress bar of transformers' GGUF dequantisation (its own tqdm, which
    ignores ``disable_progress_bar``); returns the function that restores it."""
    import functools
    import importlib

    try:
        module = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
        bar = module.tqdm
    except (ImportError, AttributeError):
        return lambda: None
    module.tqdm = functools.partial(bar, disable=True)

    def restore() -> None:
        module.tqdm = bar

    return restore


def load_pretrained(pretrained: str):
    """(model, tokenizer) of ``pretrained``: ``"toy"``, a folder with a ``save_pretrained``
    model and tokenizer, or a ``.gguf`` file; loaded once per process (callers deep-copy the
    model).  Raises ValueError (one line) if the path does not exist, ImportError (with the fix)
    if transformers or gguf is missing."""
    if pretrained == "toy":
        return toy_pretrained()
    path = Path(pretrained).expanduser().resolve()
    key = ("path", str(path))
    if key in _CACHE:
        return _CACHE[key]
    if not path.exists():
        raise ValueError(f"pretrained: {pretrained} does not exist; give a model folder, a .gguf "
                         "file or 'toy'")
    require_llm("transformers")
    gguf = path.suffix == ".gguf"
    if gguf:
        require_llm("gguf")
    _offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder, kwargs = (path.parent, {"gguf_file": path.name}) if gguf else (path, {})
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    bar = _quiet_gguf_progress()
    try:
        with torch.random.fork_rng(devices=[]):  # whatever loading draws, the global RNG is restored
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                         dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(f"pretrained: {pretrained} could not be loaded: "
                         f"{str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
        bar()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _CACHE[key] = (model, tok)
    return _CACHE[key]


def _filtered_probs(logits, temperature: float, top_k: int, top_p: float):
    """softmax(logits / temperature) (B, V) restricted to the top_k most likely tokens (0: all)
    and to the smallest set of mass >= top_p (1.0: all), unnormalised; float64."""
    import torch

    probs = torch.softmax(logits.double() / temperature, dim=-1)         # (B, V)
    if top_k and top_k < probs.shape[-1]:
        kth = probs.topk(top_k, dim=-1).values[:, -1:]                    # (B, 1)
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)  # (B, V)
        before = sorted_p.cumsum(-1) - sorted_p                           # mass above each
        keep = before < top_p * sorted_p.sum(-1, keepdim=True)            # the first always
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
    return probs


def _inverse_cdf(probs, u):
    """Token ids (B,) drawn from the unnormalised probabilities (B, V) at uniforms u (B,)."""
    import torch

    cdf = probs.cumsum(-1)                                                # (B, V)
    idx = torch.searchsorted(cdf, (u.double() * cdf[:, -1]).unsqueeze(1).contiguous())
    return idx.squeeze(1).clamp_(max=probs.shape[-1] - 1)                 # (B,)


class CausalLM:
    """A single-replicate ``GenerativeModel`` of prompt / completion rows (wrap with
    ``PerReplicate``); see the module docstring.

    Parameters
    ----------
    pretrained : str
        ``"toy"``, a local model folder or a ``.gguf`` file.
    prompt_length, completion_length : int
        P >= 0 and C >= 1; rows have P + C token ids.
    init : {"pretrained", "warm_start"}
    lora_rank : int
        0: full fine-tuning; r > 0: LoRA of rank r on ``lora_targets``.
    lora_alpha : float
        LoRA scaling numerator (the update is alpha / r * B A).
    lora_targets : tuple of str
        Module names LoRA adapts (default the attention projections q, k, v, o).
    epochs, train_steps, batch_size, lr, weight_decay, grad_clip, warmup
        Training budget and AdamW settings (module docstring); ``warmup`` is a share in [0, 1).
    temperature, top_k, top_p : float, int, float
        Sampling: temperature > 0, top_k >= 0 (0: off), top_p in (0, 1] (1: off).
    prompts : array (m, P) of int, optional
        Default prompt pool of ``sample``.
    bos_id : int or None
        Token put before every row; default (-1): the tokenizer's BOS, if it has one.
    gen_batch_size, score_batch_size : int
        Rows generated / scored at once.
    device : str, optional
        Default "cuda" if available, else "cpu".
    num_threads : int or None
        CPU threads of torch inside fit / sample / scoring (restored afterwards).

    Attributes
    ----------
    net_ : the fine-tuned network (a peft model under LoRA); status_ : "ok" or "non_finite";
    loss_history_ : list of float (weighted mean cross-entropy per epoch, nats per completion
    token); train_steps_ : int

    Raises
    ------
    ValueError
        On a bad hyperparameter (one line naming it), rows of the wrong width or out-of-range
        ids, or a prompt pool of the wrong shape.
    """

    data_kind = "text"

    def __init__(self, *, pretrained: str, prompt_length: int, completion_length: int,
                 init: str = "pretrained", lora_rank: int = 8, lora_alpha: float = 16.0,
                 lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj"),
                 epochs: int = 1, train_steps: int | None = None, batch_size: int = 8,
                 lr: float = 1e-4, weight_decay: float = 0.0, grad_clip: float = 1.0,
                 warmup: float = 0.05, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, prompts=None, bos_id: int | None = -1,
                 gen_batch_size: int = 32, score_batch_size: int = 32,
                 device: str | None = None, num_threads: int | None = None) -> None:
        checks = [("init", init in ("pretrained", "warm_start"), "'pretrained' or 'warm_start'"),
                  ("prompt_length", prompt_length >= 0, ">= 0"),
                  ("completion_length", completion_length >= 1, ">= 1"),
                  ("lora_rank", lora_rank >= 0, ">= 0 (0: full fine-tuning)"),
                  ("epochs", epochs >= 1, ">= 1"),
                  ("train_steps", train_steps is None or train_steps >= 1, "None or >= 1"),
                  ("batch_size", batch_size >= 1, ">= 1"), ("lr", lr > 0, "> 0"),
                  ("warmup", 0 <= warmup < 1, "in [0, 1)"),
                  ("temperature", temperature > 0, "> 0"), ("top_k", top_k >= 0, ">= 0"),
                  ("top_p", 0 < top_p <= 1, "in (0, 1]")]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}: {locals()[name]!r}; allowed: {allowed}")
        self.pretrained, self.init = pretrained, init
        self.prompt_length, self.completion_length = int(prompt_length), int(completion_length)
        self.lora_rank, self.lora_alpha = int(lora_rank), float(lora_alpha)
        self.lora_targets = tuple(lora_targets)
        self.epochs, self.train_steps, self.batch_size = epochs, train_steps, batch_size
        self.lr, self.weight_decay, self.grad_clip, self.warmup = lr, weight_decay, grad_clip, warmup
        self.temperature, self.top_k, self.top_p = float(temperature), int(top_k), float(top_p)
        self.prompts = None if prompts is None else self._prompt_pool(prompts)
        self.bos_id = bos_id
        self.gen_batch_size, self.score_batch_size = gen_batch_size, score_batch_size
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.num_threads = num_threads
        self.net_ = None
        self.status_ = "ok"
        self.loss_history_: list[float] = []
        self.train_steps_ = 0

    # ------------------------------------------------------------------ helpers
    @property
    def width(self) -> int:
        """Token ids per row, P + C."""
        return self.prompt_length + self.completion_length

    def _base(self):
        return load_pretrained(self.pretrained)

    def _bos(self) -> int | None:
        if self.bos_id is None or self.bos_id >= 0:
            return self.bos_id
        return self._base()[1].bos_token_id

    def vocab_size(self) -> int:
        """V: the pretrained model's output vocabulary."""
        return int(self._base()[0].config.vocab_size)

    def _prompt_pool(self, prompts) -> np.ndarray:
        p = np.asarray(prompts)
        if p.ndim != 2 or p.shape[1] != self.prompt_length or len(p) == 0:
            raise ValueError(f"prompts: shape {p.shape}; expected (m >= 1, prompt_length = "
                             f"{self.prompt_length}) token ids")
        return p.astype(np.int64)

    def _rows(self, X):
        import torch

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.width:
            raise ValueError(f"X: shape {X.shape}; expected (n_samples, prompt_length + "
                             f"completion_length = {self.width}) token ids")
        V = self.vocab_size()
        if X.size and (X.min() < 0 or X.max() >= V):
            raise ValueError(f"X: token ids must be in [0, vocab_size = {V})")
        return torch.as_tensor(X.astype(np.int64), device=self.device)

    def _with_bos(self, rows):
        import torch

        bos = self._bos()
        if bos is None:
            if self.prompt_length == 0:
                raise ValueError("bos_id: None needs prompt_length >= 1 (nothing to condition "
                                 "the first token on)")
            return rows
        return torch.cat([torch.full((rows.shape[0], 1), bos, dtype=rows.dtype,
                                     device=rows.device), rows], dim=1)

    def _generator(self, rng: np.random.Generator):
        import torch

        return torch.Generator(device=self.device).manual_seed(int(rng.integers(2**63 - 1)))

    def _new_net(self, generator):
        """A copy of the pretrained network on ``device``, wrapped in a fresh LoRA adapter
        (A from ``generator``) when ``lora_rank > 0``; trainable parameters require grad."""
        import torch

        net = copy.deepcopy(self._base()[0]).to(self.device)
        if not self.lora_rank:
            for p in net.parameters():
                p.requires_grad_(True)
            return net
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=self.lora_rank, lora_alpha=self.lora_alpha, lora_dropout=0.0,
                            target_modules=list(self.lora_targets), bias="none")
        try:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                net = get_peft_model(net, config)
        except ValueError as exc:
            raise ValueError(f"lora_targets: {list(self.lora_targets)}: "
                             f"{str(exc).splitlines()[0]}") from None
        if generator is not None:
            with torch.no_grad():
                for name, p in net.named_parameters():
                    if ".lora_A." in name:
                        bound = 1.0 / math.sqrt(p.shape[1])
                        u = torch.rand(p.shape, generator=generator, device=p.device,
                                       dtype=p.dtype)
                        p.copy_((2.0 * u - 1.0) * bound)
                    elif ".lora_B." in name:
                        p.zero_()
        return net

    def _trainable(self, net):
        return [(n, p) for n, p in net.named_parameters() if p.requires_grad]

    def _lr_at(self, step: int, total: int) -> float:
        warm = int(math.ceil(self.warmup * total))
        return self.lr * (step + 1) / warm if step < warm else self.lr

    def planned_steps(self, n: int) -> int:
        """Optimizer steps a fit on n rows takes (``families._torch.planned_steps``)."""
        from ._torch import planned_steps

        return planned_steps(n, self.batch_size, self.epochs, self.train_steps)

    def _completion_logits(self, net, rows):
        """Logits (B, C, V) predicting the C completion tokens of rows (B, P + C)."""
        x = self._with_bos(rows)                                         # (B, 1? + P + C)
        # the output layer only at the C positions that predict completion tokens
        return net(input_ids=x[:, :-1], use_cache=False,
                   logits_to_keep=self.completion_length).logits        # (B, C, V)

    # ------------------------------------------------------------------ protocol
    def fit(self, X, *, sample_weight=None, rng: np.random.Generator) -> "CausalLM":
        """Fine-tune on rows X (n_samples, P + C) of token ids; returns self."""
        import torch
        import torch.nn.functional as F

        from ._torch import Deterministic, epoch_batches

        g = self._generator(rng)
        x = self._rows(X)                                                 # (n, P+C)
        n = x.shape[0]
        w = torch.ones(n, device=self.device) if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight, dtype=np.float32), device=self.device)  # (n,)
        w = w * (n / w.sum())
        C = self.completion_length
        with Deterministic(self.device, self.num_threads):
            if self.init == "pretrained" or self.net_ is None:
                self.net_ = self._new_net(g)
            net = self.net_
            net.eval()                                                    # no dropout
            params = [p for _, p in self._trainable(net)]
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
            total_steps, step = self.planned_steps(n), 0
            self.status_, self.loss_history_, self.train_steps_ = "ok", [], 0
            for batches in epoch_batches(n, self.batch_size, self.epochs, self.train_steps, g,
                                         self.device):
                total, seen = torch.zeros((), device=self.device), 0
                for idx in batches:                                       # (B,)
                    rows = x[idx]                                         # (B, P+C)
                    logits = self._completion_logits(net, rows)           # (B, C, V)
                    ce = F.cross_entropy(logits.flatten(0, 1).float(),
                                         rows[:, -C:].flatten(), reduction="none")
                    loss = (w[idx] * ce.view(len(idx), C).mean(1)).mean()
                    for group in opt.param_groups:
                        group["lr"] = self._lr_at(step, total_steps)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                    opt.step()
                    step += 1
                    total = total + loss.detach() * len(idx)
                    seen += len(idx)
                self.train_steps_ = step
                epoch_loss = float(total) / seen
                self.loss_history_.append(epoch_loss)
                if not math.isfinite(epoch_loss):
                    self.status_ = "non_finite"
                    break
            for p in params:
                p.grad = None
        return self

    def sample(self, n_samples: int, *, rng: np.random.Generator, prompts=None) -> np.ndarray:
        """Rows (n_samples, P + C) int64: prompts drawn from ``prompts`` (m, P) (default the
        ``prompts`` hyperparameter) and their generated completions.  Raises ValueError without a
        prompt pool when P > 0, RuntimeError if not fitted."""
        import torch

        from ._torch import Deterministic

        if self.net_ is None:
            raise RuntimeError("CausalLM is not fitted")
        P, C = self.prompt_length, self.completion_length
        out = np.empty((n_samples, P + C), dtype=np.int64)
        if P:
            pool = self.prompts if prompts is None else self._prompt_pool(prompts)
            if pool is None:
                raise ValueError("prompts: none given; sample needs a prompt pool (m, "
                                 f"prompt_length = {P})")
            pick = rng.choice(len(pool), size=n_samples, replace=n_samples > len(pool))
            out[:, :P] = pool[pick]
        g = self._generator(rng)
        with Deterministic(self.device, self.num_threads), torch.no_grad():
            noise = torch.rand((n_samples, C), generator=g, device=self.device)   # (n, C)
            for i in range(0, n_samples, self.gen_batch_size):
                prompt = torch.as_tensor(out[i:i + self.gen_batch_size, :P], device=self.device)
                rows = self._generate(prompt, noise[i:i + self.gen_batch_size])
                out[i:i + len(rows), P:] = rows.cpu().numpy()
        return out

    def _generate(self, prompt, noise):
        """Completions (B, C) of prompts (B, P), token t at uniforms noise[:, t], with the
        key/value cache (the prompt in one forward pass, then one token at a time)."""
        import torch

        B, C = noise.shape
        import inspect

        net = self.net_
        # transformers >= 5.2x names the key/value cache ``cache``, earlier ``past_key_values``
        name = ("cache" if "cache" in inspect.signature(type(self._base()[0]).forward).parameters
                else "past_key_values")
        ctx = self._with_bos(prompt)                                       # (B, 1? + P)
        out = net(input_ids=ctx, use_cache=True)
        cache, logits = getattr(out, name), out.logits[:, -1]              # (B, V)
        tokens = torch.empty((B, C), dtype=torch.long, device=noise.device)
        for t in range(C):
            probs = _filtered_probs(logits, self.temperature, self.top_k, self.top_p)
            tokens[:, t] = _inverse_cdf(probs, noise[:, t])
            if t + 1 < C:
                out = net(input_ids=tokens[:, t:t + 1], use_cache=True, **{name: cache})
                cache, logits = getattr(out, name), out.logits[:, -1]
        return tokens

    def token_log_likelihood(self, X) -> np.ndarray:
        """log p(completion token | prompt, earlier completion tokens), nats, shape
        (n_samples, C) float64 (a float64 copy of the network: a row's values do not depend on
        the rows scored with it)."""
        import torch

        from ._torch import Deterministic

        if self.net_ is None:
            raise RuntimeError("CausalLM is not fitted")
        x = self._rows(X)
        C = self.completion_length
        out = np.empty((x.shape[0], C), dtype=np.float64)
        with Deterministic(self.device, self.num_threads), torch.no_grad():
            net = copy.deepcopy(self.net_).double()
            for i in range(0, x.shape[0], self.score_batch_size):
                rows = x[i:i + self.score_batch_size]                     # (B, P+C)
                logp = torch.log_softmax(self._completion_logits(net, rows), dim=-1)
                ll = logp.gather(-1, rows[:, -C:, None]).squeeze(-1)      # (B, C)
                out[i:i + len(rows)] = ll.cpu().numpy()
            del net
        return out

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each row's completion given its prompt, nats per row, shape
        (n_samples,) float64: ``token_log_likelihood(X).sum(1)``."""
        return self.token_log_likelihood(X).sum(1)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, np.ndarray]:
        """The trained parameters ``net.<name>`` (all of them, or the LoRA adapter's) as numpy
        arrays, ``lora_rank``, ``status``, ``loss_history`` and ``train_steps``.  Raises
        RuntimeError if not fitted."""
        if self.net_ is None:
            raise RuntimeError("the model is not fitted: nothing to save")
        state = {f"net.{k}": v.detach().cpu().numpy().copy() for k, v in self._trainable(self.net_)}
        state["lora_rank"] = np.asarray(self.lora_rank, dtype=np.int64)
        state["status"] = np.asarray(self.status_)
        state["loss_history"] = np.asarray(self.loss_history_, dtype=np.float64)
        state["train_steps"] = np.asarray(self.train_steps_, dtype=np.int64)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "CausalLM":
        """Restore ``get_state()``'s output exactly on top of the pretrained weights; raises
        ValueError if it was saved with another ``lora_rank`` or other parameter names."""
        import torch

        if int(state["lora_rank"]) != self.lora_rank:
            raise ValueError(f"state: lora_rank = {int(state['lora_rank'])}, this CausalLM has "
                             f"{self.lora_rank}")
        net = self._new_net(None)
        trainable = dict(self._trainable(net))
        saved = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
        if set(saved) != set(trainable):
            raise ValueError("state: its parameters are not this model's trainable parameters")
        with torch.no_grad():
            for k, v in saved.items():
                trainable[k].copy_(torch.as_tensor(np.array(v), device=self.device))
        net.eval()
        self.net_ = net
        self.status_ = str(np.asarray(state["status"]))
        self.loss_history_ = [float(v) for v in np.asarray(state["loss_history"])]
        self.train_steps_ = int(state["train_steps"])
        return self



class PromptedPerReplicate(PerReplicate):
    """``PerReplicate`` of ``CausalLM`` models whose ``sample`` draws each replicate's prompts
    from its own pool: ``prompts`` (R, m, P) token ids (the replicate's real training prompts),
    or the ``prompts`` argument of ``sample`` (R, k, P)."""

    def __init__(self, factory, n_replicates: int, prompts, *, warm_start: bool = False) -> None:
        super().__init__(factory, n_replicates, warm_start=warm_start)
        self.prompts = np.asarray(prompts)

    def sample(self, n_samples, *, rngs, prompts=None):
        pools = self.prompts if prompts is None else np.asarray(prompts)
        return np.stack([m.sample(n_samples, rng=g, prompts=p)
                         for m, g, p in zip(self.models_, rngs, pools)])
