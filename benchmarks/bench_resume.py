"""Checkpoint overhead and resume cost (``modelcollapse run`` checkpoints; ``--resume``).

For each study below, in one process (``modelcollapse.engine.run_study``):

* ``plain``       no checkpoints;
* ``default``     checkpoints as ``modelcollapse run`` writes them (a chain state whenever the
                  time since the last one is >= 20x what that write took, i.e. <= ~5 % overhead;
                  plus one result file per finished unit);
* ``every``       a checkpoint after every model-fitting iteration (worst case);
* ``resume``      the run stopped (KeyboardInterrupt) halfway through its model-fitting
                  iterations with default checkpoints, then resumed: seconds of the resumed part,
                  and (first part + resumed part) / plain, i.e. what the interruption cost in all;
                  ``ckpt MB`` is the checkpoint directory's size at the interruption.

Studies: ``gaussian`` (d = 10, n = 100; replace, accumulate, accumulate-subsample; 200
model-fitting iterations x 100 seeds: microsecond iterations, where a per-iteration write would
dominate), ``kde`` (accumulate: the pool rows are checkpointed as append-only segments; 60
iterations x 50 seeds), ``vae`` (digits, warm start, 5 epochs per fit; replace, accumulate;
8 iterations x 3 seeds: the network is checkpointed; skipped without torch).

Usage::

    python benchmarks/bench_resume.py             # all studies
    python benchmarks/bench_resume.py --quick     # smaller studies (smoke run)
    python benchmarks/bench_resume.py --repeat 3  # best of 3 timings
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import pandas as pd

STUDIES = {
    "gaussian": {"task": "gaussian", "task_params": {"n_features": 10, "n_samples": 100},
                 "paradigms": ["replace", "accumulate", "accumulate-subsample"],
                 "n_iterations": 200, "n_seeds": 100},
    "kde": {"task": "kde", "task_params": {"n_features": 2, "n_samples": 100, "n_test": 200},
            "paradigms": ["accumulate"], "n_iterations": 60, "n_seeds": 50},
    "vae": {"task": "vae", "task_params": {"dataset": "digits", "n_samples": 300, "n_test": 200,
                                           "hidden": 64, "latent": 4, "epochs": 5,
                                           "init": "warm_start", "sample_metrics": False},
            "paradigms": ["replace", "accumulate"], "n_iterations": 8, "n_seeds": 3},
}
QUICK = {"gaussian": {"n_iterations": 50, "n_seeds": 20}, "kde": {"n_iterations": 20},
         "vae": {"n_iterations": 4, "n_seeds": 2}}


class _Stop(Exception):
    pass


def _size(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings")
    args = parser.parse_args()

    from modelcollapse.config import Study
    from modelcollapse.engine import run_study
    from modelcollapse.results.checkpoint import RunCheckpoints

    def timed(spec, checkpoints=None):
        best, frame = float("inf"), None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                ck = None
                if checkpoints is not None:
                    ck = RunCheckpoints(tmp, "run", "bench", max_overhead=checkpoints)
                    ck.start()
                start = time.perf_counter()
                frame = run_study(spec, checkpoints=ck)
                best = min(best, time.perf_counter() - start)
        return best, frame

    print(f"{'study':9s} {'plain s':>8s} {'default':>8s} {'ratio':>6s} {'every':>8s} "
          f"{'ratio':>6s} {'resume s':>9s} {'total/plain':>11s} {'ckpt MB':>8s}")
    for name, fields in STUDIES.items():
        if name == "vae" and importlib.util.find_spec("torch") is None:
            print(f"{name:9s} skipped (torch not installed)")
            continue
        spec = Study.model_validate({**fields, **(QUICK[name] if args.quick else {})})
        run_study(spec)  # warm-up: imports, dataset caches
        plain, reference = timed(spec)
        default, frame = timed(spec, 0.05)
        pd.testing.assert_frame_equal(frame, reference)
        every, frame = timed(spec, 1e300)
        pd.testing.assert_frame_equal(frame, reference)

        total = len(spec.tasks) * len(spec.paradigms) * spec.n_iterations
        with tempfile.TemporaryDirectory() as tmp:
            ck = RunCheckpoints(tmp, "run", "bench")
            ck.start()
            count = [0]

            def stop_halfway(t):
                count[0] += 1
                if count[0] == total // 2:
                    raise _Stop

            start = time.perf_counter()
            try:
                run_study(spec, checkpoints=ck, on_iteration=stop_halfway)
            except _Stop:
                pass
            first = time.perf_counter() - start
            size = _size(ck.directory)
            start = time.perf_counter()
            frame = run_study(spec, checkpoints=ck)
            resumed = time.perf_counter() - start
        pd.testing.assert_frame_equal(frame, reference)
        print(f"{name:9s} {plain:8.2f} {default:8.2f} {default / plain:6.2f} {every:8.2f} "
              f"{every / plain:6.2f} {resumed:9.2f} {(first + resumed) / plain:11.2f} "
              f"{size:8.2f}")
    print("\nresults with checkpoints and after resume: identical to plain (checked bit for bit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
