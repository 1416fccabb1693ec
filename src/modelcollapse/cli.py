"""Command line: ``modelcollapse run | sweep | presets | validate | summary | profile | ledger |
report | theory | verify | data``.

Bad input prints one line ``error: <field>: <what is allowed>`` and exits with code 2, before
anything is written.  Tables never cut a cell (``cli_output.show``); every command that prints a
table takes ``--format table|csv|json`` (csv and json on stdout).  Importing this module is light
(typer and rich only): pandas, numpy, pydantic and the engine load inside the commands that use
them, so ``modelcollapse --help`` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from . import cli_output as _out
from .cli_output import check_format, emit_frame, emit_records, show

app = typer.Typer(add_completion=True, no_args_is_help=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="A laboratory for model-data feedback loops (model collapse).")

#: the --format option of every command that prints a table
FormatOption = Annotated[str, typer.Option(
    "--format", "-f", metavar="FORMAT", help="table (fits the terminal, plain text in full when not a terminal) "
    "| csv | json (on stdout)")]


def _fail(message: str, code: int = 2) -> None:
    _out.fail(message, code)


def _print(*args, **kwargs) -> None:
    """``console.print``; when stdout is not a terminal, lines are not re-wrapped at 80."""
    if not _out.console.is_terminal:
        kwargs.setdefault("soft_wrap", True)
    _out.console.print(*args, **kwargs)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        sys.stdout.write(f"modelcollapse {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="print the version and exit")] = False) -> None:
    """A laboratory for model-data feedback loops (model collapse)."""


def _fmt(x: float, lo: float, hi: float) -> str:
    if x != x:
        return "nan"
    if abs(x) == float("inf"):
        return "inf"
    if lo != lo:
        return f"{x:.3g}"
    return f"{x:.3g} ± {(hi - lo) / 2:.2g}"


def _unit_label(frame):
    """The task column, prefixed by the grid point in a sweep ("point 2 (seed=1) · task")."""
    if "point" not in frame:
        return frame.task.astype(str)
    grid = [c for c in frame.columns if str(c).startswith("grid.")]

    def label(row):
        values = ", ".join(f"{c.split('.')[-1]}={row[c]}" for c in grid)
        return f"point {row['point']} ({values}) · {row['task']}"

    return frame.apply(label, axis=1)


def print_summary(summary, title: str) -> None:
    """The final-vs-initial table, grouped by task (fits an 80-column terminal)."""
    table = Table(title=title, title_justify="left", box=None, header_style="bold",
                  pad_edge=False)
    for col in ("task / paradigm", "iteration 0", "final", "final vs initial"):
        table.add_column(col, no_wrap=True, justify="left" if col.startswith("task") else "right")
    for task, rows in summary.groupby(_unit_label(summary), sort=False):
        contrast = ("final - initial" if "contrast" in rows and rows.contrast.iloc[0] ==
                    "difference" else "mean final / mean initial")
        table.add_row(f"[bold]{escape(str(task))}[/] [dim]({escape(rows.metric.iloc[0])}; "
                      f"{contrast})[/]", "", "", "")
        for r in rows.itertuples():
            table.add_row(f"  {escape(str(r.paradigm))}", _fmt(r.initial, r.initial_low, r.initial_high),
                          _fmt(r.final, r.final_low, r.final_high),
                          _fmt(r.ratio, r.ratio_low, r.ratio_high))
    show(table)


@app.command(short_help="Run a study into a run directory.")
def run(
    study: Annotated[Optional[str], typer.Argument(
        help="preset name or study YAML file (default: the 'default' preset on real data)")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="DIR", help="run directory (default: runs/<study name>, never overwritten)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="override a study field, e.g. --set n_seeds=50 "
        "--set task_params.n_samples=200 (repeatable)")] = None,
    jobs: Annotated[int, typer.Option(
        metavar="N", help="local: worker processes (>= 1); ray: CPUs of the local Ray instance "
        "it starts")] = 1,
    executor: Annotated[str, typer.Option(
        help="local | ray (the results do not depend on it)")] = "local",
    address: Annotated[Optional[str], typer.Option(
        help="ray: the cluster to attach to (auto, HOST:6379 or ray://HOST:10001; default "
        "$RAY_ADDRESS, else a local instance)")] = None,
    plots: Annotated[bool, typer.Option(
        "--plots/--no-plots", help="write PNG plots and report.html")] = True,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="print nothing but errors (no progress, table or 'wrote' line; "
        "--resume of a finished run still says so)")
    ] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="continue the interrupted run in --out (default runs/<study name>) from "
        "its last checkpoint, or finish one stopped while writing its results; the same study "
        "and --set options are required. A finished run there: says it is complete (exit 0); "
        "nothing there: runs normally")] = False,
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", metavar="SIZE", help="memory budget, e.g. 4GiB or 512MB (default: 80% of physical "
        "memory); a run estimated to need more is refused before anything is written")] = None,
) -> None:
    """Run a study; write DIR/results.parquet, manifest.json, summary.csv, profile.csv,
    report.html and plots/.

    A run checkpoints as it goes (DIR/.checkpoints, removed at the end); after an interruption
    (Ctrl-C, a kill, a crash), the same command with --resume continues it, with results
    identical to an uninterrupted run.

    Examples: modelcollapse run; modelcollapse run kazdan2024-gaussian --set n_seeds=500
    """
    with _api_errors(), _out.progress_reporter(quiet) as progress:
        from .api import run as run_api

        result = run_api(study, out=out, overrides=set_ or [], jobs=jobs, plots=plots,
                         resume=resume, progress=progress, max_memory=max_memory,
                         executor=executor, address=address)
    manifest = result.manifest
    if result.note:  # --resume of a finished run: said even with -q (nothing was run)
        _print(result.note, highlight=False, soft_wrap=True, markup=False)
        return
    if quiet:
        return
    spec = manifest["study"]
    print_summary(result.summary, f"{spec['name']}: risk at the last model-fitting "
                  f"iteration vs iteration 0 (mean ± 95% CI half-width over "
                  f"{spec['n_seeds']} seeds)")
    print_profile(result.profile, f"{spec['name']}: collapse profile (Schaeffer et al. "
                  "2025, Sec. 2)")
    _print(f"wrote {result.directory}/ ({manifest['files']['results.parquet']['rows']} "
           f"rows, {manifest['elapsed_seconds']:.1f} s)", highlight=False, soft_wrap=True)


@contextmanager
def _api_errors() -> Iterator[None]:
    """The API's exceptions as ``error: <one line>`` and exit 2 (an interruption: exit 130 with
    the --resume hint)."""
    from .api import RunInterrupted
    from .config import StudyError

    try:
        yield
    except RunInterrupted as exc:
        _fail(f"interrupted; {exc.directory}/.checkpoints holds the progress: run the same "
              f"command with --resume --out {exc.directory} to continue", code=130)
    except (StudyError, ValueError) as exc:
        _fail(str(exc))


@app.command(short_help="Run a grid of studies into one results store.")
def sweep(
    file: Annotated[str, typer.Argument(
        help="sweep file: a study file (extends: allowed) plus grid: a mapping of study fields "
        "to lists of values")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="DIR", help="run directory (default: runs/<name>, never overwritten)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="override a field of the base study, e.g. --set n_seeds=50 "
        "(repeatable)")] = None,
    jobs: Annotated[int, typer.Option(
        help="local: worker processes; ray: CPUs of the local Ray instance it starts")] = 1,
    executor: Annotated[str, typer.Option(help="local | ray")] = "local",
    address: Annotated[Optional[str], typer.Option(
        help="ray: the cluster to attach to (auto, HOST:6379 or ray://HOST:10001; default "
        "$RAY_ADDRESS, else a local instance)")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="continue the interrupted sweep in --out from its checkpoints (or "
        "finish it; a finished sweep: says it is complete)")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="print nothing but errors (no progress, no 'wrote' line)")] = False,
    plots: Annotated[bool, typer.Option(
        "--plots/--no-plots", help="write PNG plots and report.html")] = True,
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", metavar="SIZE", help="memory budget, e.g. 4GiB or 512MB (default: 80% of physical "
        "memory); a run estimated to need more is refused before anything is written")] = None,
) -> None:
    """Run a grid of studies into one results store: DIR/results.parquet (the store's columns
    plus point and grid.<key>), manifest.json (every point's study and hash), and, by grid
    point, summary.csv, profile.csv and report.html.

    Example: modelcollapse sweep examples/sweep.yaml --jobs 2
    """
    with _api_errors(), _out.progress_reporter(quiet) as progress:
        from .api import sweep as sweep_api

        result = sweep_api(file, out=out, overrides=set_ or [], jobs=jobs, executor=executor,
                           address=address, resume=resume, plots=plots, progress=progress,
                           max_memory=max_memory)
    manifest = result.manifest
    if result.note:  # --resume of a finished sweep: said even with -q (nothing was run)
        _print(result.note, highlight=False, soft_wrap=True, markup=False)
        return
    if quiet:
        return
    n_units = sum(len(p["study"]["tasks"]) * len(p["study"]["paradigms"])
                  for p in manifest["points"])
    _print(f"wrote {result.directory}/ ({len(manifest['points'])} points, {n_units} "
                  f"units, {manifest['files']['results.parquet']['rows']} rows, "
                  f"{manifest['elapsed_seconds']:.1f} s; summary.csv, profile.csv"
                  f"{' and report.html' if plots else ''} by grid point)", highlight=False)


@app.command(short_help="Write a run's report.html.")
def report(directory: Annotated[Path, typer.Argument(help="run directory")],
           jobs: Annotated[int, typer.Option(
               metavar="N", min=1, help="processes drawing the figures (>= 1)")] = 1,
           all_figures: Annotated[bool, typer.Option(
               "--all-figures", help="a sweep: draw the metric figures of every grid point "
               "(default: the first 12)")] = False) -> None:
    """Write DIR/report.html: one self-contained page with the collapse profile, the summary,
    the plots (with theory where it applies), provenance and the resolved study (the run's
    files are verified against their checksums first; figures whose data did not change are
    not redrawn)."""
    with _api_errors():
        from .api import open_run

        path = open_run(directory).report(jobs=jobs, all_figures=all_figures)
    _print(f"wrote {path}", highlight=False)


#: built-in task -> the extras it needs (pip install 'modelcollapse[EXTRA]')
TASK_EXTRAS = {"vae": ("torch",), "lm": ("torch", "text"), "diffusion": ("torch", "chem"),
               "sft": ("llm",)}

#: abbreviations a description's first sentence does not end at
_ABBREVIATIONS = ("al", "Sec", "Fig", "Figs", "Thm", "Eq", "Def", "Defs", "e.g", "i.e", "cf",
                  "vs", "resp", "approx", "Ref", "No", "Vol", "Tab", "App", "Prop", "Lem")


def _first_sentence(text: str) -> str:
    """The text up to its first sentence end (". " not after an abbreviation such as Fig.)."""
    import re

    start = 0
    for match in re.finditer(r"\. ", text):
        word = text[start:match.start()].rsplit(None, 1)[-1] if text[:match.start()].strip() else ""
        if word.split("(")[-1] not in _ABBREVIATIONS and not word[-1:].isdigit():
            return text[:match.start() + 1]
    return text


def _prepared_datasets() -> set[str]:
    """Names of the datasets ``modelcollapse data prepare NAME`` builds (read from the source
    modules' ``NAME = "..."`` lines, without importing them)."""
    import re
    from importlib.util import find_spec

    names = set()
    spec = find_spec("modelcollapse.data.sources")  # located, not executed (it imports numpy)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(folder).glob("*.py")):
            match = re.search(r'^NAME = "([^"]+)"', path.read_text(encoding="utf-8"), re.M)
            if match:
                names.add(match.group(1))
    return names


def preset_records() -> list[dict]:
    """One dict per shipped preset: name, extras (the pip extras its tasks need), data (the
    datasets to prepare first), summary (the description's first sentence), description (in
    full).  Read from the YAML files alone (``extends:`` followed), no study validation."""
    from importlib import resources

    import yaml

    raw = {}
    for entry in resources.files("modelcollapse.presets").iterdir():
        if entry.name.endswith(".yaml"):
            raw[entry.name[:-5]] = yaml.safe_load(entry.read_text()) or {}

    def resolved(name: str, depth: int = 0) -> dict:
        data = dict(raw.get(name) or {})
        parent = data.get("extends")
        if isinstance(parent, str) and parent in raw and depth < 10:
            data = {**resolved(parent, depth + 1), **data}
        return data

    prepared = _prepared_datasets()
    records = []
    for name in sorted(raw, key=lambda n: n + ".yaml"):  # the order of list_presets
        data = resolved(name)
        base_params = data.get("task_params") or {}
        tasks = data.get("tasks") or [{"task": data.get("task"), "task_params": base_params}]
        extras: list[str] = []
        datasets: list[str] = []
        for t in tasks:
            t = t if isinstance(t, dict) else {"task": t}
            params = {**base_params, **(t.get("task_params") or {})}
            extras.extend(e for e in TASK_EXTRAS.get(str(t.get("task")), ()) if e not in extras)
            for dataset in (params.get("dataset"), params.get("pretrained")):  # sft: a model
                if isinstance(dataset, str) and dataset in prepared and dataset not in datasets:
                    datasets.append(dataset)
        text = " ".join(str(data.get("description", "")).split())
        records.append({"name": name, "extras": " ".join(extras), "data": " ".join(datasets),
                        "summary": _first_sentence(text), "description": text})
    return records


@app.command(short_help="List the shipped studies and what each needs.")
def presets(format: FormatOption = "table") -> None:
    """List the studies shipped with modelcollapse, with what each needs: an extra (pip install
    'modelcollapse[EXTRA]') and data to prepare (modelcollapse data prepare NAME).
    --format csv/json adds the full description."""
    check_format(format)
    records = preset_records()
    if format != "table":
        emit_records(records, format)
        return
    table = Table("preset", "needs", "description (first sentence; full: --format json)",
                  box=None, header_style="bold", pad_edge=False)
    for r in records:
        needs = []
        if r["extras"]:
            needs.append("pip install 'modelcollapse[" + ",".join(r["extras"].split()) + "]'")
        needs.extend(f"modelcollapse data prepare {d}" for d in r["data"].split())
        table.add_row(escape(r["name"]), escape("; ".join(needs)) or "-",
                      escape(r["summary"]))
    show(table)


@app.command(short_help="Check a study file or a run directory.")
def validate(study: Annotated[str, typer.Argument(
                 help="study YAML file, preset name, or a run directory")],
             set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="override a study field (repeatable)")] = None) -> None:
    """Check a study file and print the resolved study; or check a run directory: a finished
    run's files against the checksums in its manifest (exit 0 valid, 2 with one line if not);
    an unfinished run's state and checkpoints (exit 1 with its state and the --resume hint
    when they are intact, 2 with one line when not)."""
    if Path(study).is_dir():
        _validate_run(Path(study))
        return
    from .config import StudyError, load_study, study_hash

    try:
        spec = load_study(study, set_ or [])
    except StudyError as exc:
        _fail(str(exc))
    _out.console.print_json(json.dumps(spec.resolved()))  # soft-wrapped: lines whole
    _print(f"valid study {spec.name!r} (hash {study_hash(spec)})", highlight=False,
           soft_wrap=True)
    for line in spec.user_code():
        _print(f"[yellow]runs your code:[/] {escape(line)}", highlight=False,
                      soft_wrap=True)


