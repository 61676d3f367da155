"""Console helpers: results to stdout, diagnostics to stderr.

Everything printed here is data to rich, never markup: a file name or a
server reply containing ``[/]`` or ``[link=...]`` prints as itself, and
control characters print as escapes (:func:`stockup.text.printable`).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from typing import TYPE_CHECKING, Any, TextIO

from stockup.text import printable

LONE_SURROGATE = re.compile("[\ud800-\udfff]")

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported when something is styled or laid out (a table, progress
# bars, a warning on a terminal): plain lines do without it, and it takes
# longer to import than a small upload takes to start.


@functools.cache
def console(*, stderr: bool = False) -> Console:
    """The rich console for stdout or stderr."""
    from rich.console import Console

    if stderr:
        return Console(stderr=True, highlight=False, soft_wrap=True)
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def line(text: str, stream: TextIO) -> None:
    """One line of data, control characters escaped, never read as markup."""
    stream.write(printable(text) + "\n")
    stream.flush()


def plain(message: str, *, newlines: bool = False) -> str:
    """A message as the terminal may show it: control characters escaped.
    Secrets are redacted where they can arrive (stockup.secret.redact), not here."""
    return printable(message, newlines=newlines)


def error(message: str) -> None:
    line(f"stockup: error: {message}", sys.stderr)


def warning(message: str) -> None:
    if not sys.stderr.isatty():
        line(f"warning: {message}", sys.stderr)
        return
    from rich.text import Text

    console(stderr=True).print(Text.assemble(("warning:", "bold yellow"), " ", plain(message)))


def info(message: str) -> None:
    line(message, sys.stdout)


def document(text: str) -> None:
    """A generated file (a service unit) on stdout, never wrapped; control
    characters still print as escapes."""
    sys.stdout.write(printable(text, newlines=True))


def print_json(data: Any) -> None:
    """Non-ASCII text as itself, but a byte of a file name that is not UTF-8
    (a lone surrogate) as its ``\\udcXX`` escape: valid JSON, which a strict
    UTF-8 stdout can write and from which Python's json gets the name back."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    sys.stdout.write(LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, show_lines=False)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(Text(plain(cell, newlines=True)) for cell in row))
    console().print(grid)
