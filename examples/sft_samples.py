"""What the fine-tuned model writes: completions of held-out prompts at the first and the last
model-fitting iteration of each paradigm of an ``sft`` study (issue 14), for one replicate chain.

    python examples/sft_samples.py                          # kazdan2024-sft, seed 0
    python examples/sft_samples.py STUDY --seed-index 2 --prompts 4 --set task_params.n_samples=64

A replicate's chain depends only on its own random streams, so the chain of replicate k run
alone (``n_seeds = k + 1`` and keeping the last) is the chain of seed k in the full run, and the
completions printed here are ones the run's sample metrics (distinct-n, entropy, novel
3-grams) were computed from at those iterations (the EVAL stream of the iteration, completing
the first ``n_eval`` held-out prompts; shown for the first ``--prompts`` of them).  It re-runs that one chain per paradigm (about a fifth of the
5-seed preset's time).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", nargs="?", default="kazdan2024-sft")
    ap.add_argument("--seed-index", type=int, default=0, help="which replicate chain")
    ap.add_argument("--prompts", type=int, default=3, help="held-out prompts shown")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args(argv)

    from modelcollapse.config import load_study
    from modelcollapse.engine.unit import build_task, compute_unit
    from modelcollapse.families.causal_lm import load_pretrained
    from modelcollapse.rng import Role

    study = load_study(args.study, args.overrides + [f"n_seeds={args.seed_index + 1}"])
    m = int(study.resolved()["tasks"][0]["task_params"]["n_eval"])
    task, streams = build_task(study, 0)
    tok = load_pretrained(task.make_model().factory().pretrained)[1]
    P = task.truth["prompt_length"]
    k, last = args.seed_index, study.n_iterations - 1
    base_evaluate = task.evaluate
    shown: dict[tuple[str, int], dict[bytes, np.ndarray]] = {}   # prompt bytes -> completion

    def decode(ids) -> str:
        return tok.decode([int(i) for i in ids], skip_special_tokens=True)

    for j, paradigm in enumerate(study.paradigms):
        def evaluate(model, iteration=0, _label=paradigm.label):
            if iteration in (0, last):  # the rows the sample metrics are computed from
                rows = model.sample(m, rngs=streams(iteration, Role.EVAL),
                                    prompts=task.test[:, :m, :P])[k]
                shown[(_label, iteration)] = {r[:P].tobytes(): r[P:] for r in rows}
            return base_evaluate(model, iteration)

        compute_unit(study, 0, j, task=dataclasses.replace(task, evaluate=evaluate))
    for i in range(min(args.prompts, m)):
        prompt = task.test[k, i, :P]
        print(f"## prompt {i + 1}: {decode(prompt)!r}")
        print(f"   {'real':>12}              {decode(task.test[k, i, P:])!r}")
        for (label, t), by_prompt in shown.items():
            print(f"   {label:>12} iteration {t}: {decode(by_prompt[prompt.tobytes()])!r}")
        print()


if __name__ == "__main__":
    main()
