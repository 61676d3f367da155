"""`stockup check`: what each agency would reject, before a byte is sent.

Per agency (or account) one summary line, then only the files with problems,
grouped by file; `--all` lists every verdict.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stockup.catalogue import Agency, get_agency
from stockup.checks import Verdict, check_files, rules_agency
from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import store
from stockup.collect import collect_files
from stockup.errors import ExitCode, UsageError
from stockup.journal import Journal
from stockup.similar import SimilarLimits


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("check", help=summary("check"))
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--to", metavar="NAME[,NAME...]", help="accounts (default: all)")
    parser.add_argument("--agency", metavar="ID[,ID...]", help="agencies, without accounts")
    parser.add_argument("--all", action="store_true", help="list every verdict, not only problems")
    parser.add_argument(
        "--max-similar",
        metavar="N|ID=N[,...]",
        help="more than N versions of one motif (per account or agency) is an error "
        "(default: warnings only)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--follow-links", action="store_true", help="take links to files outside the folders"
    )
    parser.set_defaults(handler=run)


def _targets(args: argparse.Namespace) -> list[tuple[str, Agency | None]]:
    if args.agency:
        return [
            (a, get_agency(a)) for a in dict.fromkeys(x.strip() for x in args.agency.split(","))
        ]
    config = store().config()
    names = [n.strip() for n in args.to.split(",")] if args.to else list(config.accounts)
    if not names:
        raise UsageError("no accounts yet: add one, or name agencies with --agency ID,...")
    return [(n, rules_agency(config.get(n))) for n in dict.fromkeys(names)]


def run(args: argparse.Namespace) -> int:
    targets = _targets(args)
    collected = collect_files(args.paths, follow_links=args.follow_links)
    for note in collected.notes():
        output.warning(note)
    if not collected.files:
        raise UsageError("no files to check in the paths given")
    limits = SimilarLimits.parse(args.max_similar) if args.max_similar else None
    with contextlib.closing(Journal(store().paths.journal_file)) as journal:
        verdicts = check_files(collected.files, targets, journal=journal, max_similar=limits)
    if args.json:
        output.print_json([v.to_json() for v in verdicts])
    else:
        for target, _ in targets:
            report(target, [v for v in verdicts if v.target == target], every=args.all)
    return int(ExitCode.FAILURE if any(v.level == "error" for v in verdicts) else ExitCode.OK)


def report(target: str, verdicts: Sequence[Verdict], *, every: bool) -> None:
    """One summary line, then the files to look at, each with its findings."""
    agency = verdicts[0].agency if verdicts else None
    if agency is not None and agency.id == target:
        named = agency.name
    else:
        named = f"account {target} ({agency.name if agency else 'custom server: valid files only'})"
    counts = {
        level: sum(v.level == level for v in verdicts) for level in ("ok", "warning", "error")
    }
    output.info(
        f"{named}: {len(verdicts)} file(s): {counts['ok']} ok, "
        f"{counts['warning']} with warnings, {counts['error']} rejected"
    )
    for verdict in verdicts:
        if verdict.level == "ok" and not every:
            continue
        output.info(f"  {verdict.facts.path.name}: {verdict.level}")
        for finding in verdict.findings:
            output.info(f"    {finding.level}: {finding.message}")
