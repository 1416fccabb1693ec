"""Scale: cost per chain of a whole ``modelcollapse run`` as the number of chains grows (issue 15).

The study is the issue's baseline: Gaussian d = 1, n = 10 (synthetic truth), MLE covariance,
``accumulate``, 100 model-fitting iterations, ``modelcollapse run --no-plots`` as a subprocess,
for 10^3 and 10^4 chains (``--full``: also 10^5; ``--seeds`` any list).  For each size it
measures, in one fresh child process each:

* rows written (``results.parquet``'s row count, from its Parquet footer);
* wall seconds of the whole process (start-up included) and the run's own ``elapsed_seconds``
  from the manifest;
* peak RSS of the child (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper process
  that runs only that child, so earlier children do not count: ru_maxrss of RUSAGE_CHILDREN is
  the largest of all waited-for descendants);
* bytes on disk of the run directory (every file), and of ``results.parquet`` alone;
* chains/s (chains / wall) and bytes per chain (disk and peak RSS), whose flatness as chains
  grow is the issue's target ("cost per chain must be flat").

Then a **streamed prototype** (``--no-streamed`` skips it): the same chains run by the engine
in blocks of replicates (``--block``, default 8192) in a child process, every metric fed to the
accumulators and no rows kept -- wall, peak RSS, and the seconds spent in the engine and in the
accumulators: what the integrated streaming store can reach at most.

Then the **streaming accumulators** of ``modelcollapse.results.aggregate`` (the foundation of
the streamed analysis) are fed the same study's per-metric arrays in blocks, in process, with
n_seeds growing 10x: their peak traced memory (``tracemalloc``) must not grow with n_seeds
(the memory check of the issue: measured here, not in a timed test).  Printed with the peak
of a block's input arrays for scale.

Usage::

    python benchmarks/bench_scale.py             # 10^3 and 10^4 chains
    python benchmarks/bench_scale.py --full      # also 10^5 (~20 GB RSS before issue 15 lands:
                                                 # skipped when the memory is not available)
    python benchmarks/bench_scale.py --quick     # smoke test: 50 and 100 chains x 5 iterations
    python benchmarks/bench_scale.py --engine    # the engine alone: chains/s of compute_unit
                                                 # at 8192 and 65536 chains vs the reference path
    python benchmarks/bench_scale.py --million --jobs 2   # streamed runs at 10^4, 10^5, 10^6
                                                 # chains vs the unstreamed run at 10^4

The load average is printed before and after: the machine is shared, timings are noisy.
Exit 0 when every command ran, 2 with one line when one failed or the memory check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent


#: peak RSS per chain of the whole run before streaming results (measured: 214 KB at 10^4
#: chains x 100 iterations, 13 metrics); sizes that would not fit in memory are skipped
RSS_PER_CHAIN = 250_000


def _available_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


class Failed(Exception):
    """A measured command failed (one line)."""


def study_dict(seeds: int, iterations: int, keep: int | None = None) -> dict:
    """The issue's baseline study as a mapping (a study file); ``keep``: its ``keep_seeds``
    (None: every seed's rows, the unstreamed path)."""
    return {"name": f"bench-scale-{seeds}",
            "task": "gaussian",
            "task_params": {"dataset": "synthetic", "n_features": 1, "n_samples": 10,
                            "covariance_estimator": "mle"},
            "paradigms": ["accumulate"], "n_iterations": iterations, "n_seeds": seeds,
            "keep_seeds": seeds if keep is None else min(keep, seeds)}


def modelcollapse_command() -> list[str]:
    exe = shutil.which("modelcollapse", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "modelcollapse"]


# The wrapper runs one child and reports that child's peak RSS: ru_maxrss of RUSAGE_CHILDREN
# is a maximum over every child ever waited for, so each measurement gets its own wrapper.
_WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"rc": rc.returncode, "wall": wall, "peak_kib": peak,
                  "stdout": rc.stdout[-2000:].strip().splitlines()[-1:][0]
                  if rc.stdout.strip() else "", "stderr": rc.stderr[-2000:]}))
