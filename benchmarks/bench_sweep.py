"""Sweep throughput: chains per second on one fixed grid, by executor.

The grid (``GRID`` below): Kazdan et al. 2024's Gaussian (N(0, I_10), MLE) and a KDE, at 4 real
sample sizes x 2 root seeds, replace and accumulate-subsample, 50 model-fitting iterations,
40 seeds -- 8 points, 32 units of 40 replicate chains each (1280 chains).  Each executor runs the
whole sweep through ``modelcollapse.engine.run_sweep`` (no checkpoints: pure throughput):

* ``local --jobs 1``   this process, one unit after another;
* ``local --jobs 2``   a pool of 2 worker processes;
* ``ray (cold)``       a local Ray instance with 2 CPUs, started and shut down by the executor
                       (what ``modelcollapse sweep --executor ray --jobs 2`` does);
* ``ray (warm)``       the same with an instance already running (``ray.init`` timed apart):
                       the cost of attaching to a cluster that is up.

Every executor's results are checked equal to ``--jobs 1``'s (bit for bit).  An untimed
``--jobs 1`` run first warms up imports and caches in this process.

Usage::

    python benchmarks/bench_sweep.py              # the grid above
    python benchmarks/bench_sweep.py --quick      # 10 iterations, 10 seeds (smoke run)
    python benchmarks/bench_sweep.py --no-ray     # local executors only
    python benchmarks/bench_sweep.py --repeat 3   # best of 3 timings (local executors)
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

GRID = {
    "name": "bench-sweep",
    "tasks": [{"task": "gaussian", "task_params": {"n_features": 10}},
              {"task": "kde", "task_params": {"n_features": 2, "n_test": 200}}],
    "paradigms": ["replace", "accumulate-subsample"],
    "n_iterations": 50,
    "n_seeds": 40,
    "grid": {"tasks.0.task_params.n_samples": [50, 100, 200, 400],
             "seed": [0, 1]},
}


def _time(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 iterations, 10 seeds")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    parser.add_argument("--repeat", type=int, default=1, help="best of N (local executors)")
    args = parser.parse_args()

    from modelcollapse.engine import LocalExecutor, RayExecutor, load_sweep, run_sweep

    grid = dict(GRID)
    if args.quick:
        grid.update(n_iterations=10, n_seeds=10)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.yaml"
        path.write_text(yaml.safe_dump(grid))
        sweep = load_sweep(str(path))
    units = sum(len(s.tasks) * len(s.paradigms) for s in sweep.points)
    chains = sum(len(s.tasks) * len(s.paradigms) * s.n_seeds for s in sweep.points)
    print(f"grid: {len(sweep.points)} points, {units} units, {chains} chains of "
          f"{sweep.points[0].n_iterations} model-fitting iterations")

    run_sweep(sweep, executor=LocalExecutor(1))  # warm-up: imports, dataset caches
    rows = []
    reference = None
    runs = [("local --jobs 1", lambda: run_sweep(sweep, executor=LocalExecutor(1)), args.repeat),
            ("local --jobs 2", lambda: run_sweep(sweep, executor=LocalExecutor(2)), args.repeat)]
    have_ray = importlib.util.find_spec("ray") is not None
    if not args.no_ray and have_ray:
        runs.append(("ray (cold: starts 2-CPU instance)",
                     lambda: run_sweep(sweep, executor=RayExecutor(num_cpus=2)), 1))
    for label, fn, repeat in runs:
        seconds, frame = _time(fn, repeat)
        rows.append((label, seconds))
        if reference is None:
            reference = frame
        else:
            pd.testing.assert_frame_equal(frame, reference)
    if not args.no_ray and have_ray:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
                 log_to_driver=False)
        startup = time.perf_counter() - start
        try:
            run_sweep(sweep, executor=RayExecutor())  # warm the workers (imports)
            seconds, frame = _time(lambda: run_sweep(sweep, executor=RayExecutor()), args.repeat)
        finally:
            ray.shutdown()
        pd.testing.assert_frame_equal(frame, reference)
        rows.append(("ray (warm instance)", seconds))
        print(f"ray.init(num_cpus=2): {startup:.1f} s")
    elif not have_ray:
        print("ray: not installed (pip install 'modelcollapse[ray]'): skipped")

    base = rows[0][1]
    print(f"\n{'executor':36s} {'seconds':>8s} {'chains/s':>9s} {'vs jobs 1':>9s}")
    for label, seconds in rows:
        print(f"{label:36s} {seconds:8.2f} {chains / seconds:9.1f} {base / seconds:8.2f}x")
    print("\nresults: identical across executors (checked bit for bit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
