"""Training and generation speed of the ``lm`` family (``families.lm``) against a nanoGPT-style
reference written here, on CPU, in one process, interleaved.

The reference (``RefGPT`` + ``RefTrainer`` below) is written for this benchmark in the style of
Karpathy's nanoGPT (``model.py`` / ``train.py``), not copied from it: token + position
embeddings, pre-LayerNorm blocks with causal self-attention through
``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` (fused qkv projection) and a
``d -> 4d -> d`` GELU MLP, a final LayerNorm and an output head tied to the token embedding; the
loop draws random windows of a token stream on the device (``torch.randint`` offsets, no host
round trip), sets the cosine learning rate, runs forward, cross-entropy, backward, gradient
clipping at 1.0 and an AdamW step (weight decay on matrices and embeddings only; ``fused=True``
on CUDA and PyTorch's default implementation elsewhere, as nanoGPT does), fetches the next batch
while the step is pending, and reads the loss back to the host only after the timed steps.  It
has biases in its Linear and LayerNorm layers (nanoGPT's ``bias=True``, the GPT-2 layout), so it
has exactly our parameter count (checked) and the same exact (erf) GELU; no ``torch.compile``
on either side.

Measured (tokens/s, best of ``--rounds`` interleaved rounds; ratios to the reference):

* ``reference``: the nanoGPT-style model and loop;
* ``reference, fused AdamW``: the same with ``AdamW(fused=True)`` on CPU too;
* ``ours, step``: our network (``families.lm._GPT``) with ``LM``'s optimiser in the same loop
  (and its ``F.cross_entropy``);
* ``LM.fit end to end``: ``LM.fit`` on ``batch * steps`` rows (fresh initialisation, optimiser,
  shuffling, per-row weighted loss through ``families.lm._TokenCrossEntropy``, whose backward
  overwrites the saved log-softmax in place, learning-rate schedule, deterministic mode: what
  the engine runs), timed from the call to its return;
* generation from BOS: ``LM.sample`` (key/value cache), ``LM.sample(use_cache=False)`` and the
  reference's nanoGPT-style uncached ``generate`` (the whole prefix recomputed for each token).

With ``transformers`` installed, Hugging Face ``GPT2LMHeadModel`` of the same shape is timed in
the same loop and its ``generate`` (KV cache) too.

Usage::

    python benchmarks/bench_lm.py             # nanoGPT's 4.2M configuration: V 4096, L 256,
                                              # d 256, 4 layers, 4 heads, batch 16, 2 threads
    python benchmarks/bench_lm.py --quick     # tiny smoke run (seconds)
    python benchmarks/bench_lm.py --vocab 2048 --context 64 --d-model 64 --n-layer 2 \\
        --threads 1 --steps 40                # the gerstgrasser2024-lm preset's model
    python benchmarks/bench_lm.py --clock cpu # tokens per CPU second (a busy machine)

The machine may be shared: the load average is printed before and after, and only the ratios
measured in the same run should be compared.  On a busy machine two torch threads per process
lose most of their time waiting for each other (wall time), so ``--clock cpu`` compares there.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time

if importlib.util.find_spec("torch") is None:  # before the torch imports below
    print("bench_lm: skipped (torch is not installed; pip install torch)")
    raise SystemExit(0)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ----------------------------------------------------------------------------- reference model


class RefAttention(nn.Module):
    """Causal multi-head self-attention: (B, T, d) -> (B, T, d)."""

    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        B, T, d = x.shape
        h = self.n_head
        q, k, v = (t.view(B, T, h, d // h).transpose(1, 2)              # 3 x (B, h, T, d/h)
                   for t in self.qkv(x).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)     # (B, h, T, d/h)
        return self.out(y.transpose(1, 2).contiguous().view(B, T, d))


class RefBlock(nn.Module):
    """Pre-LayerNorm block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = RefAttention(d, n_head)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefGPT(nn.Module):
    """nanoGPT-style decoder: token ids (B, T) -> logits (B, T, V); head tied to ``tok``."""

    def __init__(self, vocab: int, context: int, n_layer: int, n_head: int, d: int) -> None:
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.Sequential(*[RefBlock(d, n_head) for _ in range(n_layer)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight                              # tied
        for name, p in self.named_parameters():                        # GPT-2 initialisation
            if p.dim() >= 2:
                resid = name.endswith(("out.weight", "mlp.2.weight"))
                std = 0.02 / math.sqrt(2 * n_layer) if resid else 0.02
                nn.init.normal_(p, 0.0, std)
            elif "norm" not in name:
                nn.init.zeros_(p)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))  # (B, T, d)
        return self.head(self.norm(self.blocks(x)))                     # (B, T, V)

    @torch.no_grad()
    def generate(self, idx, new_tokens: int, generator=None):
        """nanoGPT-style sampling without a cache: the whole (cropped) prefix at every step."""
        for _ in range(new_tokens):
            logits = self(idx[:, -self.context:])[:, -1]                # (B, V)
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
            idx = torch.cat([idx, nxt], 1)
        return idx


