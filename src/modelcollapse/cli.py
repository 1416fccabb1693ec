"""Command line: ``modelcollapse run | sweep | presets | validate | summary | profile | report |
theory | verify | data``.

Bad input prints one line ``error: <field>: <what is allowed>`` and exits with code 2, before
anything is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import StudyError, list_presets, load_study, study_hash

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="A laboratory for model-data feedback loops (model collapse).")
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
    console.print(table)


@app.command()
def run(
    study: Annotated[Optional[str], typer.Argument(
        help="preset name or study YAML file (default: the 'default' preset on real data)")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="run directory (default: runs/<study name>, never overwritten)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="override a study field, e.g. --set n_seeds=50 "
        "--set task_params.n_samples=200 (repeatable)")] = None,
    jobs: Annotated[int, typer.Option(help="worker processes (>= 1)")] = 1,
    plots: Annotated[bool, typer.Option(help="write PNG plots and report.html")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="continue the interrupted run in --out (default runs/<study name>) from "
        "its last checkpoint, or finish one stopped while writing its results; the same study "
        "and --set options are required. A finished run there: says it is complete (exit 0); "
        "nothing there: runs normally")] = False,
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", help="memory budget, e.g. 4GiB or 512MB (default: 80% of physical "
        "memory); a run estimated to need more is refused before anything is written")] = None,
) -> None:
    """Run a study; write DIR/results.parquet, manifest.json, summary.csv, profile.csv,
    report.html and plots/.

    A run checkpoints as it goes (DIR/.checkpoints, removed at the end); after an interruption
    (Ctrl-C, a kill, a crash), the same command with --resume continues it, with results
    identical to an uninterrupted run.

    Examples: modelcollapse run; modelcollapse run kazdan2024-gaussian --set n_seeds=500
    """
    with _api_errors(), _progress_bar(quiet) as progress:
        from .api import run as run_api

        result = run_api(study, out=out, overrides=set_ or [], jobs=jobs, plots=plots,
                         resume=resume, progress=progress, max_memory=max_memory)
    manifest = result.manifest
    if result.note:  # --resume of a finished run
        console.print(result.note, highlight=False, soft_wrap=True, markup=False)
        return
    if not quiet:
        spec = manifest["study"]
        print_summary(result.summary, f"{spec['name']}: risk at the last model-fitting "
                      f"iteration vs iteration 0 (mean ± 95% CI half-width over "
                      f"{spec['n_seeds']} seeds)")
        print_profile(result.profile, f"{spec['name']}: collapse profile (Schaeffer et al. "
                      "2025, Sec. 2)")
    console.print(f"wrote {result.directory}/ ({manifest['files']['results.parquet']['rows']} "
                  f"rows, {manifest['elapsed_seconds']:.1f} s)", highlight=False)


@contextmanager
def _api_errors() -> Iterator[None]:
    """The API's exceptions as ``error: <one line>`` and exit 2 (an interruption: exit 130 with
    the --resume hint)."""
    from .api import RunInterrupted

    try:
        yield
    except RunInterrupted as exc:
        _fail(f"interrupted; {exc.directory}/.checkpoints holds the progress: run the same "
              f"command with --resume --out {exc.directory} to continue", code=130)
    except (StudyError, ValueError) as exc:
        _fail(str(exc))


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[Callable]:
    """A transient progress bar on stderr, fed by the API's ``progress`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[units]}"), TimeElapsedColumn(), console=err_console,
                  disable=quiet, transient=True) as bar:
        handle: list = []

        def update(p) -> None:
            units = f"iterations · {p.units}/{p.total_units} units" if p.total_units else ""
            if not handle:
                handle.append(bar.add_task(f"{p.name}: model-fitting iterations",
                                           total=p.total_iterations, units=units))
            bar.update(handle[0], completed=p.iterations, units=units)

        yield update


@app.command()
def sweep(
    file: Annotated[str, typer.Argument(
        help="sweep file: a study file (extends: allowed) plus grid: a mapping of study fields "
        "to lists of values")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="run directory (default: runs/<name>, never overwritten)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="override a field of the base study, e.g. --set n_seeds=50 "
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    plots: Annotated[bool, typer.Option(help="write PNG plots and report.html")] = True,
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", help="memory budget, e.g. 4GiB or 512MB (default: 80% of physical "
        "memory); a run estimated to need more is refused before anything is written")] = None,
) -> None:
    """Run a grid of studies into one results store: DIR/results.parquet (the store's columns
    plus point and grid.<key>), manifest.json (every point's study and hash), and, by grid
    point, summary.csv, profile.csv and report.html.

    Example: modelcollapse sweep examples/sweep.yaml --jobs 2
    """
    with _api_errors(), _progress_bar(quiet) as progress:
        from .api import sweep as sweep_api

        result = sweep_api(file, out=out, overrides=set_ or [], jobs=jobs, executor=executor,
                           address=address, resume=resume, plots=plots, progress=progress,
                           max_memory=max_memory)
    manifest = result.manifest
    if result.note:  # --resume of a finished sweep
        console.print(result.note, highlight=False, soft_wrap=True, markup=False)
        return
    n_units = sum(len(p["study"]["tasks"]) * len(p["study"]["paradigms"])
                  for p in manifest["points"])
    console.print(f"wrote {result.directory}/ ({len(manifest['points'])} points, {n_units} "
                  f"units, {manifest['files']['results.parquet']['rows']} rows, "
                  f"{manifest['elapsed_seconds']:.1f} s; summary.csv, profile.csv"
                  f"{' and report.html' if plots else ''} by grid point)", highlight=False)


