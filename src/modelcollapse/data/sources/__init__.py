"""One module per real dataset: NAME, DESCRIPTION, SOURCE, LICENSE, SIZE and
``build(out_dir, source=None) -> counts`` (writes the outputs into ``out_dir``)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path


class DataUnavailable(RuntimeError):
    """A dataset's system package (or a Python package needed to decode it) is missing.

    The message is one line and contains the exact command that fixes it."""


def require_module(module: str, pip_name: str, dataset: str):
    """Import ``module`` or raise DataUnavailable with the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataUnavailable(f"{dataset}: the Python package {pip_name!r} is needed; "
                              f"install it with: pip install {pip_name}") from None


def run_tool(cmd: list[str], cwd: Path, *, timeout: float = 300) -> subprocess.CompletedProcess | None:
    """Run an external tool; None if it is not installed or fails (caller explains)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc if proc.returncode == 0 else None


# they import the helpers above
from . import austen, brown, fashion_mnist, smollm2, wehi, wehi_conformers  # noqa: E402

__all__ = ["DataUnavailable", "require_module", "run_tool", "austen", "brown", "fashion_mnist",
           "smollm2", "wehi", "wehi_conformers"]
