"""Batched engine vs a plain per-replicate Python loop of the same model-collapse chains.

For each family (linear_regression, gaussian, discrete) and paradigm (replace, accumulate) this
script times, in one process,

* the **engine**: ``modelcollapse.engine.unit.run_unit`` on a study built with the public API
  (all replicates advance as one array computation; accumulate uses sufficient statistics), and
* a **naive loop** in the style of the published research code: per replicate, per model-fitting
  iteration, refit on the full current training set (for accumulate: concatenate the growing pool
  and refit from scratch with ``np.cov`` / ``np.linalg.lstsq`` / ``np.bincount``), sample with a
  per-replicate ``np.random.Generator`` and compute the task's metrics with straightforward
  numpy / scipy (``scipy.stats.multivariate_normal.logpdf``, ``scipy.linalg.sqrtm``...).

Both compute the same metrics as the task's ``evaluate``.  Correctness is checked twice:

1. *exact*: the naive metric code, run on the engine's own real / test data, reproduces the
   engine's iteration-0 metrics (same data, so they must agree to rounding);
2. *statistical*: the two implementations use different random streams, so from iteration 1 on
   only their distributions agree; the mean over seeds of the final-iteration risk metric of each
   must agree within a few standard errors (two-sample z score, |z| < ``--z-max``).

Usage::

    python benchmarks/bench_batched.py                 # d=10, n=100, 100 iterations, 100 seeds
    python benchmarks/bench_batched.py --quick         # smoke run (20 seeds, 20 iterations)
    python benchmarks/bench_batched.py --repeat 3      # best of 3 timings
    python benchmarks/bench_batched.py --profile       # + cProfile of the engine (accumulate)
    python benchmarks/bench_batched.py --profile-only  # only the cProfile hotspots
    python benchmarks/bench_batched.py --engine-floor --repeat 3 [--baseline-src DIR] [--no-loop]
        # issue 13: run_study vs the RNG floor (wall and CPU; build and learning curve apart),
        # the statistics draw with generators vs one block draw, and the per-seed loop on
        # accumulate; DIR = another tree's src/ (e.g. `git archive HEAD~1 src | tar -x -C /tmp/b`)
        # measured in a subprocess before and after this tree

Timings exclude task building / data drawing (reported separately) and imports (a warm-up run of
each implementation precedes timing); the engine time is ``run_unit`` with a prebuilt task, i.e.
the chain run plus building its results DataFrame.  Peak memory is measured in a separate,
untimed pass with ``tracemalloc`` (numpy reports its buffers to tracemalloc): the engine's covers
building the task and ``run_unit``; the loop's holds one replicate's data at a time, as a
per-replicate script does.

BLAS threads are limited to 1 by default (``--blas-threads 0`` leaves the library default):
multithreaded OpenBLAS is *slower* on these tiny problems (e.g. ``lstsq`` on a 10000 x 10 pool
was ~20x slower with 2 threads on a 2-core machine), which would inflate the loop's time and make
the comparison depend on the machine's thread settings.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import scipy
import scipy.linalg
import scipy.stats

import modelcollapse
from modelcollapse.config import Study
from modelcollapse.engine.unit import run_unit
from modelcollapse.registry import tasks as task_registry
from modelcollapse.rng import Streams

TARGET = 50.0  # batched accumulate must be at least this many times faster than the loop
FAMILIES = ("linear_regression", "gaussian", "discrete")
PARADIGMS = ("replace", "accumulate")


def task_params(family: str, d: int, n: int) -> dict:
    if family == "linear_regression":
        return dict(dataset="synthetic", n_features=d, n_samples=n, noise_variance=1.0)
    if family == "gaussian":
        return dict(dataset="synthetic", n_features=d, n_samples=n, covariance_estimator="mle")
    if family == "discrete":
        return dict(n_outcomes=10, n_samples=n)
    raise ValueError(family)


def make_study(family: str, paradigm: str, *, d: int, n: int, n_iterations: int, n_seeds: int,
               seed: int = 0) -> Study:
    return Study.model_validate(dict(task=family, task_params=task_params(family, d, n),
                                     paradigms=[paradigm], n_iterations=n_iterations,
                                     n_seeds=n_seeds, seed=seed))


# ---------------------------------------------------------------------------------------------
# engine
# ---------------------------------------------------------------------------------------------

def engine_build(study: Study):
    """The task of ``study`` (what ``run_unit`` builds itself when given no task)."""
    entry = study.tasks[0]
    task = task_registry.get(entry.task).build(entry.params(), Streams(study.seed,
                                                                       range(study.n_seeds)))
    task.name = entry.label
    return task


def engine_run(study: Study, task):
    frame, spec = run_unit(study, 0, 0, task=task)
    return frame, spec["risk"]


def engine_values(frame, metric: str, n_iterations: int, n_seeds: int) -> np.ndarray:
    """Values of one metric as an array (n_iterations, n_seeds)."""
    sub = frame[frame["metric"] == metric]
    out = np.full((n_iterations, n_seeds), np.nan)
    out[sub["iteration"].to_numpy(), sub["seed"].to_numpy()] = sub["value"].to_numpy()
    return out


# ---------------------------------------------------------------------------------------------
# naive per-replicate loop (research-code style)
# ---------------------------------------------------------------------------------------------
# Each family: data(rng, p) -> replicate data dict;  chain(data, p, paradigm, n_iterations, rng)
# -> dict metric -> array (n_iterations,).  Same metric names and definitions as the task's
# ``evaluate``.

LR_METRICS = ("population_risk", "test_loss", "residual_variance")
GAUSS_METRICS = ("mean_sq_error", "cov_trace_ratio", "w2_squared", "test_nll")
DISC_METRICS = ("entropy", "support_size", "gini_simpson", "tv_distance")


def lr_data(rng, p):
    d, T, n_test, sd = p["n_features"], p["n_samples"], p["n_test"], np.sqrt(p["noise_variance"])
    w_star = rng.standard_normal(d)
    X = rng.standard_normal((T, d))
    Xt = rng.standard_normal((n_test, d))
    y = X @ w_star + sd * rng.standard_normal(T)
    yt = Xt @ w_star + sd * rng.standard_normal(n_test)
    return dict(X=X, y=y, Xt=Xt, yt=yt, w_star=w_star)


def lr_chain(data, p, paradigm, n_iterations, rng):
    X, y, Xt, yt, w_star = data["X"], data["y"], data["Xt"], data["yt"], data["w_star"]
    sigma = np.sqrt(p["noise_variance"])  # label_noise "true": sample with the known sigma^2
    out = {k: np.empty(n_iterations) for k in LR_METRICS}
    X_train, y_train = X, y
    for t in range(n_iterations):
        coef = np.linalg.lstsq(X_train, y_train, rcond=None)[0]
        out["population_risk"][t] = np.sum((coef - w_star) ** 2)
        out["test_loss"][t] = np.mean((yt - Xt @ coef) ** 2)
        out["residual_variance"][t] = np.mean((y_train - X_train @ coef) ** 2)
        if t < n_iterations - 1:
            y_new = X @ coef + sigma * rng.standard_normal(X.shape[0])
            if paradigm == "replace":
                X_train, y_train = X, y_new
            else:
                X_train = np.concatenate([X_train, X])
                y_train = np.concatenate([y_train, y_new])
    return out


def gauss_data(rng, p):
    d, n, n_test, sd = p["n_features"], p["n_samples"], p["n_test"], np.sqrt(p["variance"])
    real = sd * rng.standard_normal((n, d))
    test = sd * rng.standard_normal((n_test, d))
    return dict(real=real, test=test, mean0=np.zeros(d), cov0=p["variance"] * np.eye(d))


def gauss_chain(data, p, paradigm, n_iterations, rng):
    real, test, mean0, cov0 = data["real"], data["test"], data["mean0"], data["cov0"]
    mle = p["covariance_estimator"] == "mle"
    out = {k: np.empty(n_iterations) for k in GAUSS_METRICS}
    root0 = scipy.linalg.sqrtm(cov0).real  # fixed reference: once per replicate
    train = real
    for t in range(n_iterations):
        mean = train.mean(axis=0)
        cov = np.cov(train, rowvar=False, bias=mle)
        out["mean_sq_error"][t] = np.sum((mean - mean0) ** 2)
        out["cov_trace_ratio"][t] = np.trace(cov) / np.trace(cov0)
        cross = np.trace(scipy.linalg.sqrtm(root0 @ cov @ root0)).real
        out["w2_squared"][t] = (np.sum((mean - mean0) ** 2)
                                + max(np.trace(cov) + np.trace(cov0) - 2 * cross, 0.0))
        out["test_nll"][t] = -np.mean(
            scipy.stats.multivariate_normal.logpdf(test, mean, cov, allow_singular=True))
        if t < n_iterations - 1:
            batch = rng.multivariate_normal(mean, p["sampling_scale"] * cov, size=real.shape[0])
            train = batch if paradigm == "replace" else np.concatenate([train, batch])
    return out


def disc_data(rng, p):
    p0 = np.asarray(p["probabilities"])
    K, n = len(p0), p["n_samples"]
    real = rng.choice(K, size=n, p=p0)
    test = rng.choice(K, size=n, p=p0)  # drawn like the task's, not used by any metric
    return dict(real=real, test=test, p0=p0)


def disc_chain(data, p, paradigm, n_iterations, rng):
    real, p0 = data["real"], data["p0"]
    K = len(p0)
    out = {k: np.empty(n_iterations) for k in DISC_METRICS}
    train = real
    for t in range(n_iterations):
        counts = np.bincount(train, minlength=K)
        q = counts / counts.sum()
        out["entropy"][t] = scipy.stats.entropy(q)
        out["support_size"][t] = np.count_nonzero(q)
        out["gini_simpson"][t] = 1.0 - np.sum(q ** 2)
        out["tv_distance"][t] = 0.5 * np.sum(np.abs(q - p0))
        if t < n_iterations - 1:
            batch = rng.choice(K, size=real.shape[0], p=q)
            train = batch if paradigm == "replace" else np.concatenate([train, batch])
    return out


NAIVE = {
    "linear_regression": (lr_data, lr_chain, LR_METRICS),
    "gaussian": (gauss_data, gauss_chain, GAUSS_METRICS),
    "discrete": (disc_data, disc_chain, DISC_METRICS),
}


def naive_build(family: str, study: Study):
    """Per-replicate generators and data (the loop's equivalent of building the task)."""
    p = study.tasks[0].task_params
    data_fn = NAIVE[family][0]
    # independent of the engine's streams on purpose: agreement is only statistical
    rngs = [np.random.default_rng([study.seed + 1_000_003, r]) for r in range(study.n_seeds)]
    return rngs, [data_fn(g, p) for g in rngs]


def naive_run(family: str, study: Study, paradigm: str, rngs, datas) -> dict[str, np.ndarray]:
    """Metric -> (n_iterations, n_seeds), one chain after the other."""
    p = study.tasks[0].task_params
    chain_fn, metrics = NAIVE[family][1], NAIVE[family][2]
    per_rep = [chain_fn(data, p, paradigm, study.n_iterations, g) for data, g in zip(datas, rngs)]
    return {k: np.stack([o[k] for o in per_rep], axis=1) for k in metrics}


def naive_run_streaming(family: str, study: Study, paradigm: str) -> dict[str, np.ndarray]:
    """Like ``naive_build`` + ``naive_run`` but one replicate's data at a time (memory pass:
    what a per-replicate research script holds)."""
    p = study.tasks[0].task_params
    data_fn, chain_fn, metrics = NAIVE[family]
    per_rep = []
    for r in range(study.n_seeds):
        g = np.random.default_rng([study.seed + 1_000_003, r])
        per_rep.append(chain_fn(data_fn(g, p), p, paradigm, study.n_iterations, g))
    return {k: np.stack([o[k] for o in per_rep], axis=1) for k in metrics}


def naive_data_from_task(family: str, task, r: int) -> dict:
    """Replicate r's data as the engine's task holds it (for the exact iteration-0 check)."""
    if family == "linear_regression":
        return dict(X=task.real[r, :, :-1], y=task.real[r, :, -1], Xt=task.test[r, :, :-1],
                    yt=task.test[r, :, -1], w_star=task.truth["coef"][r])
    if family == "gaussian":
        return dict(real=task.real[r], test=task.test[r], mean0=task.truth["mean"][r],
                    cov0=np.asarray(task.truth["covariance"][r]))
    return dict(real=task.real[r], test=task.test[r], p0=task.truth["probabilities"])


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------

def best_of(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_bytes(fn) -> int:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass
class Row:
    family: str
    paradigm: str
    engine_build_s: float
    engine_s: float
    loop_build_s: float
    loop_s: float
    engine_peak: float | None
    loop_peak: float | None

    @property
    def ratio(self) -> float:
        return self.loop_s / self.engine_s


@dataclass
class Check:
    family: str
    paradigm: str
    metric: str
    eng_mean: float
    eng_se: float
    loop_mean: float
    loop_se: float
    z: float
    ok: bool
    max_abs_z_all: float  # over every task metric at the middle and final iteration
    exact_rel_err: float  # iteration 0, same data: naive metric code vs engine


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def zscore(a: np.ndarray, b: np.ndarray) -> float:
    (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
    se = np.hypot(sa, sb)
    if se == 0:
        return 0.0 if np.isclose(ma, mb) else float("inf")
    return float((ma - mb) / se)


def check(family, paradigm, study, task, frame, risk, loop_vals, z_max) -> Check:
    T, R = study.n_iterations, study.n_seeds
    eng = {k: engine_values(frame, k, T, R) for k in loop_vals}
    z = zscore(eng[risk][-1], loop_vals[risk][-1])
    zs = [abs(zscore(eng[k][t], loop_vals[k][t])) for k in loop_vals for t in {T // 2, T - 1}]
    # exact: naive metric code on the engine's data, iteration 0 only
    p = study.tasks[0].task_params
    chain_fn = NAIVE[family][1]
    rel = 0.0
    for r in range(R):
        o = chain_fn(naive_data_from_task(family, task, r), p, paradigm, 1, None)
        for k in loop_vals:
            e = eng[k][0, r]
            rel = max(rel, abs(o[k][0] - e) / max(abs(e), 1e-12))
    (em, es), (lm, ls) = mean_se(eng[risk][-1]), mean_se(loop_vals[risk][-1])
    return Check(family, paradigm, risk, em, es, lm, ls, z, abs(z) < z_max and rel < 1e-6,
                 max(zs), rel)


def profile_engine(family: str, args, top: int) -> str:
    study = make_study(family, "accumulate", d=args.d, n=args.n, n_iterations=args.iterations,
                       n_seeds=args.seeds)
    task = engine_build(study)
    prof = cProfile.Profile()
    prof.enable()
    engine_run(study, task)
    prof.disable()
    stats = pstats.Stats(prof)
    total = max(stats.total_tt, 1e-12)
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _) in stats.stats.items():
        where = f"{os.path.basename(file)}:{line}({name})" if line else name
        rows.append((ct, tt, nc, where))
    out = io.StringIO()
    out.write(f"\n-- cProfile: engine, {family}, accumulate "
              f"(total {total:.3f} s; shares of total) --\n")
    out.write(f"{'cum %':>6} {'self %':>7} {'calls':>8}  function\n")
    skip = ("<built-in method builtins.exec>", "bench_batched.py")
    shown = 0
    for ct, tt, nc, where in sorted(rows, key=lambda x: -x[0]):
        if any(s in where for s in skip) or "disable" in where:
            continue
        out.write(f"{100 * ct / total:6.1f} {100 * tt / total:7.1f} {nc:8d}  {where}\n")
        shown += 1
        if shown >= top:
            break
    out.write(f"{'self %':>6} {'cum %':>7} {'calls':>8}  function (by self time)\n")
    for ct, tt, nc, where in sorted(rows, key=lambda x: -x[1])[:top // 2]:
        out.write(f"{100 * tt / total:6.1f} {100 * ct / total:7.1f} {nc:8d}  {where}\n")
    return out.getvalue()


def fmt_mib(b):
    return "-" if b is None else f"{b / 2**20:.1f}"


# ---------------------------------------------------------------------------------------------
# engine vs the RNG floor (issue 13)
# ---------------------------------------------------------------------------------------------

FLOOR_STUDIES = [(f, p) for f in ("gaussian", "linear_regression")
                 for p in ("replace", "accumulate")]


def normals_drawn(family: str, d: int, n: int, iterations: int, seeds: int,
                  n_test: int = 1000) -> int:
    """Normals a study draws (its data plus every synthetic sample), as bench_end_to_end.py
    counts them: the size of the RNG floor's one ``standard_normal`` call."""
    later = seeds * max(iterations - 1, 0)
    if family == "gaussian":
        return seeds * (n + n_test) * d + later * n * d
    return seeds * (d + (n + n_test) * (d + 1)) + later * n


def _best(fn, repeat: int) -> tuple[float, float]:
    """(best wall s, best CPU s) of ``repeat`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def engine_floor(args) -> dict:
    """{study: {seconds...}} for the four studies of ``FLOOR_STUDIES`` (run_study in process)."""
    from modelcollapse.engine.study import run_study
    from modelcollapse.engine.unit import build_task

    out = {}
    for fam, par in FLOOR_STUDIES:
        study = make_study(fam, par, d=args.d, n=args.n, n_iterations=args.iterations,
                           n_seeds=args.seeds)
        run_study(study)  # warm-up
        row = dict(zip(("engine_wall", "engine_cpu"), _best(lambda: run_study(study),
                                                            args.repeat)))
        row["build_cpu"] = _best(lambda: build_task(study, 0), args.repeat)[1]
        task, streams = build_task(study, 0)
        if task.reference is not None:
            row["curve_cpu"] = _best(lambda: task.reference.compute(task.make_model, task.real,
                                                                    streams), args.repeat)[1]
        gen = np.random.Generator(np.random.Philox(0))
        count = normals_drawn(fam, args.d, args.n, args.iterations, args.seeds)
        row["floor_wall"], row["floor_cpu"] = _best(lambda: gen.standard_normal(count),
                                                    args.repeat)
        row["normals"] = count
        out[f"{fam} {par}"] = row
    # drawing one synthetic batch's statistics (linear regression, R = seeds): per-replicate
    # generators vs one block draw, when the tree has block draws
    from modelcollapse.families.linear_regression import LinearRegression
    from modelcollapse.rng import Role

    rng = np.random.default_rng(0)
    model = LinearRegression(rng.standard_normal((args.seeds, args.n, args.d)), noise_variance=1.0)
    model.fit(np.concatenate([model.design, rng.standard_normal((args.seeds, args.n, 1))], -1))
    streams = Streams(0, range(args.seeds))
    micro = {"generators": _best(lambda: [model.sample_statistics(
        args.n, rngs=streams(t, Role.SAMPLE)) for t in range(100)], args.repeat)[1] / 100}
    if hasattr(streams, "batch"):
        micro["block"] = _best(lambda: [model.sample_statistics(
            args.n, rngs=streams.batch(t, Role.SAMPLE)) for t in range(100)], args.repeat)[1] / 100
    out["_statistics_draw"] = micro
    return out


def per_seed_loop(args, fam: str, par: str) -> tuple[float, float]:
    """(best wall s, best CPU s) of benchmarks/per_seed_reference.py's loop, in this process."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent / "per_seed_reference.py"
    spec = importlib.util.spec_from_file_location("per_seed_reference", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    return _best(lambda: ref.run(fam, par, seeds=args.seeds, iterations=args.iterations,
                                 dim=args.d, samples=args.n), args.repeat)


def run_engine_floor(args) -> int:
    import json
    import subprocess

    if args.json:  # the baseline's half of --baseline-src: numbers only
        print(json.dumps(engine_floor(args)))
        return 0
    load0 = os.getloadavg()

    def baseline() -> dict | None:
        if not args.baseline_src:
            return None
        env = dict(os.environ, PYTHONPATH=args.baseline_src)
        cmd = [sys.executable, __file__, "--engine-floor", "--json", "--repeat", str(args.repeat),
               "--seeds", str(args.seeds), "--iterations", str(args.iterations), "--d",
               str(args.d), "--n", str(args.n), "--blas-threads", str(args.blas_threads)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SystemExit(f"error: --baseline-src: the baseline run failed: {tail}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    # baseline before and after the current tree (the best of both), so that a change of load
    # during the run weighs on both sides
    first = baseline()
    current = engine_floor(args)
    second = baseline()
    base = None
    if first is not None:
        base = {k: {m: min(first[k].get(m, np.inf), second[k].get(m, np.inf))
                    for m in first[k]} for k in first}
    loops = {}
    if not args.no_loop:
        for fam, par in FLOOR_STUDIES:
            if par == "accumulate":
                loops[f"{fam} {par}"] = per_seed_loop(args, fam, par)
    load1 = os.getloadavg()

    def cell(row, key):
        return f"{row[key] * 1e3:8.1f}" if key in row else f"{'-':>8}"

    print(f"\nEngine vs the RNG floor (issue 13 target: engine <= 3x the floor): run_study in "
          f"process, best of {args.repeat}; ms; CPU = process time (less sensitive to other "
          "jobs on the machine than wall time)")
    head = (f"{'study':<29} {'tree':<8} {'wall':>8} {'CPU':>8} {'build':>8} {'curve':>8} "
            f"{'floor':>8} {'N normals':>10} {'wall/fl':>8} {'CPU/fl':>8}")
    print(head)
    print("-" * len(head))
    for key, row in current.items():
        if key.startswith("_"):
            continue
        trees = [("current", row)] + ([("baseline", base[key])] if base else [])
        for name, r in trees:
            print(f"{key:<29} {name:<8} {cell(r, 'engine_wall')} {cell(r, 'engine_cpu')} "
                  f"{cell(r, 'build_cpu')} {cell(r, 'curve_cpu')} {cell(r, 'floor_cpu')} "
                  f"{int(r['normals']):>10,} {r['engine_wall'] / r['floor_wall']:7.2f}x "
                  f"{r['engine_cpu'] / r['floor_cpu']:7.2f}x")
    micro = current["_statistics_draw"]
    line = (f"\nOne synthetic batch's statistics, linear regression, R={args.seeds}, d={args.d}, "
            f"n={args.n} (CPU us): per-replicate generators {micro['generators'] * 1e6:.0f}")
    if "block" in micro:
        line += (f", block draw {micro['block'] * 1e6:.0f} "
                 f"({micro['generators'] / micro['block']:.1f}x)")
    print(line)
    if loops:
        print("\nAgainst the per-seed loop (benchmarks/per_seed_reference.py, in process; "
              "target >= 300x on accumulate)")
        for key, (wall, cpu) in loops.items():
            row = current[key]
            print(f"{key:<29} loop wall {wall:7.3f} s, CPU {cpu:7.3f} s; engine wall "
                  f"{row['engine_wall']:6.3f} s, CPU {row['engine_cpu']:6.3f} s; loop/engine "
                  f"wall {wall / row['engine_wall']:6.1f}x, CPU {cpu / row['engine_cpu']:6.1f}x")
    print(f"\nload average before {load0[0]:.2f}, after {load1[0]:.2f} "
          f"({os.cpu_count()} cores)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20 seeds, 20 iterations (unless given explicitly)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N", help="best of N timings")
    ap.add_argument("--seeds", type=int, default=None, help="replicate chains (default 100)")
    ap.add_argument("--iterations", type=int, default=None,
                    help="model-fitting iterations (default 100)")
    ap.add_argument("--d", type=int, default=10, help="dimension (linear_regression, gaussian)")
    ap.add_argument("--n", type=int, default=100, help="samples per iteration (T for regression)")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--paradigms", nargs="+", default=list(PARADIGMS), choices=PARADIGMS)
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--z-max", type=float, default=4.0,
                    help="statistical check passes when |z| < this (default 4)")
    ap.add_argument("--blas-threads", type=int, default=1, metavar="N",
                    help="limit BLAS/OpenMP threads with threadpoolctl (default 1; 0 = leave the "
                    "library default)")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile the engine for each family under accumulate")
    ap.add_argument("--profile-only", action="store_true",
                    help="only the cProfile of the engine (no timing, no loop)")
    ap.add_argument("--top", type=int, default=14, help="profile lines per family")
    ap.add_argument("--engine-floor", action="store_true",
                    help="only the engine vs the RNG floor and the per-seed loop (issue 13)")
    ap.add_argument("--baseline-src", metavar="DIR",
                    help="with --engine-floor: also measure the package under DIR (e.g. a "
                    "`git archive` of an older commit's src/) in a subprocess, before and after")
    ap.add_argument("--no-loop", action="store_true",
                    help="with --engine-floor: skip the per-seed loop (slow on accumulate)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.seeds = args.seeds or (20 if args.quick else 100)
    args.iterations = args.iterations or (20 if args.quick else 100)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    if args.blas_threads > 0:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.blas_threads)
    from threadpoolctl import threadpool_info
    blas = ", ".join(f"{i['internal_api']} {i.get('version') or ''} x{i['num_threads']}"
                     for i in threadpool_info())
    print(f"modelcollapse {modelcollapse.__version__}, numpy {np.__version__}, scipy "
          f"{scipy.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS") if k in os.environ}
    print(f"settings: d={args.d}, n={args.n}, iterations={args.iterations}, "
          f"seeds={args.seeds}, best of {args.repeat}")
    print(f"thread pools: {blas or 'none found'} (--blas-threads {args.blas_threads}); "
          f"env: {threads or 'unset'}")

    if args.engine_floor:
        return run_engine_floor(args)

    if args.profile_only:
        for fam in args.families:
            w = make_study(fam, "accumulate", d=args.d, n=args.n, n_iterations=3, n_seeds=2)
            engine_run(w, engine_build(w))
            print(profile_engine(fam, args, args.top), end="")
        return 0

    # warm-up: imports, caches, first-call costs of both implementations
    for fam in args.families:
        w = make_study(fam, "accumulate", d=args.d, n=args.n, n_iterations=3, n_seeds=2)
        engine_run(w, engine_build(w))
        naive_run(fam, w, "accumulate", *naive_build(fam, w))

    rows, checks = [], []
    for fam in args.families:
        for par in args.paradigms:
            study = make_study(fam, par, d=args.d, n=args.n, n_iterations=args.iterations,
                               n_seeds=args.seeds)
            eb, task = best_of(lambda: engine_build(study), args.repeat)
            es, (frame, risk) = best_of(lambda: engine_run(study, task), args.repeat)
            lb, (rngs, datas) = best_of(lambda: naive_build(fam, study), args.repeat)
            # each repeat of the loop must start from the same generator states
            states = [g.bit_generator.state for g in rngs]

            def loop():
                for g, s in zip(rngs, states):
                    g.bit_generator.state = s
                return naive_run(fam, study, par, rngs, datas)

            ls, loop_vals = best_of(loop, args.repeat)
            ep = lp = None
            if not args.no_memory:
                ep = peak_bytes(lambda: engine_run(study, engine_build(study)))
                lp = peak_bytes(lambda: naive_run_streaming(fam, study, par))
            rows.append(Row(fam, par, eb, es, lb, ls, ep, lp))
            checks.append(check(fam, par, study, task, frame, risk, loop_vals, args.z_max))
            print(f"  done {fam:<17} {par:<10} engine {es:8.3f} s  loop {ls:8.3f} s", flush=True)

    # -- timing table --------------------------------------------------------------------------
    head = (f"{'family':<17} {'paradigm':<10} {'engine s':>9} {'loop s':>9} {'speed-up':>9} "
            f"{'eng MiB':>8} {'loop MiB':>9} {'build s (eng/loop)':>19}  target >= {TARGET:g}x")
    print("\nTiming (engine = run_unit with a prebuilt task: chain + results frame; loop = the "
          "chains; build = task/data construction, timed apart)")
    print(head)
    print("-" * len(head))
    for r in rows:
        target = ("yes" if r.ratio >= TARGET else "NO") if r.paradigm == "accumulate" else "n/a"
        print(f"{r.family:<17} {r.paradigm:<10} {r.engine_s:9.3f} {r.loop_s:9.3f} "
              f"{r.ratio:8.1f}x {fmt_mib(r.engine_peak):>8} {fmt_mib(r.loop_peak):>9} "
              f"{r.engine_build_s:8.3f}/{r.loop_build_s:<8.3f}   {target}")
    acc = [r for r in rows if r.paradigm == "accumulate"]
    if acc:
        missed = [r.family for r in acc if r.ratio < TARGET]
        print(f"target (batched accumulate >= {TARGET:g}x faster than the loop): "
              + (f"NOT MET for {', '.join(missed)}" if missed else "MET for every family"))
    print("peak MiB: tracemalloc peak, separate untimed pass; engine = build the task (all "
          "replicates' data) + run_unit (incl. the results DataFrame); loop = one replicate's "
          "data at a time + its chain + the metric arrays")

    # -- agreement table -----------------------------------------------------------------------
    print(f"\nAgreement (final iteration t={args.iterations - 1}, mean +- s.e. over "
          f"{args.seeds} seeds; different random streams, so statistical)")
    head = (f"{'family':<17} {'paradigm':<10} {'metric':<16} {'engine':>21} {'loop':>21} "
            f"{'z':>6} {'max|z| all':>10} {'iter-0 rel err':>14}  ok")
    print(head)
    print("-" * len(head))
    for c in checks:
        print(f"{c.family:<17} {c.paradigm:<10} {c.metric:<16} "
              f"{c.eng_mean:11.5g} +- {c.eng_se:<7.2g} {c.loop_mean:11.5g} +- {c.loop_se:<7.2g} "
              f"{c.z:6.2f} {c.max_abs_z_all:10.2f} {c.exact_rel_err:14.1e}  "
              f"{'yes' if c.ok else 'NO'}")
    print(f"ok: |z| < {args.z_max:g} for the risk metric, and the naive metric code reproduces the "
          "engine's iteration-0 metrics on the engine's data (rel err < 1e-6).\n"
          "max|z| all: largest |z| over every task metric at the middle and final iteration "
          "(informational).")
    all_ok = all(c.ok for c in checks)
    print(f"agreement check: {'PASSED' if all_ok else 'FAILED'}")

    if args.profile:
        for fam in args.families:
            print(profile_engine(fam, args, args.top), end="")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
