"""Run directories as readers and writers meet them (issue 12, findings 4, 7, 10): readers verify
the checksums before reading and refuse a modified run in one line; a truncated, missing or
non-object manifest is one line; validate reports each state; run-time failures (an --out that
cannot be written, a full disk, a missing optional dependency) are one line, leave nothing
half-written and nothing that blocks the next run, and --resume completes after a full disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import modelcollapse as mc
from modelcollapse.cli import app
from modelcollapse.results.checkpoint import CHECKPOINT_DIR
from modelcollapse.results import store

STUDY = ["gerstgrasser2024-linear-regression", "--set", "n_seeds=2", "--set", "n_iterations=3",
         "-q"]
MODIFIED = "results.parquet does not match its checksum in manifest.json; the run was modified"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line(res, *needles, code=2):
    assert res.exit_code == code, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("states") / "run"
    res = _invoke("run", *STUDY, "--out", out)  # with the report
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


READERS = [["summary"], ["profile"], ["profile", "--format", "csv"], ["report"], ["ledger"]]


@pytest.mark.parametrize("reader", READERS, ids=" ".join)
def test_readers_read_a_verified_run(copy, reader):
    res = _invoke(*reader, copy)
    assert res.exit_code == 0, res.output
    assert _invoke("validate", copy).exit_code == 0  # (report re-seals what it rewrote)


@pytest.mark.parametrize("reader", READERS, ids=" ".join)
def test_readers_refuse_a_corrupted_but_readable_results_file(copy, reader):
    frame = pd.read_parquet(copy / "results.parquet")
    frame.loc[frame.index[-1], "value"] += 1.0  # a plausible, readable, wrong table
    frame.to_parquet(copy / "results.parquet", index=False)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    _one_line(_invoke(*reader, copy), f"{copy}: {MODIFIED}")
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    with pytest.raises(mc.RunError, match="does not match its checksum"):
        mc.open_run(copy)
    _one_line(_invoke("validate", copy), "results.parquet does not match its checksum")


@pytest.mark.parametrize("damage", ["truncated", "missing", "list", "files"])
@pytest.mark.parametrize("reader", [*READERS, ["validate"]], ids=" ".join)
def test_a_damaged_manifest_is_one_line(copy, reader, damage):
    path = copy / "manifest.json"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "missing":
        path.unlink()
    elif damage == "list":
        path.write_text("[]")
    else:
        path.write_text(json.dumps({**json.loads(path.read_text()), "files": [1]}))
    line = _one_line(_invoke(*reader, copy))
    assert "JSONDecodeError" not in line and "Traceback" not in line
    assert "manifest.json" in line
    with pytest.raises(mc.RunError):
        mc.open_run(copy)


def test_validate_reports_each_state(copy, tmp_path):
    res = _invoke("validate", copy)
    assert res.exit_code == 0 and "valid run" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line(_invoke("validate", empty), "no modelcollapse run here")
    manifest = json.loads((copy / "manifest.json").read_text())  # unsealed
    (copy / "manifest.json").write_text(json.dumps({**manifest, "sealed": False}))
    assert store.run_state(copy) == store.UNSEALED
    res = _invoke("validate", copy)
    assert res.exit_code == 1 and "stopped while writing its results" in res.output
    assert f"--resume --out {copy}" in res.output
    with pytest.raises(mc.RunError, match="not finished"):
        mc.open_run(copy)
    (copy / "manifest.json").unlink()  # results.parquet alone
    assert store.run_state(copy) == store.DAMAGED
    _one_line(_invoke("validate", copy), "no manifest.json")
    _one_line(_invoke("run", *STUDY, "--out", copy, "--resume"), "no manifest.json")


def _interrupted(out: Path) -> None:
    """A run of STUDY stopped in its second unit (Ctrl-C): the first unit's result saved."""
    def stop(p):
        if p.iterations == 4:
            raise KeyboardInterrupt
    from modelcollapse.api import RunInterrupted

    with pytest.raises(RunInterrupted):
        mc.run(STUDY[0], out=out, overrides=["n_seeds=2", "n_iterations=3"], plots=False,
               progress=stop)


