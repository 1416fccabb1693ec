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


@pytest.fixture(scope="module")
def practices_dir(tmp_path_factory):
    """A run that configures a practice (a ratio cap): the report has a Practices section."""
    out = tmp_path_factory.mktemp("report") / "practices"
    res = CliRunner().invoke(app, [
        "run", "gerstgrasser2024-linear-regression", "--out", str(out), "-q",
        "--set", "n_seeds=8", "--set", "n_iterations=4", "--set",
        "paradigms=[replace, accumulate, {name: accumulate, curation: "
        "[{policy: ratio_cap, max_ratio: 1}]}]"])
    assert res.exit_code == 0, res.output
    return out


def test_run_writes_a_self_contained_report(run_dir):
    page = (run_dir / "report.html").read_text()
    assert 'id="collapse-profile"' in page and 'id="profile-cards"' in page
    assert "<link" not in page and 'src="http' not in page and "<script" not in page
    images = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(images) >= 2  # the task's metrics and the provenance plot
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert (run_dir / "plots" / "provenance.png").is_file()
    assert "theory" in page  # linear regression has closed forms to overlay
    # no practice configured (replace and accumulate only): no Practices section, no tail plot
    assert "Practices" not in page and 'id="practices"' not in page
    assert not (run_dir / "plots" / "tail_vs_synthetic_share.png").exists()


def test_practices_section_when_a_practice_is_configured(practices_dir):
    page = (practices_dir / "report.html").read_text()
    assert "<h2>Practices" in page
    # replace's last risk vs accumulate's, paired by seed, is positive
    practices = re.search(r'<table id="practices">(.*?)</table>', page, re.S).group(1)
    replace_row = next(r for r in practices.split("<tr>") if ">replace<" in r)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", replace_row)
    assert float(cells[4].split()[0]) > 0
    assert (practices_dir / "plots" / "tail_vs_synthetic_share.png").is_file()


def test_practices_configured_reads_paradigm_settings():
    from modelcollapse.report.html import practices_configured

    plain = {"paradigms": [{"name": "replace", "curation": [], "real_arrival": 0,
                            "scraping": False, "synthetic_growth": None}],
             "synthetic_growth": {"kind": "constant"}}
    assert not practices_configured([plain])
    for key, value in [("curation", [{"policy": "verify"}]), ("real_arrival", 5),
                       ("scraping", True), ("synthetic_growth", {"kind": "linear"})]:
        study = {**plain, "paradigms": [{**plain["paradigms"][0], key: value}]}
        assert practices_configured([plain, study]), key
    assert practices_configured([{**plain, "synthetic_growth": {"kind": "geometric"}}])


def test_report_command_rewrites_and_escapes(run_dir, tmp_path):
    res = CliRunner().invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 2


def _hand_made_profile(columns):
    """A small profile in the collapse_profile schema, with strings that need escaping."""
    rows = []
    for k, (task, paradigm) in enumerate(columns):
        for d in range(1, 9):
            verdict = ("occurs", "does_not_occur", "inconclusive", "not_applicable")[(d + k) % 4]
            rows.append(dict(task=task, paradigm=paradigm, definition=d, name=f"def <{d}>",
                             verdict=verdict, statistic="ratio & <b>bold</b>",
                             value=1.5 * d if verdict != "not_applicable" else float("nan"),
                             low=1.0 * d, high=float("nan"), threshold=2.0, p_value=0.01,
                             test="paired t-test",
                             reason="too few <seeds>" if verdict == "inconclusive" else "",
                             detail='"quoted" <script>alert(1)</script>'))
    return pd.DataFrame(rows)


def _wide_profile():
    """15 (task, paradigm) columns with long labels: the table that overflowed (issue 13)."""
    paradigms = ["replace", "accumulate", "accumulate+detect-r0.9+geometric",
                 "accumulate+detect-r0.9-fpr0.05-label+cap1+arrival5+scraping+linear",
                 "accumulate+w0.618"]
    return _hand_made_profile([(task, p) for task in ("gaussian-synthetic", "discrete-zipf",
                                                      "kde-wine-with-a-rather-long-label")
                               for p in paradigms])


