"""Console helpers: results to stdout, diagnostics to stderr, secrets redacted."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from stockup.secret import redact

stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    stderr.print(f"stockup: error: {redact(message)}", markup=False)


def warning(message: str) -> None:
    stderr.print(f"[bold yellow]warning:[/] {redact(message)}")


def info(message: str) -> None:
    stdout.print(redact(message), markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(redact(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    grid = Table(title=title, show_lines=False)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(redact(cell) for cell in row))
    stdout.print(grid)
