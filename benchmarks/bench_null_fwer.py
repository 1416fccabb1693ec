"""Family-wise error of the collapse profile under a no-feedback null loop.

A null study uses the paradigm ``mix`` with real fraction 1 and fresh real data on known-truth
tasks: every model-fitting iteration is an independent fit on fresh real samples, so no
definition of collapse holds and any 'occurs' is false.  One big run of ``n_studies x n_seeds``
chains is cut into ``n_studies`` studies of ``n_seeds`` chains (chains are independent by
construction, rng.py), each profiled on its own (three tasks x eight definitions = 24 verdicts
per study, Holm at alpha over the ~18 open tests).  Prints, for Holm and for no correction,
the share of studies with at least one false 'occurs' and its Monte Carlo standard error, the
share of false 'occurs' per definition, and the share of verdicts that are inconclusive.

Usage::

    python benchmarks/bench_null_fwer.py                    # 500 studies x 20 seeds x 20 iterations
    python benchmarks/bench_null_fwer.py --studies 200 --iterations 8   # the test's size
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from modelcollapse.config import Study
from modelcollapse.engine import run_study
from modelcollapse.profile import collapse_profile


def null_study(n_studies: int, n_seeds: int, n_iterations: int, seed: int) -> Study:
    return Study.model_validate({
        "tasks": [{"task": "gaussian", "task_params": {"n_features": 2, "n_samples": 50}},
                  {"task": "linear_regression", "task_params": {"n_features": 3,
                                                                "n_samples": 30}},
                  {"task": "discrete", "task_params": {"n_outcomes": 6, "n_samples": 100}}],
        "paradigms": [{"name": "mix", "real_fraction": 1.0, "fresh_real": True}],
        "n_seeds": n_studies * n_seeds, "n_iterations": n_iterations, "seed": seed})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=20, help="seeds per null study")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    results = run_study(null_study(args.studies, args.seeds, args.iterations, args.seed))
    specs = results.attrs["profile_specs"]
    t_run = time.perf_counter() - t0
    part_of = results.seed.to_numpy() // args.seeds
    rows = []
    t0 = time.perf_counter()
    for k, part in results.groupby(part_of, sort=True):
        for correction in ("holm", "none"):
            prof = collapse_profile(part, specs, {"alpha": args.alpha, "correction": correction})
            rows.append(prof.assign(study=k, correction=correction))
    t_profile = time.perf_counter() - t0
    prof = pd.concat(rows, ignore_index=True)
    print(f"{args.studies} null studies x {args.seeds} seeds x {args.iterations} iterations, "
          f"3 tasks, alpha {args.alpha}: run {t_run:.1f} s, profiles {t_profile:.1f} s")
    se = math.sqrt(args.alpha * (1 - args.alpha) / args.studies)
    for correction, g in prof.groupby("correction"):
        any_false = g.groupby("study").verdict.apply(lambda v: (v == "occurs").any())
        per_def = g[g.verdict != "not_applicable"].groupby("definition").verdict.apply(
            lambda v: (v == "occurs").mean())
        inconclusive = (g.verdict == "inconclusive").mean()
        rate = any_false.mean()
        print(f"  {correction:5s}: studies with any false 'occurs' {rate:.3f} "
              f"(MC s.e. {math.sqrt(rate * (1 - rate) / args.studies):.3f}; alpha {args.alpha} "
              f"+ 2 s.e. = {args.alpha + 2 * se:.3f}) -> "
              f"{'within' if rate <= args.alpha + 2 * se else 'ABOVE'} alpha; "
              f"inconclusive share {inconclusive:.2f}")
        print("         false 'occurs' per verdict by definition: "
              + ", ".join(f"{d}: {r:.3f}" for d, r in per_def.items()))
        verdicts = g[g.verdict != "not_applicable"].verdict.value_counts(normalize=True)
        print("         verdict shares: " + ", ".join(f"{k} {v:.2f}" for k, v in verdicts.items()))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
