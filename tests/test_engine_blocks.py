"""The engine hands results over in blocks of replicates (issue 15; ``engine.study.run_units``
with ``on_block``).

A block of replicates [lo, hi) of a unit is computed alone (``Streams(seed, range(lo, hi))``)
and must equal, byte for byte, the slice [:, lo:hi] of the whole unit's result; blocks reach
``on_block`` in block order per unit whatever order they finish in; blocks already consumed are
skipped (``start_blocks``); an interrupted block resumes from its own chain checkpoint; and no
more than ``workers + 1`` blocks are alive at once (counted, not timed).
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from modelcollapse.config import Study
from modelcollapse.engine import budget, executors, unit
from modelcollapse.engine.executors import LocalExecutor
from modelcollapse.engine.study import block_size_for, n_blocks, run_units
from modelcollapse.engine.unit import UnitResult, block_ranges
from modelcollapse.results.checkpoint import RunCheckpoints, UnitCheckpoint

#: every registered task without torch (its recipes too): the determinism test's
from test_determinism import TASKS  # noqa: E402

PARADIGMS = ["replace", "accumulate", "accumulate-subsample",
             {"name": "mix", "real_fraction": 0.5},
             {"name": "mix", "real_fraction": 0.3, "fresh_real": True}]
#: curation policies, real arrival and synthetic growth (engine.curation's pool)
CURATED = [{"name": "accumulate", "curation": [p]} for p in (
    {"policy": "verify"}, {"policy": "detect", "recall": 0.5},
    {"policy": "detect", "detector": "learned"}, {"policy": "tail_oversample"},
    {"policy": "ratio_cap", "max_ratio": 1.0}, {"policy": "weights", "real_weight": 0.7})] + [
    {"name": "accumulate", "real_arrival": 3, "initial_real": 15, "scraping": True,
     "curation": [{"policy": "detect", "recall": 0.8, "fpr": 0.25}]},
    {"name": "accumulate", "synthetic_growth": {"kind": "geometric", "rate": 2}},
    {"name": "accumulate-subsample", "synthetic_growth": "linear"}]
R = 7


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _study(tasks=TASKS, paradigms=PARADIGMS, n_seeds=R, n_iterations=3, **extra) -> Study:
    return Study.model_validate(dict(tasks=tasks, paradigms=paradigms, n_iterations=n_iterations,
                                     n_seeds=n_seeds, seed=5, **extra))


def _keys(study: Study) -> list[tuple[int, int, int]]:
    return [(0, i, j) for i in range(len(study.tasks)) for j in range(len(study.paradigms))]


def _whole(study: Study) -> dict:
    return dict(zip(_keys(study), run_units([study])))


def _collect(study: Study, block_size: int, **kw) -> dict:
    """{key: [(block index, n_blocks, result), ...]} in the order on_block got them."""
    got: dict = {}
    run_units([study], block_size=block_size,
              on_block=lambda key, b, n, res: got.setdefault(key, []).append((b, n, res)), **kw)
    return got


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape \
        and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _check_slices(whole: dict, got: dict, block_size: int, n_seeds: int = R,
                  start: int = 0) -> None:
    """Every unit's blocks arrived in order, each equal to its slice of the whole unit."""
    ranges = block_ranges(n_seeds, block_size)
    assert set(got) == set(whole)
    for key, blocks in got.items():
        assert [b for b, _, _ in blocks] == list(range(start, len(ranges))), key
        ref = whole[key]
        for b, n, res in blocks:
            lo, hi = ranges[b]
            where = f"{res.labels['task']} / {res.labels['paradigm']}, block {b}"
            assert n == len(ranges)
            assert list(res.values) == list(ref.values), where
            for m, v in ref.values.items():
                assert _same_bytes(res.values[m], v[:, lo:hi]), f"{where}: {m}"
            assert res.status.dtype == ref.status.dtype
            assert (res.status == ref.status[:, lo:hi]).all(), where
            assert res.replicates.tolist() == list(range(lo, hi))
            assert res.labels == ref.labels and res.profile_spec == ref.profile_spec
            assert res.provenance == ref.provenance


# -- block invariance ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tasks_study():
    study = _study()
    return study, _whole(study)


@pytest.fixture(scope="module")
def curated_study():
    study = _study(tasks=[{"task": "gaussian", "task_params": {"n_features": 2, "n_samples": 40}},
                          {"task": "discrete", "task_params": {"n_outcomes": 3,
                                                               "n_samples": 40}}],
                   paradigms=CURATED, n_iterations=4)
    return study, _whole(study)