@app.command()
def report(directory: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Write DIR/report.html: one self-contained page with the collapse profile, the summary,
    the plots (with theory where it applies), provenance and the resolved study (the run's
    files are verified against their checksums first)."""
    with _api_errors():
        from .api import open_run

        path = open_run(directory).report()
    console.print(f"wrote {path}", highlight=False)


@app.command()
def presets() -> None:
    """List the studies shipped with modelcollapse."""
    table = Table("preset", "source / description", box=None, header_style="bold")
    for name, desc in list_presets().items():
        table.add_row(escape(name), escape(desc))
    console.print(table)


@app.command()
def validate(study: Annotated[str, typer.Argument(
                 help="study YAML file, preset name, or a run directory")],
             set_: Annotated[Optional[list[str]], typer.Option("--set")] = None) -> None:
    """Check a study file and print the resolved study; or check a run directory: a finished
    run's files against the checksums in its manifest (exit 0 valid, 2 with one line if not);
    an unfinished run's state and checkpoints (exit 1 with its state and the --resume hint
    when they are intact, 2 with one line when not)."""
    if Path(study).is_dir():
        _validate_run(Path(study))
        return
    try:
        spec = load_study(study, set_ or [])
    except StudyError as exc:
        _fail(str(exc))
    console.print_json(json.dumps(spec.resolved()))
    console.print(f"valid study {spec.name!r} (hash {study_hash(spec)})", highlight=False)
    for line in spec.user_code():
        console.print(f"[yellow]runs your code:[/] {escape(line)}", highlight=False,
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
        console.print(f"valid run {directory}: its files match the manifest's checksums",
                      highlight=False, soft_wrap=True, markup=False)
        return
    holder = lock_holder(directory)
    hint = f"continue it with the same command and --resume --out {directory}"
    if holder is not None:
        console.print(f"{directory}: unfinished: running ({holder}); its checkpoints are being "
                      "written", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1)
    if state == UNSEALED:  # its checkpoints are no longer used
        if problems:
            _fail(f"{directory}: unfinished (stopped while writing its results): "
                  + "; ".join(problems) + "; the run was modified")
        console.print(f"{directory}: unfinished: stopped while writing its results "
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
    console.print(f"{directory}: unfinished: interrupted ({done} units finished, {partial} in "
                  f"progress); {checked}; {hint}", highlight=False, soft_wrap=True,
                  markup=False)
    raise typer.Exit(1)


def _open(directory: Path):
    """The finished run in ``directory``, verified (``api.open_run``); one line and exit 2 if
    it is not one or a file differs from its checksum."""
    from .api import open_run

    with _api_errors():
        return open_run(directory)


@app.command()
def summary(directory: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Print the final-vs-initial table of a finished run (its files verified first)."""
    from .report.summary import final_vs_initial
    from .results.manifest import point_maps

    run = _open(directory)
    results, manifest = run.results, run.manifest
    _, point_risk = point_maps(manifest)
    print_summary(final_vs_initial(results, manifest.get("risk_metrics", {}),
                                   point_risk=point_risk), str(directory))


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
    console.print(table)
    if "reason" in profile:
        unsure = profile[profile.verdict == "inconclusive"]
        for reason, n in unsure.reason.fillna("").value_counts().items():
            console.print(f"[yellow]?[/] x{n}: {escape(str(reason))}", highlight=False)
    first = profile.iloc[0] if len(profile) else None
    control = (f"family-wise alpha {first.alpha:g} (Holm over all verdicts), "
               f"{first.n_seeds} seeds, horizon: iteration {first.last_iteration}. "
               if first is not None and "alpha" in profile else "")
    console.print("[dim]✓ collapse occurs · ✗ does not occur · ? inconclusive (not detected "
                  "either way) · – not applicable; " + control
                  + "; ".join(f"{k}: {v}" for k, v in DEFINITIONS.items())
                  + ". Tests, p-values, reasons: modelcollapse profile DIR --format csv; "
                  "docs/profile.md[/]")


