"""Decoder-only transformer language model (GPT style), in plain PyTorch.

One self-contained file; with ``families.vae`` the only modules of modelcollapse that import torch.

Data
----
A sample is one row of ``context + 1`` token ids (int64): the BOS token (``bos_id``, the
tokenizer's ``<|endoftext|>``) followed by a window of ``L = context`` tokens.  The model reads
``row[:-1]`` (positions 0 .. L-1) and predicts ``row[1:]``; ``sample`` generates rows that start
with BOS, ``score_samples`` returns the log-likelihood of tokens 1..L given their prefix.

Model (Radford et al. 2019, GPT-2; nanoGPT layout)
--------------------------------------------------
Token embedding ``wte`` (V, d) plus learned position embedding ``wpe`` (L, d); ``n_layer``
pre-LayerNorm blocks ``x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))`` with causal multi-head
self-attention (``n_head`` heads of size d / n_head, fused qkv projection) and an MLP
``d -> 4d -> d`` with exact (erf) GELU, as nanoGPT (GPT-2's ``gelu_new`` is the tanh
approximation, whose CPU kernels cost 3% more of a training step); a final LayerNorm; the output
head is **tied** to ``wte`` (logits = h @ wte^T, no bias), as in GPT-2 -- so that a Hugging Face
``GPT2LMHeadModel`` with the same sizes has exactly the same parameters
(``benchmarks/bench_lm.py``).
No dropout.  Initialisation as GPT-2: weights N(0, 0.02^2), residual projections N(0, (0.02 /
sqrt(2 n_layer))^2), biases 0, LayerNorm (1, 0).

Parameters (``LM.count_parameters``; V vocabulary, L context, d width, n_layer layers)::

    embeddings      V*d + L*d
    per block       ln_1 2d + qkv (3d*d + 3d) + proj (d*d + d) + ln_2 2d
                    + fc (4d*d + 4d) + proj (4d*d + d)            = 12 d^2 + 13 d
    final LayerNorm 2d
    total           V*d + L*d + n_layer (12 d^2 + 13 d) + 2d

Training
--------
``fit`` runs ``epochs`` full passes over the training rows (``train_steps=None``, the ``epochs``
budget: the paper trains a fixed number of epochs per model-fitting iteration -- 1 in
Gerstgrasser et al. 2024 -- so an accumulating pool gets proportionally more optimizer steps), or
exactly ``train_steps`` optimizer steps whatever the training-set size (the ``steps`` budget:
reshuffled epochs, the last one cut short; ``train_steps_`` records the steps taken), minibatches
of ``batch_size`` rows in a random order,
AdamW (``fused=True``: one kernel per step on CPU and CUDA; betas 0.9 / 0.95, weight decay on
matrices and embeddings only), gradient-norm clipping at ``grad_clip``, learning rate with linear
warm-up over ``min(100, steps / 10)`` steps and cosine decay to ``lr / 10``.  The loss of a row
is its mean cross-entropy per token (``_TokenCrossEntropy``: F.cross_entropy's values, with a
backward that reuses the log-softmax's memory); ``sample_weight`` weights rows (weights are
rescaled to mean 1, so the loss is a weighted mean).  The loss is summed on the device and read
back once per epoch (no host synchronisation per step).  ``benchmarks/bench_lm.py`` times a step
and ``fit`` against a nanoGPT-style training loop of the same size.

Sampling
--------
Ancestral sampling at ``temperature`` with a key/value cache, ``gen_batch_size`` rows at a time.
The uniform noise of every row and position (n, L) is drawn once from the rng before generation
and each token is the inverse CDF of softmax(logits / temperature) at that noise, so the tokens do
not depend on how rows are batched except through float rounding of the logits, and the cached
and uncached (``use_cache=False``: the full prefix recomputed each position) generations agree for
the same noise (``tests/test_lm.py``).

Randomness and determinism
--------------------------
As ``families.vae``: every random choice comes from a ``torch.Generator`` seeded with
``rng.integers(2**63 - 1)``; the torch global RNG is never used (networks are built on the meta
device, so not even module construction draws from it).  On CPU, ``fit``, ``sample`` and
``score_samples`` run with ``torch.use_deterministic_algorithms(True)`` (measured free here: no
CPU kernel of this model takes a slower path, and NaN-filling of new tensors is off) and
``num_threads`` threads (default 1; both restored afterwards): the same rng gives bit-identical
weights and samples for the same torch build and thread count.  On CUDA (chosen automatically
when available) results agree only to rounding.  ``score_samples`` runs in float64 so a row's
score does not depend on the rows scored with it.

Feedback loops
--------------
``init="fresh"`` re-initialises the network at every ``fit``; ``init="warm_start"`` continues from
this object's previous weights (a new AdamW optimiser and schedule each fit).  A non-finite training
loss stops the fit with ``status_ = "non_finite"``.  ``get_state`` / ``set_state`` export and
restore the fitted weights as numpy arrays (exact round trip).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._torch import (Deterministic, epoch_batches, load_network_state, network_state,
                     planned_steps)

__all__ = ["LM"]


class _Block(nn.Module):
    """Pre-LayerNorm transformer block: causal multi-head self-attention and an MLP."""

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn_qkv = nn.Linear(d_model, 3 * d_model)
        self.attn_proj = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp_fc = nn.Linear(d_model, 4 * d_model)
        self.mlp_proj = nn.Linear(4 * d_model, d_model)

    def _heads(self, x):
        B, T, D = x.shape
        return x.view(B, T, self.n_head, D // self.n_head).transpose(1, 2)  # (B, H, T, hd)

    def forward(self, x, cache=None, pos: int = 0):
        """x (B, T, d) -> (B, T, d).  With ``cache`` = (k, v) buffers (B, H, L, hd), the T new
        positions pos .. pos+T-1 are written into it and attend to positions 0 .. pos+T-1."""
        B, T, D = x.shape
        q, k, v = self.attn_qkv(self.ln_1(x)).split(D, dim=2)          # 3 x (B, T, d)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)       # 3 x (B, H, T, hd)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        else:
            if T > 1 and pos > 0:
                raise ValueError("a cached forward takes one new token, or a prompt at pos 0")
            ck, cv = cache
            ck[:, :, pos:pos + T] = k                                   # (B, H, L, hd)
            cv[:, :, pos:pos + T] = v
            keys, values = ck[:, :, :pos + T], cv[:, :, :pos + T]       # (B, H, pos+T, hd)
            # T == 1 (one new token): it may attend to every cached position, no mask needed
            y = F.scaled_dot_product_attention(q, keys, values, is_causal=T > 1 and pos == 0)
        y = y.transpose(1, 2).reshape(B, T, D)                          # (B, T, d)
        x = x + self.attn_proj(y)                                       # (B, T, d)
        h = F.gelu(self.mlp_fc(self.ln_2(x)))                           # (B, T, 4d)
        return x + self.mlp_proj(h)                                     # (B, T, d)


class _GPT(nn.Module):
    def __init__(self, vocab_size: int, context: int, n_layer: int, n_head: int,
                 d_model: int) -> None:
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList([_Block(d_model, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, idx, cache=None, pos: int = 0):
        """Token ids (B, T) at positions pos .. pos+T-1 -> logits (B, T, V)."""
        B, T = idx.shape
        positions = torch.arange(pos, pos + T, device=idx.device)       # (T,)
        x = self.wte(idx) + self.wpe(positions)                         # (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i], pos)      # (B, T, d)
        return self.ln_f(x) @ self.wte.weight.T                         # (B, T, V) tied head

    def new_cache(self, batch: int):
        """Empty key/value buffers, one (k, v) pair of shape (B, H, L, hd) per block."""
        blk = self.blocks[0]
        D = blk.attn_proj.in_features
        shape = (batch, blk.n_head, self.context, D // blk.n_head)
        like = self.wte.weight
        return [(like.new_empty(shape), like.new_empty(shape)) for _ in self.blocks]


def _init_(net: _GPT, generator: torch.Generator) -> None:
    """GPT-2 initialisation from ``generator`` (module docstring)."""
    std_res = 0.02 / math.sqrt(2 * len(net.blocks))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("ln") or ".ln_" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                std = std_res if name.endswith("proj.weight") else 0.02
                p.copy_(torch.randn(p.shape, generator=generator, device=p.device,
                                    dtype=p.dtype) * std)


class _TokenCrossEntropy(torch.autograd.Function):
    """Cross-entropy of each token, -log softmax(logits)[target]: logits (N, V), targets (N,)
    int64 -> (N,) nats.  The same values as ``F.cross_entropy(..., reduction="none")`` to float
    rounding, with a cheaper backward: the gradient softmax - onehot is written over the saved
    log-probabilities in place (exp, scale, subtract at the targets), instead of a zero-filled
    (N, V) gradient plus a new (N, V) log-softmax gradient -- 20% of a training step of the
    preset's model on CPU, where the vocabulary dominates.  Backward may run only once (the
    saved log-probabilities are consumed): ``fit`` never retains the graph."""

    @staticmethod
    def forward(ctx, logits, target):
        logp = torch.log_softmax(logits, dim=-1)                        # (N, V)
        ctx.save_for_backward(logp, target)
        return -logp.gather(1, target[:, None]).squeeze(1)              # (N,)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):                                            # grad (N,)
        logp, target = ctx.saved_tensors
        g = logp.exp_().mul_(grad[:, None])                             # softmax * grad (N, V)
        g.scatter_add_(1, target[:, None], -grad[:, None])              # - onehot * grad
        return g, None


def _inverse_cdf(logits, u, temperature: float):
    """Token ids (B,) drawn from softmax(logits / temperature) (B, V) by the inverse CDF at the
    uniforms u (B,)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)         # (B, V)
    cdf = probs.cumsum(-1)                                              # (B, V)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1).contiguous())  # (B, 1)
    return idx.squeeze(1).clamp_(max=logits.shape[-1] - 1)              # (B,)