def _validate_run(directory: Path) -> None:
    """``validate DIR`` (see ``validate``): the run directory's state (``results.store``)."""
    from .results.checkpoint import CHECKPOINT_DIR, RunCheckpoints
    from .results.store import (DAMAGED, EMPTY, FINISHED, UNSEALED, ManifestError, load_manifest,
                                lock_holder, run_state, verify_run)

    state = run_state(directory)
    try:
        if state == DAMAGED:
            if (directory / "manifest.json").is_file():
                load_manifest(directory)  # a manifest that is not valid JSON: its own line
            _fail(f"{directory}: results.parquet but no manifest.json (not left by a "
                  "modelcollapse run, or its manifest was removed); it cannot be verified")
        if state == EMPTY:
            _fail(f"{directory}: no modelcollapse run here (no manifest.json, no "
                  f"{CHECKPOINT_DIR}/run.json)")
        problems = verify_run(directory) if state in (FINISHED, UNSEALED) else []
    except ManifestError as exc:
        _fail(str(exc))
    if state == FINISHED:
        if problems:
            _fail(f"{directory}: " + "; ".join(problems) + "; the run was modified")
        _print(f"valid run {directory}: its files match the manifest's checksums",
                      highlight=False, soft_wrap=True, markup=False)
        return
    holder = lock_holder(directory)
    hint = f"continue it with the same command and --resume --out {directory}"
    if holder is not None:
        _print(f"{directory}: unfinished: running ({holder}); its checkpoints are being "
                      "written", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1)
    if state == UNSEALED:  # its checkpoints are no longer used
        if problems:
            _fail(f"{directory}: unfinished (stopped while writing its results): "
                  + "; ".join(problems) + "; the run was modified")
        _print(f"{directory}: unfinished: stopped while writing its results "
                      f"(results.parquet matches its checksum); {hint}", highlight=False,
                      soft_wrap=True, markup=False)
        raise typer.Exit(1)
    checkpoints = RunCheckpoints(directory, None, None)
    if hasattr(checkpoints, "verify"):
        problems = checkpoints.verify()
    if problems:
        _fail(f"{directory}: unfinished (interrupted): " + "; ".join(problems))
    root = directory / CHECKPOINT_DIR
    done = len(list(root.glob("*/result.npz")))
    partial = len([p for p in root.glob("*/state.npz") if not (p.parent / "result.npz").exists()])
    checked = "its checkpoints are intact" if hasattr(checkpoints, "verify") else (
        "its checkpoints are not checksummed")
    _print(f"{directory}: unfinished: interrupted ({done} units finished, {partial} in "
                  f"progress); {checked}; {hint}", highlight=False, soft_wrap=True,
                  markup=False)
    raise typer.Exit(1)