#: Appended to a copy of the report: records what overflows horizontally into the DOM.
MEASURE = """<script>
const w = window.innerWidth, bad = [];
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.right > w + 1 || el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0
      && getComputedStyle(el).overflowX !== 'visible')
    bad.push(el.tagName + '#' + el.id + '.' + el.className + ' ' + Math.round(r.right)
             + ' ' + el.scrollWidth + '/' + el.clientWidth);
}
document.body.setAttribute('data-measure', JSON.stringify(
  {inner: w, scroll: document.documentElement.scrollWidth, bad: bad.slice(0, 10)}));
</script>"""


def _measure(page, tmp_path, width):
    """(innerWidth, document scrollWidth, overflowing elements) of ``page`` in Chromium."""
    import html
    import json

    probe = tmp_path / f"probe{width}.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / f'ud{width}'}",
                          f"--window-size={width},900", "--hide-scrollbars", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-measure="([^"]*)"', dom)
    assert found, dom[:500]
    m = json.loads(html.unescape(found.group(1)))
    return m["inner"], m["scroll"], m["bad"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (CI installs it)")
@pytest.mark.parametrize("width", [1280, 720])  # a laptop; about an A4 page's printable width
def test_nothing_overflows_horizontally(run_dir, practices_dir, tmp_path, width):
    pages = [write_report(run_dir, profile=_wide_profile(), out=tmp_path / "wide.html"),
             practices_dir / "report.html"]
    for page in pages:
        inner, scroll, bad = _measure(page, tmp_path, width)
        assert inner == width
        assert scroll <= inner and not bad, (page.name, scroll, bad)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (CI installs it)")
def test_profile_renders_in_chromium_and_prints(run_dir, tmp_path):
    page = write_report(run_dir)
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60).stdout
    table = re.search(r'<table id="collapse-profile"[^>]*>(.*?)</table>', dom, re.S)
    assert table, dom[:500]
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1).split("<tbody>")[1], re.S)
    assert len(rows) == 2  # a row per (task, paradigm)
    for row in rows:  # a name cell + one cell per definition
        assert len(re.findall(r'class="verdict-', row)) == 8
    cards = dom.split('id="profile-cards"')[1]
    assert cards.count('<div class="card">') == 2 and cards.count("<li ") == 16
    shot, pdf = tmp_path / "shot.png", tmp_path / "page.pdf"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
                   capture_output=True, timeout=60)
    assert shot.is_file() and shot.stat().st_size > 20_000
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile3'}",
                    f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri()],
                   capture_output=True, timeout=60)
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_hand_made_profile_is_escaped_and_complete(run_dir, tmp_path):
    profile = _hand_made_profile([("linear_regression-synthetic", "replace"),
                                  ("linear_regression-synthetic", "accumulate")])
    page = write_report(run_dir, profile=profile, out=tmp_path / "r.html").read_text()
    assert "<script" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;" in page and "ratio &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    table = re.search(r'<table id="collapse-profile"[^>]*>(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert len(rows) == 2
    cells = re.findall(r'<td class="verdict-(\w+)" title="([^"]*)">(.*?)</td>', table)
    assert len(cells) == 16
    assert {v for v, _, _ in cells} == {"occurs", "does_not_occur", "inconclusive",
                                        "not_applicable"}
    # every cell says what it means in visible text: its symbol and its word
    words = {"occurs": "✓<small>occurs<", "does_not_occur": "✗<small>does not occur<",
             "inconclusive": "?<small>inconclusive<", "not_applicable": "–<small>not applicable<"}
    assert all(words[v] in text for v, _, text in cells)
    # the cards write out each verdict: statistic = value [interval], threshold, p, reason
    cards = page.split('id="profile-cards"')[1].split("<h2>")[0]
    items = re.findall(r'<li class="verdict-(\w+)">(.*?)</li>', cards, re.S)
    assert len(items) == 16
    for verdict, text in items:
        visible = re.sub(r"<[^>]+>", " ", text)
        if verdict != "not_applicable":
            assert re.search(r"ratio &amp; &lt;b&gt;bold&lt;/b&gt; = [\d.]+ \[[\d.]+, inf\]; "
                             r"threshold 2; adjusted p = 0.01", visible), visible
            assert "paired t-test" in visible
        if verdict == "inconclusive":
            assert "too few &lt;seeds&gt;" in visible


def test_report_without_profile_module_renders_a_note(run_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "modelcollapse.profile", None)  # import fails
    page = write_report(run_dir, out=tmp_path / "r.html").read_text()
    assert 'id="collapse-profile"' not in page and "not available" in page
    assert 'id="summary"' in page
