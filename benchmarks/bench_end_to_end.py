"""End to end: what the user waits for, next to the targets of issue 13, in one run.

Measured (best of ``--repeats``, default 3), on this machine:

1. **The four studies, whole process** -- Gaussian and linear regression (synthetic truth,
   d = 10, n = 100, 100 model-fitting iterations, 100 seeds), each under ``replace`` and under
   ``accumulate``, one paradigm per study: the subprocess wall time of ``modelcollapse run``
   (with plots and report, and with ``--no-plots``), of the per-seed research script
   ``per_seed_reference.py`` (a Python loop over seeds and iterations, numpy only, its own
   process so that its start-up counts like the command's), and their ratio
   (script / command: above 1 the command is faster).  Targets: no slower than the script for
   replace, >= 3x faster for accumulate.
2. **Small commands** -- a 1-seed, 1-iteration study with report and plots (target <= 1 s; also
   ``--no-plots``), ``modelcollapse --help`` and ``modelcollapse presets`` (target <= 0.3 s).
3. **The engine in process** -- ``run_study`` on each of the four studies (after a warm-up run;
   the chains plus the long results table) against the *RNG floor*, one
   ``Generator(Philox).standard_normal(N)`` call drawing as many normals as the study draws
   (its data plus every synthetic sample: N is printed; target engine <= 3x the floor), and
   against the per-seed loop of the same script in this process (target >= 300x on
   accumulate).
4. **Sweep throughput** -- one grid (8 points x 160 chains of 50 iterations: the grid of
   ``bench_sweep.py``) with ``--jobs 1`` and ``--jobs 2``: the ``modelcollapse sweep --no-plots``
   whole process and ``engine.run_sweep`` in process, in chains/s and chains/s per core
   (chains/s / min(jobs, cores)); issue 13 measured 91 chains/s with one job in process.

BLAS is limited to one thread in every process by default (``--blas-threads 0`` leaves the
library default): the engine limits itself to one BLAS thread, and the per-seed script's
``pinv`` on a 10,000 x 10 accumulated pool is ~8x *slower* with multithreaded OpenBLAS on 2
cores, which would flatter the command.  The load average is printed before and after: on a
shared machine the timings are noisy.  modelcollapse's bytecode is compiled first
(``--no-compile`` skips it), as pip does for an installed package: with
``PYTHONDONTWRITEBYTECODE`` set, an editable checkout recompiles every module of every command.

Usage::

    python benchmarks/bench_end_to_end.py               # full sizes (~5-10 min on 2 cores)
    python benchmarks/bench_end_to_end.py --quick       # smoke run: tiny sizes, 1 repeat
    python benchmarks/bench_end_to_end.py --repeats 5 --no-sweep

Exit status 0 when everything ran (targets met or not: this measures), 2 with one line when a
command failed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "per_seed_reference.py"
STUDIES = [(f, p) for f in ("gaussian", "linear_regression") for p in ("replace", "accumulate")]
SWEEP_GRID = {  # bench_sweep.py's grid: 8 points x (2 tasks x 2 paradigms x 40 seeds) chains
    "name": "bench-e2e-sweep",
    "tasks": [{"task": "gaussian", "task_params": {"n_features": 10}},
              {"task": "kde", "task_params": {"n_features": 2, "n_test": 200}}],
    "paradigms": ["replace", "accumulate-subsample"],
    "n_iterations": 50,
    "n_seeds": 40,
    "grid": {"tasks.0.task_params.n_samples": [50, 100, 200, 400], "seed": [0, 1]},
}
SWEEP_JOBS = (1, 2)


class Failed(Exception):
    """A measured command failed (one line)."""


# ---------------------------------------------------------------------------------------------
# what is run
# ---------------------------------------------------------------------------------------------

def study_dict(family: str, paradigm: str, *, dim: int, samples: int, iterations: int,
               seeds: int) -> dict:
    """The study (a mapping for a study file or ``Study.model_validate``)."""
    return {"name": f"bench-{family.replace('_', '-')}-{paradigm}",
            "task": family,
            "task_params": {"dataset": "synthetic", "n_features": dim, "n_samples": samples},
            "paradigms": [paradigm], "n_iterations": iterations, "n_seeds": seeds}


def normals_drawn(family: str, *, dim: int, samples: int, iterations: int, seeds: int,
                  n_test: int = 1000) -> tuple[int, int]:
    """(normals in the data, normals in the synthetic samples) that the study draws.

    Gaussian: real and test rows (d each), then n rows of d per later iteration.  Linear
    regression: w*, the design and the test design, their label noise, then n labels per later
    iteration.
    """
    later = seeds * max(iterations - 1, 0)
    if family == "gaussian":
        return seeds * (samples + n_test) * dim, later * samples * dim
    return seeds * (dim + (samples + n_test) * (dim + 1)), later * samples


def modelcollapse_command() -> list[str]:
    """The console script next to this interpreter (what a user types), else ``-m``."""
    exe = shutil.which("modelcollapse", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "modelcollapse"]


def child_env(blas_threads: int) -> dict:
    env = dict(os.environ)
    if blas_threads > 0:
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(blas_threads)
    return env


def run_process(argv: list[str], env: dict, cwd: Path) -> float:
    """Wall seconds of one process (output captured); ``Failed`` if it exits non-zero."""
    start = time.perf_counter()
    res = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        raise Failed(f"{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}: "
                     f"exit {res.returncode}: {tail[0]}")
    return seconds


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def load_reference():
    spec = importlib.util.spec_from_file_location("per_seed_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

class Section:
    """One table of the report: a title, column headers and rows, printed in full (no cuts)."""

    def __init__(self, title: str, headers: tuple[str, ...]) -> None:
        self.title, self.headers, self.rows = title, headers, []
        print(f"{title} ...", file=sys.stderr, flush=True)

    def add(self, *cells: str) -> None:
        self.rows.append(tuple(cells))
        print("  " + " | ".join(c for c in cells if c), file=sys.stderr, flush=True)

    def render(self) -> str:
        widths = [max(len(r[i]) for r in [self.headers] + self.rows)
                  for i in range(len(self.headers))]
        lines = [self.title]
        for row in [self.headers] + self.rows:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        return "\n".join(lines)


def verdict(value: float, target: str) -> str:
    """'met' / 'NOT met' for a target written '<= X' or '>= X' (X a number, unit after)."""
    op, number = target.split()[:2]
    x = float(number.rstrip("xs"))
    return "met" if (value <= x if op == "<=" else value >= x) else "NOT met"


def ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"


# ---------------------------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------------------------

def end_to_end(args, work: Path, env: dict) -> list[Section]:
    import yaml

    mc = modelcollapse_command()
    counter = itertools.count()

    def run_cli(path: Path, extra: list[str]) -> float:
        return best_of(lambda: run_process(
            mc + ["run", str(path), "--out", str(work / f"run{next(counter)}")] + extra,
            env, work), args.repeats)

    studies = Section(
        f"Whole process, seconds (best of {args.repeats}): 'modelcollapse run' vs the per-seed "
        f"script ({SCRIPT.name}); ratio = script / run, above 1 the command is faster",
        ("study", "run", "run --no-plots", "script", "ratio", "ratio --no-plots", "target",
         "met"))
    for family, paradigm in STUDIES:
        study = study_dict(family, paradigm, dim=args.dim, samples=args.samples,
                           iterations=args.iterations, seeds=args.seeds)
        path = work / f"{study['name']}.yaml"
        path.write_text(yaml.safe_dump(study))
        full, bare = run_cli(path, []), run_cli(path, ["--no-plots"])
        script = best_of(lambda: run_process(
            [sys.executable, str(SCRIPT), family, paradigm, "--seeds", str(args.seeds),
             "--iterations", str(args.iterations), "--dim", str(args.dim),
             "--samples", str(args.samples), "--out", str(work / "per_seed.csv")],
            env, work), args.repeats)
        target = ">= 1x (no slower)" if paradigm == "replace" else ">= 3x faster"
        studies.add(f"{family} {paradigm}", f"{full:.2f}", f"{bare:.2f}", f"{script:.2f}",
                    ratio(script / full), ratio(script / bare), target,
                    verdict(script / full, target))

    small = Section(f"Small commands, whole process, seconds (best of {args.repeats})",
                    ("command", "seconds", "target", "met"))
    tiny = study_dict("gaussian", "replace", dim=args.dim, samples=args.samples, iterations=1,
                      seeds=1)
    tiny["name"] = "bench-tiny"
    path = work / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    seconds = run_cli(path, [])
    small.add("run, 1 seed x 1 iteration (report+plots)", f"{seconds:.2f}", "<= 1 s",
              verdict(seconds, "<= 1 s"))
    seconds = run_cli(path, ["--no-plots"])
    small.add("run, 1 seed x 1 iteration --no-plots", f"{seconds:.2f}", "", "")
    finished = work / "tiny-run"
    run_process(mc + ["run", str(path), "--out", str(finished), "-q"], env, work)
    seconds = best_of(lambda: run_process(mc + ["report", str(finished)], env, work),
                      args.repeats)
    small.add("report DIR again (figures unchanged: not redrawn)", f"{seconds:.2f}", "", "")
    for argv in (["--help"], ["presets"]):
        seconds = best_of(lambda: run_process(mc + argv, env, work), args.repeats)
        small.add(f"modelcollapse {' '.join(argv)}", f"{seconds:.2f}", "<= 0.3 s",
                  verdict(seconds, "<= 0.3 s"))
    return [studies, small]


def engine(args) -> Section:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from modelcollapse.config import Study
    from modelcollapse.engine.study import run_study

    reference = load_reference()
    section = Section(
        f"Engine in process, seconds (best of {args.repeats}): run_study vs the RNG floor (one "
        "Philox standard_normal call of the study's N normals: data + samples) and vs the "
        "per-seed loop",
        ("study", "run_study", "RNG floor", "N normals", "engine/floor", "target", "loop",
         "loop/engine", "target", "met"))
    sizes = dict(dim=args.dim, samples=args.samples, iterations=args.iterations, seeds=args.seeds)
    for family, paradigm in STUDIES:
        study = Study.model_validate(study_dict(family, paradigm, **sizes))
        run_study(study)  # warm-up: imports, caches
        seconds = best_of(lambda: run_study(study), args.repeats)
        data, synthetic = normals_drawn(family, **sizes)
        n = data + synthetic
        gen = np.random.Generator(np.random.Philox(0))
        floor = best_of(lambda: gen.standard_normal(n), args.repeats)
        limits = (threadpool_limits(limits=args.blas_threads, user_api="blas")
                  if args.blas_threads > 0 else None)
        try:
            loop = best_of(lambda: reference.run(family, paradigm, seeds=args.seeds,
                                                 iterations=args.iterations, dim=args.dim,
                                                 samples=args.samples), args.repeats)
        finally:
            if limits is not None:
                limits.unregister()
        loop_target = ">= 300x" if paradigm == "accumulate" else ""
        met = [f"floor {verdict(seconds / floor, '<= 3x')}"]
        if loop_target:
            met.append(f"loop {verdict(loop / seconds, loop_target)}")
        section.add(f"{family} {paradigm}", f"{seconds:.3f}", f"{floor:.3f}",
                    f"{data:,}+{synthetic:,}", ratio(seconds / floor), "<= 3x", f"{loop:.3f}",
                    ratio(loop / seconds), loop_target, ", ".join(met))
    return section


def sweep(args, work: Path, env: dict) -> Section:
    import yaml

    from modelcollapse.engine import LocalExecutor, load_sweep, run_sweep

    grid = dict(SWEEP_GRID)
    if args.quick:
        grid.update(n_iterations=3, n_seeds=2,
                    grid={"tasks.0.task_params.n_samples": [50, 100], "seed": [0]})
    path = work / "sweep.yaml"
    path.write_text(yaml.safe_dump(grid))
    spec = load_sweep(str(path))
    chains = sum(len(s.tasks) * len(s.paradigms) * s.n_seeds for s in spec.points)
    cores = os.cpu_count() or 1
    mc = modelcollapse_command()
    counter = itertools.count()
    section = Section(
        f"Sweep throughput (best of {args.repeats}): {len(spec.points)} points, {chains} chains "
        f"of {grid['n_iterations']} iterations; per core = chains/s / min(jobs, {cores} cores); "
        "issue 13 measured 91 chains/s in process with one job",
        ("how", "jobs", "seconds", "chains/s", "chains/s/core", "s/point over run_sweep"))
    run_sweep(spec, executor=LocalExecutor(1))  # warm-up
    for jobs in SWEEP_JOBS:
        def whole(*extra: str) -> float:
            return best_of(lambda: run_process(
                mc + ["sweep", str(path), "--jobs", str(jobs), *extra,
                      "--out", str(work / f"sweep{next(counter)}")], env, work), args.repeats)

        bare, full = whole("--no-plots"), whole()
        inproc = best_of(lambda: run_sweep(spec, executor=LocalExecutor(jobs)), args.repeats)
        per = min(jobs, cores)
        for label, seconds in (("modelcollapse sweep (report and figures)", full),
                               ("modelcollapse sweep --no-plots", bare),
                               ("run_sweep in process", inproc)):
            overhead = (seconds - inproc) / len(spec.points)
            section.add(label, str(jobs), f"{seconds:.2f}", f"{chains / seconds:.1f}",
                        f"{chains / seconds / per:.1f}", f"{overhead:.3f}")
    return section


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 4 seeds, 5 iterations, a 2-point sweep, 1 repeat")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads in every process (0: the library default)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep measurement")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile modelcollapse's bytecode first")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.seeds, args.iterations = 1, 4, 5
    if args.repeats < 1:
        parser.error("--repeats: must be >= 1")
    env = child_env(args.blas_threads)

    import numpy as np

    import modelcollapse

    if not args.no_compile:
        # as an installed package has it (pip compiles at install): where PYTHONDONTWRITEBYTECODE
        # is set, an editable checkout would otherwise compile every module on every command
        # (~0.1 s of each); the per-seed script is one small file either way
        import compileall

        compileall.compile_dir(Path(modelcollapse.__file__).parent, quiet=1)
    load0 = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, "
          f"modelcollapse {getattr(modelcollapse, '__version__', '?')}; BLAS threads: "
          f"{args.blas_threads or 'library default'}")
    print(f"studies: d={args.dim}, n={args.samples}, {args.iterations} iterations, "
          f"{args.seeds} seeds; load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            work = Path(tmp)
            sections = end_to_end(args, work, env) + [engine(args)]
            if not args.no_sweep:
                sections.append(sweep(args, work, env))
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    load1 = os.getloadavg()
    for section in sections:
        print(f"\n{section.render()}")
    verdicts = [v for sec in sections for row in sec.rows for v in row[-1].split(", ")
                if v.endswith("met")]
    print(f"\ntargets met: {sum(not v.endswith('NOT met') for v in verdicts)} of "
          f"{len(verdicts)}")
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
          f"({os.cpu_count()} cores; timings on a busy machine are noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
