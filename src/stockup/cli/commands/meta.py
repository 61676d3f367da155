"""`stockup meta show|set|import|export`: titles, descriptions and keywords,
read and written in place (safely: stockup.editing), and as agencies' CSV."""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from stockup.checks import Batch
from stockup.checks.facts import read_facts
from stockup.checks.metadata import Metadata
from stockup.cli import output
from stockup.cli.commands import summary
from stockup.collect import collect_files
from stockup.editing import (
    Change,
    Edit,
    as_iptc,
    plan_edit,
    split_keywords,
    with_partners,
    write,
)
from stockup.errors import ExitCode, UsageError
from stockup.fsutil import atomic_write
from stockup.metacsv import FORMATS, export_csv, read_import


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("meta", help=summary("meta"))
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    show = actions.add_parser("show", help="the embedded metadata, and where it comes from")
    show.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)

    set_ = actions.add_parser("set", help="change titles, descriptions or keywords in place")
    set_.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    set_.add_argument("--title", help="the title ('' clears it)")
    set_.add_argument("--description", help="the description ('' clears it)")
    set_.add_argument("--keywords", metavar='"A, B, C"', help="replace the keywords")
    set_.add_argument("--add-keywords", metavar='"A, B"', help="add keywords (at the end)")
    set_.add_argument("--remove-keywords", metavar='"A, B"', help="remove keywords")
    made = set_.add_mutually_exclusive_group()
    made.add_argument(
        "--ai-generated", action="store_true", help="record that generative AI made it (IPTC)"
    )
    made.add_argument(
        "--not-ai", action="store_true", help="record that it is a photograph (digitalCapture)"
    )
    set_.add_argument("--ai-tool", metavar="NAME", help="with --ai-generated: the AI system used")
    set_.add_argument(
        "--force", action="store_true", help="write even into C2PA files (breaks their signature)"
    )
    set_.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    set_.set_defaults(handler=run_set)

    import_ = actions.add_parser(
        "import", help="set metadata from a CSV (generic, Shutterstock, Adobe)"
    )
    import_.add_argument("csv", type=Path, metavar="FILE.csv")
    import_.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                         help="where the files are (default: the CSV's folder)")  # fmt: skip
    import_.add_argument("--dry-run", action="store_true", help="say what would change")
    import_.set_defaults(handler=run_import)

    export = actions.add_parser("export", help="the CSV an agency takes for uploaded files")
    export.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    export.add_argument("--format", required=True, choices=sorted(FORMATS))
    export.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default stdout)"
    )
    export.set_defaults(handler=run_export)


# -- show -----------------------------------------------------------------------


def _describe(meta: Metadata) -> dict[str, Any]:
    return {
        "title": meta.title,
        "description": meta.description,
        "keywords": meta.keywords,
        "keyword_count": len(meta.distinct_keywords),
    }


def run_show(args: argparse.Namespace) -> int:
    collected = collect_files(args.paths)
    for note in collected.notes():
        output.warning(note)
    report = []
    for path in collected.files:
        facts = read_facts(path)
        found = {
            name: m for name, m in facts.sources.items() if m.title or m.description or m.keywords
        }
        disagree = _disagreements(found)
        report.append({
            "file": str(path),
            **_describe(facts.metadata),
            "readable": facts.metadata.readable and not facts.error,
            "error": facts.error,
            "sources": {name: _describe(m) for name, m in found.items()},
            "disagree": disagree,
        })  # fmt: skip
    if args.json:
        output.print_json(report)
        return 0
    for entry in report:
        output.info(Path(entry["file"]).name)
        if entry["error"]:
            output.info(f"  could not read: {entry['error']}")
            continue
        where = ", ".join(entry["sources"]) or "nowhere: no embedded metadata"
        output.info(f"  from: {where}")
        output.info(f"  title: {entry['title'] or '-'}")
        output.info(f"  description: {entry['description'] or '-'}")
        keywords = ", ".join(entry["keywords"]) or "-"
        output.info(f"  keywords ({entry['keyword_count']}): {keywords}")
        for field in entry["disagree"]:
            values = "; ".join(f"{name}: {src[field]!r}" for name, src in entry["sources"].items())
            output.info(f"  {field} differ between sources ({values})")
    return 0


def _disagreements(sources: dict[str, Metadata]) -> list[str]:
    # Beside IPTC, values are compared as IPTC holds them: a title or keyword
    # cut at IPTC's 64 characters (as stockup writes it) is the same value.
    compared = [as_iptc(m) for m in sources.values()] if "IPTC" in sources else sources.values()
    fields = []
    for field in ("title", "description", "keywords"):
        values = {repr(getattr(m, field)) for m in compared if getattr(m, field)}
        if len(values) > 1:
            fields.append(field)
    return fields


