"""tests/conftest.py ends the test process itself: it must keep pytest's exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(HERE / "test_linalg.py"), *args],
                          capture_output=True, cwd=HERE.parent).returncode


def test_the_exit_status_is_pytests():
    assert _status("-k", "non_positive") == 0      # passed
    assert _status("-k", "no_such_test_name") == 5  # nothing collected
