"""Verified checkpoints (issue 12, finding 1): every checkpoint file is covered by a SHA-256
checked on load; a damaged file is never used -- its unit is computed again from iteration 0,
with a one-line notice, and the resumed results are those of an uninterrupted run -- and a
damaged run.json (the run's identity) is refused in one line with the fix.

Interrupted runs are produced in this process, deterministically: a KeyboardInterrupt raised by
the on_iteration callback after a fixed number of iterations, with a checkpoint after every
iteration (max_overhead=1e9)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelcollapse.results.checkpoint as checkpoint
from modelcollapse.cli import app
from modelcollapse.config import load_study, study_hash
from modelcollapse.engine import run_study
from modelcollapse.results.checkpoint import (CHECKPOINT_DIR, CheckpointCorrupt,
                                              CheckpointMismatch, RunCheckpoints)
from modelcollapse.results.store import load_results

STUDY = """\
name: integrity
tasks:
  - task: kde
    task_params: {n_features: 2, n_samples: 25, n_test: 40}
paradigms: [replace, accumulate]
n_iterations: 5
n_seeds: 3
"""
N_ITER = 5
FINISHED, PARTIAL = "0-0-0", "0-0-1"  # replace: finished (result.npz); accumulate: stopped
LABEL = {FINISHED: "kde-synthetic, replace", PARTIAL: "kde-synthetic, accumulate"}


def _stop_after(n: int):
    calls = []

    def on_iteration(_t):
        calls.append(_t)
        if len(calls) == n:
            raise KeyboardInterrupt
    return on_iteration


def _interrupt(spec, run_dir: Path, key: str = "h") -> RunCheckpoints:
    """Run ``spec`` into ``run_dir`` and stop it in iteration 3 of the second unit: the first
    unit finished (result.npz), the second with a chain state and 3 pool segments."""
    ck = RunCheckpoints(run_dir, "run", key, max_overhead=1e9)  # a checkpoint every iteration
    ck.start()
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, checkpoints=ck, on_iteration=_stop_after(N_ITER + 4))
    return ck


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(study, the uninterrupted results, an interrupted run directory to copy)."""
    base = tmp_path_factory.mktemp("integrity")
    (base / "study.yaml").write_text(STUDY)
    spec = load_study(str(base / "study.yaml"))
    expected = run_study(spec)
    template = base / "template"
    ck = _interrupt(spec, template)
    assert (ck.directory / FINISHED / "result.npz").is_file()
    assert len(list((ck.directory / PARTIAL).glob("pool-*.npy"))) == 3
    return spec, expected, template


def _copy(setup, tmp_path: Path) -> tuple[object, pd.DataFrame, RunCheckpoints]:
    spec, expected, template = setup
    shutil.copytree(template, tmp_path / "run")
    return spec, expected, RunCheckpoints(tmp_path / "run", "run", "h", max_overhead=1e9)


def _segments(unit: Path) -> list[Path]:
    return sorted(unit.glob("pool-*.npy"))


