"""Session-wide pytest hooks.

The test process leaves the interpreter with ``os._exit`` once pytest has finished everything
it does (results, summary, cache), with pytest's own exit status.  Three tests start a local Ray
instance in this process (``--executor ray``), and Ray's C++ core worker can crash with SIGSEGV
while the interpreter tears its modules down after ``ray.shutdown()`` (ray-project/ray#885,
#36885 and others): a CI run once passed every test and then exited 139.  Nothing of ours runs
at that point, so skipping the teardown loses nothing but that crash.
"""

from __future__ import annotations

import os
import sys

import pytest

_status: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if not _status:  # pytest stopped before a session ran (usage error, --help): its own exit
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status[-1])