@app.command("profile")
def profile_command(
    directory: Annotated[Path, typer.Argument(help="run directory")],
    format: Annotated[str, typer.Option("--format", "-f",
                                        help="table | json | csv")] = "table",
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="a profile threshold, e.g. --set catastrophic_ratio=5 (repeatable; see "
        "modelcollapse.profile.ProfileSettings)")] = None,
) -> None:
    """The collapse profile of a finished run: a verdict for each of the eight definitions."""
    import yaml
    from pydantic import ValidationError

    from .profile import ProfileSettings, collapse_profile
    from .results.manifest import point_maps

    if format not in ("table", "json", "csv"):
        _fail(f"--format: {format!r} is not allowed; allowed: table, json, csv")
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
    results = run.results
    specs = manifest.get("profile_specs")
    point_specs, _ = point_maps(manifest)
    profile = collapse_profile(results, specs, settings, point_specs=point_specs)
    if format == "json":
        sys.stdout.write(profile.to_json(orient="records", indent=1) + "\n")
    elif format == "csv":
        sys.stdout.write(profile.to_csv(index=False))
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


@app.command()
def theory(
    function: Annotated[Optional[str], typer.Argument(
        help="a closed form, e.g. accumulate_risk (omit to list them all)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="a parameter, e.g. --set n_features=10 (repeatable)")] = None,
    iterations: Annotated[int, typer.Option(help="print iterations 0 .. N-1")] = 10,
) -> None:
    """Closed-form predictions (modelcollapse.theory), e.g.
    modelcollapse theory accumulate_risk --set n_features=10 --set n_samples=100
    --set noise_variance=1"""
    import difflib
    import inspect

    from . import theory as th

    names = [n for n in th.__all__ if callable(getattr(th, n)) and not n[0].isupper()]
    if function is None:
        table = Table("function", "what (source)", box=None, header_style="bold")
        for name in names:
            doc = (inspect.getdoc(getattr(th, name)) or "").splitlines()
            table.add_row(name, escape(doc[0] if doc else ""))
        console.print(table)
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
            table = Table("iteration", function, box=None, header_style="bold")
            for it, v in zip(t, values):
                table.add_row(str(it), f"{v:.6g}")
            console.print(table)
        else:
            console.print(f"{function} = {fn(**params)}", highlight=False)
    except (TypeError, ValueError) as exc:
        needed = ", ".join(p for p in signature.parameters if p != "t")
        _fail(f"theory {function}: {exc} (parameters: {needed})")


@app.command()
def verify(seed: Annotated[int, typer.Option(help="root seed of the simulations")] = 0) -> None:
    """Run every theory-vs-simulation check at a fast size; print predicted vs simulated values
    at the last compared iteration and the bootstrap p-value of the whole-curve test; exit 1 if
    any check fails."""
    from rich.progress import Progress

    from .checks import PREDICTIONS, run_verify

    with Progress(console=err_console, transient=True) as bar:
        handle = bar.add_task("theory checks", total=len(PREDICTIONS))
        table = run_verify(seed=seed, on_check=lambda row: bar.advance(handle))
    level = float(table.level.iloc[0]) if len(table) else 0.0
    out = Table("check", "predicted", "simulated", "± s.e.", "max|z|", "p-value", "", box=None,
                header_style="bold", title=f"theory vs simulation (seed {seed}; pass: p-value "
                f">= {level:.2g}; sources: python -c 'from modelcollapse.checks import "
                "PREDICTIONS')", title_justify="left")
    for r in table.itertuples():
        out.add_row(r.check, f"{r.predicted:.5g}", f"{r.simulated:.5g}", f"{r.std_error:.2g}",
                    f"{r.max_z:.2f}", f"{r.p_value:.2g}",
                    "[green]pass[/]" if r.passed else "[red]FAIL[/]")
    console.print(out)
    failed = int((~table.passed.astype(bool)).sum())
    console.print(f"{len(table) - failed}/{len(table)} checks passed", highlight=False)
    if failed:
        raise typer.Exit(1)


def _register_data_commands() -> None:
    from .cli_data import data_app

    app.add_typer(data_app, name="data", help="Real datasets: list and prepare (no downloads at "
                  "run time; preparation reads system packages).")


_register_data_commands()


_LEDGER_HEADERS = {"iteration": "it", "synthetic_to_real_ratio": "syn/real",
                   "real_weight_share": "real wt share"}


@app.command()
def ledger(directory: Annotated[Path, typer.Argument(help="run directory")],
           csv: Annotated[Optional[Path], typer.Option(
               "--csv", help="where to write the CSV (default: RUN_DIR/ledger.csv)")] = None
           ) -> None:
    """Print the provenance ledger of a run (and write it as CSV): per iteration, the real and
    synthetic rows trained on, synthetic rows by source iteration, what each curation policy
    flagged or dropped, and the synthetic-to-real ratio (means over seeds)."""
    from .report.ledger import ledger_table
    from .report.sweep import points_as_tasks
    from .results.store import atomic_write

    run = _open(directory)
    results, manifest = run.results, run.manifest
    # a sweep: one ledger per grid point ("<task>@p<point>"), never averaged across points
    results, _, _ = points_as_tasks(results, manifest)
    table = ledger_table(results)
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
        console.print(out)
    console.print(f"wrote {target}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