"""


def measure_run(seeds: int, iterations: int, work: Path, keep: int | None = None,
                jobs: int = 1) -> dict:
    """Run the study once as a subprocess (``keep``: streamed, keeping that many seeds' rows;
    None: every row); the measurements of one row."""
    import pyarrow.parquet as pq
    import yaml

    path = work / f"study-{seeds}.yaml"
    path.write_text(yaml.safe_dump(study_dict(seeds, iterations, keep)))
    out = work / f"run-{seeds}"
    argv = modelcollapse_command() + ["run", str(path), "--out", str(out), "--no-plots", "-q",
                                      "--jobs", str(jobs)]
    res = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.strip():
        raise Failed(f"measuring wrapper failed: {res.stderr.strip().splitlines()[-1:]}")
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    if rec["rc"] != 0:
        tail = rec["stderr"].strip().splitlines()[-1:] or ["(no output)"]
        raise Failed(f"modelcollapse run ({seeds} chains): exit {rec['rc']}: {tail[0]}")
    manifest = json.loads((out / "manifest.json").read_text())
    results = out / "results.parquet"
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    row = {"chains": seeds, "iterations": iterations, "streamed": "streamed" in manifest,
           "jobs": jobs,
           "rows": int(pq.ParquetFile(results).metadata.num_rows),
           "wall_s": rec["wall"], "run_s": float(manifest.get("elapsed_seconds", float("nan"))),
           "peak_rss_bytes": rec["peak_kib"] * 1024, "disk_bytes": disk,
           "parquet_bytes": results.stat().st_size}
    row["chains_per_s"] = seeds / row["wall_s"]
    row["disk_bytes_per_chain"] = disk / seeds
    row["rss_bytes_per_chain"] = row["peak_rss_bytes"] / seeds
    shutil.rmtree(out, ignore_errors=True)
    return row


def accumulator_memory(seeds: int, iterations: int, block: int) -> dict:
    """Peak traced memory (bytes) of running ``seeds`` chains block by block (``block``
    replicates at a time, by the engine's ``run_chain`` on that block's streams) and feeding
    every metric's (n_iterations, R) array to the streaming accumulators: per metric the
    moments of the curve with the full (T, T) covariance, a quantile sketch per iteration, the
    moments of last - first and of the log ratio last / first, and one Poisson bootstrap
    (B = 200) of every metric's first and last values.  Only a block is ever in memory --
    what the streamed engine will do -- so the peak must not grow with ``seeds``.
    """
    import numpy as np

    from modelcollapse.config import Study

    study = Study.model_validate(study_dict(seeds, iterations))
    run_block = _block_runner(study)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    state: dict = {}
    input_peak = 0
    for lo in range(0, seeds, block):
        reps = np.arange(lo, min(lo + block, seeds))
        values = run_block(reps)
        input_peak = max(input_peak, sum(v.nbytes for v in values.values()))
        state = _feed(state, values, reps, study.seed)
        del values
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    state_bytes = sum(a.nbytes for v in state.values() for a in (v if isinstance(v, tuple)
                                                                  else (v,)))
    return {"chains": seeds, "block": block, "peak_traced_bytes": peak,
            "block_input_bytes": input_peak, "state_bytes": state_bytes}


def _feed(state: dict, values: dict, reps, seed: int) -> dict:
    """Feed one block's ``values`` (metric -> (T, R_block)) of replicates ``reps`` to the
    accumulators in ``state`` (created at the first block): per metric the curve moments, the
    quantile sketch and the moments of (last - first, log ratio), and a Poisson bootstrap of
    every metric's first and last values.  Returns ``state``."""
    import numpy as np

    from modelcollapse.results import aggregate as agg

    if not state:
        T = next(iter(values.values())).shape[0]
        state = {name: (agg.CurveMoments(T), agg.QuantileSketch(T), agg.CurveMoments(2))
                 for name in values}
        state["bootstrap"] = agg.PoissonBootstrap(2 * len(values), n_boot=200, key=seed)
    ends = []
    for name, x in values.items():
        moments, sketch, derived = state[name]
        moments.update(x)
        sketch.update(x)
        derived.update(np.vstack([agg.last_minus_first(x), agg.log_ratio(x[-1:], x[:1])]))
        ends += [x[0], x[-1]]
    state["bootstrap"].update(np.stack(ends), reps)
    return state