def _open(directory: Path):
    """The finished run in ``directory``, verified (``api.open_run``); one line and exit 2 if
    it is not one or a file differs from its checksum."""
    from .api import open_run

    with _api_errors():
        return open_run(directory)


@app.command(short_help="A finished run's final-vs-initial table.")
def summary(directory: Annotated[Path, typer.Argument(help="run directory")],
            format: FormatOption = "table") -> None:
    """Print the final-vs-initial table of a finished run (its files verified first); csv and
    json give every column of summary.csv (means, CI bounds, ratios) in full precision."""
    check_format(format)
    from .report.summary import final_vs_initial
    from .results.manifest import point_maps

    run = _open(directory)
    manifest = run.manifest
    _, point_risk = point_maps(manifest)
    if manifest.get("streamed"):  # from the aggregates of all seeds, not the kept rows
        from .profile.stored import analyse_stored

        table = analyse_stored(directory, manifest)[0]
    else:
        table = final_vs_initial(run.results, manifest.get("risk_metrics", {}),
                                 point_risk=point_risk)
    if format != "table":
        emit_frame(table, format)
        return
    print_summary(table, str(directory))


SYMBOLS = {"occurs": "[red]✓[/]", "does_not_occur": "[green]✗[/]",
           "inconclusive": "[yellow]?[/]", "not_applicable": "[dim]–[/]"}