def test_every_task_covered():
    from modelcollapse.registry import tasks as registry

    torch_ones = {"vae", "lm", "diffusion", "sft"}
    assert {t["task"] for t in TASKS} == set(registry.names()) - torch_ones


@pytest.mark.parametrize("block_size", [1, 3, 7])
def test_blocks_are_slices_of_the_whole_unit_for_every_task(tasks_study, block_size):
    study, whole = tasks_study
    _check_slices(whole, _collect(study, block_size), block_size)


@pytest.mark.parametrize("block_size", [1, 3, 7])
def test_blocks_are_slices_under_curation_arrival_and_growth(curated_study, block_size):
    study, whole = curated_study
    _check_slices(whole, _collect(study, block_size), block_size)


def test_compute_unit_of_a_block_is_the_slice(tasks_study):
    """The building block itself: ``compute_unit(..., replicates=(lo, hi))`` and a task built
    for those replicates (``build_task``)."""
    study, whole = tasks_study
    task, streams = unit.build_task(study, 2, (2, 5))
    assert task.n_replicates == 3 and streams.replicates.tolist() == [2, 3, 4]
    res = unit.compute_unit(study, 2, 1, task=task, replicates=(2, 5))
    for m, v in whole[(0, 2, 1)].values.items():
        assert _same_bytes(res.values[m], v[:, 2:5]), m
    with pytest.raises(ValueError, match=r"^task: built for 3 replicates"):
        unit.compute_unit(study, 2, 1, task=task, replicates=(0, 2))
    for bad in [(3, 3), (-1, 2), (0, R + 1)]:
        with pytest.raises(ValueError, match=r"^replicates: \[.*allowed: 0 <= lo < hi <= "):
            unit.build_task(study, 0, bad)


def test_stop_when_collapsed_ends_each_block_on_its_own():
    """NOT block-invariant (by design of ``stop_when_collapsed``): a unit stops after the first
    iteration at which *all its* chains are absorbed, so a block stops when all of *its* chains
    are: a block may have fewer iterations than the whole unit -- but every row it has is the
    whole unit's (the chains are the same; only where they end differs)."""
    study = _study(tasks=[{"task": "discrete", "task_params": {"n_outcomes": 2, "n_samples": 3}}],
                   paradigms=["replace", "accumulate"], n_iterations=6, stop_when_collapsed=True)
    whole = _whole(study)
    shorter = 0
    for block_size in (1, 3):
        for key, blocks in _collect(study, block_size).items():
            assert [b for b, _, _ in blocks] == list(range(len(blocks)))
            for b, _, res in blocks:
                lo, hi = block_ranges(R, block_size)[b]
                t = len(res.status)
                shorter += t < len(whole[key].status)
                assert t <= len(whole[key].status)
                for m, v in whole[key].values.items():
                    assert _same_bytes(res.values[m], v[:t, lo:hi]), m
                assert (res.status == whole[key].status[:t, lo:hi]).all()
    assert shorter  # this study does show it


# -- order, laziness, memory ---------------------------------------------------------------------

MARKS = "MODELCOLLAPSE_TEST_BLOCK_MARKS"


def _slow_first_block(job):
    """``executors._run_job`` in the workers (fork): block 0 of unit (0, 0, 0) holds everything
    up: it finishes only once this process has stopped submitting blocks because too many are
    waiting (marker "stalled", see the ``slow_first_block`` fixture) -- or once every other
    block has run (marker "last": an engine that never stops submitting) -- so later blocks
    arrive before it.  A 120 s safety limit keeps a broken run from hanging (the test then
    fails on ``waited``)."""
    marks = Path(os.environ[MARKS])
    if job.key == (0, 0, 0) and job.block == 0:
        until = time.monotonic() + 120
        while not ((marks / "stalled").exists() or (marks / "last").exists()) \
                and time.monotonic() < until:
            time.sleep(0.01)
        if (marks / "1").exists():
            (marks / "waited").touch()
    result = job.run()
    if job.key == (0, 0, 0):
        (marks / str(job.block)).touch()
    if job.key == (0, 0, 1) and job.block == job.study.n_seeds - 1:
        (marks / "last").touch()
    return result


