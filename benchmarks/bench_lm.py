"""Throughput of the ``lm`` family (``families.lm``) against Hugging Face ``GPT2LMHeadModel`` of the
same architecture, on CPU.

Both models: vocabulary V, context L, width d, n_layer blocks, n_head heads, tied output head,
tanh-GELU, no dropout -- the same parameter count (checked).  Measured, with the same batch size and
torch thread count, each in its own subprocess:

* training tokens/s: AdamW steps (forward, cross-entropy, backward, gradient clipping, step) on
  random token rows, the same loop for both models; plus ``LM.fit`` end to end (what the engine
  runs: deterministic algorithms on, minibatch indexing, learning-rate schedule);
* generation tokens/s from BOS: ``LM.sample`` (key/value cache), ``LM.sample(use_cache=False)``
  (the whole prefix recomputed for every token: the naive reference) and
  ``GPT2LMHeadModel.generate(do_sample=True, top_k=0, use_cache=True)`` for L new tokens.

Peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the measuring subprocess after the
measurement minus before it (the model is built and warmed up before the first reading), i.e. the
extra resident memory the measured work needed at its peak.  tracemalloc does not see torch's
allocations; separate subprocesses keep one measurement's high-water mark out of the next.

Usage::

    python benchmarks/bench_lm.py                       # d=128, 4 layers, L=64, V=2048
    python benchmarks/bench_lm.py --d-model 256 --n-layer 6 --threads 2

Needs torch and transformers (``pip install transformers``); skips with a message without them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _hf_model(a):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.context, n_embd=a.d_model,
                     n_layer=a.n_layer, n_head=a.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, activation_function="gelu_new", bos_token_id=0,
                     eos_token_id=0, pad_token_id=0, tie_word_embeddings=True)
    return GPT2LMHeadModel(cfg).eval()


def _ours(a):
    from modelcollapse.families.lm import LM, _GPT, _init_
    import torch

    lm = LM(vocab_size=a.vocab, context=a.context, n_layer=a.n_layer, n_head=a.n_head,
            d_model=a.d_model, batch_size=a.batch, gen_batch_size=a.gen_batch, epochs=1,
            num_threads=a.threads)
    lm.net_ = _GPT(a.vocab, a.context, a.n_layer, a.n_head, a.d_model)
    _init_(lm.net_, torch.Generator().manual_seed(0))
    lm.net_.eval()
    return lm


def _train_loop(model, logits_of, rows, steps: int) -> float:
    """Seconds for ``steps`` AdamW steps on ``rows`` (B, L+1)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()

    def one():
        logits = logits_of(rows[:, :-1])                                    # (B, L, V)
        loss = F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    one()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return time.perf_counter() - t0


