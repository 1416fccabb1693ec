"""``modelcollapse data list | prepare NAME [--force] [--source PATH]``: the real-data cache.

Registered in ``cli.py`` with ``app.add_typer(data_app, name="data")``.  Errors (unknown name,
missing system package) print one line ``error: ...`` and exit with code 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from . import cli_output as _out
from .cli_output import check_format, emit_records, show

data_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None,
                       help="Real datasets prepared once from system packages into a local cache "
                            "($MODELCOLLAPSE_DATA or ~/.cache/modelcollapse).")


def _fail(message: str, code: int = 2) -> None:
    _out.fail(message, code)


@data_app.command("list", short_help="The registered datasets and whether they are prepared.")
def list_command(format: Annotated[str, typer.Option(
        "--format", "-f", metavar="FORMAT", help="table | csv | json (on stdout; with description, source and "
        "path)")] = "table") -> None:
    """The registered datasets, their source and license, and whether they are prepared."""
    check_format(format)
    from .data.prepare import data_dir, list_datasets

    rows = list_datasets()
    if format != "table":
        emit_records(rows, format)
        return
    table = Table(title=f"datasets in {data_dir()}", title_justify="left", header_style="bold")
    for col in ("name", "prepared", "size", "package", "license"):
        table.add_column(col)
    for row in rows:
        table.add_row(escape(row["name"]), "[green]yes[/]" if row["prepared"] else "no",
                      escape(row["size"]), escape(row["package"]), escape(row["license"]))
    show(table)


@data_app.command("prepare", short_help="Prepare one dataset into the cache.")
def prepare_command(
    name: Annotated[str, typer.Argument(help="dataset name (see `data list`)")],
    force: Annotated[bool, typer.Option("--force", help="rebuild even if already prepared")] = False,
    source: Annotated[Optional[Path], typer.Option(
        help="read the raw input from here instead of the system package's location")] = None,
) -> None:
    """Prepare one dataset into the cache (no-op if already prepared, unless --force)."""
    from .data.prepare import DataUnavailable, UnknownDataset, prepare

    t0 = time.perf_counter()
    try:
        path = prepare(name, force=force, source=source)
    except (UnknownDataset, DataUnavailable) as exc:
        _fail(str(exc))
    _out.console.print(f"{escape(name)}: {escape(str(path))} ({time.perf_counter() - t0:.1f} s)",
                  highlight=False, soft_wrap=True)
