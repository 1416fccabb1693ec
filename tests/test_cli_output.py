"""Output that never truncates (issue 13): tables print every value in full when stdout is not a
terminal and wrap (never "…") in an 80-column terminal; ``--format csv|json`` on every command
that prints a table gives the same rows, parseable; ``--version``; ``run -q`` prints nothing;
plain progress lines when stderr is not a terminal; ``presets`` says what each preset needs;
``--help`` imports no heavy module."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

import modelcollapse
from modelcollapse import cli_output
from modelcollapse.cli import app

ELLIPSIS = "…"

SMALL = """
name: small-output-study-with-a-long-name
tasks:
  - {task: gaussian, label: a-rather-long-task-label-for-wrapping, task_params: {n_samples: 20, n_features: 2, n_test: 50}}
paradigms: [replace, accumulate, accumulate-subsample]
n_seeds: 3
n_iterations: 3
"""


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("output")
    study = root / "small.yaml"
    study.write_text(textwrap.dedent(SMALL).lstrip())
    out = root / "run"
    result = invoke("run", study, "--out", out, "--no-plots", "-q")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return out


@pytest.fixture
def narrow(monkeypatch):
    """stdout as an 80-column terminal (rich's own wrapping decides)."""
    buffer = io.StringIO()
    monkeypatch.setattr(cli_output, "console",
                        Console(file=buffer, width=80, force_terminal=True, color_system=None))
    return buffer


def preset_names() -> list[str]:
    from modelcollapse.config import list_presets

    return list(list_presets())


# -- never truncate ---------------------------------------------------------------------------

def test_presets_not_a_terminal_prints_full_names_and_sentences():
    result = invoke("presets")
    assert result.exit_code == 0, result.stderr
    assert ELLIPSIS not in result.stdout
    lines = result.stdout.splitlines()
    for name in preset_names():
        assert any(line.startswith(name + " ") for line in lines), name
    # the first sentence in full, not cut at "Fig." or "Sec."
    assert "(arXiv 2503.03150, Sec. 4, Fig. 4): categorical distributions refitted" in result.stdout
    assert not any(line != line.rstrip() for line in lines)  # plain text, no padding


def test_presets_in_an_80_column_terminal_wraps_and_keeps_names(narrow):
    result = invoke("presets")
    assert result.exit_code == 0, result.stderr
    text = narrow.getvalue()
    assert ELLIPSIS not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in preset_names():
        assert name in text, name  # whole, on one line, to copy


def test_presets_lists_requirements():
    records = {r["name"]: r for r in json.loads(invoke("presets", "--format", "json").stdout)}
    assert records["gerstgrasser2024-lm"]["extras"].split() == ["torch", "text"]
    assert records["gerstgrasser2024-lm"]["data"] == "austen"
    assert records["gerstgrasser2024-diffusion"]["extras"].split() == ["torch", "chem"]
    assert records["gerstgrasser2024-diffusion"]["data"] == "wehi-conformers"
    assert records["gerstgrasser2024-vae"]["extras"] == "torch"
    assert records["practices-vae"]["extras"] == "torch"  # its own tasks, not its parent's
    assert records["shumailov2024-vocabulary"] == {**records["shumailov2024-vocabulary"],
                                                   "extras": "", "data": "austen"}
    assert records["kazdan2024-gaussian"]["extras"] == records["kazdan2024-gaussian"]["data"] == ""
    assert "Needs" in records["gerstgrasser2024-lm"]["description"]  # the full description
    table = invoke("presets").stdout
    line = next(x for x in table.splitlines() if x.startswith("gerstgrasser2024-lm "))
    assert "modelcollapse[torch,text]" in line and "data prepare austen" in line


def test_summary_profile_ledger_untruncated(run_dir, narrow):
    for command in ("summary", "profile", "ledger"):
        narrow.seek(0)
        narrow.truncate()
        result = invoke(command, run_dir)
        assert result.exit_code == 0, (command, result.stderr)
        text = narrow.getvalue()
        assert ELLIPSIS not in text, (command, text)
        assert max(len(line) for line in text.splitlines()) <= 80, command
        assert "accumulate-subsample" in text, command


def test_summary_profile_ledger_plain(run_dir):
    for command in ("summary", "profile", "ledger"):
        result = invoke(command, run_dir)  # not a terminal: plain, one row per line
        assert result.exit_code == 0
        assert ELLIPSIS not in result.stdout
        assert "a-rather-long-task-label-for-wrapping" in result.stdout


def test_summary_plain_values_match_csv(run_dir):
    table = invoke("summary", run_dir).stdout
    rows = list(csv.DictReader(io.StringIO(invoke("summary", run_dir, "-f", "csv").stdout)))
    assert {r["paradigm"] for r in rows} == {"replace", "accumulate", "accumulate-subsample"}
    for r in rows:
        final, low, high = float(r["final"]), float(r["final_low"]), float(r["final_high"])
        assert f"{final:.3g} ± {(high - low) / 2:.2g}" in table


def test_verify_names_are_whole_in_80_columns(monkeypatch, narrow):
    import pandas as pd

    import modelcollapse.checks as checks

    long = "gaussian_unbiased_median_variance_cornish_fisher_and_more"  # > half of 80
    frame = pd.DataFrame({"check": [long, "short"], "predicted": [1.0, 2.0],
                          "simulated": [1.01, 2.02], "std_error": [0.01, 0.02],
                          "max_z": [1.0, 1.0], "p_value": [0.5, 0.6], "passed": [True, True],
                          "level": [0.01, 0.01]})
    monkeypatch.setattr(checks, "run_verify", lambda seed=0, on_check=None: frame)
    result = invoke("verify")
    assert result.exit_code == 0, result.stderr
    text = narrow.getvalue()
    assert ELLIPSIS not in text and long in text and "2/2 checks passed" in text
    records = json.loads(invoke("verify", "--format", "json").stdout)
    assert [r["check"] for r in records] == [long, "short"]
    frame.loc[1, "passed"] = False
    assert invoke("verify", "--format", "csv").exit_code == 1


def test_data_list_and_theory_untruncated(narrow):
    for args in (("data", "list"), ("theory",)):
        narrow.seek(0)
        narrow.truncate()
        result = invoke(*args)
        assert result.exit_code == 0, result.stderr
        assert ELLIPSIS not in narrow.getvalue(), args


# -- --format -----------------------------------------------------------------------------------

def test_formats_parse_and_match(run_dir):
    for command in ("summary", "profile", "ledger"):
        as_json = json.loads(invoke(command, run_dir, "--format", "json").stdout)
        as_csv = list(csv.DictReader(io.StringIO(invoke(command, run_dir, "-f", "csv").stdout)))
        assert len(as_json) == len(as_csv) > 0, command
        assert [str(r["paradigm"]) for r in as_json] == [r["paradigm"] for r in as_csv]
    profile = json.loads(invoke("profile", run_dir, "-f", "json").stdout)
    assert {"definition", "verdict", "paradigm"} <= set(profile[0])
    presets = json.loads(invoke("presets", "-f", "json").stdout)
    assert [r["name"] for r in presets] == preset_names()
    rows = list(csv.DictReader(io.StringIO(invoke("presets", "-f", "csv").stdout)))
    assert [r["name"] for r in rows] == preset_names()
    data = json.loads(invoke("data", "list", "-f", "json").stdout)
    assert {"name", "prepared", "license", "path"} <= set(data[0])
    funcs = json.loads(invoke("theory", "-f", "json").stdout)
    assert funcs and all(set(f) == {"function", "what"} for f in funcs)
    curve = json.loads(invoke("theory", "accumulate_risk", "--set", "n_features=10", "--set",
                              "n_samples=100", "--set", "noise_variance=1", "--iterations", "3",
                              "-f", "json").stdout)
    table = invoke("theory", "accumulate_risk", "--set", "n_features=10", "--set",
                   "n_samples=100", "--set", "noise_variance=1", "--iterations", "3").stdout
    assert [r["iteration"] for r in curve] == [0, 1, 2]
    for r in curve:
        assert f"{r['accumulate_risk']:.6g}" in table


def test_ledger_csv_path_still_written(run_dir, tmp_path):
    target = tmp_path / "ledger.csv"
    result = invoke("ledger", run_dir, "--csv", target)
    assert result.exit_code == 0 and target.is_file()
    assert f"wrote {target}" in result.stdout.replace("\n", "")
    target2 = tmp_path / "l2.csv"
    result = invoke("ledger", run_dir, "--csv", target2, "--format", "json")
    json.loads(result.stdout)  # stdout stays parseable
    assert target2.read_text() == target.read_text()


@pytest.mark.parametrize("args", [("presets",), ("theory",), ("data", "list")])
def test_bad_format_is_one_line(args):
    result = invoke(*args, "--format", "xml")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --format: 'xml' is not allowed; allowed: table, csv, json"]


# -- conventions ------------------------------------------------------------------------------

def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"modelcollapse {modelcollapse.__version__}\n"


def test_completion_enabled_and_help_clean():
    result = invoke("--help")
    assert "--install-completion" in result.stdout and "--version" in result.stdout
    for text in (result.stdout, invoke("data", "--help").stdout):
        commands = text.split("Commands:")[1]
        assert "..." not in commands  # command summaries whole (short_help), not cut
    run_help = invoke("run", "--help").stdout
    assert "<bool>" not in run_help and "--plots / --no-plots" in run_help
    assert "╭" not in run_help  # plain help, no boxes


def test_run_quiet_prints_nothing(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text("task: gaussian\ntask_params: {n_samples: 20, n_features: 2, n_test: 20}\n"
                     "n_seeds: 2\nn_iterations: 2\n")
    result = invoke("run", study, "--out", tmp_path / "o", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    loud = invoke("run", study, "--out", tmp_path / "o2", "--no-plots")
    assert "wrote" in loud.stdout


def test_plain_progress_lines(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(cli_output, "err_console", Console(file=err, force_terminal=False))
    with cli_output.progress_reporter(False, first_after=0.0, every_seconds=1e9) as update:
        for done in range(0, 301):
            update(SimpleNamespace(name="study", iterations=done, total_iterations=300,
                                   units=0, total_units=0, stage="", done=0, total=0))
        # then the finishing stages (api.Progress.stage): one line as each starts
        for stage, done, total in [("analysis", 0, 1), ("analysis", 1, 1), ("figures", 0, 3),
                                   ("figures", 1, 3), ("figures", 3, 3), ("report", 1, 1)]:
            update(SimpleNamespace(name="study", iterations=300, total_iterations=300, units=0,
                                   total_units=0, stage=stage, done=done, total=total))
    lines = err.getvalue().splitlines()
    *lines, analysis, figures, report = lines
    assert 10 <= len(lines) <= 11, lines
    assert lines[-1].startswith("study: 300/300 model-fitting iterations, ")
    assert lines[0].startswith("study: 30/300 model-fitting iterations, ")
    assert analysis.startswith("study: summary and collapse profile (0/1), ")
    assert figures.startswith("study: figures (0/3), ")
    assert report.startswith("study: report (1/1), ")
    assert all(line.endswith(" s") for line in lines + [analysis, figures, report])
    lines += [analysis, figures, report]
    with cli_output.progress_reporter(True, first_after=0.0) as update:  # quiet
        update(SimpleNamespace(name="s", iterations=300, total_iterations=300, units=0,
                               total_units=0, stage="", done=0, total=0))
    assert len(err.getvalue().splitlines()) == len(lines)


# -- start-up ----------------------------------------------------------------------------------

HEAVY = ("pandas", "numpy", "torch", "matplotlib", "pyarrow", "scipy")


def imported(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "modelcollapse", *args],
                          capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


def test_help_imports_no_heavy_module():
    modules = imported("--help")
    assert "typer" in modules  # the parse worked
    assert not modules & {*HEAVY, "pydantic"}, modules & {*HEAVY, "pydantic"}


def test_presets_imports_no_heavy_module():
    modules = imported("presets")
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_validate_not_a_terminal_is_plain_json():
    result = invoke("validate", "gerstgrasser2024-diffusion")
    assert result.exit_code == 0, result.stderr
    body, _, tail = result.stdout.rpartition("valid study")
    resolved = json.loads(body)
    assert resolved["description"].endswith("5 seeds.")  # whole, one JSON string
    assert ELLIPSIS not in result.stdout and "hash" in tail
    assert any(len(line) > 200 for line in body.splitlines())  # not re-wrapped at 80
