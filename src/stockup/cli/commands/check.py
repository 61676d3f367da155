"""`stockup check`: what each agency would reject, before a byte is sent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stockup.catalogue import Agency, get_agency
from stockup.checks import check_files
from stockup.cli import output
from stockup.cli.commands._shared import store
from stockup.collect import collect_files
from stockup.errors import ExitCode, UsageError

LEVEL_STYLE = {"ok": "ok", "warning": "warning", "error": "ERROR"}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("check", help="check files against each agency's rules")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--to", metavar="NAME[,NAME...]", help="accounts (default: all)")
    parser.add_argument("--agency", metavar="ID[,ID...]", help="agencies, without accounts")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--follow-links", action="store_true", help="take links to files outside the folders"
    )
    parser.set_defaults(handler=run)


def _targets(args: argparse.Namespace) -> list[tuple[str, Agency]]:
    if args.agency:
        return [
            (a, get_agency(a)) for a in dict.fromkeys(x.strip() for x in args.agency.split(","))
        ]
    config = store().config()
    names = [n.strip() for n in args.to.split(",")] if args.to else list(config.accounts)
    if not names:
        raise UsageError("no accounts yet: add one, or name agencies with --agency ID,...")
    return [(n, get_agency(config.get(n).agency)) for n in dict.fromkeys(names)]


def run(args: argparse.Namespace) -> int:
    targets = _targets(args)
    collected = collect_files(args.paths, follow_links=args.follow_links)
    for note in collected.notes():
        output.warning(note)
    files = collected.files
    if not files:
        raise UsageError("no files to check in the paths given")
    verdicts = check_files(files, targets)
    if args.json:
        output.print_json([v.to_json() for v in verdicts])
    else:
        output.table(
            "Pre-upload checks",
            ["file", "target", "verdict", "reasons"],
            [
                [
                    v.facts.path.name,
                    v.target,
                    LEVEL_STYLE[v.level],
                    "\n".join(f"{f.level}: {f.message}" for f in v.findings),
                ]
                for v in verdicts
            ],
        )
        errors = sum(v.level == "error" for v in verdicts)
        output.info(f"{len(verdicts)} verdicts: {errors} with errors")
    return int(ExitCode.FAILURE if any(v.level == "error" for v in verdicts) else ExitCode.OK)
