"""A local Ray sweep stays on this machine (issue 12, finding 9): no socket outside loopback.

Two independent checks on ``modelcollapse sweep --executor ray`` run in a subprocess:

* every Python process of the run (the driver, Ray's dashboard process and agents, the Ray
  workers) carries an audit hook (a ``sitecustomize`` on ``PYTHONPATH``, inherited by the
  processes Ray starts) that records each ``socket.connect`` / ``bind`` / ``sendto`` and each
  name lookup whose address is not loopback -- a probe caught by try/except inside Ray (the
  cloud-metadata requests are) is recorded too;
* while the sweep runs, the sockets of all its processes, the C++ ones (GCS, raylet) included,
  are listed with psutil: every listening and connected address must be loopback.

The hook sees only Python-level sockets, and the listing only what is open when it looks; what
neither sees (a short-lived socket from C++ code) is not verified here.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelcollapse.engine.executors import _ray_offline_env

try:
    import psutil
except ImportError:
    psutil = None
try:
    import ray  # noqa: F401
except ImportError:
    ray = None

ROOT = Path(__file__).resolve().parents[1]

HOOK = r'''
import os, sys

def _outside(address):
    """The host of a socket address or lookup if it is not loopback / a unix socket."""
    import ipaddress
    if isinstance(address, (tuple, list)) and address and isinstance(address[0], str):
        host = address[0]
    elif isinstance(address, str) and not address.startswith("/"):
        host = address
    else:
        return None  # unix socket path, netlink (pid, groups), abstract socket bytes, None
    if host in ("localhost", "") or host.startswith("localhost."):
        return None if host else "<any interface>"
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host  # a name to resolve
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return None if ip.is_loopback else host

def _hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
        address = args[0]
        if isinstance(address, bytes):
            address = address.decode(errors="replace")
    else:
        return
    outside = _outside(address)
    if outside is not None:
        with open(os.environ["MC_NET_LOG"], "a") as fh:
            fh.write(f"{os.getpid()} {event} {outside!r} {' '.join(sys.argv)[:200]}\n")

if os.environ.get("MC_NET_LOG"):
    sys.addaudithook(_hook)
'''


def _loopback(address) -> bool:
    if not address:
        return True
    ip = ipaddress.ip_address(address.ip.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _sockets(root: "psutil.Process", seen: set) -> None:
    """Add (process name, status, local, remote) of every inet socket of ``root`` and its
    descendants to ``seen``."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for proc in procs:
        try:
            for conn in proc.net_connections(kind="inet"):
                seen.add((proc.name(), conn.status, conn.laddr or None, conn.raddr or None))
        except psutil.Error:
            pass


def test_the_offline_environment_is_set_for_ray_and_restored(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "169.254.169.254")
    with _ray_offline_env():
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
        assert os.environ["RAY_USAGE_STATS_PROMPT_ENABLED"] == "0"
        assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
        assert os.environ["HTTP_PROXY"].startswith("http://127.0.0.1:")
        assert os.environ["NO_PROXY"] == "" and "http_proxy" not in os.environ
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    assert os.environ["http_proxy"] == "http://proxy.example:3128"
    assert os.environ["NO_PROXY"] == "169.254.169.254"


@pytest.mark.skipif(ray is None or psutil is None, reason="needs ray and psutil")
def test_a_local_ray_sweep_opens_no_socket_outside_loopback(tmp_path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "net.log"
    env = dict(os.environ, MC_NET_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(hook_dir), os.environ.get("PYTHONPATH", "")]))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "modelcollapse", "sweep",
                             str(ROOT / "examples" / "sweep.yaml"), "--executor", "ray",
                             "--jobs", "2", "--out", str(tmp_path / "sweep"), "-q",
                             "--no-plots"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: set = set()
    root = psutil.Process(proc.pid)
    try:
        while proc.poll() is None:
            _sockets(root, seen)
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert (tmp_path / "sweep" / "results.parquet").is_file()
    assert seen, "no socket of the Ray processes was seen: the listing did not work"
    outside = sorted(str(s) for s in seen if not (_loopback(s[2]) and _loopback(s[3])))
    assert outside == [], outside
    attempts = log.read_text().splitlines() if log.exists() else []
    assert attempts == [], "\n".join(attempts)
