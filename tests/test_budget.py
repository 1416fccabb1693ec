"""Bounded memory (issue 12, finding 5): an up-front estimate of a run's peak memory, checked
against a budget before anything is written (``engine.budget``, ``--max-memory``)."""

from __future__ import annotations

import tracemalloc

import pytest
from typer.testing import CliRunner

from modelcollapse import api
from modelcollapse.cli import app
from modelcollapse.engine import run_study
from modelcollapse.engine.budget import (BASE_BYTES, MemoryBudgetError, check, estimate,
                                         parse_size)

runner = CliRunner()

SEEDS = """\
name: many-seeds
task: gaussian
task_params: {n_samples: 1000}
n_seeds: 1000000
keep_seeds: 1000000
"""  # every seed's rows kept (not streamed): the rows alone exceed any machine's memory
SAMPLES = """\
name: many-samples
task: gaussian
task_params: {n_samples: 1000000000}
"""
SWEEP = """\
name: big-sweep
task: gaussian
task_params: {n_samples: 1000}
n_seeds: 10
grid:
  n_seeds: [10, 1000000]
"""


def _refused(result, directory) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: memory: this run needs "), lines
    assert "over the budget of" in lines[0] and "the largest term is" in lines[0]
    assert not directory.exists()  # nothing written: no run directory, no checkpoints
    return lines[0]


@pytest.mark.parametrize("text, largest", [(SEEDS, "real and test data"),
                                           (SAMPLES, "")])
def test_a_study_over_the_physical_memory_is_refused_before_anything_is_written(
        tmp_path, monkeypatch, text, largest):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.yaml").write_text(text)
    line = _refused(runner.invoke(app, ["run", "study.yaml", "-q"]), tmp_path / "runs")
    assert "of physical memory" in line and "reduce n_seeds" in line
    assert largest in line


def test_max_memory_sets_the_budget_of_run_and_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _refused(runner.invoke(app, ["run", "kazdan2024-gaussian", "--max-memory", "1MiB",
                                        "--out", "r", "-q"]), tmp_path / "r")
    assert "(--max-memory 1.0 MiB)" in line
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    _refused(runner.invoke(app, ["sweep", "sweep.yaml", "--out", "s", "-q"]), tmp_path / "s")
    bad = runner.invoke(app, ["run", "kazdan2024-gaussian", "--max-memory", "lots", "--out",
                              "r", "-q"])
    assert bad.exit_code == 2 and "error: max_memory (--max-memory): 'lots'" in bad.output
    assert not (tmp_path / "r").exists()


def test_the_api_takes_max_memory(tmp_path):
    with pytest.raises(MemoryBudgetError, match="^memory: .*max_memory"):
        api.run("kazdan2024-gaussian", out=tmp_path / "r", max_memory="1MiB")
    assert not (tmp_path / "r").exists()
    run = api.run("kazdan2024-gaussian", out=tmp_path / "ok", plots=False,
                  overrides={"n_seeds": 5, "n_iterations": 2}, max_memory="4GiB")
    assert (run.directory / "results.parquet").is_file()


def test_jobs_multiply_the_units_in_memory():
    spec = api.load("kazdan2024-gaussian", {"n_seeds": 500})
    one, three = estimate(spec, jobs=1), estimate(spec, jobs=3)
    unit = one.total - one.terms["results"] - one.terms["processes"]
    assert three.total - three.terms["results"] - three.terms["processes"] == 3 * unit
    with pytest.raises(MemoryBudgetError, match="reduce"):
        check(spec, max_memory=one.total + 1, jobs=3)
    assert check(spec, max_memory=one.total + 1, jobs=1).total == one.total


@pytest.mark.parametrize("overrides", [
    {"n_seeds": 300, "n_iterations": 5},
    {"n_seeds": 300, "n_iterations": 5, "task_params.n_test": 10},
])
def test_the_estimate_bounds_the_measured_allocation(overrides):
    """The estimate (less the interpreter) is at least the peak that tracemalloc measures while
    the study runs, and not absurdly more (measured: 1.5 to 2.7 times)."""
    spec = api.load("kazdan2024-gaussian", overrides)
    est = estimate(spec)
    tracemalloc.start()
    try:
        run_study(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    counted = est.total - est.terms["processes"]
    assert est.terms["processes"] == BASE_BYTES
    assert peak <= counted <= 4 * peak, (peak, est)


def test_parse_size():
    assert parse_size("4GiB") == 4 * 2**30
    assert parse_size("512 MB") == 512 * 10**6
    assert parse_size("1.5g") == 1_500_000_000
    assert parse_size(1024) == 1024
    for bad in ("lots", "-1GiB", "0", "4 parsecs", True, float("nan")):
        with pytest.raises(ValueError, match=r"^max_memory \(--max-memory\): "):
            parse_size(bad)


def test_the_results_term_bounds_the_results_table():
    """The results term covers the long table the run returns (22 bytes a row in memory)."""
    spec = api.load("kazdan2024-gaussian", {"n_seeds": 300, "n_iterations": 5})
    frame = run_study(spec)
    assert estimate(spec).terms["results"] >= 2 * frame.memory_usage(deep=True).sum()
