"""A per-seed model-collapse script in the style of published research code.

The reference that ``bench_end_to_end.py`` runs, as its own process, against
``modelcollapse run``.  Written for this benchmark (nothing copied), after the structure of the
public scripts surveyed in research/peer-code.md (Collapse-or-Thrive's ``fit_gaussians`` and
``fit_linear_regression``): one chain per seed with its own generator
(``np.random.default_rng(seed)``), a plain Python loop over model-fitting iterations, a refit from
scratch every iteration with numpy, and ``accumulate`` = refit on the whole growing pool,
concatenated every iteration.

* ``gaussian``: truth N(0, I_d); fit = MLE mean and ``np.cov(bias=True)``; sample n rows with
  ``Generator.multivariate_normal``.  Logged per iteration: ||mu_hat - mu_0||^2,
  tr(Sigma_hat) / tr(Sigma_0) and log det(Sigma_hat) - log det(Sigma_0).
* ``linear_regression``: w* ~ N(0, I_d), a fixed design X (n x d), y = X w* + eps, eps ~ N(0, 1);
  fit = OLS by ``np.linalg.pinv``; new labels X w_hat + eps.  Logged: ||w_hat - w*||^2 and the
  test MSE on ``n_test`` fresh rows against noiseless targets.

At the end it writes every (seed, iteration, metric) to a CSV file and prints the mean of the
first metric at the last iteration.  Only numpy is imported, as in those scripts, so the
process start-up is Python + numpy.

Usage::

    python benchmarks/per_seed_reference.py gaussian accumulate --seeds 100 --iterations 100 \\
        --dim 10 --samples 100 --out results.csv

In process: ``run(family, paradigm, seeds=..., iterations=..., dim=..., samples=...)`` returns
the rows (list of tuples ``(seed, iteration, metric, value)``).
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

FAMILIES = ("gaussian", "linear_regression")
PARADIGMS = ("replace", "accumulate")


def gaussian_chain(seed: int, paradigm: str, iterations: int, dim: int, samples: int):
    """One seed's chain; yields (iteration, metric, value)."""
    rng = np.random.default_rng(seed)
    mean0, cov0 = np.zeros(dim), np.eye(dim)
    logdet0 = np.linalg.slogdet(cov0)[1]
    pool = rng.multivariate_normal(mean0, cov0, size=samples)
    for t in range(iterations):
        mean = pool.mean(axis=0)
        cov = np.cov(pool, rowvar=False, bias=True)
        yield t, "mean_sq_error", float(np.sum((mean - mean0) ** 2))
        yield t, "cov_trace_ratio", float(np.trace(cov) / np.trace(cov0))
        yield t, "log_det_ratio", float(np.linalg.slogdet(cov)[1] - logdet0)
        if t == iterations - 1:
            break
        new = rng.multivariate_normal(mean, cov, size=samples)
        pool = new if paradigm == "replace" else np.concatenate([pool, new])


def linear_regression_chain(seed: int, paradigm: str, iterations: int, dim: int, samples: int,
                            n_test: int = 1000, noise_variance: float = 1.0):
    """One seed's chain; yields (iteration, metric, value)."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(noise_variance)
    w_star = rng.standard_normal(dim)
    X = rng.standard_normal((samples, dim))
    y = X @ w_star + sigma * rng.standard_normal(samples)
    X_test = rng.standard_normal((n_test, dim))
    y_test = X_test @ w_star
    X_pool, y_pool = X, y
    for t in range(iterations):
        w_hat = np.linalg.pinv(X_pool) @ y_pool
        yield t, "population_risk", float(np.sum((w_hat - w_star) ** 2))
        yield t, "test_mse", float(np.mean((X_test @ w_hat - y_test) ** 2))
        if t == iterations - 1:
            break
        y_new = X @ w_hat + sigma * rng.standard_normal(samples)
        if paradigm == "replace":
            y_pool = y_new
        else:
            X_pool = np.concatenate([X_pool, X])
            y_pool = np.concatenate([y_pool, y_new])


CHAINS = {"gaussian": gaussian_chain, "linear_regression": linear_regression_chain}


def run(family: str, paradigm: str, *, seeds: int, iterations: int, dim: int,
        samples: int) -> list[tuple[int, int, str, float]]:
    """All seeds' chains, one after the other: rows (seed, iteration, metric, value)."""
    chain = CHAINS[family]
    rows = []
    for seed in range(seeds):
        for t, metric, value in chain(seed, paradigm, iterations, dim, samples):
            rows.append((seed, t, metric, value))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("paradigm", choices=PARADIGMS)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", default="per_seed_results.csv", help="CSV file written")
    args = parser.parse_args(argv)
    rows = run(args.family, args.paradigm, seeds=args.seeds, iterations=args.iterations,
               dim=args.dim, samples=args.samples)
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("seed", "iteration", "metric", "value"))
        writer.writerows(rows)
    first = rows[0][2]
    last = [v for s, t, m, v in rows if m == first and t == args.iterations - 1]
    print(f"{args.family} {args.paradigm}: final {first} mean over {args.seeds} seeds = "
          f"{np.mean(last):.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