def ref_optimizer(model: nn.Module, lr: float, weight_decay: float, fused: bool | None = None):
    """AdamW, decay on tensors of >= 2 dims only; fused on CUDA (nanoGPT), else as ``fused``."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    on_cuda = params[0].device.type == "cuda"
    extra = {"fused": True} if (on_cuda if fused is None else fused) else {}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), **extra)


class RefTrainer:
    """A nanoGPT-style training loop over a 1-D token stream ``data`` on the model's device.

    ``logits_of`` maps ids (B, T) to logits (B, T, V) (the model itself, or an adapter)."""

    def __init__(self, model, logits_of, optimizer, data, batch: int, context: int,
                 lr: float = 1e-3, warmup: int = 10, total: int = 1000, seed: int = 0) -> None:
        self.model, self.logits_of, self.opt = model, logits_of, optimizer
        self.data, self.B, self.T = data, batch, context
        self.lr, self.warmup, self.total = lr, warmup, total
        self.g = torch.Generator(device=data.device).manual_seed(seed)
        self.it = 0
        self.last_loss = None

    def batch(self):
        """(x, y): (B, T) windows of ``data`` at random offsets, and the next tokens."""
        ix = torch.randint(len(self.data) - self.T - 1, (self.B,), generator=self.g,
                           device=self.data.device)                     # (B,)
        w = ix[:, None] + torch.arange(self.T + 1, device=self.data.device)  # (B, T+1)
        rows = self.data[w]
        return rows[:, :-1], rows[:, 1:]

    def lr_at(self, it: int) -> float:
        if it < self.warmup:
            return self.lr * (it + 1) / self.warmup
        r = min(1.0, (it - self.warmup) / max(1, self.total - self.warmup))
        return self.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * r)))

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` optimizer steps; no host synchronisation inside the loop."""
        self.model.train()
        x, y = self.batch()
        t0 = time.perf_counter()
        for _ in range(steps):
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.it)
            logits = self.logits_of(x)                                  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            x, y = self.batch()                                         # next batch, prefetched
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            self.it += 1
        self.last_loss = loss.detach()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


# ----------------------------------------------------------------------------- measurements


def _config(a) -> str:
    return (f"V={a.vocab} L={a.context} d={a.d_model} layers={a.n_layer} heads={a.n_head} "
            f"batch={a.batch} threads={a.threads}")


def build(a):
    """The measurements of this configuration: name -> (callable returning seconds, tokens)."""
    from modelcollapse.families.lm import LM, _GPT, _init_

    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(1, a.vocab, (max(50_000, 4 * a.batch * (a.context + 1)),),
                         generator=g)                                   # token stream
    B, T = a.batch, a.context
    total = 10 * a.steps * a.rounds
    ref = RefGPT(a.vocab, T, a.n_layer, a.n_head, a.d_model)
    ref_fused = RefGPT(a.vocab, T, a.n_layer, a.n_head, a.d_model)
    lm = LM(vocab_size=a.vocab, context=T, n_layer=a.n_layer, n_head=a.n_head,
            d_model=a.d_model, batch_size=B, epochs=1, num_threads=a.threads,
            gen_batch_size=a.gen_batch, device="cpu")
    ours = lm._new_net()
    _init_(ours, torch.Generator().manual_seed(0))
    n_ref = sum(p.numel() for p in ref.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    if n_ref != n_ours or n_ours != lm.n_parameters():
        raise SystemExit(f"bench_lm: parameter counts differ: reference {n_ref:,}, "
                         f"ours {n_ours:,}, LM.n_parameters {lm.n_parameters():,}")
    trainers = {
        "reference": RefTrainer(ref, ref, ref_optimizer(ref, 1e-3, 0.1), data, B, T,
                                total=total),
        "reference, fused AdamW": RefTrainer(ref_fused, ref_fused,
                                             ref_optimizer(ref_fused, 1e-3, 0.1, fused=True),
                                             data, B, T, total=total),
        "ours, step": RefTrainer(ours, ours, lm._optimizer(ours), data, B, T, total=total),
    }
    if a.hf:
        hf = _hf_model(a)
        trainers["HF GPT2LMHeadModel, step"] = RefTrainer(
            hf, lambda x: hf(x).logits, ref_optimizer(hf, 1e-3, 0.1), data, B, T, total=total)
    n_fit = B * a.steps
    starts = torch.randint(len(data) - T - 1, (n_fit,), generator=g)
    X = data[starts[:, None] + torch.arange(T + 1)].numpy()
    X[:, 0] = 0                                                          # BOS

    def fit():
        t0 = time.perf_counter()
        lm.fit(X, rng=np.random.default_rng(0))
        return time.perf_counter() - t0

    train = {k: ((lambda tr=tr: tr.run(a.steps)), B * T * a.steps) for k, tr in trainers.items()}
    train["LM.fit end to end"] = (fit, n_fit * T)
    for tr in trainers.values():                                         # warm-up
        tr.run(1)
    lm.fit(X[:B], rng=np.random.default_rng(0))

    gen = {}
    if a.gen_rows:
        def sample(cache: bool, rows: int):
            def f():
                t0 = time.perf_counter()
                lm.sample(rows, rng=np.random.default_rng(1), use_cache=cache)
                return time.perf_counter() - t0
            return f

        def ref_generate():
            bos = torch.zeros((a.ref_gen_rows, 1), dtype=torch.long)
            ref.eval()
            t0 = time.perf_counter()
            ref.generate(bos, T, generator=torch.Generator().manual_seed(1))
            return time.perf_counter() - t0

        gen["LM.sample, KV cache"] = (sample(True, a.gen_rows), a.gen_rows * T)
        gen["LM.sample, no cache"] = (sample(False, a.ref_gen_rows), a.ref_gen_rows * T)
        gen["reference generate, no cache"] = (ref_generate, a.ref_gen_rows * T)
        if a.hf:
            gen["HF generate, KV cache"] = (_hf_generate(hf, a), a.gen_rows * T)
        lm.sample(2, rng=np.random.default_rng(0))                      # warm-up
    return train, gen, n_ours


def _hf_model(a):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.context, n_embd=a.d_model,
                     n_layer=a.n_layer, n_head=a.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, activation_function="gelu", bos_token_id=0,
                     eos_token_id=0, pad_token_id=0, tie_word_embeddings=True)
    return GPT2LMHeadModel(cfg)