@pytest.fixture
def slow_first_block(tmp_path, monkeypatch):
    """Workers run ``_slow_first_block``; this process marks "stalled" when a worker is free
    but no block is submitted (blocks waiting to be handed over fill the window)."""
    monkeypatch.setenv(MARKS, str(tmp_path))
    monkeypatch.setattr(executors, "_run_job", _slow_first_block)
    real = executors._Feed.ready

    def ready(self, running):
        out = real(self, running)
        if not out and running < self.workers and self.next < len(self.jobs):
            (tmp_path / "stalled").touch()
        return out

    monkeypatch.setattr(executors._Feed, "ready", ready)
    return tmp_path


def _alive_results() -> int:
    gc.collect()
    return sum(type(o) is UnitResult for o in gc.get_objects())


@pytest.fixture
def small():
    study = _study(tasks=[TASKS[2]], paradigms=["replace", "accumulate"], n_iterations=3)
    return study, _whole(study)


def test_blocks_finishing_out_of_order_are_handed_over_in_order(small, slow_first_block):
    study, whole = small
    got: dict = {}
    alive = []
    base = _alive_results()  # (the fixtures' whole units)

    def on_block(key, b, n, res):
        alive.append(_alive_results() - base)
        got.setdefault(key, []).append((b, n, res))

    run_units([study], executor=LocalExecutor(jobs=2), block_size=1, on_block=on_block)
    assert (slow_first_block / "waited").exists()  # block 1 did finish before block 0
    _check_slices(whole, got, 1)
    # minus the ones the test keeps in ``got``: the engine holds at most workers + 1
    engine_alive = [a - i for i, a in enumerate(alive)]
    assert max(engine_alive) <= 2 + 1, engine_alive


def test_memory_bound_counts_live_results(small, slow_first_block):
    """Blocks alive in this process (waiting or being handed over) never exceed workers + 1,
    even while the first block holds everything up; the caller keeps none here."""
    study, _ = small
    alive: list[int] = []
    order: list = []
    previous: list = []
    base = _alive_results()  # (the fixtures' whole units)

    def on_block(key, b, n, res):
        assert all(ref() is None for ref in previous)  # handed-over blocks are not kept
        alive.append(_alive_results() - base)
        order.append((key, b))
        previous.append(weakref.ref(res))

    run_units([study], executor=LocalExecutor(jobs=2), block_size=1, on_block=on_block)
    assert (slow_first_block / "waited").exists()
    assert (slow_first_block / "stalled").exists()  # the window, not the end, released it
    assert len(order) == 2 * R
    assert max(alive) <= 2 + 1, alive
    assert _alive_results() == base
    # in this process, one block at a time
    alive.clear()
    run_units([study], block_size=2,
              on_block=lambda key, b, n, res: alive.append(_alive_results() - base))
    assert max(alive) == 1, alive


def test_block_jobs_are_submitted_lazily(small):
    """The pool sees at most ``workers`` blocks at a time (not all of them up front)."""
    study, _ = small
    seen: list[int] = []
    real = executors._Feed.ready

    def ready(self, running):
        out = real(self, running)
        seen.append(running + len(out))
        return out

    executors._Feed.ready = ready
    try:
        run_units([study], executor=LocalExecutor(jobs=2), block_size=1,
                  on_block=lambda *a: None)
    finally:
        executors._Feed.ready = real
    assert max(seen) <= 2, seen


# -- start_blocks, checkpoints, resume -----------------------------------------------------------

def test_start_blocks_skips_blocks_already_consumed(small, monkeypatch):
    study, whole = small
    ran: list = []
    real = unit.compute_unit

    def recording(study, task_index, paradigm_index, **kw):
        ran.append((paradigm_index, kw.get("replicates")))
        return real(study, task_index, paradigm_index, **kw)

    monkeypatch.setattr(unit, "compute_unit", recording)
    units_done: list = []
    got = _collect(study, 3, start_blocks={(0, 0, 0): 2, (0, 0, 1): 1},
                   on_unit=units_done.append)
    assert [b for b, _, _ in got[(0, 0, 0)]] == [2]
    assert [b for b, _, _ in got[(0, 0, 1)]] == [1, 2]
    assert sorted(ran) == [(0, (6, 7)), (1, (3, 6)), (1, (6, 7))]  # nothing else ran
    for key, blocks in got.items():
        for b, _, res in blocks:
            lo, hi = block_ranges(R, 3)[b]
            for m, v in whole[key].values.items():
                assert _same_bytes(res.values[m], v[:, lo:hi])
    assert sorted(units_done) == [(0, 0, 0), (0, 0, 1)]
    # a unit wholly consumed runs nothing and is reported finished
    ran.clear()
    units_done.clear()
    got = _collect(study, 3, start_blocks={(0, 0, 0): 3, (0, 0, 1): 3},
                   on_unit=units_done.append)
    assert got == {} and ran == [] and sorted(units_done) == [(0, 0, 0), (0, 0, 1)]


