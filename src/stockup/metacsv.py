"""Metadata as CSV: what agencies take to attach titles and keywords to
uploaded files, and what a contributor brings from a spreadsheet.

Formats, each as its agency documents it:
- ``shutterstock``: Filename, Description, Keywords, Categories, Illustration,
  Mature Content, Editorial (submit.shutterstock.com/help/en/articles/10617486);
  Shutterstock's "Description" is the title buyers see.
- ``adobestock``: Filename, Title, Keywords, Category, Releases
  (helpx.adobe.com/stock/contributor/manage-your-portfolio/csv-requirements-content.html);
  titles of at most 70 characters without commas, file names of at most 30.
- ``generic``: Filename, Title, Description, Keywords, for any other use
  (Getty's ESP and other web-only agencies take their metadata this way).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from stockup.checks.metadata import Metadata
from stockup.editing import Edit, split_keywords
from stockup.errors import UsageError
from stockup.journal import spreadsheet_safe
from stockup.packaging import NAME_NOT_UTF8, name_problem, safe_name


@dataclass(frozen=True)
class CsvFormat:
    name: str
    columns: tuple[str, ...]
    title: str | None
    """The column holding the title, if any."""
    description: str | None
    source: str


FORMATS = {
    f.name: f
    for f in (
        CsvFormat(
            "shutterstock",
            (
                "Filename",
                "Description",
                "Keywords",
                "Categories",
                "Illustration",
                "Mature Content",
                "Editorial",
            ),
            title="Description",
            description=None,
            source="https://submit.shutterstock.com/help/en/articles/10617486",
        ),
        CsvFormat(
            "adobestock",
            ("Filename", "Title", "Keywords", "Category", "Releases"),
            title="Title",
            description=None,
            source="https://helpx.adobe.com/stock/contributor/manage-your-portfolio/csv-requirements-content.html",
        ),
        CsvFormat(
            "generic",
            ("Filename", "Title", "Description", "Keywords"),
            title="Title",
            description="Description",
            source="stockup",
        ),
    )
}
ADOBE_MAX_TITLE = 70
ADOBE_MAX_FILENAME = 30


def export_csv(rows: Iterable[tuple[Path, Metadata]], fmt: str, stream: TextIO) -> list[str]:
    """Write the CSV; returns warnings about values the agency will refuse."""
    spec = FORMATS.get(fmt)
    if spec is None:
        raise UsageError(f"unknown CSV format {fmt!r} (use one of {', '.join(FORMATS)})")
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(spec.columns)
    warnings = []
    for path, meta in rows:
        name = path.name
        if name_problem(name) == NAME_NOT_UTF8:
            # Sent only with --safe-names, under this name: the one the agency has.
            name = safe_name(name, None)
            warnings.append(f"{path.name}: its name is not UTF-8; listed as {name}, "
                            "the name upload --safe-names sends it under")  # fmt: skip
        values = {"Filename": name, "Keywords": ", ".join(meta.keywords)}
        if spec.title:
            values[spec.title] = meta.title or meta.description or ""
        if spec.description:
            values[spec.description] = meta.description or ""
        if fmt == "adobestock":
            warnings += _adobe_warnings(name, values["Title"])
        writer.writerow([spreadsheet_safe(values.get(column, "")) for column in spec.columns])
    return warnings


def _adobe_warnings(name: str, title: str) -> list[str]:
    found = []
    if len(name) > ADOBE_MAX_FILENAME:
        found.append(
            f"{name}: Adobe Stock takes file names of at most {ADOBE_MAX_FILENAME} characters"
        )
    if len(title) > ADOBE_MAX_TITLE:
        found.append(f"{name}: Adobe Stock takes titles of at most {ADOBE_MAX_TITLE} characters")
    if "," in title:
        found.append(f"{name}: Adobe Stock takes titles without commas")
    return found


@dataclass(frozen=True)
class ImportRow:
    line: int
    filename: str
    edit: Edit


HEADER_NAMES = {
    "filename": ("filename", "file name", "file"),
    "title": ("title",),
    "description": ("description", "caption"),
    "keywords": ("keywords", "tags"),
}


def read_import(path: Path) -> list[ImportRow]:
    """Rows of a metadata CSV: a filename column and any of title,
    description and keywords. Shutterstock's format (Description, no Title)
    sets both the title and the description from its Description."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8: save it as CSV UTF-8") from None
    try:
        return _import_rows(path, csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # a NUL, a cell past 128 KiB ...
        raise UsageError(f"{path}: not a CSV stockup can read ({exc})") from None


def _import_rows(path: Path, reader: csv.DictReader[str]) -> list[ImportRow]:
    found = {h.strip().casefold(): h for h in reader.fieldnames or []}
    column = {
        field: next((found[n] for n in names if n in found), None)
        for field, names in HEADER_NAMES.items()
    }
    if column["filename"] is None:
        raise UsageError(f"{path}: no Filename column (its header must name one)")
    if not any(column[f] for f in ("title", "description", "keywords")):
        raise UsageError(f"{path}: no Title, Description or Keywords column")
    rows = []
    for number, record in enumerate(reader, start=2):
        cells = {
            field: None if name is None else (record.get(name) or "").strip()
            for field, name in column.items()
        }
        title, description, keywords = cells["title"], cells["description"], cells["keywords"]
        if column["title"] is None and description is not None:
            title = description  # Shutterstock: its Description is the title
        edit = Edit(
            title=title,
            description=description,
            keywords=split_keywords(keywords) if keywords is not None else None,
        )
        if cells["filename"]:
            rows.append(ImportRow(number, cells["filename"], edit))
    return rows
