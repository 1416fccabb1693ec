"""Tokens per second of the causal_lm family (issue 14) against a plain transformers loop of the
same model, threads and batches, in one process.

    python benchmarks/bench_causal_lm.py                       # SmolLM2 (data prepare smollm2)
    python benchmarks/bench_causal_lm.py --pretrained toy --rows 16 --rounds 1   # smoke run

Fine-tuning: ``CausalLM.fit`` (LoRA rank 8 on q/k/v/o, and full fine-tuning with --full) on
``--rows`` rows of P + C tokens, batches of ``--batch``, against a Trainer-free loop written here:
the same network (a copy of the pretrained one wrapped by peft in the same way), the same rows in
the same batches, ``model(input_ids, labels=...)`` with the prompt positions masked (-100),
``loss.backward()``, ``clip_grad_norm_``, ``AdamW.step()``.  Tokens/s counts every input token
of a row (BOS + P + C).

Generation: ``CausalLM.sample`` (key/value cache, inverse-CDF sampling from pre-drawn uniforms,
``--gen-batch`` rows at a time) against ``model.generate(do_sample=True, top_k=0,
max_new_tokens=C, min_new_tokens=C)`` on the same prompts and batches; tokens/s counts the
generated tokens.

Both sides run with ``torch.set_num_threads(--threads)``; ours additionally in deterministic mode
(``families._torch.Deterministic``).  The rounds alternate (ours, reference, ours, ...) and the
best round of each is reported, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _pretrained(name: str) -> str:
    if name != "smollm2":
        return name
    from modelcollapse.data.prepare import dataset_path, load_meta
    from modelcollapse.data.sources.smollm2 import GGUF

    if load_meta("smollm2") is None:
        sys.exit("error: smollm2 is not prepared; run `modelcollapse data prepare smollm2` "
                 "(or --pretrained toy)")
    return str(dataset_path("smollm2") / GGUF)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrained", default="smollm2")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--completion", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--gen-batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F  # noqa: F401

    from modelcollapse.families.causal_lm import CausalLM, load_pretrained

    path = _pretrained(args.pretrained)
    base, tok = load_pretrained(path)
    V = base.config.vocab_size
    P, C, n = args.prompt, args.completion, args.rows
    X = np.random.default_rng(0).integers(0, min(V, 20000), size=(n, P + C))
    lora = 0 if args.full else 8
    ours = CausalLM(pretrained=path, prompt_length=P, completion_length=C, lora_rank=lora,
                    batch_size=args.batch, epochs=1, lr=1e-4, num_threads=args.threads,
                    gen_batch_size=args.gen_batch, prompts=X[:, :P])
    bos = ours._bos()
    print(f"model {Path(path).name}: {sum(p.numel() for p in base.parameters()) / 1e6:.1f}M "
          f"parameters; {n} rows of 1 + {P} + {C} tokens, batch {args.batch}, "
          f"{'full fine-tuning' if args.full else 'LoRA rank 8'}, {args.threads} threads; "
          f"load average before {os.getloadavg()[0]:.2f}")

    def ref_fit():
        torch.set_num_threads(args.threads)
        net = ours._new_net(torch.Generator().manual_seed(0))
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        ids = torch.as_tensor(X)
        ids = torch.cat([torch.full((n, 1), bos), ids], 1) if bos is not None else ids
        labels = ids.clone()
        labels[:, :ids.shape[1] - C] = -100
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        for i in range(0, n, args.batch):
            idx = order[i:i + args.batch]
            loss = net(input_ids=ids[idx], labels=labels[idx]).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        return net

    def ref_generate(net):
        torch.set_num_threads(args.threads)
        prompts = torch.as_tensor(X[:, :P])
        if bos is not None:
            prompts = torch.cat([torch.full((n, 1), bos), prompts], 1)
        with torch.no_grad():
            for i in range(0, n, args.gen_batch):
                net.generate(input_ids=prompts[i:i + args.gen_batch],
                             attention_mask=torch.ones_like(prompts[i:i + args.gen_batch]),
                             do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                             max_new_tokens=C, min_new_tokens=C, pad_token_id=bos or 0)

    train_tokens = n * (P + C + (bos is not None))
    best = {"ours fit": 0.0, "plain loop fit": 0.0, "ours sample": 0.0, "plain generate": 0.0}
    trained = None
    for r in range(args.rounds):
        t = time.perf_counter()
        ours.fit(X, rng=np.random.default_rng(r))
        best["ours fit"] = max(best["ours fit"], train_tokens / (time.perf_counter() - t))
        t = time.perf_counter()
        trained = ref_fit()
        best["plain loop fit"] = max(best["plain loop fit"],
                                     train_tokens / (time.perf_counter() - t))
        t = time.perf_counter()
        ours.sample(n, rng=np.random.default_rng(r))
        best["ours sample"] = max(best["ours sample"], n * C / (time.perf_counter() - t))
        t = time.perf_counter()
        ref_generate(trained)
        best["plain generate"] = max(best["plain generate"], n * C / (time.perf_counter() - t))
    del trained
    print(f"{'':28s}{'tokens/s':>10s}")
    for k, v in best.items():
        print(f"{k:28s}{v:10.1f}")
    print(f"fit: ours / plain loop = {best['ours fit'] / best['plain loop fit']:.2f}; "
          f"generation: ours / generate = {best['ours sample'] / best['plain generate']:.2f}; "
          f"best of {args.rounds} alternating rounds; load average after "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