def print_profile(profile, title: str) -> None:
    """One row per (task, paradigm), one column per definition: ✓ occurs, ✗ does not occur,
    ? inconclusive, – not applicable."""
    from .profile import DEFINITIONS

    table = Table(title=title, title_justify="left", box=None, header_style="bold",
                  pad_edge=False)
    table.add_column("task / paradigm", no_wrap=True)
    for d in DEFINITIONS:
        table.add_column(str(d), justify="center")
    for task, rows in profile.groupby(_unit_label(profile), sort=False):
        table.add_row(f"[bold]{escape(str(task))}[/]", *[""] * len(DEFINITIONS))
        for paradigm, cells in rows.groupby("paradigm", sort=False):
            marks = dict(zip(cells.definition, cells.verdict))
            table.add_row(f"  {escape(str(paradigm))}",
                          *[SYMBOLS[marks.get(d, "not_applicable")] for d in DEFINITIONS])
    show(table)
    if "reason" in profile:
        unsure = profile[profile.verdict == "inconclusive"]
        for reason, n in unsure.reason.fillna("").value_counts().items():
            _print(f"[yellow]?[/] x{n}: {escape(str(reason))}", highlight=False)
    first = profile.iloc[0] if len(profile) else None
    control = (f"family-wise alpha {first.alpha:g} (Holm over all verdicts), "
               f"{first.n_seeds} seeds, horizon: iteration {first.last_iteration}. "
               if first is not None and "alpha" in profile else "")
    _print("[dim]✓ collapse occurs · ✗ does not occur · ? inconclusive (not detected "
                  "either way) · – not applicable; " + control
                  + "; ".join(f"{k}: {v}" for k, v in DEFINITIONS.items())
                  + ". Tests, p-values, reasons: modelcollapse profile DIR --format csv; "
                  "docs/profile.md[/]")


