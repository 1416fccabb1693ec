"""The manifest of a run or sweep directory: what ran, with what, from which code and data.

``run_manifest`` and ``sweep_manifest`` build the dict that ``store.write_run`` writes as
``DIR/manifest.json`` (``store.seal_run`` then adds the checksum of every file).  Keys:

==================  ===========================================================================
study, study_hash   the resolved study (every default filled in) and its hash (a run)
sweep, sweep_hash,  the sweep file, overrides and grid, its hash, and per grid point its values,
points, executor    study, hash, profile specs and risk metrics; the executor (a sweep)
risk_metrics        task label -> the metric that is its risk
profile_specs       task label -> which metric measures what for the collapse profile
provenance          task label -> ``Task.provenance``: data files (path, SHA-256), a family
                    plug-in's origin
versions            python, modelcollapse, numpy, scipy, scikit-learn, pandas, pyarrow, pydantic,
                    matplotlib, torch (installed versions; torch is not imported for this)
device              platform, machine, CPU count; torch's CUDA / MPS devices if the run imported
                    torch
plugins             module -> {"distribution", "version"} of every task, family, paradigm or
                    curation-policy module the study names that is not modelcollapse's own
git                 {"commit", "dirty"} of the modelcollapse source tree, or None when it is not
                    a git checkout
created, elapsed_seconds, command
files               name -> {"sha256", "bytes"} (``rows`` for results.parquet): ``store.seal_run``
sealed              false while only results.parquet is recorded (``store.write_run``: the run's
                    results are committed, its other files not yet written), true once
                    ``store.seal_run`` lists every file; absent in manifests written before the
                    key existed (finished runs).  See ``store`` for the states of a run directory
==================  ===========================================================================
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

__all__ = ["run_manifest", "sweep_manifest", "versions", "device", "plugins", "git_state",
           "point_maps", "profile_settings"]

PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "pydantic", "matplotlib",
            "torch")
IMPORT_PATH = re.compile(r"^([A-Za-z_][\w.]*):[A-Za-z_][\w.]*$")


def versions() -> dict[str, str]:
    """Python and the installed versions of modelcollapse and ``PACKAGES`` (from the installed
    distributions' metadata: nothing is imported)."""
    out = {"python": platform.python_version()}
    for pkg in ("modelcollapse", *PACKAGES):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def device() -> dict[str, Any]:
    """Where the run computed: platform, machine and CPU count; and, only if torch is already
    imported (a torch family ran in this process), its CUDA and MPS devices."""
    out: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                           "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            cuda = torch.cuda.is_available()
            out["torch"] = {
                "cuda_available": cuda, "cuda": torch.version.cuda,
                "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                if cuda else [],
                "mps_available": bool(getattr(torch.backends, "mps", None)
                                      and torch.backends.mps.is_available())}
        except Exception as exc:  # a broken driver must not lose the results
            out["torch"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def git_state(timeout: float = 2.0) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding the modelcollapse package (dirty:
    its files differ from the commit), or None when the package is not a tracked file of a
    git checkout (an installed wheel), git is missing or slow (``timeout`` seconds)."""
    here = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                              timeout=timeout, check=True).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", "__init__.py")  # the package itself is tracked
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _named(study: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """(field name, string) of every string value in a resolved study."""
    if isinstance(study, dict):
        for k, v in study.items():
            yield from _named(v, str(k))
    elif isinstance(study, list):
        for v in study:
            yield from _named(v, key)
    elif isinstance(study, str):
        yield key, study


def _module_of(registry: Any, name: str) -> str | None:
    """The module a registry entry lives in, without importing a lazy one."""
    if registry is None or name not in registry:
        return None
    entry = registry._entries.get(name)  # a lazy "module:attr" string, or the object
    return entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__",
                                                                          None)


def plugins(studies: list[dict]) -> dict[str, dict[str, str | None]]:
    """module -> {"distribution", "version"} of the plug-ins the resolved ``studies`` use: the
    task, family, paradigm and curation-policy entries they name (registered names and
    ``module:attribute`` import paths) whose module is not modelcollapse's own.  A module no
    installed distribution provides (a file beside the study) has distribution and version
    None."""
    from .. import registry

    by_field = {"task": registry.tasks, "family": getattr(registry, "families", None),
                "name": registry.paradigms, "policy": getattr(registry, "policies", None)}
    modules = set()
    for study in studies:
        for key, value in _named(study):
            match = IMPORT_PATH.match(value)
            module = match.group(1) if match else _module_of(by_field.get(key), value)
            if module and module.partition(".")[0] != "modelcollapse":
                modules.add(module)
    if not modules:
        return {}
    providers = metadata.packages_distributions()
    out = {}
    for module in sorted(modules):
        dists = providers.get(module.partition(".")[0], [])
        dist = dists[0] if dists else None
        try:
            version = metadata.version(dist) if dist else None
        except metadata.PackageNotFoundError:
            version = None
        out[module] = {"distribution": dist, "version": version}
    return out


def _consistent(maps: list[dict]) -> dict:
    """Keys whose value is the same in every map that has them."""
    out: dict = {}
    clash = set()
    for m in maps:
        for k, v in m.items():
            if k in out and out[k] != v:
                clash.add(k)
            out.setdefault(k, v)
    return {k: v for k, v in out.items() if k not in clash}


def _environment(studies: list[dict], elapsed: float, command: list[str] | None) -> dict:
    return {"versions": versions(), "device": device(), "plugins": plugins(studies),
            "git": git_state(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "elapsed_seconds": round(elapsed, 3),
            "command": list(sys.argv if command is None else command)}


def _risks(specs: dict) -> dict[str, str]:
    return {task: spec["risk"] for task, spec in specs.items()}


def run_manifest(resolved: dict, study_hash: str, attrs: dict, *, elapsed: float,
                 command: list[str] | None = None) -> dict:
    """The manifest of a run of a study (``resolved``: ``Study.resolved()``, ``study_hash``:
    ``config.study_hash``) whose results have ``attrs`` (``run_study``'s ``frame.attrs``:
    ``profile_specs`` and ``provenance`` per task); ``elapsed`` in seconds; ``command``
    default ``sys.argv``."""
    specs = attrs.get("profile_specs") or {}
    return {"study": resolved, "study_hash": study_hash, "risk_metrics": _risks(specs),
            "profile_specs": specs, "provenance": attrs.get("provenance") or {},
            **_environment([resolved], elapsed, command)}


def sweep_manifest(grid, attrs: dict, *, file: str, overrides: list[str], executor: dict,
                   elapsed: float, command: list[str] | None = None) -> dict:
    """The manifest of a sweep ``grid`` (``engine.sweep.Sweep``) whose results have ``attrs``
    (``run_sweep``'s: per point, the task -> profile spec map, and provenance when it gives
    it); ``executor`` = {"kind", "jobs", "address"}.  Top-level ``profile_specs``,
    ``risk_metrics`` and ``provenance`` hold the task entries that agree across points."""
    points = grid.manifest_points()
    specs = list(attrs.get("profile_specs") or [{} for _ in points])
    provenance = attrs.get("provenance") or [{} for _ in points]
    if isinstance(provenance, dict):  # one map for the whole sweep
        provenance = [provenance for _ in points]
    for point, spec, origin in zip(points, specs, provenance):
        point["profile_specs"] = spec
        point["risk_metrics"] = _risks(spec)
        point["provenance"] = origin
    common = _consistent(specs)
    return {"sweep": {"name": grid.name, "file": str(file), "overrides": list(overrides),
                      "grid": grid.grid},
            "sweep_hash": grid.hash, "points": points, "risk_metrics": _risks(common),
            "profile_specs": common, "provenance": _consistent(list(provenance)),
            "executor": executor,
            **_environment([p["study"] for p in points], elapsed, command)}


def point_maps(manifest: dict) -> tuple[dict, dict]:
    """(point -> profile specs, point -> risk metrics) of a sweep manifest ({} for a run)."""
    points = manifest.get("points") or []
    return ({int(p["point"]): p.get("profile_specs") or {} for p in points},
            {int(p["point"]): p.get("risk_metrics") or {} for p in points})


def profile_settings(manifest: dict) -> dict:
    """The profile settings a run or sweep was analysed with (the first point's in a sweep:
    ``profile`` is not a grid key the profile varies by)."""
    study = manifest.get("study") or ((manifest.get("points") or [{}])[0].get("study") or {})
    return study.get("profile") or {}
