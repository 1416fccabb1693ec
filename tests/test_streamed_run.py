"""A run with more seeds than it keeps rows for (issue 15): blocks of replicates folded into
exact aggregates (``sink.StreamSink``, ``profile.streaming``), analysed from them.

The analyses of a streamed run must equal the in-memory ones of the same study (moments to
rounding; the delta-method tests of Defs. 5 and 7 within their stated tolerance), its kept rows
must be the in-memory rows of those seeds, and its files must not depend on the executor or on
an interruption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelcollapse as mc
from modelcollapse import api

STUDY = {"name": "streamed", "task": "gaussian",
         "task_params": {"n_features": 2, "n_samples": 12, "n_test": 40},
         "paradigms": ["replace", "accumulate"], "n_iterations": 6, "n_seeds": 90,
         "keep_seeds": 20}
BLOCK = 25  # 4 blocks of 25, 25, 25, 15 chains per unit
FILES = ["results.parquet", "aggregates.npz", "curves.csv", "summary.csv", "profile.csv"]


@pytest.fixture
def blocks(monkeypatch):
    """Streamed runs use blocks of ``BLOCK`` chains (the real size is hundreds or thousands)
    and save their state after every block (the real rate: every 10 s)."""
    monkeypatch.setattr(api, "_block_size",
                        lambda spec: BLOCK if spec.n_seeds > spec.keep_seeds else None)
    monkeypatch.setattr(api, "STREAM_SAVE_SECONDS", 0.0)


def _bytes(directory) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def test_streamed_analysis_equals_the_in_memory_one(tmp_path, blocks):
    streamed = mc.run(STUDY, out=tmp_path / "s", plots=False)
    full = mc.run({**STUDY, "keep_seeds": 90}, out=tmp_path / "f", plots=False)
    assert streamed.manifest["streamed"]["n_seeds"] == 90
    assert "streamed" not in full.manifest
    # the kept rows are the in-memory rows of seeds 0..19, value for value
    kept = streamed.results
    assert sorted(kept.seed.unique()) == list(range(20))
    same = full.results[full.results.seed < 20].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), same, check_categorical=False)
    # summary: every number to rounding
    a, b = streamed.summary, full.summary
    assert list(a.columns) == list(b.columns) and (a.n_seeds == 90).all()
    num = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-9)
    # profile: same verdicts; moment-based numbers to rounding, delta-method ones (Defs. 5, 7:
    # the jackknife in memory; the two standard errors differ by O(1/n)) to within a tenth of
    # the interval's width on 90 chains
    p, q = streamed.profile, full.profile
    assert (p.verdict.to_numpy() == q.verdict.to_numpy()).all()
    assert (p.n_seeds == 90).all()
    cols = ["value", "low", "high", "p_occurs", "p_not"]
    exact = ~p.definition.isin([5, 7]).to_numpy()
    np.testing.assert_allclose(p.loc[exact, cols].to_numpy(float),
                               q.loc[exact, cols].to_numpy(float), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p.loc[~exact, ["value"]].to_numpy(float),
                               q.loc[~exact, ["value"]].to_numpy(float), rtol=1e-6)
    bounds_s = p.loc[~exact, ["low", "high"]].to_numpy(float)
    bounds_m = q.loc[~exact, ["low", "high"]].to_numpy(float)
    width = (bounds_m[:, 1] - bounds_m[:, 0])[:, None]
    assert (np.abs(bounds_s - bounds_m) <= 0.1 * width).all(), (bounds_s, bounds_m)
    # curves.csv: the per-iteration means of all 90 chains
    curves = pd.read_csv(streamed.directory / "curves.csv")
    risk = curves[(curves.metric == "w2_squared") & (curves.paradigm == "replace")]
    rows = full.results[(full.results.metric == "w2_squared")
                        & (full.results.paradigm == "replace")]
    want = rows.groupby("iteration").value.mean().to_numpy()
    np.testing.assert_allclose(risk.sort_values("iteration")["mean"].to_numpy(), want,
                               rtol=1e-12)


def test_streamed_files_do_not_depend_on_jobs_or_an_interruption(tmp_path, blocks,
                                                                 monkeypatch):
    one = mc.run(STUDY, out=tmp_path / "one", plots=False)
    two = mc.run(STUDY, out=tmp_path / "two", plots=False, jobs=2)
    assert _bytes(one.directory) == _bytes(two.directory)

    from modelcollapse.sink import StreamSink

    fold = StreamSink.__call__
    calls = []

    def interrupted(self, key, block, n_blocks, result):
        calls.append(block)
        if len(calls) == 6:  # blocks are run block-major: 3 of unit 0 and 2 of unit 1 folded
            raise KeyboardInterrupt
        fold(self, key, block, n_blocks, result)

    monkeypatch.setattr(StreamSink, "__call__", interrupted)
    with pytest.raises(api.RunInterrupted):
        mc.run(STUDY, out=tmp_path / "cut", plots=False)
    monkeypatch.setattr(StreamSink, "__call__", fold)
    resumed_blocks = []
    monkeypatch.setattr(StreamSink, "__call__",
                        lambda self, key, block, n, result: (resumed_blocks.append((key, block)),
                                                             fold(self, key, block, n, result)))
    resumed = mc.run(STUDY, out=tmp_path / "cut", plots=False, resume=True)
    # folded blocks are not run again
    assert sorted(resumed_blocks) == [((0, 0, 0), 3), ((0, 0, 1), 2), ((0, 0, 1), 3)]
    assert _bytes(resumed.directory) == _bytes(one.directory)

    # saved less often than every block: the blocks folded since the last save run again
    monkeypatch.setattr(api, "STREAM_SAVE_SECONDS", 3600.0)
    calls.clear()
    monkeypatch.setattr(StreamSink, "__call__", interrupted)
    with pytest.raises(api.RunInterrupted):
        mc.run(STUDY, out=tmp_path / "rare", plots=False)
    resumed_blocks.clear()
    monkeypatch.setattr(StreamSink, "__call__",
                        lambda self, key, block, n, result: (resumed_blocks.append((key, block)),
                                                             fold(self, key, block, n, result)))
    resumed = mc.run(STUDY, out=tmp_path / "rare", plots=False, resume=True)
    assert len(resumed_blocks) == 8    # nothing was saved before the interruption
    assert _bytes(resumed.directory) == _bytes(one.directory)


def test_streamed_run_is_sealed_and_reanalysed_from_its_aggregates(tmp_path, blocks):
    from typer.testing import CliRunner

    from modelcollapse.cli import app

    run = mc.run(STUDY, out=tmp_path / "s", plots=False)
    files = run.manifest["files"]
    assert {"aggregates.npz", "curves.csv", "results.parquet"} <= set(files)
    reopened = mc.open_run(run.directory)
    assert (reopened.profile.n_seeds == 90).all()
    res = CliRunner().invoke(app, ["profile", str(run.directory), "--set", "alpha=0.2",
                                   "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "0.2" in res.output and ",90," in res.output
    res = CliRunner().invoke(app, ["summary", str(run.directory), "--format", "csv"])
    assert res.exit_code == 0 and ",90," in res.output, res.output


def test_a_study_within_keep_seeds_runs_as_before(tmp_path):
    """keep_seeds at its default leaves a study's hash and its run untouched."""
    from modelcollapse.config import load_study, study_hash

    base = {k: v for k, v in STUDY.items() if k != "keep_seeds"}
    assert study_hash(load_study(base)) == study_hash(load_study({**base, "keep_seeds": 10_000}))
    assert study_hash(load_study(base)) != study_hash(load_study({**base, "keep_seeds": 5}))
    assert api._block_size(load_study({**base, "n_seeds": 10_000})) is None
    assert api._block_size(load_study({**base, "n_seeds": 10_001})) >= 1


