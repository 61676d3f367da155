"""`stockup upload` and `stockup history`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from stockup.cli import output
from stockup.cli.commands._shared import passphrase_source, plaintext_warning, store
from stockup.cli.progress import PlainReporter, RichReporter, describe
from stockup.engine import Plan, UploadEngine, plan_upload, summarise
from stockup.errors import ExitCode, UsageError
from stockup.journal import STATUSES, Journal, write_history_csv
from stockup.ratelimit import RateLimiter, parse_rate
from stockup.secret import redact
from stockup.transports.base import Timeouts


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    upload = commands.add_parser("upload", parents=[common], help="upload files to accounts")
    upload.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    upload.add_argument("--to", required=True, metavar="NAME[,NAME...]", help="account names")
    upload.add_argument("--connections", type=int, metavar="N", help="connections per account")
    upload.add_argument("--dry-run", action="store_true", help="print the plan, connect nowhere")
    upload.add_argument("--force", action="store_true", help="send again what was uploaded")
    upload.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    upload.add_argument("--no-progress", action="store_true", help="plain lines, no bars")
    upload.add_argument("--limit-rate", metavar="RATE", help="total bytes/s cap, e.g. 500K, 20M")
    upload.add_argument(
        "--retries", type=int, default=5, metavar="N", help="attempts per file (default 5)"
    )
    upload.add_argument(
        "--skip-checks", action="store_true", help="send files the pre-upload checks reject"
    )
    upload.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="give up on a connection attempt, a reply or a stalled transfer after this long "
        "(default 60; the attempt is then retried)",
    )
    upload.add_argument(
        "--safe-names", action="store_true", help="rename to fit each agency's filename rule"
    )
    upload.set_defaults(handler=run_upload)

    history = commands.add_parser("history", help="what went where, when, and the outcome")
    history.add_argument("--account", metavar="NAME", help="only this account")
    history.add_argument("--status", choices=STATUSES, help="only entries with this outcome")
    history.add_argument("--search", metavar="TEXT", help="only files whose path contains TEXT")
    output_format = history.add_mutually_exclusive_group()
    output_format.add_argument("--json", action="store_true", help="print JSON")
    output_format.add_argument("--csv", action="store_true", help="print CSV, for spreadsheets")
    history.add_argument("--limit", type=int, default=200, help="newest N entries (default 200)")
    history.set_defaults(handler=run_history)


def run_upload(args: argparse.Namespace) -> int:
    if args.connections is not None and not 1 <= args.connections <= 32:
        raise UsageError("--connections must be between 1 and 32")
    if not 1 <= args.retries <= 100:
        raise UsageError("--retries must be between 1 and 100")
    if not 1 <= args.timeout <= 3600:
        raise UsageError("--timeout must be between 1 and 3600 seconds")
    limiter = RateLimiter(parse_rate(args.limit_rate)) if args.limit_rate else None
    target = store()
    config = target.config()
    names = [n.strip() for n in args.to.split(",") if n.strip()]
    if not names:
        raise UsageError("--to needs at least one account name")
    accounts = [config.get(name) for name in dict.fromkeys(names)]
    with contextlib.ExitStack() as stack:
        journal = Journal(target.paths.journal_file)
        stack.callback(journal.close)
        plan = plan_upload(
            args.paths,
            accounts,
            journal,
            force=args.force,
            skip_checks=args.skip_checks,
            safe_names=args.safe_names,
        )
        stack.callback(plan.close)
        if args.dry_run:
            return _print_plan(plan, args.json)
        for account in accounts:
            plaintext_warning(account)
        credentials = target.credentials_for(accounts, passphrase_source(args))
        interactive = sys.stderr.isatty() and not args.no_progress and not args.json
        reporter = RichReporter(output.stderr) if interactive else PlainReporter(output.stderr)
        engine = UploadEngine(
            target.paths,
            journal,
            reporter,
            connections=args.connections,
            attempts=args.retries,
            limiter=limiter,
            timeouts=Timeouts(connect=args.timeout, reply=args.timeout, stall=args.timeout),
        )
        try:
            results = asyncio.run(_run_cancellable(engine, plan, credentials))
        except (KeyboardInterrupt, asyncio.CancelledError):
            output.error("interrupted; the journal is consistent, run the same command to resume")
            return int(ExitCode.INTERRUPTED)
    summary = summarise(results)
    if args.json:
        output.print_json({"results": [r.to_json() for r in results], "summary": summary})
    else:
        output.info(
            f"{summary['uploaded']} uploaded, {summary['skipped']} skipped, "
            f"{summary['rejected']} rejected, {summary['failed']} failed "
            f"({summary['bytes']:,} bytes sent)"
        )
        for failure in summary["failures"]:
            output.info(
                redact(
                    f"  {failure['status']}: {failure['account']}: {failure['file']}: "
                    f"{failure['error']}"
                )
            )
    return int(ExitCode.FAILURE if summary["failed"] or summary["rejected"] else ExitCode.OK)


async def _run_cancellable(engine: UploadEngine, plan: Plan, credentials: dict[str, Any]) -> Any:
    """Run the engine; SIGTERM cancels it like Ctrl-C does."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await engine.run(plan, credentials)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _print_plan(plan: Plan, as_json: bool) -> int:
    if as_json:
        output.print_json(
            {
                "send": [
                    {
                        "file": str(j.artwork.path),
                        "account": j.account.name,
                        "remote_path": j.remote_path,
                        "bytes": j.artwork.size,
                        "resume": j.resume,
                    }
                    for j in plan.all_jobs()
                ],
                "skip": [r.to_json() for r in plan.skipped],
            }
        )
        return 0
    for job in plan.all_jobs():
        note = " (resume)" if job.resume else ""
        output.info(f"send  {job.artwork.path} -> {job.account.name}:{job.remote_path}{note}")
    for result in plan.skipped:
        output.info(describe(result))
    output.info(
        f"{len(plan.all_jobs())} to send ({plan.total_bytes:,} bytes), "
        f"{len(plan.skipped)} skipped or rejected"
    )
    return 0


def run_history(args: argparse.Namespace) -> int:
    target = store()
    if args.account:
        target.config().get(args.account)
    journal = Journal(target.paths.journal_file)
    try:
        rows = journal.history(args.account, args.limit, status=args.status, text=args.search)
    finally:
        journal.close()
    if args.json:
        output.print_json(rows)
        return 0
    if args.csv:
        write_history_csv(rows, sys.stdout)
        return 0
    if not rows:
        output.info("No uploads yet.")
        return 0
    output.table(
        "History",
        ["when", "account", "status", "file", "remote path", "bytes", "error"],
        [
            [
                r["at"],
                r["account"],
                r["status"],
                Path(r["file"]).name,
                r["remote_path"],
                f"{r['bytes']:,}",
                r["error"] or "",
            ]
            for r in rows
        ],
    )
    return 0
