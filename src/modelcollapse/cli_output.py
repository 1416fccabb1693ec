"""Output helpers of the command line (``cli.py``, ``cli_data.py``): tables that never cut a
cell, ``--format table|csv|json``, progress on stderr, one-line errors.

Light to import (rich's console and table only): ``modelcollapse --help`` must not pay for pandas,
numpy or pydantic.

- In a terminal a table fits its width and wraps its cells (``overflow="fold"``: long words are
  folded, never cut with an ellipsis).
- Not a terminal (a file, a pipe, CI, a cluster log): the table is printed at its natural width,
  every value in full, no colour.
- ``--format csv|json``: the same rows as records on stdout (``emit_records``, ``emit_frame``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["FORMATS", "console", "err_console", "fail", "check_format", "show", "emit_records",
           "emit_frame", "progress_reporter"]

FORMATS = ("table", "csv", "json")

#: stdout and stderr consoles (module globals, looked up at each call: tests replace them)
console = Console()
err_console = Console(stderr=True)

#: the widest plain-text table printed when stdout is not a terminal (characters)
PLAIN_MAX_WIDTH = 100_000


def fail(message: str, code: int = 2) -> None:
    """Print ``error: <message>`` on one line of stderr and exit with ``code`` (2: bad input)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of ``FORMATS``; else one error line, exit 2."""
    if fmt not in FORMATS:
        fail(f"--format: {fmt!r} is not allowed; allowed: {', '.join(FORMATS)}")
    return fmt


def _cell_width(cell) -> int:
    from rich.text import Text

    if isinstance(cell, str):
        return max((Text.from_markup(line).cell_len for line in cell.split("\n")), default=0)
    return 0


def show(table: Table, keep: int = 1) -> None:
    """Print ``table`` on stdout without ever cutting a cell.

    Every column folds (``overflow="fold"``, wrapping allowed): in a terminal narrower than the
    table, cells wrap; the first ``keep`` columns (names to copy: presets, checks, tasks) keep
    their longest cell on one line while that takes at most half the terminal.  When stdout is
    not a terminal the table is rendered at its natural width (up to ``PLAIN_MAX_WIDTH``
    characters) as plain text, trailing spaces removed.
    """
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    out = console
    for column in table.columns[:keep]:
        longest = max([_cell_width(c) for c in column._cells] + [_cell_width(column.header)])
        if longest <= out.width // 2:
            column.min_width = max(column.min_width or 0, longest)
        elif out.is_terminal and _natural_width(out, table) > out.width:
            _show_stacked(table)
            return
    if table.title:  # on its own line(s): not squeezed to the table's width
        title, table.title = table.title, None
        out.print(title, soft_wrap=not out.is_terminal, highlight=False)
    if out.is_terminal:
        out.print(table)
        return
    width = _natural_width(out, table)
    plain = Console(file=out.file, width=max(width, 20), color_system=None, highlight=False,
                    emoji=False)
    buffer = io.StringIO()
    plain.file = buffer
    plain.print(table)
    out.file.write("\n".join(line.rstrip() for line in buffer.getvalue().split("\n")))
    out.file.flush()


def _natural_width(out: Console, table: Table) -> int:
    """The table's width with no limit (rich caps a measurement at the console's width)."""
    return out.measure(table, options=out.options.update_width(PLAIN_MAX_WIDTH)).maximum


def _show_stacked(table: Table) -> None:
    """A table too wide for the terminal whose first column holds long names: each row as its
    name on one line, then ``header value`` pairs of the other columns on the next (wrapped)."""
    out = console
    if table.title:
        out.print(table.title)
    headers = [str(c.header) for c in table.columns]
    cells = [list(c._cells) for c in table.columns]
    for i in range(table.row_count):
        out.print(cells[0][i] if isinstance(cells[0][i], str) else "", soft_wrap=True)
        pairs = [f"{h + ' ' if h else ''}{col[i]}" for h, col in zip(headers[1:], cells[1:])
                 if isinstance(col[i], str) and col[i].strip()]
        if pairs:
            out.print("    " + "  ".join(pairs), highlight=False)


def _plain(value):
    """A JSON/CSV-friendly scalar (numpy scalars to Python numbers)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, TypeError):
            return value
    return value


