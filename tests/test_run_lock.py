"""The run lock (issue 12, finding 8), tested with other PROCESSES: a second process is refused
while the first holds it; a killed holder's lock is taken at once; a lock file naming a live
process that does not hold the lock (a reused PID) does not block; of several processes racing
for a stale lock exactly one wins; a forked worker does not keep its dead parent's lock; an empty
or corrupt lock file or run.json gives one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.results.store import LOCK_FILE, RunLock, RunLocked, lock_holder

#: take the lock of argv[1]: print "held" and keep it until stdin closes, or print "refused"
TAKE = """\
import sys
from modelcollapse.results.store import RunLock, RunLocked
try:
    lock = RunLock(sys.argv[1]).__enter__()
except RunLocked as exc:
    print("refused", exc, flush=True)
    sys.exit(0)
print("held", flush=True)
sys.stdin.read()
"""


def _take(directory: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TAKE, str(directory)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _first_line(proc: subprocess.Popen) -> str:
    return proc.stdout.readline().strip()


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait()
    proc.stdout.close()


def test_another_process_holding_the_lock_refuses_this_one(tmp_path):
    holder = _take(tmp_path / "run")
    try:
        assert _first_line(holder) == "held"
        with pytest.raises(RunLocked, match=f"another run \\(pid {holder.pid} on "):
            RunLock(tmp_path / "run").__enter__()
        assert lock_holder(tmp_path / "run").startswith(f"pid {holder.pid} on ")
        other = _take(tmp_path / "run")  # and a third process too
        assert _first_line(other).startswith("refused")
        other.wait()
        other.stdout.close()
        # the CLI: one line, exit 2, nothing written
        res = CliRunner().invoke(app, ["run", "gerstgrasser2024-linear-regression", "--out",
                                       str(tmp_path / "run"), "--set", "n_seeds=2", "--set",
                                       "n_iterations=2", "-q", "--no-plots"])
        assert res.exit_code == 2 and "another run" in res.output
        assert len(res.output.strip().splitlines()) == 1
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_FILE]
    finally:
        _release(holder)
    assert lock_holder(tmp_path / "run") is None
    with RunLock(tmp_path / "run"):
        pass


def test_the_lock_of_a_killed_holder_is_taken_at_once(tmp_path):
    holder = _take(tmp_path / "run")
    assert _first_line(holder) == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    holder.stdin.close()
    assert (tmp_path / "run" / LOCK_FILE).exists()  # left behind by the kill
    with RunLock(tmp_path / "run") as lock:  # not stale-by-PID: the kernel released it
        assert lock.held()
        record = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert record["pid"] == os.getpid() and record["start"] and record["host"]


@pytest.mark.parametrize("record", ["pid", "json", "", "{not json", "\x00\xff"])
def test_a_lock_file_naming_a_live_process_that_does_not_hold_it_does_not_block(tmp_path,
                                                                                 record):
    """A PID reused by another live process (here: this test's parent process, alive), written
    as the old lock format or as a holder record, or an empty / corrupt lock file."""
    live = os.getppid()
    (tmp_path / "run").mkdir()
    text = {"pid": str(live), "json": json.dumps({"host": os.uname().nodename, "pid": live,
                                                 "start": "1", "since": "then"})}.get(record,
                                                                                      record)
    (tmp_path / "run" / LOCK_FILE).write_text(text)
    taker = _take(tmp_path / "run")
    assert _first_line(taker) == "held"
    _release(taker)


def test_of_processes_racing_for_a_stale_lock_exactly_one_wins(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_text("999999999")  # a dead holder's lock file
    racers = [_take(tmp_path / "run") for _ in range(4)]
    try:
        answers = sorted(_first_line(p).split()[0] for p in racers)
        assert answers == ["held", "refused", "refused", "refused"]
    finally:
        for proc in racers:
            _release(proc)


FORK = """\
import os, sys, time
from modelcollapse.results.store import RunLock
lock = RunLock(sys.argv[1]).__enter__()
child = os.fork()
if child == 0:  # a worker: lives on after its parent (without the test's output pipe)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    time.sleep(120)
    os._exit(0)
print(child, flush=True)
os.kill(os.getpid(), 9)  # the parent is killed, the worker lives
"""


def test_a_forked_worker_does_not_keep_the_lock_of_its_killed_parent(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FORK, str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60)
    worker = int(proc.stdout.split()[0])
    try:
        os.kill(worker, 0)  # the worker is alive
        with RunLock(tmp_path / "run"):
            pass
    finally:
        os.kill(worker, signal.SIGKILL)


def test_an_empty_or_corrupt_run_json_is_one_line_with_the_fix(tmp_path):
    study = ["gerstgrasser2024-linear-regression", "--set", "n_seeds=2", "--set",
             "n_iterations=2", "-q", "--no-plots"]
    for content in ("", "{", "[1, 2]", '{"kind": "run"}'):
        out = tmp_path / f"run{len(content)}"
        (out / ".checkpoints").mkdir(parents=True)
        (out / ".checkpoints" / "run.json").write_text(content)
        res = CliRunner().invoke(app, ["run", *study, "--out", str(out), "--resume"])
        assert res.exit_code == 2, res.output
        line, = res.output.strip().splitlines()
        assert line.startswith("error:") and "delete" in line and "None None" not in line


def test_a_lock_file_removed_by_its_releasing_holder_as_we_lock_it_is_not_trusted(tmp_path,
                                                                                  monkeypatch):
    """The holder releases (unlinks the file) between our open and our flock: we then hold a
    lock on a file nobody else can see; RunLock must notice and lock the file at the path."""
    import fcntl

    real_flock, calls = fcntl.flock, []

    def flock_after_release(fd, op):
        if not calls:  # the first attempt: the holder's exit removes the file now
            (tmp_path / "run" / LOCK_FILE).unlink()
        calls.append(op)
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_release)
    with RunLock(tmp_path / "run") as lock:
        assert os.fstat(lock.fd).st_ino == os.stat(tmp_path / "run" / LOCK_FILE).st_ino
        monkeypatch.setattr(fcntl, "flock", real_flock)
        other = _take(tmp_path / "run")
        assert _first_line(other).startswith("refused")
        other.wait()
        other.stdout.close()
        other.stdin.close()