@torch.no_grad()
def _generate(net: _GPT, noise, bos_id: int, temperature: float, use_cache: bool = True):
    """Rows (B, L+1) starting with BOS, token t+1 drawn by the inverse CDF at ``noise[:, t]``
    (noise: (B, L) uniforms).  ``use_cache=False`` recomputes the whole prefix at every position
    (the reference that the key/value cache must reproduce)."""
    B, L = noise.shape
    rows = torch.full((B, L + 1), bos_id, dtype=torch.long, device=noise.device)  # (B, L+1)
    cache = net.new_cache(B) if use_cache else None
    for t in range(L):
        if use_cache:
            logits = net(rows[:, t:t + 1], cache, pos=t)[:, -1]         # (B, V)
        else:
            logits = net(rows[:, :t + 1])[:, -1]                        # (B, V)
        rows[:, t + 1] = _inverse_cdf(logits, noise[:, t], temperature)
    return rows


_ARCH = ("vocab_size", "context", "n_layer", "n_head", "d_model")


class LM:
    """A single-replicate ``GenerativeModel`` of token sequences (wrap with ``PerReplicate``).

    Parameters
    ----------
    vocab_size : int
        V; token ids are in [0, V).
    context : int
        L, tokens per window after BOS; rows have L + 1 ids.
    n_layer, n_head, d_model : int
        Transformer depth, attention heads and width (d_model divisible by n_head).
    epochs : int
        Full passes over the training rows per ``fit`` (when ``train_steps`` is None).
    train_steps : int or None
        Optimizer steps per ``fit`` whatever the training-set size (the ``steps`` budget; the
        learning-rate schedule spans them); None: ``epochs`` passes.
    batch_size : int
        Rows per optimizer step.
    lr : float
        Peak AdamW learning rate.
    weight_decay : float
        AdamW weight decay of weight matrices and embeddings (not of biases and LayerNorms).
    grad_clip : float
        Maximum global gradient norm (0 disables clipping).
    temperature : float
        Sampling temperature (> 0; 1 = the model's own distribution).
    bos_id : int
        The BOS token id that starts every row.
    init : {"fresh", "warm_start"}
    gen_batch_size : int
        Rows generated at once by ``sample``.
    score_batch_size : int
        Rows scored at once by ``score_samples``.
    device : str, optional
        Default: "cuda" if available, else "cpu".
    num_threads : int or None
        CPU threads of torch inside fit / sample / score_samples (default 1; restored afterwards).

    Attributes
    ----------
    net_ : torch.nn.Module; status_ : str ("ok" or "non_finite"); loss_history_ : list of float
    (weighted mean cross-entropy per epoch, nats per token; a last partial epoch counts);
    train_steps_ : int (optimizer steps the last fit took)

    Raises
    ------
    ValueError
        On an unknown ``init``, a non-positive temperature, ``d_model`` not divisible by
        ``n_head``, ``train_steps`` < 1, or rows of ``fit`` / ``score_samples`` of the wrong
        length or out-of-range ids.
    """

    #: what the family models (``families.plugin``)
    data_kind = "text"

    def __init__(self, *, vocab_size: int, context: int = 64, n_layer: int = 2, n_head: int = 4,
                 d_model: int = 128, epochs: int = 1, train_steps: int | None = None,
                 batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 0.1, grad_clip: float = 1.0, temperature: float = 1.0,
                 bos_id: int = 0, init: str = "fresh", gen_batch_size: int = 256,
                 score_batch_size: int = 256, device: str | None = None,
                 num_threads: int | None = 1) -> None:
        if init not in ("fresh", "warm_start"):
            raise ValueError(f"init: {init!r}; allowed: 'fresh', 'warm_start'")
        if not temperature > 0:
            raise ValueError(f"temperature: {temperature!r}; allowed: > 0")
        if d_model % n_head:
            raise ValueError(f"d_model: {d_model} is not divisible by n_head = {n_head}")
        if train_steps is not None and train_steps < 1:
            raise ValueError(f"train_steps: {train_steps}; allowed: None or an integer >= 1")
        self.train_steps = train_steps
        self.vocab_size, self.context, self.n_layer = vocab_size, context, n_layer
        self.n_head, self.d_model, self.epochs = n_head, d_model, epochs
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.grad_clip, self.temperature, self.bos_id = grad_clip, temperature, bos_id
        self.init, self.gen_batch_size = init, gen_batch_size
        self.score_batch_size, self.num_threads = score_batch_size, num_threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net_: _GPT | None = None
        self.status_ = "ok"
        self.loss_history_: list[float] = []
        self.train_steps_ = 0

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def count_parameters(vocab_size: int, context: int, n_layer: int, d_model: int) -> int:
        """V*d + L*d + n_layer (12 d^2 + 13 d) + 2d (module docstring)."""
        d = d_model
        return vocab_size * d + context * d + n_layer * (12 * d * d + 13 * d) + 2 * d

    def n_parameters(self) -> int:
        """Number of trained parameters (the tied head counted once)."""
        return self.count_parameters(self.vocab_size, self.context, self.n_layer, self.d_model)

    def _new_net(self) -> _GPT:
        """The network with uninitialised weights on ``device`` (built on the meta device: no
        default initialisation is computed, and torch's global RNG is not touched); ``_init_``
        or ``load_state_dict`` fills every parameter."""
        with torch.device("meta"):
            net = _GPT(self.vocab_size, self.context, self.n_layer, self.n_head, self.d_model)
        return net.to_empty(device=self.device)

    def _generator(self, rng: np.random.Generator) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(int(rng.integers(2**63 - 1)))

    def _rows(self, X) -> torch.Tensor:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.context + 1:
            raise ValueError(f"X: shape {X.shape}; expected (n_samples, context + 1 = "
                             f"{self.context + 1}) token ids")
        if X.size and (X.min() < 0 or X.max() >= self.vocab_size):
            raise ValueError(f"X: token ids must be in [0, vocab_size = {self.vocab_size})")
        return torch.as_tensor(X.astype(np.int64), device=self.device)

    def _optimizer(self, net: _GPT):
        decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
        rest = [p for n, p in net.named_parameters() if p.dim() < 2]
        # fused: one kernel for every parameter's update (CPU and CUDA), instead of ~12 ops
        # per parameter tensor
        return torch.optim.AdamW([{"params": decay, "weight_decay": self.weight_decay},
                                  {"params": rest, "weight_decay": 0.0}],
                                 lr=self.lr, betas=(0.9, 0.95), fused=True)

    def _lr_at(self, step: int, total: int) -> float:
        warmup = max(1, min(100, total // 10))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return self.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def planned_steps(self, n: int) -> int:
        """Optimizer steps a fit on n rows takes: ``train_steps``, or ``epochs * ceil(n /
        batch_size)`` when it is None."""
        return planned_steps(n, self.batch_size, self.epochs, self.train_steps)

    # ------------------------------------------------------------------ protocol
    def fit(self, X, *, sample_weight=None, rng: np.random.Generator) -> "LM":
        """Train on rows X (n_samples, context + 1) of token ids (int); returns self."""
        g = self._generator(rng)
        x = self._rows(X)                                               # (n, L+1)
        n = x.shape[0]
        w = torch.ones(n, device=self.device) if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight, dtype=np.float32), device=self.device)  # (n,)
        w = w * (n / w.sum())                                           # mean 1
        with Deterministic(self.device, self.num_threads, fill_uninitialized=False):
            if self.init == "fresh" or self.net_ is None:
                self.net_ = self._new_net()
                _init_(self.net_, g)
            net = self.net_
            net.train()
            opt = self._optimizer(net)
            total_steps, step = self.planned_steps(n), 0
            self.status_, self.loss_history_, self.train_steps_ = "ok", [], 0
            for batches in epoch_batches(n, self.batch_size, self.epochs, self.train_steps, g,
                                         self.device):
                total = torch.zeros((), device=self.device)
                seen = 0
                for idx in batches:                                         # (B,)
                    rows = x[idx]                                           # (B, L+1)
                    logits = net(rows[:, :-1])                              # (B, L, V)
                    ce = _TokenCrossEntropy.apply(logits.flatten(0, 1), rows[:, 1:].flatten()
                                                  ).view(len(idx), -1).mean(1)  # (B,)
                    loss = (w[idx] * ce).mean()                             # ()
                    for group in opt.param_groups:
                        group["lr"] = self._lr_at(step, total_steps)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
                    opt.step()
                    step += 1
                    total = total + loss.detach() * len(idx)
                    seen += len(idx)
                self.train_steps_ = step
                epoch_loss = float(total) / seen             # one sync per epoch
                self.loss_history_.append(epoch_loss)
                if not math.isfinite(epoch_loss):
                    self.status_ = "non_finite"
                    break
            net.eval()
        return self

    @torch.no_grad()
    def sample(self, n_samples: int, *, rng: np.random.Generator,
               use_cache: bool = True) -> np.ndarray:
        """Rows (n_samples, context + 1) int64 starting with BOS, ancestral sampling at
        ``temperature``; ``use_cache=False`` is the slow reference (full prefix each position)."""
        if self.net_ is None:
            raise RuntimeError("LM is not fitted")
        g = self._generator(rng)
        out = np.empty((n_samples, self.context + 1), dtype=np.int64)
        with Deterministic(self.device, self.num_threads, fill_uninitialized=False):
            noise = torch.rand((n_samples, self.context), generator=g,
                               device=self.device)                      # (n, L)
            for i in range(0, n_samples, self.gen_batch_size):
                rows = _generate(self.net_, noise[i:i + self.gen_batch_size], self.bos_id,
                                 self.temperature, use_cache)           # (B, L+1)
                out[i:i + len(rows)] = rows.cpu().numpy()
        return out

    @torch.no_grad()
    def token_log_likelihood(self, X) -> np.ndarray:
        """log p(x_t | x_<t) of tokens t = 1..L of each row, nats, shape (n_samples, L) float64
        (computed in float64: a row's values do not depend on the rows scored with it)."""
        if self.net_ is None:
            raise RuntimeError("LM is not fitted")
        x = self._rows(X)                                               # (n, L+1)
        out = np.empty((x.shape[0], self.context), dtype=np.float64)
        with Deterministic(self.device, self.num_threads, fill_uninitialized=False):
            net = copy.deepcopy(self.net_).double()                     # float64 copy
            for i in range(0, x.shape[0], self.score_batch_size):
                rows = x[i:i + self.score_batch_size]                   # (B, L+1)
                logp = torch.log_softmax(net(rows[:, :-1]), dim=-1)     # (B, L, V)
                ll = logp.gather(-1, rows[:, 1:, None]).squeeze(-1)     # (B, L)
                out[i:i + len(rows)] = ll.cpu().numpy()
        return out

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of tokens 1..L of each row given its prefix, nats per sequence, shape
        (n_samples,) float64: ``token_log_likelihood(X).sum(1)``."""
        return self.token_log_likelihood(X).sum(1)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state as numpy arrays: ``net.<name>`` for every weight, the architecture
        (``vocab_size`` ...), ``status`` and ``train_steps`` as 0-d arrays, ``loss_history``
        (epochs,)."""
        state = network_state(self.net_, self.status_, self.loss_history_)
        state["train_steps"] = np.asarray(self.train_steps_)
        for k in _ARCH:
            state[k] = np.asarray(getattr(self, k), dtype=np.int64)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "LM":
        """Restore ``get_state()``'s output (exactly); raises ValueError if its architecture
        differs from this object's hyperparameters."""
        for k in _ARCH:
            if int(state[k]) != getattr(self, k):
                raise ValueError(f"state: {k} = {int(state[k])}, this LM has {getattr(self, k)}")
        self.net_ = self._new_net()
        self.status_, self.loss_history_ = load_network_state(self.net_, state)
        self.train_steps_ = int(state.get("train_steps", 0))
        return self