def streamed_run(seeds: int, iterations: int, block: int) -> dict:
    """The streamed path as the engine will run it, in this process: chains run block by block
    and every metric fed to the accumulators (as ``accumulator_memory``, without tracing),
    under one BLAS thread.  Returns seconds spent in the engine and in the accumulators."""
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    from modelcollapse.config import Study

    study = Study.model_validate(study_dict(seeds, iterations))
    run_block = _block_runner(study)
    state: dict = {}
    engine = accumulate = 0.0
    with threadpool_limits(limits=1, user_api="blas"):
        for lo in range(0, seeds, block):
            reps = np.arange(lo, min(lo + block, seeds))
            t0 = time.perf_counter()
            values = run_block(reps)
            t1 = time.perf_counter()
            state = _feed(state, values, reps, study.seed)
            engine += t1 - t0
            accumulate += time.perf_counter() - t1
            del values  # not alive while the next block runs
    return {"engine_s": engine, "accumulate_s": accumulate}


def measure_streamed(seeds: int, iterations: int, block: int) -> dict:
    """``streamed_run`` in a child process: its wall seconds, peak RSS and the split."""
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bench_scale as b; "
            f"print(json.dumps(b.streamed_run({seeds}, {iterations}, {block})))")
    res = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-c", code],
                         capture_output=True, text=True)
    rec = json.loads(res.stdout.strip().splitlines()[-1]) if res.stdout.strip() else {}
    if res.returncode != 0 or rec.get("rc") != 0:
        tail = (rec.get("stderr") or res.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise Failed(f"streamed run ({seeds} chains): {tail[0]}")
    return {"chains": seeds, "block": block, "wall_s": rec["wall"],
            "peak_rss_bytes": rec["peak_kib"] * 1024, **json.loads(rec["stdout"])}


def block_agreement(seeds: int, iterations: int, block: int) -> bool:
    """Whether chains run block by block give the same values as the in-memory unit
    (``engine.unit.compute_unit``) -- the premise of streaming by blocks of replicates."""
    import numpy as np

    from modelcollapse.config import Study
    from modelcollapse.engine.unit import compute_unit

    study = Study.model_validate(study_dict(seeds, iterations))
    whole = compute_unit(study, 0, 0).values
    run_block = _block_runner(study)
    for lo in range(0, seeds, block):
        part = run_block(np.arange(lo, min(lo + block, seeds)))
        for name, x in part.items():
            if not np.array_equal(x, whole[name][:, lo:lo + block], equal_nan=True):
                return False
    return True


def _block_runner(study):
    """A function replicates -> {metric: (n_iterations, R) array} running the study's one
    (task, paradigm) unit for those replicates only (the streams are counter-based: a
    replicate's numbers do not depend on which block it is in)."""
    from threadpoolctl import threadpool_limits

    from modelcollapse.engine.loop import run_chain
    from modelcollapse.rng import Streams

    spec = study.paradigms[0]

    def run(reps):
        streams = Streams(study.seed, reps)
        with threadpool_limits(limits=1, user_api="blas"):
            task = study.tasks[0].build(streams)
            m = study.n_synthetic or task.n_real
            growth = spec.synthetic_growth or study.synthetic_growth
            chain = run_chain(task, spec.build(), n_iterations=study.n_iterations,
                              n_synthetic=growth.sizes(m, study.n_iterations), streams=streams)
        return chain.values

    return run


@contextlib.contextmanager
def reference_path():
    """The engine as it was before issue 15's exact batching, for comparison in the same
    process: numpy's ``SeedSequence`` / ``choice`` / ``standard_normal`` / ``chisquare`` called
    replicate by replicate (``rng.SEED_KEYS_EXACT``, ``rng.FLOYD_EXACT``, ``rng.EXACT_NORMALS``
    off), the held-out set's moments and tail rows in one piece (``tasks.base.CHUNK_BYTES``),
    the tail rows by a full stable argsort.  Same numbers (checked by ``engine_throughput``).
    (Not undone: the scalar draws, in-place scaling, NaN check and generator construction of
    the same commits, all per-replicate costs of the old path that stay cheaper here.)"""
    import numpy as np

    from modelcollapse import rng
    from modelcollapse.tasks import base

    saved = (rng.FLOYD_EXACT, rng.EXACT_NORMALS, rng.SEED_KEYS_EXACT, base.smallest_rows,
             base.CHUNK_BYTES)
    rng.FLOYD_EXACT, rng.EXACT_NORMALS, rng.SEED_KEYS_EXACT = False, False, False
    base.smallest_rows = lambda values, k: np.argsort(values, axis=1, kind="stable")[:, :k]
    base.CHUNK_BYTES = 2**62  # the held-out set's moments and tail rows in one piece
    try:
        yield
    finally:
        (rng.FLOYD_EXACT, rng.EXACT_NORMALS, rng.SEED_KEYS_EXACT, base.smallest_rows,
         base.CHUNK_BYTES) = saved


def engine_throughput(sizes, iterations: int, reference: bool = True) -> list[dict]:
    """Chains per second of ``engine.unit.compute_unit`` (task built, chains run, learning
    curve; no results rows) for the issue's study at each size in ``sizes`` (replicates in one
    unit: a block of the streamed engine), in this process, under one BLAS thread; with
    ``reference``, also the reference path (``reference_path``) on the same machine right after,
    and whether both gave byte-identical values and statuses.  Process CPU seconds are reported
    beside wall seconds (the machine is shared)."""
    import time

    import numpy as np

    from modelcollapse.config import Study
    from modelcollapse.engine.unit import compute_unit

    def timed(study):
        w0, c0 = time.perf_counter(), time.process_time()
        result = compute_unit(study, 0, 0)
        return result, time.perf_counter() - w0, time.process_time() - c0

    rows = []
    compute_unit(Study.model_validate(study_dict(512, 3)), 0, 0)  # imports, one-time checks
    for n in sizes:
        study = Study.model_validate(study_dict(n, iterations))
        fast, wall, cpu = timed(study)
        row = {"chains": n, "iterations": iterations, "wall_s": wall, "cpu_s": cpu}
        if reference:
            with reference_path():
                slow, row["ref_wall_s"], row["ref_cpu_s"] = timed(study)
            row["identical"] = (list(fast.values) == list(slow.values) and all(
                np.array_equal(fast.values[k], slow.values[k], equal_nan=True)
                for k in fast.values) and np.array_equal(fast.status, slow.status))
            del slow
        del fast
        rows.append(row)
    return rows


def fmt_bytes(b: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(b) < 1000 or unit == "GB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.3g} {unit}"
        b /= 1000
    return f"{b:.3g} GB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny sizes")
    ap.add_argument("--full", action="store_true", help="also 10^5 chains")
    ap.add_argument("--seeds", type=int, nargs="+", help="chain counts to run")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--no-memory", action="store_true", help="skip the accumulator memory check")
    ap.add_argument("--no-runs", action="store_true", help="skip the whole-process runs")
    ap.add_argument("--no-streamed", action="store_true",
                    help="skip the streamed prototype (engine blocks + accumulators)")
    ap.add_argument("--block", type=int, default=None,
                    help="replicates per block of the streamed prototype (default 8192)")
    ap.add_argument("--engine", action="store_true",
                    help="only the engine's throughput: chains/s of compute_unit at 8192 and "
                    "65536 replicates (--seeds to choose), against the reference path")
    ap.add_argument("--no-reference", action="store_true",
                    help="--engine without the (slow) reference path")
    ap.add_argument("--keep-seeds", type=int, default=1000,
                    help="streamed runs keep this many seeds' rows (default 1000)")
    ap.add_argument("--jobs", type=int, default=1, help="--jobs of the streamed runs")
    ap.add_argument("--million", action="store_true",
                    help="streamed runs at 10^4, 10^5 and 10^6 chains (the issue's targets) "
                    "against the unstreamed run at 10^4 (the reference), nothing else")
    args = ap.parse_args(argv)
    if args.million:
        return million_main(args)
    if args.engine:
        return engine_main(args)
    iterations = args.iterations or (5 if args.quick else 100)
    seeds = args.seeds or ([50, 100] if args.quick else
                           [1_000, 10_000] + ([100_000] if args.full else []))
    load0 = os.getloadavg()
    print(f"bench_scale: Gaussian d=1 n=10 MLE accumulate, {iterations} iterations, "
          f"chains {seeds}; {os.cpu_count()} CPUs; load average before: "
          f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    rows, mem = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            for n in ([] if args.no_runs else seeds):
                need = RSS_PER_CHAIN * n * iterations / 100
                free = _available_memory()
                if free is not None and need > 0.8 * free:
                    print(f"  skipped {n} chains: the run would need ~{fmt_bytes(need)} of "
                          f"memory, {fmt_bytes(free)} available", flush=True)
                    continue
                rows.append(measure_run(n, iterations, Path(tmp)))
                r = rows[-1]
                print(f"  ran {n} chains: {r['wall_s']:.1f} s", file=sys.stderr, flush=True)
        block = args.block or (32 if args.quick else 8192)
        streamed = [] if args.no_streamed else [measure_streamed(n, iterations, block)
                                                for n in seeds]
        if not args.no_memory:
            block = 64 if args.quick else 1024
            mem_iterations = max(iterations, 20)   # enough data per chain to see growth
            for n in (block * 2, block * 20):
                mem.append(accumulator_memory(n, mem_iterations, block))
            agree = block_agreement(block * 2, iterations, block // 2 - 3)
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\nwhole process: modelcollapse run --no-plots")
    head = ("chains", "rows written", "wall s", "run s", "peak RSS", "on disk", "parquet",
            "chains/s", "disk B/chain", "RSS B/chain")
    print("  ".join(f"{h:>12}" for h in head))
    for r in rows:
        cells = (f"{r['chains']}", f"{r['rows']:,}", f"{r['wall_s']:.2f}", f"{r['run_s']:.2f}",
                 fmt_bytes(r["peak_rss_bytes"]), fmt_bytes(r["disk_bytes"]),
                 fmt_bytes(r["parquet_bytes"]), f"{r['chains_per_s']:.0f}",
                 f"{r['disk_bytes_per_chain']:.0f}", f"{r['rss_bytes_per_chain']:.0f}")
        print("  ".join(f"{c:>12}" for c in cells))
    if streamed:
        print("\nstreamed prototype (child process): chains run in blocks by the engine, every "
              "metric fed to the accumulators, no rows kept")
        head = ("chains", "block", "wall s", "engine s", "accum. s", "peak RSS", "chains/s",
                "RSS B/chain")
        print("  ".join(f"{h:>12}" for h in head))
        for r in streamed:
            cells = (f"{r['chains']}", f"{r['block']}", f"{r['wall_s']:.2f}",
                     f"{r['engine_s']:.2f}", f"{r['accumulate_s']:.2f}",
                     fmt_bytes(r["peak_rss_bytes"]), f"{r['chains'] / r['wall_s']:.0f}",
                     f"{r['peak_rss_bytes'] / r['chains']:.0f}")
            print("  ".join(f"{c:>12}" for c in cells))
    status = 0
    if mem:
        print("\nstreaming accumulators (results.aggregate), blocks fed in process:")
        for m in mem:
            print(f"  {m['chains']:>8} chains in blocks of {m['block']}: peak traced "
                  f"{fmt_bytes(m['peak_traced_bytes'])} (a block's arrays "
                  f"{fmt_bytes(m['block_input_bytes'])}; accumulator state "
                  f"{fmt_bytes(m['state_bytes'])})")
        small, big = mem[0]["peak_traced_bytes"], mem[-1]["peak_traced_bytes"]
        ok = big <= 1.1 * small + 500_000
        print(f"memory check (n_seeds x{mem[-1]['chains'] // mem[0]['chains']}: peak "
              f"{fmt_bytes(small)} -> {fmt_bytes(big)}, allowed <= 1.1x + 0.5 MB): "
              f"{'PASSED' if ok else 'FAILED'}")
        print(f"block agreement check (chains run in blocks == in-memory unit): "
              f"{'PASSED' if agree else 'FAILED'}")
        status = 0 if ok and agree else 2
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    return status


def million_main(args) -> int:
    """Streamed whole-process runs at 10^4, 10^5, 10^6 chains (or --seeds) and the unstreamed
    run at the smallest size, interleaved in one process: chains/s, bytes per chain, and the
    streamed / unstreamed speed ratio at the same size."""
    iterations = args.iterations or 100
    seeds = args.seeds or [10_000, 100_000, 1_000_000]
    load0 = os.getloadavg()
    print(f"bench_scale --million: Gaussian d=1 n=10 MLE accumulate, {iterations} iterations; "
          f"streamed runs keep {args.keep_seeds} seeds' rows, --jobs {args.jobs}; "
          f"{os.cpu_count()} CPUs; load average before: {load0[0]:.2f} {load0[1]:.2f} "
          f"{load0[2]:.2f}", flush=True)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            reference = measure_run(seeds[0], iterations, Path(tmp), None, args.jobs)
            rows.append(reference)
            for n in seeds:
                rows.append(measure_run(n, iterations, Path(tmp), args.keep_seeds, args.jobs))
                print(f"  ran {n} chains streamed: {rows[-1]['wall_s']:.1f} s", file=sys.stderr,
                      flush=True)
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    head = ("chains", "streamed", "rows written", "wall s", "run s", "peak RSS", "on disk",
            "chains/s", "RSS B/chain", "disk B/chain")
    print("  ".join(f"{h:>12}" for h in head))
    for r in rows:
        cells = (f"{r['chains']}", "yes" if r["streamed"] else "no (all rows)", f"{r['rows']:,}",
                 f"{r['wall_s']:.2f}", f"{r['run_s']:.2f}", fmt_bytes(r["peak_rss_bytes"]),
                 fmt_bytes(r["disk_bytes"]), f"{r['chains_per_s']:.0f}",
                 f"{r['rss_bytes_per_chain']:.0f}", f"{r['disk_bytes_per_chain']:.0f}")
        print("  ".join(f"{c:>12}" for c in cells))
    same = [r for r in rows[1:] if r["chains"] == reference["chains"]]
    if same:
        print(f"streamed / all rows at {reference['chains']} chains: "
              f"{reference['wall_s'] / same[0]['wall_s']:.2f}x the speed, "
              f"{same[0]['peak_rss_bytes'] / reference['peak_rss_bytes']:.2f}x the peak RSS")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    return 0


def engine_main(args) -> int:
    """``--engine``: print the engine's chains/s, per-chain cost and speed-up; exit 2 when the
    two paths' results differ."""
    iterations = args.iterations or (5 if args.quick else 100)
    sizes = args.seeds or ([256, 1024] if args.quick else [8192, 65536])
    load0 = os.getloadavg()
    print(f"bench_scale --engine: compute_unit, Gaussian d=1 n=10 MLE accumulate, {iterations} "
          f"iterations; {os.cpu_count()} CPUs; load average before: {load0[0]:.2f} "
          f"{load0[1]:.2f} {load0[2]:.2f}", flush=True)
    rows = engine_throughput(sizes, iterations, reference=not args.no_reference)
    head = ["chains", "wall s", "CPU s", "chains/s", "us/chain", "CPU us/chain"]
    if not args.no_reference:
        head += ["ref wall s", "ref CPU s", "ref us/chain", "speed-up", "identical"]
    print("  ".join(f"{h:>12}" for h in head))
    ok = True
    for r in rows:
        n = r["chains"]
        cells = [f"{n}", f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}", f"{n / r['wall_s']:.0f}",
                 f"{1e6 * r['wall_s'] / n:.0f}", f"{1e6 * r['cpu_s'] / n:.0f}"]
        if not args.no_reference:
            cells += [f"{r['ref_wall_s']:.2f}", f"{r['ref_cpu_s']:.2f}",
                      f"{1e6 * r['ref_wall_s'] / n:.0f}",
                      f"{r['ref_wall_s'] / r['wall_s']:.2f}x", str(r["identical"])]
            ok &= r["identical"]
        print("  ".join(f"{c:>12}" for c in cells))
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        ratio = (last["cpu_s"] / last["chains"]) / (first["cpu_s"] / first["chains"])
        print(f"CPU cost per chain at {last['chains']} / at {first['chains']}: {ratio:.2f} "
              "(flat: ~1)")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if not ok:
        print("error: engine: the reference path gave different results", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
