"""Console helpers: results to stdout, diagnostics to stderr.

Everything printed here is data to rich, never markup: a file name or a
server reply containing ``[/]`` or ``[link=...]`` prints as itself, and
control characters print as escapes (:func:`stockup.text.printable`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stockup.text import printable

stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def plain(message: str, *, newlines: bool = False) -> str:
    """A message as the terminal may show it: control characters escaped.
    Secrets are redacted where they can arrive (stockup.secret.redact), not here."""
    return printable(message, newlines=newlines)


def error(message: str) -> None:
    stderr.print(f"stockup: error: {plain(message)}", markup=False)


def warning(message: str) -> None:
    stderr.print(Text.assemble(("warning:", "bold yellow"), " ", plain(message)))


def info(message: str) -> None:
    stdout.print(plain(message), markup=False)


def document(text: str) -> None:
    """A generated file (a service unit) on stdout, never wrapped; control
    characters still print as escapes."""
    sys.stdout.write(printable(text, newlines=True))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    grid = Table(title=title, show_lines=False)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(Text(plain(cell, newlines=True)) for cell in row))
    stdout.print(grid)
