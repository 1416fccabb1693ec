"""The HTML report is self-contained and its collapse-profile table renders in Chromium."""

import re
import shutil
import subprocess
import sys

import pandas as pd
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
    # the practices section: replace's last risk vs accumulate's, paired by seed, is positive
    practices = re.search(r'<table id="practices">(.*?)</table>', page, re.S).group(1)
    replace_row = next(r for r in practices.split("<tr>") if ">replace<" in r)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", replace_row)
    assert float(cells[4].split()[0]) > 0
    assert (run_dir / "plots" / "tail_vs_synthetic_share.png").is_file()


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


def _hand_made_profile(columns):
    """A small profile in the collapse_profile schema, with strings that need escaping."""
    rows = []
    for k, (task, paradigm) in enumerate(columns):
        for d in range(1, 9):
            verdict = ("occurs", "does_not_occur", "inconclusive", "not_applicable")[(d + k) % 4]
            rows.append(dict(task=task, paradigm=paradigm, definition=d, name=f"def <{d}>",
                             verdict=verdict, statistic="ratio & <b>bold</b>",
                             value=1.5 * d if verdict != "not_applicable" else float("nan"),
                             low=1.0 * d, high=float("nan"), p_value=0.01,
                             reason="too few <seeds>" if verdict == "inconclusive" else "",
                             detail='"quoted" <script>alert(1)</script>'))
    return pd.DataFrame(rows)


def test_hand_made_profile_is_escaped_and_complete(run_dir, tmp_path):
    profile = _hand_made_profile([("linear_regression-synthetic", "replace"),
                                  ("linear_regression-synthetic", "accumulate")])
    page = write_report(run_dir, profile=profile, out=tmp_path / "r.html").read_text()
    assert "<script" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;" in page and "ratio &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    table = re.search(r'<table id="collapse-profile">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert len(rows) == 8
    cells = re.findall(r'<td class="verdict-(\w+)" title="([^"]*)">', table)
    assert len(cells) == 16
    assert {v for v, _ in cells} == {"occurs", "does_not_occur", "inconclusive",
                                     "not_applicable"}
    assert all(tip for _, tip in cells)
    assert table.count("✓") == sum(v == "occurs" for v, _ in cells)
    # inconclusive is its own symbol, not a ✗, and its reason is in the tooltip (escaped)
    assert table.count("?") >= sum(v == "inconclusive" for v, _ in cells)
    assert table.count("✗") == sum(v == "does_not_occur" for v, _ in cells)
    assert all("too few &lt;seeds&gt;" in tip for v, tip in cells if v == "inconclusive")


def test_report_without_profile_module_renders_a_note(run_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "modelcollapse.profile", None)  # import fails
    page = write_report(run_dir, out=tmp_path / "r.html").read_text()
    assert 'id="collapse-profile"' not in page and "not available" in page
    assert 'id="summary"' in page