@pytest.mark.parametrize("kw, message", [
    ({"start_blocks": {(0, 0, 0): 4}}, r"^start_blocks\[\(0, 0, 0\)\]: 4 is not allowed; "
                                       r"allowed: an integer 0 \.\. 3"),
    ({"start_blocks": {(0, 0, 0): -1}}, r"^start_blocks\[\(0, 0, 0\)\]: -1 is not allowed"),
    ({"start_blocks": {(0, 5, 0): 1}}, r"^start_blocks: \(0, 5, 0\) is not a unit"),
    ({"block_size": 0}, r"^block_size: 0 is not allowed; allowed: an integer >= 1"),
    ({"block_size": 2.5}, r"^block_size: 2\.5 is not allowed"),
])
def test_bad_block_arguments_are_one_line(small, kw, message):
    study, _ = small
    kw = {"block_size": 3, **kw}
    with pytest.raises(ValueError, match=message) as exc:
        run_units([study], on_block=lambda *a: None, **kw)
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match=r"^block_size, start_blocks, reduce_block: only with "
                                         r"on_block"):
        run_units([study], block_size=3)
    with pytest.raises(ValueError, match=r"^block_size, start_blocks, reduce_block: only with"):
        run_units([study], reduce_block=lambda job, result: result)


def test_interrupted_block_resumes_from_its_own_checkpoint(small, tmp_path, monkeypatch):
    """Ctrl-C in the middle of block 1 of a unit: blocks handed over before are not kept (their
    directories are gone), the running block's chain state is; the resumed run
    (``start_blocks``: what the caller consumed) continues that block from its state and hands
    over blocks identical to an uninterrupted run's."""
    study, whole = small
    study = study.model_copy(update={"n_iterations": 3})
    ck = RunCheckpoints(tmp_path, "run", "abc", max_overhead=1e9)  # checkpoint every iteration
    ck.start()
    consumed: dict = {}
    calls = {"n": 0}

    def interrupt(t):
        calls["n"] += 1
        # block-major within a task: block 0 of both paradigms (6 iterations), then block 1 of
        # paradigm 0: stop at its iteration 2 (its state after iteration 1 is saved)
        if calls["n"] == 2 * 3 + 3:
            raise KeyboardInterrupt

    def on_block(key, b, n, res):
        consumed.setdefault(key, []).append((b, n, res))

    with pytest.raises(KeyboardInterrupt):
        run_units([study], checkpoints=ck, block_size=3, on_block=on_block,
                  on_iteration=interrupt)
    assert {k: [b for b, _, _ in v] for k, v in consumed.items()} == {(0, 0, 0): [0],
                                                                     (0, 0, 1): [0]}
    unit_dir = ck.directory / "0-0-0"
    assert sorted(p.name for p in unit_dir.iterdir()) == ["block-3-6"]
    assert (unit_dir / "block-3-6" / "state.npz").is_file()
    assert not (ck.directory / "0-0-1" / "block-0-3").exists()
    # a stale block directory (another block size) is removed, never used
    (unit_dir / "block-2-4").mkdir()
    loaded: list = []
    real = UnitCheckpoint.load_state

    def load_state(self):
        out = real(self)
        loaded.append((self.directory.name, None if out is None else int(out[0]["n_done"])))
        return out

    monkeypatch.setattr(UnitCheckpoint, "load_state", load_state)
    resumed: dict = {}
    run_units([study], checkpoints=ck, block_size=3, start_blocks={(0, 0, 0): 1, (0, 0, 1): 1},
              on_block=lambda key, b, n, res: resumed.setdefault(key, []).append((b, n, res)))
    assert ("block-3-6", 2) in loaded  # the interrupted block went on from its state
    for key in resumed:
        resumed[key] = consumed[key] + resumed[key]
    _check_slices(whole, resumed, 3)
    assert not any(p.is_dir() for p in unit_dir.iterdir())  # every block handed over