def _hf_generate(model, a):
    def f():
        bos = torch.zeros((a.gen_batch, 1), dtype=torch.long)
        kw = dict(do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                  max_new_tokens=a.context - 1, min_new_tokens=a.context - 1, use_cache=True,
                  pad_token_id=0)
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            done = 0
            while done < a.gen_rows:
                b = min(a.gen_batch, a.gen_rows - done)
                model.generate(bos[:b], attention_mask=torch.ones_like(bos[:b]), **kw)
                done += b
        return time.perf_counter() - t0
    return f


def measure(items: dict, rounds: int, clock: str = "wall") -> dict[str, float]:
    """Best tokens/s of each item over ``rounds`` rounds, the items interleaved in each.

    ``clock="wall"``: the seconds each callable returns (its timed part); ``"cpu"``: the
    process CPU seconds (all threads) of the whole call -- less sensitive to other jobs on a
    shared machine, but counting any time threads spin while waiting."""
    best = {k: 0.0 for k in items}
    for _ in range(rounds):
        for k, (f, tokens) in items.items():
            c0 = time.process_time()
            wall = f()
            seconds = wall if clock == "wall" else time.process_time() - c0
            best[k] = max(best[k], tokens / max(seconds, 1e-9))
    return best


def _table(title: str, best: dict[str, float], base: str) -> None:
    print(f"{title:<34}{'tokens/s':>12}{'ratio':>8}   (ratio: to {base!r})")
    for k, v in best.items():
        print(f"{k:<34}{v:>12,.0f}{v / best[base]:>8.2f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16, help="training rows per step")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--gen-rows", type=int, default=32,
                    help="rows LM.sample generates (0: no generation measurements)")
    ap.add_argument("--gen-batch", type=int, default=32, help="rows generated at once")
    ap.add_argument("--ref-gen-rows", type=int, default=2,
                    help="rows of the uncached generations (their cost grows as L^2)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="tokens per wall second, or per process CPU second (shared machine)")
    ap.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test)")
    a = ap.parse_args(argv)
    if a.quick:
        a.vocab, a.context, a.d_model, a.n_layer, a.n_head = 512, 32, 32, 2, 2
        a.batch, a.steps, a.rounds, a.threads = 8, 3, 1, 1
        a.gen_rows, a.gen_batch, a.ref_gen_rows = 8, 8, 2
    a.hf = importlib.util.find_spec("transformers") is not None
    print(f"bench_lm: {_config(a)}; load average before {os.getloadavg()[0]:.2f}")
    train, gen, n = build(a)
    print(f"parameters: {n:,} (reference and ours equal); best of {a.rounds} interleaved "
          f"round(s), {a.steps} steps each, {a.clock} clock" + ("" if a.hf else
                                                "; transformers not installed: no HF rows"))
    best = measure(train, a.rounds, a.clock)
    _table("training", best, "reference")
    if gen:
        g = measure(gen, a.rounds, a.clock)
        _table("generation (from BOS)", g, "reference generate, no cache")
    step, fit = best["ours, step"], best["LM.fit end to end"]
    print(f"ratios: ours step / reference {step / best['reference']:.2f}; LM.fit / reference "
          f"{fit / best['reference']:.2f}; LM.fit / reference with fused AdamW "
          f"{fit / best['reference, fused AdamW']:.2f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