def _flip(path: Path, offset: int, bit: int = 0x10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= bit
    path.write_bytes(bytes(data))


def _npy_data_offset(path: Path) -> int:
    with open(path, "rb") as fh:
        np.lib.format.read_magic(fh)
        np.lib.format.read_array_header_1_0(fh)
        return fh.tell()


def _flip_in_member(path: Path, member: str) -> None:
    """Flip one bit of the last value stored in a member of a .npz."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read(member)
    _flip(path, path.read_bytes().index(data) + len(data) - 2)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_members(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


# -- the damage, each to one file; returns that file (relative to the run directory) ----------

def flip_bit_in_pool_segment(ck):
    """One bit of the first value of the first pool segment (the attack of finding 1)."""
    path = _segments(ck.directory / PARTIAL)[0]
    _flip(path, _npy_data_offset(path) + 6)
    return path


def truncate_pool_segment(ck):
    path = _segments(ck.directory / PARTIAL)[1]
    path.write_bytes(path.read_bytes()[:-100])
    return path


def delete_pool_segment(ck):
    path = _segments(ck.directory / PARTIAL)[2]
    path.unlink()
    return path


def delete_pool_digests(ck):
    """state.npz rewritten (with a valid checksum of its own) without the pool checksums."""
    path = ck.directory / PARTIAL / "state.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k not in ("pool_digests", "__sha256__")}
    checkpoint._save_npz(path, arrays)
    return path


def flip_bit_in_state(ck):
    path = ck.directory / PARTIAL / "state.npz"
    _flip_in_member(path, "values.npy")
    return path


def truncate_state(ck):
    path = ck.directory / PARTIAL / "state.npz"
    path.write_bytes(path.read_bytes()[:-200])
    return path


def alter_result_values(ck):
    """result.npz rewritten as a valid .npz with altered values (the other attack of finding
    1): its zip CRCs are right, only its recorded checksum says the values changed."""
    path = ck.directory / FINISHED / "result.npz"
    members = _members(path)
    values = np.load(io.BytesIO(members["values.npy"]), allow_pickle=False)
    buf = io.BytesIO()
    np.save(buf, values * 1.01)
    members["values.npy"] = buf.getvalue()
    _write_members(path, members)
    return path


def flip_bit_in_result(ck):
    path = ck.directory / FINISHED / "result.npz"
    _flip_in_member(path, "values.npy")
    return path


def delete_result_digest(ck):
    path = ck.directory / FINISHED / "result.npz"
    members = _members(path)
    del members["__sha256__.npy"]
    _write_members(path, members)
    return path


DAMAGE = [flip_bit_in_pool_segment, truncate_pool_segment, delete_pool_segment,
          delete_pool_digests, flip_bit_in_state, truncate_state, alter_result_values,
          flip_bit_in_result, delete_result_digest]


def test_intact_checkpoints_verify_and_resume_without_notice(setup, tmp_path, capsys):
    spec, expected, ck = _copy(setup, tmp_path)
    assert ck.verify() == []
    calls = []
    resumed = run_study(spec, checkpoints=ck, on_iteration=calls.append)
    pd.testing.assert_frame_equal(resumed, expected)
    assert "notice" not in capsys.readouterr().err


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_damaged_file_is_never_used_and_its_unit_restarts(setup, tmp_path, capsys, damage,
                                                          monkeypatch):
    spec, expected, ck = _copy(setup, tmp_path)
    path = damage(ck)
    unit = path.parent.name
    where = f"{CHECKPOINT_DIR}/{unit}/{path.name}"

    problems = ck.verify()  # validate on the unfinished run: names the damaged file
    assert len(problems) == 1 and problems[0].startswith(where + ": "), problems
    assert path.exists() == (damage is not delete_pool_segment)  # verify changes nothing

    restored = {}  # unit -> the iteration it starts from
    real = checkpoint.UnitCheckpoint.load_state

    def recording(self):
        saved = real(self)
        restored[self.directory.name] = 0 if saved is None else int(saved[0]["n_done"])
        return saved
    monkeypatch.setattr(checkpoint.UnitCheckpoint, "load_state", recording)
    resumed = run_study(spec, checkpoints=ck)
    pd.testing.assert_frame_equal(resumed, expected)  # the uninterrupted results

    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"notice: {where} {problems[0].split(': ')[1].split(' (')[0]}; unit "
                   f"({LABEL[unit]}) restarts from iteration 0"], err
    # the damaged unit ran from iteration 0; the other was loaded (finished) or continued
    assert restored[unit] == 0
    assert restored.get(FINISHED) is None if unit == PARTIAL else restored[PARTIAL] == 3


def test_damaged_files_are_removed_once_noticed(setup, tmp_path, capsys):
    """The files of a unit that failed are removed with the notice: a run interrupted again
    before the unit checkpoints anew is not noticed twice, and verify finds nothing."""
    _, _, ck = _copy(setup, tmp_path)
    flip_bit_in_pool_segment(ck)
    alter_result_values(ck)
    assert len(ck.verify()) == 2
    assert ck.unit(0, 0, 1).load_state() is None and ck.unit(0, 0, 0).load_result() is None
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
    assert ck.verify() == []
    assert not [p for p in ck.directory.rglob("*") if p.is_file() and p.name != "run.json"]
    assert ck.unit(0, 0, 1).load_state() is None and ck.unit(0, 0, 0).load_result() is None
    assert capsys.readouterr().err == ""


def test_run_json_damage_refuses_resume_in_one_line(setup, tmp_path):
    spec, _, template = setup
    study_file = tmp_path / "study.yaml"
    study_file.write_text(STUDY)
    for damage in ("flip", "empty", "no checksum", "missing key"):
        run_dir = tmp_path / damage.replace(" ", "-")
        shutil.copytree(template, run_dir)
        run_json = run_dir / CHECKPOINT_DIR / "run.json"
        info = json.loads(run_json.read_text())
        info["hash"] = study_hash(spec)  # so that only the damage can refuse it
        info["sha256"] = checkpoint._identity("run", info["hash"])
        run_json.write_text(json.dumps(info))
        if damage == "flip":
            _flip(run_json, run_json.read_bytes().index(b'"hash": "') + 10, 0x01)
        elif damage == "empty":
            run_json.write_text("")
        elif damage == "no checksum":
            run_json.write_text(json.dumps({"kind": "run", "hash": info["hash"]}))
        else:
            run_json.write_text(json.dumps({"kind": "run", "sha256": info["sha256"]}))
        before = sorted((p, p.stat().st_mtime_ns) for p in run_dir.rglob("*"))
        res = CliRunner().invoke(app, ["run", str(study_file), "--out", str(run_dir),
                                       "--resume", "-q", "--no-plots"])
        assert res.exit_code == 2, (damage, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (damage, res.output)
        assert "run.json" in lines[0] and f"delete {run_dir / CHECKPOINT_DIR}" in lines[0], \
            lines[0]
        assert sorted((p, p.stat().st_mtime_ns) for p in run_dir.rglob("*")) == before
        problems = RunCheckpoints(run_dir).verify()
        assert len(problems) == 1 and problems[0].startswith(f"{CHECKPOINT_DIR}/run.json: ")
        with pytest.raises(CheckpointCorrupt):
            RunCheckpoints(run_dir, "run", info["hash"]).check()


def test_intact_run_json_of_another_study_is_a_mismatch_not_corruption(tmp_path):
    RunCheckpoints(tmp_path, "run", "abc").start()
    with pytest.raises(CheckpointMismatch) as info:
        RunCheckpoints(tmp_path, "run", "def").check()
    assert not isinstance(info.value, CheckpointCorrupt)
    RunCheckpoints(tmp_path, "run", "abc").check()
    assert RunCheckpoints(tmp_path).verify() == []


def test_cli_resume_after_a_flipped_bit_gives_the_uninterrupted_results(setup, tmp_path):
    """The attack of finding 1 through the CLI: a run interrupted with checkpoints, one bit of
    a pool segment flipped, ``run --resume``: the uninterrupted results and the notice."""
    spec, expected, _ = setup
    study_file = tmp_path / "study.yaml"
    study_file.write_text(STUDY)
    run_dir = tmp_path / "run"
    ck = _interrupt(spec, run_dir, key=study_hash(spec))
    path = flip_bit_in_pool_segment(ck)
    res = CliRunner().invoke(app, ["run", str(study_file), "--out", str(run_dir), "--resume",
                                   "-q", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert (f"notice: {CHECKPOINT_DIR}/{PARTIAL}/{path.name} failed its checksum; unit "
            f"({LABEL[PARTIAL]}) restarts from iteration 0") in res.output
    reference = tmp_path / "reference"
    from modelcollapse.results.store import write_run
    write_run(reference, expected, {})
    pd.testing.assert_frame_equal(load_results(run_dir), load_results(reference))


def _writes(spec, tmp_path) -> list[str]:
    """The checkpoint files an uninterrupted run writes, in order (atomic_write calls)."""
    ck = RunCheckpoints(tmp_path / "count", "run", "h", max_overhead=1e9)
    ck.start()
    names = []
    real = checkpoint.atomic_write
    checkpoint.atomic_write = lambda path, *a, **kw: (names.append(
        f"{Path(path).parent.name}/{Path(path).name}"), real(path, *a, **kw))
    try:
        run_study(spec, checkpoints=ck)
    finally:
        checkpoint.atomic_write = real
    return names


# a pool segment, then the state that records its checksum (the commit point); a result
WRITES = ["0-0-1/pool-000000000025.npy", "0-0-1/state.npz", "0-0-1/pool-000000000050.npy",
          "0-0-1/state.npz", "0-0-1/result.npz"]


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_a_kill_at_any_checkpoint_write_resumes_silently(setup, tmp_path, capsys, monkeypatch,
                                                         after):
    """Killed (KeyboardInterrupt) just before, or just after, each checkpoint write in turn --
    e.g. after a pool segment and before the state that records its checksum: nothing is
    damaged, so resuming prints no notice, verify finds nothing, and the results are those of
    an uninterrupted run."""
    spec, expected, _ = setup
    writes = _writes(spec, tmp_path)
    assert all(w in writes for w in WRITES), writes
    assert writes.index(WRITES[0]) < writes.index(WRITES[1])  # segment, then its commit
    real = checkpoint.atomic_write
    for k in range(len(writes)):
        ck = RunCheckpoints(tmp_path / f"run-{k}", "run", "h", max_overhead=1e9)
        ck.start()
        count = []

        def killed(path, *args, **kw):
            count.append(path)
            if len(count) == k + 1 and not after:
                raise KeyboardInterrupt
            real(path, *args, **kw)
            if len(count) == k + 1:
                raise KeyboardInterrupt
        monkeypatch.setattr(checkpoint, "atomic_write", killed)
        with pytest.raises(KeyboardInterrupt):
            run_study(spec, checkpoints=ck)
        monkeypatch.setattr(checkpoint, "atomic_write", real)
        assert not list(ck.directory.rglob("*.tmp")), k  # nothing half-written
        assert ck.verify() == [], (k, writes[k])
        capsys.readouterr()
        pd.testing.assert_frame_equal(run_study(spec, checkpoints=ck), expected)
        assert "notice" not in capsys.readouterr().err, (k, writes[k])


def test_units_without_run_json_are_discarded_by_a_fresh_start(setup, tmp_path):
    """Unit files left without a run.json have no known identity: a fresh start removes
    them (never resumed as another study's)."""
    _, _, template = setup
    run_dir = tmp_path / "run"
    shutil.copytree(template, run_dir)
    (run_dir / CHECKPOINT_DIR / "run.json").unlink()
    ck = RunCheckpoints(run_dir, "run", "other")
    assert not ck.exists()
    ck.start()
    assert sorted(p.name for p in ck.directory.iterdir()) == ["run.json"]


def test_checkpoint_npz_files_stay_plain_npz(setup, tmp_path):
    """The checksum is one more member: np.load reads the files as before, without pickle."""
    _, _, ck = _copy(setup, tmp_path)
    for path in ck.directory.rglob("*.npz"):
        with np.load(path, allow_pickle=False) as data:
            assert "__sha256__" in data.files
            assert all(data[k].dtype != object for k in data.files)


def test_resume_removes_the_temporary_files_of_cut_writes(setup, tmp_path):
    """A kill during a write leaves its temporary file (``.state.npz.<random>.tmp``): the
    check at resume removes it; verify does not count it as a problem."""
    _, _, ck = _copy(setup, tmp_path)
    tmp = ck.directory / PARTIAL / ".state.npz.abc123.tmp"
    tmp.write_bytes(b"cut short")
    assert ck.verify() == []
    ck.check()
    assert not tmp.exists() and (ck.directory / PARTIAL / "state.npz").is_file()
