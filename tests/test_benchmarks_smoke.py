"""The benchmark script keeps working (a tiny run; speed itself is measured in benchmarks/)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_batched_runs_and_agrees():
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_batched.py"), "--seeds", "30",
         "--iterations", "8", "--no-memory", "--z-max", "5"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "agreement check: PASSED" in res.stdout


def test_bench_end_to_end_quick_prints_every_row():
    """--quick runs every measurement (no timing asserted) and prints each row and verdict."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_end_to_end.py"), "--quick"],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = res.stdout
    lines = out.splitlines()
    for family in ("gaussian", "linear_regression"):
        for paradigm in ("replace", "accumulate"):
            # one row in the whole-process table and one in the engine table
            rows = [ln for ln in lines if ln.startswith(f"{family} {paradigm} ")]
            assert len(rows) == 2, (family, paradigm, out)
            assert all(ln.rstrip().endswith("met") for ln in rows), rows
    for label in ("run, 1 seed x 1 iteration (report+plots)",
                  "run, 1 seed x 1 iteration --no-plots",
                  "modelcollapse --help", "modelcollapse presets"):
        assert any(ln.startswith(label) for ln in lines), (label, out)
    for how in ("modelcollapse sweep --no-plots", "run_sweep in process"):
        for jobs in (1, 2):
            assert any(ln.split()[:len(how.split()) + 1] == how.split() + [str(jobs)]
                       for ln in lines), (how, jobs, out)
    assert "RNG floor" in out and "per-seed script" in out
    assert any(ln.startswith("targets met: ") and ln.endswith(" of 13") for ln in lines), out
    assert "load average before" in out and "load average after" in out


def test_bench_scale_quick_measures_and_memory_stays_flat():
    """bench_scale --quick: a row per chain count, the accumulators' memory check (peak flat
    while n_seeds grows 10x) and the block-vs-in-memory agreement (no timing asserted)."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--quick"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rows = [ln.split() for ln in res.stdout.splitlines() if ln.strip()[:3] in ("50 ", "100")]
    rows = [r for r in rows if "," in r[1]]       # the whole-process table (rows written)
    assert [r[0] for r in rows] == ["50", "100"]
    written = [int(r[1].replace(",", "")) for r in rows]   # metrics x 5 iterations x chains
    assert written[0] > 0 and written[0] % (5 * 50) == 0 and written[1] == 2 * written[0]
    assert "streamed prototype (child process)" in res.stdout
    assert "memory check (n_seeds x10" in res.stdout and "PASSED" in res.stdout
    assert "block agreement check (chains run in blocks == in-memory unit): PASSED" in res.stdout
    assert "load average before" in res.stdout and "load average after" in res.stdout


def test_per_seed_reference_runs_and_writes_csv(tmp_path):
    """The per-seed script the benchmark compares against: a CSV row per seed, iteration and
    metric, and a sane final value (Gaussian replace shrinks the covariance trace)."""
    out = tmp_path / "r.csv"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "per_seed_reference.py"), "gaussian",
         "replace", "--seeds", "3", "--iterations", "4", "--samples", "20", "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "seed,iteration,metric,value"
    assert len(rows) == 1 + 3 * 4 * 3
    ratios = [float(r.split(",")[3]) for r in rows[1:] if ",cov_trace_ratio," in r]
    assert len(ratios) == 12 and all(0 < r < 2 for r in ratios)


def test_per_seed_reference_replace_collapses_accumulate_does_not():
    """The reference is the study it claims to be: under replace the covariance trace ratio
    decays like (1 - 1/n)^t (n = 5, 30 iterations: ~0.002), under accumulate it stays O(1)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "per_seed_reference", ROOT / "benchmarks" / "per_seed_reference.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    def final_ratio(paradigm):
        rows = ref.run("gaussian", paradigm, seeds=20, iterations=30, dim=2, samples=5)
        return sum(v for s, t, m, v in rows if m == "cov_trace_ratio" and t == 29) / 20

    assert final_ratio("replace") < 0.1 < 0.3 < final_ratio("accumulate")
    rows = ref.run("linear_regression", "accumulate", seeds=2, iterations=3, dim=2, samples=10)
    assert {m for _, _, m, _ in rows} == {"population_risk", "test_mse"} and len(rows) == 12
