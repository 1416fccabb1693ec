"""Batched Gaussian-mixture EM (``families.gmm``) vs the per-replicate scikit-learn path it
replaced (issue 13: the main job spent ~70% of its engine time in scikit-learn's
``GaussianMixture.fit``, one call per replicate per model-fitting iteration).

1. **Family** (same data, same process): R bootstrap resamples of the main job's data (wine, 4
   standardised principal components, 3 full-covariance components) fitted

   * by ``GaussianMixture(...).fit(X, rngs=...)``: all replicates in one batched EM, and
   * per replicate by ``sklearn.mixture.GaussianMixture(init_params="k-means++",
     random_state=<the integer the family draws from the same FIT stream>).fit(X[r])``, the
     removed path (what ``PerReplicate`` looped over).

   Both start from the same k-means++ rows and run the same EM updates, so the fitted means must
   agree to rounding (printed as ``max |diff|``; the benchmark fails above 1e-6).  Sizes: the
   pool of ``replace`` (n = 178) and of ``accumulate`` late in a 20-iteration chain (n = 3560).

2. **Main job** (``--study``): ``modelcollapse.engine.run_study`` on the ``default`` preset in this
   process (engine time: the chains, the learning curves and the results table), and with
   ``--baseline-src DIR`` the same in a subprocess on another tree's ``src/`` (e.g. the commit
   before the batched family: ``git archive <commit> src | tar -x -C /tmp/base``).  Use
   ``--task gmm`` to time only the GMM task of the preset.

BLAS threads are limited to 1 by default (``--blas-threads 0`` leaves the library default): the
matrices are tiny and multithreaded BLAS spin-waits would dominate the per-replicate path.

Usage::

    python benchmarks/bench_gmm.py                      # family: R = 30, n = 178 and 3560
    python benchmarks/bench_gmm.py --replicates 200 --repeat 5
    python benchmarks/bench_gmm.py --study --task gmm --baseline-src /tmp/base/src
    python benchmarks/bench_gmm.py --sizes 178 --study --study-repeat 3 \\
        --src /tmp/after/src --baseline-src /tmp/before/src   # two trees differing only in gmm
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np


def wine_resamples(R: int, n: int, seed: int = 0) -> np.ndarray:
    """(R, n, 4): rows drawn with replacement from wine's 4 standardised principal components."""
    from sklearn.datasets import load_wine
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X = PCA(4).fit_transform(StandardScaler().fit_transform(load_wine().data))
    g = np.random.default_rng(seed)
    return np.stack([X[g.choice(len(X), n)] for _ in range(R)])


def fit_batched(X, k, seed):
    from modelcollapse.families.gmm import GaussianMixture

    rngs = [np.random.default_rng([seed, r]) for r in range(len(X))]
    return GaussianMixture(n_components=k).fit(X, rngs=rngs)


def fit_per_replicate(X, k, seed):
    """The removed path: one scikit-learn fit per replicate, seeded from the same stream."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    out = []
    for r in range(len(X)):
        g = np.random.default_rng([seed, r])
        model = SkGaussianMixture(n_components=k, init_params="k-means++",
                                  random_state=int(g.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out.append(model.fit(X[r]))
    return out


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def family_benchmark(R: int, sizes, k: int, repeat: int) -> bool:
    ok = True
    print(f"family: {R} replicates, wine 4 PCs, {k} full-covariance components, best of {repeat}")
    print(f"{'n':>6} {'batched s':>10} {'per-replicate s':>16} {'ratio':>7} {'max |diff|':>11}"
          f" {'EM iterations (max)':>20}")
    for n in sizes:
        X = wine_resamples(R, n)
        fit_batched(X, k, 1)  # warm-up (imports)
        fit_per_replicate(X[:2], k, 1)
        batched = fit_batched(X, k, 1)
        reference = fit_per_replicate(X, k, 1)
        diff = max(np.abs(batched.means_[r] - m.means_).max() for r, m in enumerate(reference))
        t_batch = best_of(lambda: fit_batched(X, k, 1), repeat)
        t_loop = best_of(lambda: fit_per_replicate(X, k, 1), repeat)
        print(f"{n:>6} {t_batch:>10.4f} {t_loop:>16.4f} {t_loop / t_batch:>7.1f} {diff:>11.1e}"
              f" {int(batched.n_iter_.max()):>20}")
        ok &= diff < 1e-6
    return ok


STUDY_CODE = """
import sys, time
from modelcollapse import api
from modelcollapse.engine import run_study
study = api.load('default')
task = sys.argv[1]
if task != 'all':
    study = study.model_copy(update={'tasks': [t for t in study.tasks if t.task == task]})
run_study(study.model_copy(update={'n_iterations': 2, 'n_seeds': 2}))  # warm-up: imports, data
t0, c0 = time.perf_counter(), time.process_time()
frame = run_study(study)
print(f'{time.perf_counter() - t0:.2f} {time.process_time() - c0:.2f} {len(frame)}')
"""


def study_time(task: str, src: str | None) -> tuple[float, float, int]:
    """(wall s, CPU s of this process, result rows) of run_study in a fresh interpreter."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", STUDY_CODE, task], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[178, 3560])
    parser.add_argument("--components", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--study", action="store_true",
                        help="also time run_study on the default preset")
    parser.add_argument("--task", default="all", help="only this task of the preset (e.g. gmm)")
    parser.add_argument("--baseline-src", help="another tree's src/ to time the study on too")
    parser.add_argument("--src", help="the src/ to time as 'this tree' (default: the installed "
                                      "modelcollapse)")
    parser.add_argument("--study-repeat", type=int, default=1,
                        help="runs of each tree, alternating; the best is printed")
    args = parser.parse_args(argv)
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = \
            str(args.blas_threads)
    ok = family_benchmark(args.replicates, args.sizes, args.components, args.repeat)
    if args.study:
        print(f"main job (default preset, task {args.task}): run_study engine time, warm")
        rows = [("this tree", args.src)] + ([("baseline", args.baseline_src)]
                                            if args.baseline_src else [])
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(args.study_repeat):
            for label, src in rows:
                wall, cpu, n_rows = study_time(args.task, src)
                if label not in best or wall < best[label][0]:
                    best[label] = (wall, min(cpu, best.get(label, (0, cpu))[1]), n_rows)
        for label, (wall, cpu, n_rows) in best.items():
            print(f"  {label:<10} wall {wall:>7.2f} s  CPU {cpu:>7.2f} s  ({n_rows} result rows)")
        if len(best) == 2:
            print(f"  ratio baseline / this tree: wall "
                  f"{best['baseline'][0] / best['this tree'][0]:.1f}, CPU "
                  f"{best['baseline'][1] / best['this tree'][1]:.1f}")
    if not ok:
        print("error: batched fit and scikit-learn disagree by more than 1e-6", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