def worker(a) -> dict:
    """One measurement (``a.what``) in this process; returns the numbers as a dict."""
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(1, a.vocab, (a.batch, a.context + 1), generator=g)
    rows[:, 0] = 0
    out = {"what": a.what}
    if a.what.startswith("hf"):
        model = _hf_model(a)
        out["n_parameters"] = sum(p.numel() for p in model.parameters())
    else:
        lm = _ours(a)
        model = lm.net_
        out["n_parameters"] = sum(p.numel() for p in model.parameters())
    if a.what in ("ours_train", "hf_train"):
        logits_of = model if a.what == "ours_train" else (lambda x: model(x).logits)
        _train_loop(model, logits_of, rows, 1)
        before = _maxrss_mib()
        dt = _train_loop(model, logits_of, rows, a.steps)
        out["tokens_per_s"] = a.steps * a.batch * a.context / dt
    elif a.what == "ours_fit":
        X = np.random.default_rng(0).integers(1, a.vocab, (a.batch * a.steps, a.context + 1))
        X[:, 0] = 0
        lm.fit(X[:a.batch], rng=np.random.default_rng(0))  # warm-up
        before = _maxrss_mib()
        t0 = time.perf_counter()
        lm.fit(X, rng=np.random.default_rng(0))
        out["tokens_per_s"] = X.shape[0] * a.context / (time.perf_counter() - t0)
    elif a.what in ("ours_gen", "ours_gen_naive"):
        cache = a.what == "ours_gen"
        lm.sample(2, rng=np.random.default_rng(0), use_cache=cache)  # warm-up
        before = _maxrss_mib()
        t0 = time.perf_counter()
        lm.sample(a.gen_rows, rng=np.random.default_rng(1), use_cache=cache)
        out["tokens_per_s"] = a.gen_rows * a.context / (time.perf_counter() - t0)
    elif a.what == "hf_gen":
        bos = torch.zeros((a.gen_batch, 1), dtype=torch.long)
        kw = dict(do_sample=True, top_k=0, top_p=1.0, temperature=1.0, max_new_tokens=a.context,
                  min_new_tokens=a.context, use_cache=True, pad_token_id=0)
        with torch.no_grad():
            model.generate(bos[:2], attention_mask=torch.ones_like(bos[:2]), **kw)  # warm-up
            before = _maxrss_mib()
            t0 = time.perf_counter()
            done = 0
            while done < a.gen_rows:
                b = min(a.gen_batch, a.gen_rows - done)
                model.generate(bos[:b], attention_mask=torch.ones_like(bos[:b]), **kw)
                done += b
        out["tokens_per_s"] = a.gen_rows * a.context / (time.perf_counter() - t0)
    else:
        raise ValueError(f"what: {a.what!r}")
    out["peak_extra_mib"] = _maxrss_mib() - before
    out["rss_mib"] = _maxrss_mib()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32, help="training rows per step")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--gen-rows", type=int, default=128, help="rows generated")
    ap.add_argument("--gen-batch", type=int, default=64, help="rows generated at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--what", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.what:
        print(json.dumps(worker(a)))
        return
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"bench_lm: skipped ({', '.join(missing)} not installed; "
              "pip install torch transformers)")
        return
    args = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items() if k != "what"]
    res = {}
    for what in ("ours_train", "hf_train", "ours_fit", "ours_gen", "hf_gen", "ours_gen_naive"):
        if what == "ours_gen_naive":  # the naive reference is slow: fewer rows
            args = [x for x in args if not x.startswith("--gen-rows")] + [
                f"--gen-rows={min(a.gen_rows, a.gen_batch)}"]
        p = subprocess.run([sys.executable, __file__, *args, f"--what={what}"],
                           capture_output=True, text=True)
        if p.returncode:
            print(p.stderr, file=sys.stderr)
            raise SystemExit(f"bench_lm: {what} failed")
        res[what] = json.loads(p.stdout.strip().splitlines()[-1])
    n_ours, n_hf = res["ours_train"]["n_parameters"], res["hf_train"]["n_parameters"]
    print(f"lm vs GPT2LMHeadModel: V={a.vocab} L={a.context} d={a.d_model} layers={a.n_layer} "
          f"heads={a.n_head}; parameters {n_ours:,} vs {n_hf:,}; batch {a.batch}, "
          f"generation batch {a.gen_batch}, {a.threads} torch thread(s)")
    print(f"{'measurement':<34}{'tokens/s':>12}{'peak extra MiB':>16}")
    label = {"ours_train": "train, lm (same loop)", "hf_train": "train, HF GPT-2 (same loop)",
             "ours_fit": "train, LM.fit end to end", "ours_gen": "generate, lm (KV cache)",
             "hf_gen": "generate, HF GPT-2 (KV cache)",
             "ours_gen_naive": "generate, lm (no cache, naive)"}
    for what, r in res.items():
        print(f"{label[what]:<34}{r['tokens_per_s']:>12,.0f}{r['peak_extra_mib']:>16.1f}")
    ratio = lambda x, y: res[x]["tokens_per_s"] / res[y]["tokens_per_s"]  # noqa: E731
    print(f"ratios: train lm/HF {ratio('ours_train', 'hf_train'):.2f}; generate lm/HF "
          f"{ratio('ours_gen', 'hf_gen'):.2f}; KV cache / naive "
          f"{ratio('ours_gen', 'ours_gen_naive'):.1f}")


if __name__ == "__main__":
    main()
