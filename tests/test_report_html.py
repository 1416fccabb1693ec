"""The HTML report is self-contained and its collapse-profile table renders in Chromium."""

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from modelcollapse.cli import app
from modelcollapse.report.html import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    res = CliRunner().invoke(app, [
        "run", "gerstgrasser2024-linear-regression", "--out", str(out), "-q",
        "--set", "n_seeds=8", "--set", "n_iterations=6",
        "--set", "paradigms=[replace, accumulate]"])
    assert res.exit_code == 0, res.output
    return out


def test_run_writes_a_self_contained_report(run_dir):
    page = (run_dir / "report.html").read_text()
    assert 'id="collapse-profile"' in page
    assert "<link" not in page and 'src="http' not in page and "<script" not in page
    images = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(images) >= 2  # the task's metrics and the provenance plot
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert (run_dir / "plots" / "provenance.png").is_file()
    assert "theory" in page  # linear regression has closed forms to overlay


def test_report_command_rewrites_and_escapes(run_dir, tmp_path):
    res = CliRunner().invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 2


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (CI installs it)")
def test_profile_table_renders_in_chromium(run_dir, tmp_path):
    page = write_report(run_dir)
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60).stdout
    table = re.search(r'<table id="collapse-profile">(.*?)</table>', dom, re.S)
    assert table, dom[:500]
    body = table.group(1).split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 8  # the eight definitions
    for row in rows:  # a name cell + one cell per (task, paradigm)
        assert len(re.findall(r'class="verdict-', row)) == 2
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=60)
    assert shot.is_file() and shot.stat().st_size > 20_000
