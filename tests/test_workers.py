"""Worker processes (``--jobs 2``): none outlives its parent, Ctrl-C prints one line, a killed
worker is one line (issue 12, findings 6 and 7).

Each test runs ``modelcollapse run --jobs 2`` in a subprocess on a study of two units: a tiny one
(its worker then sits idle -- the orphan of finding 6 was an idle worker) and one that runs for
many minutes, and acts once both workers exist and the tiny unit is saved.  Processes are found
through /proc (Linux) or psutil; no timing is asserted beyond the 10 s deadline of the issue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

STUDY = """\
name: workers
tasks:
  - {task: gaussian, task_params: {n_samples: 10, n_features: 2}, label: small}
  - {task: kde, task_params: {n_samples: 1000, n_features: 5}, label: big}
paradigms: [replace]
n_seeds: 20
n_iterations: 3000
"""
WAIT_S = 180  # setting up (imports, a loaded machine) may be slow; the run itself takes hours


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a live process, None if gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def _children(pid: int) -> dict[int, int]:
    """{child pid: start time} of ``pid``."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] == pid:
                out[int(entry)] = st[2]
    return out


def _alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start


def _start(tmp_path: Path) -> tuple[subprocess.Popen, dict[int, int], Path]:
    """Start the run; return (process, its two workers, run directory) once both workers exist
    and the tiny unit's result is checkpointed."""
    (tmp_path / "study.yaml").write_text(STUDY)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "modelcollapse", "run", "study.yaml",
                             "--jobs", "2", "--out", str(out), "-q", "--no-plots"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True, preexec_fn=_sigint_default)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.returncode} {proc.stderr.read()}")
        workers = _children(proc.pid)
        saved = list((out / ".checkpoints").glob("*/result*")) if out.exists() else []
        if len(workers) == 2 and saved:
            return proc, workers, out
        time.sleep(0.2)
    _cleanup(proc, _children(proc.pid))
    pytest.fail("the workers did not start")


def _sigint_default() -> None:
    """In the child: Ctrl-C as in a terminal, even when these tests run in the background
    (``nohup ... &`` ignores SIGINT, and a Python started so keeps ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cleanup(proc: subprocess.Popen, workers: dict[int, int]) -> None:
    for pid, start in workers.items():
        if _alive(pid, start):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _wait_dead(workers: dict[int, int], seconds: float) -> dict[int, int]:
    deadline = time.monotonic() + seconds
    alive = dict(workers)
    while alive and time.monotonic() < deadline:
        alive = {p: s for p, s in alive.items() if _alive(p, s)}
        time.sleep(0.1)
    return alive


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    proc, workers, _ = _start(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        alive = _wait_dead(workers, 10)
        assert not alive, f"workers alive 10 s after their parent was killed: {alive}"
    finally:
        _cleanup(proc, workers)


def test_ctrl_c_with_workers_is_one_line(tmp_path):
    proc, workers, out = _start(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        _, stderr = proc.communicate(timeout=WAIT_S)
        lines = _error_lines(stderr)
        assert proc.returncode == 130, stderr
        assert len(lines) == 1, stderr
        assert lines[0].startswith("error: interrupted") and "--resume" in lines[0]
        assert not _wait_dead(workers, 10)
        assert (out / ".checkpoints").is_dir()
    finally:
        _cleanup(proc, workers)


def test_a_killed_worker_is_one_line_and_keeps_the_checkpoints(tmp_path):
    proc, workers, out = _start(tmp_path)
    try:
        os.kill(max(workers), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=WAIT_S)
        lines = _error_lines(stderr)
        assert proc.returncode == 2, stderr
        assert len(lines) == 1, stderr
        assert lines[0].startswith("error: a worker process died (killed or out of memory) "
                                   "while running unit (")
        assert lines[0].endswith("run the same command with --resume")
        assert list((out / ".checkpoints").glob("*/result*"))  # the finished unit is kept
        assert not _wait_dead(workers, 10)
    finally:
        _cleanup(proc, workers)


def test_ctrl_c_while_waiting_on_workers_is_taken_at_a_safe_point():
    """``deferred_interrupt``: SIGINT only records itself (no KeyboardInterrupt inside the
    code between checks, e.g. concurrent.futures' lock handling); ``check()`` raises it, and so
    does leaving the block when it came after the last check; the old handler is restored."""
    from modelcollapse.engine.executors import deferred_interrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt() as check:
            check()  # nothing yet
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            steps.append("after the signal")  # reached: the handler did not raise
            check()
            steps.append("not reached")
    assert steps == ["after the signal"]
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            steps.append("block ends")
    assert steps[-1] == "block ends"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, before)