def test_validate_checks_the_checkpoints_of_an_interrupted_run(tmp_path):
    out = tmp_path / "run"
    _interrupted(out)
    assert store.run_state(out) == store.INTERRUPTED
    res = _invoke("validate", out)
    assert res.exit_code == 1 and "unfinished: interrupted" in res.output, res.output
    results = sorted((out / CHECKPOINT_DIR).glob("*/result.npz"))
    assert results
    data = bytearray(results[0].read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    results[0].write_bytes(bytes(data))
    from modelcollapse.results.checkpoint import RunCheckpoints

    if hasattr(RunCheckpoints(out, "run", "x"), "verify"):
        _one_line(_invoke("validate", out), "unfinished (interrupted)", results[0].parent.name)


def test_stale_temporary_files_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    _interrupted(out)
    stale = [out / ".results.parquet.abc123.tmp",
             next((out / CHECKPOINT_DIR).glob("*/")) / ".state.npz.xyz.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    run = mc.run(STUDY[0], out=out, overrides=["n_seeds=2", "n_iterations=3"], plots=False,
                 resume=True)
    assert not list(out.rglob("*.tmp")) and run.manifest["sealed"] is True


# -- run-time failures: one line, nothing half-written, nothing that blocks the next run -------

def test_out_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    _one_line(_invoke("run", *STUDY, "--out", tmp_path / "file" / "run"), "cannot write there")
    _one_line(_invoke("run", *STUDY, "--out", tmp_path / "file"), "not a directory")
    assert (tmp_path / "file").read_text() == "x"


def test_out_in_a_directory_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):  # as a read-only directory answers (even to root)
        if self.name == "run":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    _one_line(_invoke("run", *STUDY, "--out", tmp_path / "run"), "cannot write there",
              "Permission denied")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_in_a_read_only_directory_is_one_line(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        _one_line(_invoke("run", *STUDY, "--out", tmp_path / "ro" / "run"), "cannot write")
    finally:
        (tmp_path / "ro").chmod(0o755)


def _full_disk(monkeypatch, file: str, code: int = errno.ENOSPC) -> None:
    """Make the rename of ``file`` into place fail as a full disk (``code``) does."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == file:
            raise OSError(code, os.strerror(code), str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("file, code", [("results.parquet", errno.ENOSPC),
                                        ("summary.csv", errno.EFBIG),
                                        ("result.npz", errno.ENOSPC),
                                        ("report.html", errno.ENOSPC)])
def test_a_full_disk_is_one_line_and_resume_completes(finished, tmp_path, monkeypatch, file,
                                                      code):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        _full_disk(patch, file, code)
        line = _one_line(_invoke("run", *STUDY, "--out", out), os.strerror(code),
                         f"--resume --out {out}")
    assert f"writing {file}" in line
    assert not list(out.rglob("*.tmp")) and not (out / file).exists()  # nothing half-written
    assert store.run_state(out) in (store.INTERRUPTED, store.UNSEALED)
    res = _invoke("run", *STUDY, "--out", out, "--resume")
    assert res.exit_code == 0, res.output
    for name in ("results.parquet", "summary.csv", "profile.csv"):
        assert (out / name).read_bytes() == (finished / name).read_bytes()
    assert _invoke("validate", out).exit_code == 0


NO_TORCH = """\
import sys
class NoTorch:  # torch not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
from modelcollapse.cli import app
app(sys.argv[1:])
"""


def test_a_missing_optional_dependency_is_one_line_and_blocks_nothing(tmp_path):
    out = tmp_path / "run"
    args = ["run", "gerstgrasser2024-vae", "--out", str(out), "--set", "n_seeds=2", "--set",
            "n_iterations=2", "-q", "--no-plots"]
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 2, proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("error:") and "pip install 'modelcollapse[torch]'" in line
    assert not (out / CHECKPOINT_DIR).exists() and not out.exists()  # the next run: not blocked


ATOMIC = """\
import os, sys
from pathlib import Path
from modelcollapse.results.store import atomic_write

def write(tmp):
    tmp.write_bytes(b"half of the new")
    os.kill(os.getpid(), 9)  # killed in the middle of writing
atomic_write(Path(sys.argv[1]), write)
"""


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("the old, complete file\n")
    proc = subprocess.run([sys.executable, "-c", ATOMIC, str(target)], timeout=120)
    assert proc.returncode == -9
    assert target.read_text() == "the old, complete file\n"
    assert [p.name for p in store.clean_temporary(tmp_path)][0].startswith(".summary.csv.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]