def test_jobs_2_block_checkpoints_are_per_block(small, tmp_path):
    """Workers write each block's chain state in its own directory; all removed once handed
    over; results identical."""
    study, whole = small
    ck = RunCheckpoints(tmp_path, "run", "abc", max_overhead=1e9)
    ck.start()
    got = _collect(study, 2, checkpoints=ck, executor=LocalExecutor(jobs=2))
    _check_slices(whole, got, 2)
    assert not [p for p in ck.directory.rglob("block-*")]


def test_a_unit_finished_whole_is_handed_over_in_slices(small, tmp_path, monkeypatch):
    """Resuming with blocks a run whose units an earlier whole-unit run finished
    (``result.npz``): their blocks are slices of the saved result, nothing is recomputed."""
    study, whole = small
    ck = RunCheckpoints(tmp_path, "run", "abc")
    ck.start()
    ck.unit(0, 0, 1).save_result(*whole[(0, 0, 1)].to_arrays())
    ran: list = []
    real = unit.compute_unit
    monkeypatch.setattr(unit, "compute_unit",
                        lambda *a, **kw: ran.append(a[2]) or real(*a, **kw))
    got = _collect(study, 3, checkpoints=ck, start_blocks={(0, 0, 1): 1})
    assert set(ran) == {0}
    assert [b for b, _, _ in got[(0, 0, 1)]] == [1, 2]
    got[(0, 0, 1)] = [(0, 3, whole[(0, 0, 1)].take(0, 3))] + got[(0, 0, 1)]
    _check_slices(whole, got, 3)


def test_partial_checkpoint_round_trip_and_corruption(tmp_path, capsys):
    ck = RunCheckpoints(tmp_path, "run", "abc")
    ck.start()
    u = ck.unit(0, 1, 2, label="t, p")
    assert u.load_partial() is None
    arrays = {"mean": np.arange(6.0).reshape(2, 3), "n": np.array([3, 4])}
    u.save_partial(arrays, {"metrics": ["a", "b"]}, 5)
    back, meta, done = u.load_partial()
    assert done == 5 and meta == {"metrics": ["a", "b"]}
    assert all(_same_bytes(back[k], v) for k, v in arrays.items()) and set(back) == set(arrays)
    assert ck.verify() == []
    # a block's chain state is verified too
    block = u.block(0, 3)
    block.save_state({"n_done": np.array(1)})
    assert ck.verify() == []
    (block.directory / "state.npz").write_bytes(b"broken")
    problems = ck.verify()
    assert len(problems) == 1 and "0-1-2/block-0-3/state.npz" in problems[0], problems
    path = u.directory / "partial.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert any("partial.npz" in p for p in ck.verify())
    assert u.load_partial() is None
    assert "restarts from its first block" in capsys.readouterr().err
    assert not path.exists()


# -- Ray -----------------------------------------------------------------------------------------

def test_ray_blocks_are_identical(small):
    pytest.importorskip("ray")
    study, whole = small
    got = _collect(study, 3, executor=executors.RayExecutor(num_cpus=2))
    _check_slices(whole, got, 3)


# -- block size from a memory budget -------------------------------------------------------------

def test_block_size_for_is_the_largest_block_within_the_budget():
    study = _study(tasks=[{"task": "gaussian", "task_params": {"n_features": 1,
                                                               "n_samples": 10}}],
                   paradigms=["accumulate"], n_seeds=10**6, n_iterations=100)
    for jobs in (1, 2):
        for limit in (600 * 2**20, 2 * 10**9):
            b = block_size_for(study, limit, jobs=jobs)
            assert 1 <= b < study.n_seeds
            assert budget.estimate(study, jobs=jobs, block_size=b, measure=False).total <= limit
            assert budget.estimate(study, jobs=jobs, block_size=b + 1,
                                   measure=False).total > limit
            # (a measurement may differ by a few hundred bytes from one probe to the next)
            m = block_size_for(study, limit, jobs=jobs, measure=True)
            assert 0.98 * limit < budget.estimate(study, jobs=jobs, block_size=m).total \
                < 1.02 * limit
    assert block_size_for(study, "2GB", jobs=2) < block_size_for(study, "2GB")
    assert block_size_for(study, "1TB") == study.n_seeds  # never more than the replicates
    with pytest.raises(budget.MemoryBudgetError, match=r"^memory: a block of one replicate "):
        block_size_for(study, "100MB")
    # the estimate with blocks does not grow with n_seeds; without, it does
    bigger = study.model_copy(update={"n_seeds": 10**7})
    assert budget.estimate(bigger, block_size=5000, measure=False).total \
        == budget.estimate(study, block_size=5000, measure=False).total
    assert budget.estimate(bigger).total > 5 * budget.estimate(study).total
    assert n_blocks(study, 300_000) == 4 and n_blocks(study, None) == 1


