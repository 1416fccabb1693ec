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