# -- set and import ---------------------------------------------------------------


def _edit_from(args: argparse.Namespace) -> Edit:
    if args.ai_tool and not args.ai_generated:
        raise UsageError("--ai-tool goes with --ai-generated")
    source_type = (
        "trainedAlgorithmicMedia"
        if args.ai_generated
        else "digitalCapture"
        if args.not_ai
        else None
    )
    edit = Edit(
        title=args.title,
        description=args.description,
        keywords=split_keywords(args.keywords) if args.keywords is not None else None,
        add_keywords=split_keywords(args.add_keywords or ""),
        remove_keywords=split_keywords(args.remove_keywords or ""),
        source_type=source_type,
        ai_tool=args.ai_tool,
    )
    if edit.empty:
        raise UsageError("say what to change: --title, --description, --keywords, "
                         "--add-keywords or --remove-keywords")  # fmt: skip
    return edit


def run_set(args: argparse.Namespace) -> int:
    edit = _edit_from(args)
    collected = collect_files(args.paths)
    for note in collected.notes():
        output.warning(note)
    changes = [plan_edit(path, edit, force=args.force) for path in with_partners(collected.files)]
    return _apply(changes, dry_run=args.dry_run)


def run_import(args: argparse.Namespace) -> int:
    rows = read_import(args.csv)
    where = args.paths or [args.csv.parent]
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in collect_files(where).files:
        by_name[path.name].append(path)
    changes: list[Change] = []
    problems = 0
    for row in rows:
        matches = by_name.get(row.filename, [])
        if len(matches) != 1:
            problems += 1
            if not matches:
                output.info(f"line {row.line}: no file named {row.filename!r}: nothing done")
            else:
                names = ", ".join(str(m) for m in matches)
                output.info(f"line {row.line}: {row.filename!r} matches {len(matches)} files "
                            f"({names}): nothing done")  # fmt: skip
            continue
        changes += [plan_edit(path, row.edit) for path in with_partners(matches)]
    status = _apply(changes, dry_run=args.dry_run)
    return int(ExitCode.FAILURE) if problems else status


def _apply(changes: list[Change], *, dry_run: bool) -> int:
    """Write each change (or say it, for a dry run); one file's failure is its own."""
    failed = 0
    for change in changes:
        name = change.path.name
        if change.error:
            failed += 1
            output.info(f"failed   {name}: {_reason(change)}")
            continue
        if not change.changes:
            output.info(f"same     {name}")
            continue
        what = _difference(change.before, change.after)
        if dry_run:
            output.info(f"would    {name}: {what}")
            continue
        write(change)
        if change.error:
            failed += 1
            output.info(f"failed   {name}: {_reason(change)}")
        else:
            output.info(f"changed  {name}: {what}")
    written = sum(c.written for c in changes)
    verb = "would change" if dry_run else "changed"
    count = sum(c.changes and not c.error for c in changes) if dry_run else written
    output.info(f"{count} file(s) {verb}, {failed} failed")
    return int(ExitCode.FAILURE if failed else ExitCode.OK)


def _reason(change: Change) -> str:
    """The error without the file's name in front: the line starts with it."""
    return (change.error or "").removeprefix(f"{change.path.name}: ")


def _difference(before: Metadata, after: Metadata) -> str:
    parts = []
    if before.title != after.title:
        parts.append(f"title {after.title or '(none)'!r}")
    if before.description != after.description:
        parts.append(f"description {after.description or '(none)'!r}")
    if before.keywords != after.keywords:
        parts.append(f"{len(after.keywords)} keywords (were {len(before.keywords)})")
    return "; ".join(parts) or "source type recorded"


# -- export -------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    collected = collect_files(args.paths)
    batch = Batch(collected.files)
    # A vector's preview is not an item of its own at the agency.
    rows = [(p, batch.facts[p].metadata) for p in batch.files if p not in batch.preview_of]
    text = io.StringIO()
    warnings = export_csv(rows, args.format, text)
    for warning in warnings:
        output.warning(warning)
    if args.output is None:
        sys.stdout.write(text.getvalue())
    else:
        atomic_write(args.output, text.getvalue().encode("utf-8"), mode=0o644)
        output.info(f"Wrote {len(rows)} row(s) in {args.format} CSV to {args.output}.")
    return 0