def test_streamed_run_on_ray_writes_the_same_files(tmp_path, blocks, monkeypatch):
    """A local Ray instance with 2 workers gives the files of the in-process run, byte for byte
    (issue 15: identical aggregates whatever the executor)."""
    pytest.importorskip("ray")
    import yaml
    from typer.testing import CliRunner

    from modelcollapse.cli import app

    from modelcollapse.engine.executors import RayExecutor

    local = mc.run(STUDY, out=tmp_path / "local", plots=False)
    on_ray = []
    ray_run = RayExecutor.run
    monkeypatch.setattr(RayExecutor, "run",
                        lambda self, jobs, *a, **kw: (on_ray.append(len(jobs)),
                                                      ray_run(self, jobs, *a, **kw))[1])
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(STUDY))
    cli = CliRunner().invoke(app, ["run", str(study_file), "--out", str(tmp_path / "ray"),
                                   "--executor", "ray", "--jobs", "2", "--no-plots", "-q"])
    assert cli.exit_code == 0, cli.output
    assert on_ray == [8]  # the 8 blocks ran as Ray tasks
    assert _bytes(tmp_path / "ray") == _bytes(local.directory)
    # --address only with --executor ray: one line, nothing written
    cli = CliRunner().invoke(app, ["run", str(study_file), "--out", str(tmp_path / "x"),
                                   "--address", "auto"])
    assert cli.exit_code != 0 and not (tmp_path / "x").exists()
    assert "address (--address): only with executor 'ray'" in cli.output


def test_stop_when_collapsed_is_refused_for_a_streamed_study():
    """A block stops when all of its own chains are absorbed, so blocks would differ in length:
    one line naming the field, before anything runs."""
    from modelcollapse.config import StudyError, load_study

    with pytest.raises(StudyError, match=r"^stop_when_collapsed: not with n_seeds \(90\) > "
                                         r"keep_seeds \(20\)"):
        load_study({**STUDY, "stop_when_collapsed": True})
    assert load_study({**STUDY, "stop_when_collapsed": True, "keep_seeds": 90}).n_seeds == 90


def test_kept_rows_spanning_blocks_are_every_kept_seeds_rows(tmp_path, blocks):
    """With keep_seeds 40 and blocks of 25, the kept rows come from two blocks (25 + 15
    seeds): all of them, in seed order, equal to the in-memory rows of those seeds."""
    streamed = mc.run({**STUDY, "keep_seeds": 40}, out=tmp_path / "s", plots=False)
    full = mc.run({**STUDY, "keep_seeds": 90}, out=tmp_path / "f", plots=False)
    kept = streamed.results
    assert sorted(kept.seed.unique()) == list(range(40))
    same = full.results[full.results.seed < 40].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), same, check_categorical=False)
