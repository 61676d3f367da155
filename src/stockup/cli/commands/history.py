"""`stockup history`: what the journal says went where, and when."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import store
from stockup.journal import Journal, write_history_csv
from stockup.results import OUTCOMES


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    history = commands.add_parser("history", help=summary("history"))
    history.add_argument("--account", metavar="NAME", help="only this account")
    history.add_argument(
        "--status", choices=[str(s) for s in OUTCOMES], help="only entries with this outcome"
    )
    history.add_argument("--search", metavar="TEXT", help="only files whose path contains TEXT")
    history.add_argument("--run", metavar="ID", help="only this run (see --runs)")
    history.add_argument("--runs", action="store_true", help="list the runs, newest first")
    output_format = history.add_mutually_exclusive_group()
    output_format.add_argument("--json", action="store_true", help="print JSON")
    output_format.add_argument("--csv", action="store_true", help="print CSV, for spreadsheets")
    history.add_argument(
        "--limit", type=int, default=200, help="newest N entries, newest first (default 200)"
    )
    history.set_defaults(handler=run_history)


def run_history(args: argparse.Namespace) -> int:
    target = store()
    if args.account:
        target.config().get(args.account)
    journal = Journal(target.paths.journal_file)
    try:
        if args.runs:
            return _print_runs(journal.runs(args.limit), args)
        rows = journal.history(
            args.account, args.limit, status=args.status, text=args.search, run=args.run
        )
    finally:
        journal.close()
    if args.json:
        output.print_json(rows)
        return 0
    if args.csv:
        write_history_csv(rows, sys.stdout)
        return 0
    if not rows:
        output.info("No uploads yet." if not args.run else f"No entries for run {args.run}.")
        return 0
    output.table(
        "History, newest first",
        ["when", "run", "account", "status", "file", "remote path", "bytes sent", "error"],
        [
            [
                r["at"],
                r["run"],
                r["account"],
                r["status"],
                Path(r["file"]).name,
                r["remote_path"],
                _sent(r),
                r["error"] or "",
            ]
            for r in rows
        ],
    )
    return 0


def _sent(row: dict[str, Any]) -> str:
    text = f"{row['bytes']:,}"
    if row["size"] and row["bytes"] != row["size"]:
        text += f" of {row['size']:,}"
    if row["resumed_from"]:
        text += f" (resumed at {row['resumed_from']:,})"
    return text


def _print_runs(runs: list[dict[str, Any]], args: argparse.Namespace) -> int:
    if args.json:
        output.print_json(runs)
        return 0
    if not runs:
        output.info("No uploads yet.")
        return 0
    output.table(
        "Runs, newest first (stockup history --run ID)",
        ["run", "started", "accounts", *(str(s) for s in OUTCOMES), "bytes sent"],
        [
            [
                r["run"],
                r["at"],
                ", ".join(r["accounts"]),
                *(str(r[str(s)]) for s in OUTCOMES),
                f"{r['bytes']:,}",
            ]
            for r in runs
        ],
    )
    return 0