@app.command("profile", short_help="A finished run's collapse profile (eight definitions).")
def profile_command(
    directory: Annotated[Path, typer.Argument(help="run directory")],
    format: FormatOption = "table",
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="a profile threshold, e.g. --set catastrophic_ratio=5 (repeatable; see "
        "modelcollapse.profile.ProfileSettings)")] = None,
) -> None:
    """The collapse profile of a finished run: a verdict for each of the eight definitions."""
    import yaml
    from pydantic import ValidationError

    from .profile import ProfileSettings, collapse_profile
    from .results.manifest import point_maps

    check_format(format)
    overrides = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--set {item!r}: expected key=value, e.g. alpha=0.01")
        overrides[key] = yaml.safe_load(value)
    run = _open(directory)
    manifest = run.manifest
    base = (manifest.get("study") or {}).get("profile") or {}
    try:
        settings = ProfileSettings.model_validate({**base, **overrides})
    except ValidationError as err:
        e = err.errors()[0]
        allowed = ", ".join(ProfileSettings.model_fields)
        _fail(f"--set {'.'.join(map(str, e['loc']))}: {e['msg']} (settings: {allowed})")
    if manifest.get("streamed"):  # from the aggregates of all seeds, not the kept rows
        from .profile.stored import analyse_stored

        profile = analyse_stored(directory, manifest, settings)[1]
    else:
        point_specs, _ = point_maps(manifest)
        profile = collapse_profile(run.results, manifest.get("profile_specs"), settings,
                                   point_specs=point_specs)
    if format != "table":
        emit_frame(profile, format)
    else:
        print_profile(profile, f"{directory}: collapse profile")


