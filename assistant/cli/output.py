"""Small shared helpers for CLI output: JSON for scripts, rich tables and progress bars for people.

Data goes to stdout, messages and progress to stderr, so `assistant ... --json | jq` always sees clean JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # rich is imported lazily: `assistant --help` must stay fast
    from rich.console import Console
    from rich.table import Table


def _default(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def to_json(obj: Any, indent: int | None = 2) -> str:
    """Serialize ``obj`` (dataclasses included) as JSON text, keeping non-ASCII text readable."""
    return json.dumps(obj, indent=indent, ensure_ascii=False, default=_default)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the `--json` output of a command)."""
    click.echo(to_json(obj))


@cache
def console() -> Console:
    """The rich console for data on stdout."""
    from rich.console import Console

    return Console(highlight=False)


@cache
def err_console() -> Console:
    """The rich console for notes, warnings and progress on stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def table(*columns: str, title: str | None = None) -> Table:
    """A plain rich table with the given column headers (columns whose name starts with '#' align right)."""
    from rich.table import Table

    tbl = Table(title=title, show_edge=False, header_style="bold")
    for name in columns:
        numeric = name.startswith("#")
        tbl.add_column(name.lstrip("#"), justify="right" if numeric else "left", overflow="fold")
    return tbl


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """Print rows as a rich table on stdout; cells are plain text (never markup), ``None`` prints as empty."""
    from rich.text import Text

    tbl = table(*columns, title=title)
    for row in rows:
        tbl.add_row(*(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row))
    console().print(tbl)


def note(text: str) -> None:
    """A one-line message for the user on stderr (never mixed into data on stdout)."""
    click.echo(text, err=True)


def progress_bar(*extra: Any) -> Any:
    """The rich progress bar every command shows on stderr: description, bar, done/total, time left, then ``extra``
    columns (rich is imported here, on first use)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        *extra,
        console=err_console(),
        transient=True,
    )


@contextmanager
def progress(total: int | None, description: str, enabled: bool | None = None) -> Iterator[Any]:
    """A progress bar on stderr yielding ``advance(n=1)``; shown only on a terminal unless told otherwise."""
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        yield lambda n=1: None
        return
    with progress_bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