def emit_records(records: Sequence[dict], fmt: str) -> None:
    """Write ``records`` (one dict per row, the same keys) to stdout as CSV (a header row) or
    JSON (a list of objects)."""
    out = sys.stdout
    rows = [{k: _plain(v) for k, v in r.items()} for r in records]
    if fmt == "json":
        out.write(json.dumps(rows, indent=1, ensure_ascii=False, default=str) + "\n")
        return
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})


def emit_frame(frame, fmt: str) -> None:
    """Write a pandas DataFrame to stdout as CSV or JSON records (every column, full precision)."""
    if fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    else:
        sys.stdout.write(frame.to_csv(index=False))


#: what a finishing stage is called on the progress line (``api.Progress.stage``)
STAGES = {"analysis": "summary and collapse profile", "figures": "figures",
          "report": "report"}


@contextmanager
def progress_reporter(quiet: bool, *, every_fraction: float = 0.1, every_seconds: float = 30.0,
                      first_after: float = 2.0) -> Iterator[Callable]:
    """A ``progress`` callback for ``api.run``/``api.sweep``.

    Quiet: a no-op.  stderr a terminal: a transient rich progress bar (model-fitting
    iterations, then the finishing stages: analysis, figures, report).  Otherwise (a log file,
    CI): one plain line ``<study>: <done>/<total> model-fitting iterations, <seconds> s`` on stderr
    each time another ``every_fraction`` of the iterations is done or ``every_seconds`` passed,
    and at the end, then one line as each finishing stage starts (``<study>: figures 0/7,
    <seconds> s``) -- but only once ``first_after`` seconds have passed (a quick run, or one
    that fails at once, prints nothing).
    """
    if quiet:
        yield lambda p: None
        return
    if err_console.is_terminal:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[units]}"), TimeElapsedColumn(),
                      console=err_console, transient=True) as bar:
            handle: list = []

            def update(p) -> None:
                if p.stage:
                    description = f"{p.name}: {STAGES.get(p.stage, p.stage)}"
                    completed, total, units = p.done, p.total, ""
                else:
                    description = f"{p.name}: model-fitting iterations"
                    completed, total = p.iterations, p.total_iterations
                    units = (f"iterations · {p.units}/{p.total_units} units" if p.total_units
                             else "")
                if not handle:
                    handle.append(bar.add_task(description, total=total, units=units))
                bar.update(handle[0], description=description, completed=completed,
                           total=total, units=units)

            yield update
        return
    start = time.perf_counter()
    state = {"step": 0, "time": start, "stage": ""}

    def plain(p) -> None:
        now = time.perf_counter()
        if now - start < first_after:
            return
        if p.stage:  # a line as each finishing stage starts
            if p.stage == state["stage"]:
                return
            state["stage"] = p.stage
            sys.stderr.write(f"{p.name}: {STAGES.get(p.stage, p.stage)} ({p.done}/{p.total}), "
                             f"{now - start:.1f} s\n")
            sys.stderr.flush()
            return
        total = max(int(p.total_iterations or 0), 1)
        done = int(p.iterations)
        step = int(done / total / every_fraction) if every_fraction > 0 else 0
        if step <= state["step"] and now - state["time"] < every_seconds and done < total:
            return
        if done >= total and state.get("finished"):
            return
        state.update(step=max(step, state["step"]), time=now, finished=done >= total)
        units = f" ({p.units}/{p.total_units} units)" if p.total_units else ""
        sys.stderr.write(f"{p.name}: {done}/{total} model-fitting iterations{units}, "
                         f"{now - start:.1f} s\n")
        sys.stderr.flush()

    yield plain