def _parse_sets(items: list[str] | None, what: str) -> dict:
    import yaml

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--set {item!r}: expected key=value ({what})")
        out[key] = yaml.safe_load(value)
    return out


@app.command(short_help="Closed-form predictions of the theory.")
def theory(
    function: Annotated[Optional[str], typer.Argument(
        help="a closed form, e.g. accumulate_risk (omit to list them all)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="a parameter, e.g. --set n_features=10 (repeatable)")] = None,
    iterations: Annotated[int, typer.Option(help="print iterations 0 .. N-1")] = 10,
    format: FormatOption = "table",
) -> None:
    """Closed-form predictions (modelcollapse.theory), e.g.
    modelcollapse theory accumulate_risk --set n_features=10 --set n_samples=100
    --set noise_variance=1"""
    check_format(format)
    import difflib
    import inspect

    from . import theory as th

    names = [n for n in th.__all__ if callable(getattr(th, n)) and not n[0].isupper()]
    if function is None:
        records = []
        for name in names:
            doc = (inspect.getdoc(getattr(th, name)) or "").splitlines()
            records.append({"function": name, "what": doc[0] if doc else ""})
        if format != "table":
            emit_records(records, format)
            return
        table = Table("function", "what (source)", box=None, header_style="bold")
        for r in records:
            table.add_row(r["function"], escape(r["what"]))
        show(table)
        return
    if function not in names:
        close = difflib.get_close_matches(function, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        _fail(f"theory: unknown function {function!r}.{hint} Allowed: {', '.join(names)}")
    fn = getattr(th, function)
    params = _parse_sets(set_, "a parameter of " + function)
    signature = inspect.signature(fn)
    try:
        if "t" in signature.parameters:
            import numpy as np

            t = np.arange(iterations)
            values = np.asarray(fn(t, **params), dtype=float)
            if format != "table":
                emit_records([{"iteration": int(it), function: float(v)}
                              for it, v in zip(t, values)], format)
                return
            table = Table("iteration", function, box=None, header_style="bold")
            for it, v in zip(t, values):
                table.add_row(str(it), f"{v:.6g}")
            show(table)
        elif format != "table":
            emit_records([{function: fn(**params)}], format)
        else:
            _print(f"{function} = {fn(**params)}", highlight=False)
    except (TypeError, ValueError) as exc:
        needed = ", ".join(p for p in signature.parameters if p != "t")
        _fail(f"theory {function}: {exc} (parameters: {needed})")


@app.command(short_help="Check the theory against simulation.")
def verify(seed: Annotated[int, typer.Option(help="root seed of the simulations")] = 0,
           format: FormatOption = "table") -> None:
    """Run every theory-vs-simulation check at a fast size; print predicted vs simulated values
    at the last compared iteration and the bootstrap p-value of the whole-curve test; exit 1 if
    any check fails."""
    check_format(format)
    from .checks import PREDICTIONS, run_verify

    if _out.err_console.is_terminal:
        from rich.progress import Progress

        with Progress(console=_out.err_console, transient=True) as bar:
            handle = bar.add_task("theory checks", total=len(PREDICTIONS))
            table = run_verify(seed=seed, on_check=lambda row: bar.advance(handle))
    else:
        table = run_verify(seed=seed)
    failed = int((~table.passed.astype(bool)).sum())
    if format != "table":
        emit_frame(table, format)
        if failed:
            raise typer.Exit(1)
        return
    level = float(table.level.iloc[0]) if len(table) else 0.0
    shown = Table("check", "predicted", "simulated", "± s.e.", "max|z|", "p-value", "",
                  box=None, header_style="bold", title=f"theory vs simulation (seed {seed}; "
                  f"pass: p-value >= {level:.2g}; sources: python -c 'from modelcollapse.checks "
                  "import PREDICTIONS')", title_justify="left")
    for r in table.itertuples():
        shown.add_row(escape(str(r.check)), f"{r.predicted:.5g}", f"{r.simulated:.5g}",
                      f"{r.std_error:.2g}", f"{r.max_z:.2f}", f"{r.p_value:.2g}",
                      "[green]pass[/]" if r.passed else "[red]FAIL[/]")
    show(shown)
    _print(f"{len(table) - failed}/{len(table)} checks passed", highlight=False)
    if failed:
        raise typer.Exit(1)


def _register_data_commands() -> None:
    from .cli_data import data_app

    app.add_typer(data_app, name="data", short_help="Real datasets: list and prepare.",
                  help="Real datasets: list and prepare (no downloads at "
                  "run time; preparation reads system packages).")


_register_data_commands()


_LEDGER_HEADERS = {"iteration": "it", "synthetic_to_real_ratio": "syn/real",
                   "real_weight_share": "real wt share"}


@app.command(short_help="A run's provenance ledger (real vs synthetic rows).")
def ledger(directory: Annotated[Path, typer.Argument(help="run directory")],
           csv: Annotated[Optional[Path], typer.Option(
               "--csv", help="where to write the CSV (default with --format table: "
               "RUN_DIR/ledger.csv; with --format csv or json: no file unless --csv is given)")
           ] = None,
           format: FormatOption = "table") -> None:
    """Print the provenance ledger of a run (and write it as CSV): per iteration, the real and
    synthetic rows trained on, synthetic rows by source iteration, what each curation policy
    flagged or dropped, and the synthetic-to-real ratio (means over seeds)."""
    check_format(format)
    from .report.ledger import ledger_table
    from .report.sweep import points_as_tasks
    from .results.store import atomic_write

    run = _open(directory)
    results, manifest = run.results, run.manifest
    # a sweep: one ledger per grid point ("<task>@p<point>"), never averaged across points
    results, _, _ = points_as_tasks(results, manifest)
    table = ledger_table(results)
    if format != "table":
        if csv is not None:
            atomic_write(Path(csv), lambda tmp: table.to_csv(tmp, index=False))
        emit_frame(table, format)
        return
    target = Path(csv) if csv is not None else Path(directory) / "ledger.csv"
    atomic_write(target, lambda tmp: table.to_csv(tmp, index=False))
    for (task, paradigm), rows in table.groupby(["task", "paradigm"], sort=False, observed=True):
        rows = rows.dropna(axis=1, how="all")
        sources = [c for c in rows if c.startswith("from_")]
        cols = [c for c in rows if c not in ("task", "paradigm", "n_seeds", *sources)]
        out = Table(title=f"{task} / {paradigm} (means over {int(rows.n_seeds.max())} seeds)",
                    title_justify="left", box=None, header_style="bold", pad_edge=False)
        for c in cols:
            out.add_column(_LEDGER_HEADERS.get(c, c.replace("_", " ")), justify="right")
        if sources:
            out.add_column(f"synthetic by source iteration {sources[0][5:]}..{sources[-1][5:]}")
        for _, row in rows.iterrows():
            cells = [f"{row[c]:.3g}" for c in cols]
            if sources:
                cells.append(" ".join(f"{row[c]:.3g}" for c in sources if row[c] == row[c]))
            out.add_row(*cells)
        show(out)
    _print(f"wrote {target}", highlight=False, soft_wrap=True)


def main() -> None:
    """The console script: run the command, then leave without the interpreter's teardown."""
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    _leave(code)


def _leave(code) -> None:
    """Exit with ``code`` (``SystemExit``'s: None, an int or a message).

    When nothing is left running (no other thread, no worker process, neither ray nor torch
    loaded) and no profiler, tracer or coverage waits to write at exit, the output is flushed and the process ends with ``os._exit``: freeing pandas',
    matplotlib's and scipy's modules at interpreter exit took ~0.15 s of every command (a
    1-seed, 1-iteration run: 1.18 s -> 1.01 s).  Everything a command writes is already
    closed and renamed into place by then (``results.store.atomic_write``).  Otherwise, or for a
    message, the usual ``SystemExit``.
    """
    import os
    import threading

    if not isinstance(code, (int, type(None))) or threading.active_count() > 1 \
            or any(m in sys.modules for m in ("ray", "torch", "coverage")) or _children() \
            or sys.gettrace() is not None or sys.getprofile() is not None:  # (c)Profile's dump
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(code or 0)


def _children() -> bool:
    """Whether a multiprocessing child of this process is still alive."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and bool(mp.active_children())


if __name__ == "__main__":
    main()