def test_block_size_for_is_a_function_of_the_study():
    """The block size decides how chains are merged into aggregates (their last bits): it must
    not depend on the machine's measurements -- e.g. on whether tracemalloc is tracing."""
    study = _study(tasks=[{"task": "kde", "task_params": {"n_features": 2, "n_samples": 15,
                                                          "n_test": 30}}],
                   paradigms=["accumulate"], n_seeds=10**6, n_iterations=20)
    plain = block_size_for(study, "1GB")
    tracemalloc.start()
    try:
        traced = block_size_for(study, "1GB")
        assert budget._measured(study, 0, 0, {}) is None  # nothing measured while tracing
    finally:
        tracemalloc.stop()
    assert plain == traced
    assert budget._measured(study, 0, 0, {}) > 0
    assert block_size_for(study, "1GB", measure=True) < plain  # k-NN temporaries measured


@pytest.mark.parametrize("entry", [
    {"task": "gaussian", "task_params": {"n_features": 1, "n_samples": 10}},
    {"task": "discrete", "task_params": {"n_outcomes": 5, "n_samples": 12}},
    {"task": "kde", "task_params": {"n_features": 2, "n_samples": 15, "n_test": 30}},
    {"task": "linear_regression", "task_params": {"dataset": "diabetes", "n_samples": 60}},
])
def test_the_block_estimate_bounds_the_measured_allocation(entry):
    """``estimate(..., block_size=B)`` (less the interpreter) is at least the peak tracemalloc
    measures while the study runs block by block (the blocks dropped), and not absurdly more;
    the same peak at 4x the seeds."""
    peaks = []
    for n_seeds in (600, 2400):
        study = _study(tasks=[entry], paradigms=["replace", "accumulate"], n_seeds=n_seeds,
                       n_iterations=7)
        est = budget.estimate(study, block_size=300)
        run_units([_study(tasks=[entry], n_seeds=3)], block_size=2,
                  on_block=lambda *a: None)  # first-use imports and caches: not the run's
        tracemalloc.start()
        try:
            run_units([study], block_size=300, on_block=lambda *a: None)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        counted = est.total - est.terms["processes"]
        assert peak <= counted <= 4 * peak, (peak, est)
        peaks.append(peak)
    assert peaks[1] < 1.5 * peaks[0], peaks


def _reduced(job, result):
    """A ``reduce_block`` (module level: it travels to worker processes): where it ran, the
    block's replicates and its values' column sums."""
    return {"pid": os.getpid(), "replicates": job.replicates, "block": job.block,
            "sums": {k: np.nansum(v, axis=1) for k, v in result.values.items()}}


@pytest.mark.parametrize("jobs", [1, 2])
def test_reduce_block_runs_where_the_block_ran_and_only_its_value_comes_back(small, jobs,
                                                                             tmp_path):
    study, whole = small
    ck = RunCheckpoints(tmp_path, "run", "abc")
    ck.start()
    # unit (0, 0, 1) was finished whole by an earlier run: its slices are reduced here
    ck.unit(0, 0, 1).save_result(*whole[(0, 0, 1)].to_arrays())
    got = _collect(study, 3, reduce_block=_reduced, executor=LocalExecutor(jobs=jobs),
                   checkpoints=ck)
    ranges = block_ranges(R, 3)
    for key, blocks in got.items():
        assert [b for b, _, _ in blocks] == list(range(len(ranges)))
        for b, n, value in blocks:
            lo, hi = ranges[b]
            assert isinstance(value, dict) and value["replicates"] == (lo, hi)
            assert value["block"] == b
            want = whole[key].take(lo, hi).values
            assert list(value["sums"]) == list(want)
            for name, v in want.items():
                assert _same_bytes(value["sums"][name], np.nansum(v, axis=1)), (key, b, name)
            ran_here = key == (0, 0, 1) or jobs == 1
            assert (value["pid"] == os.getpid()) == ran_here, (key, b)
