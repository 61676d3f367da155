"""`stockup upload`: a thin layer over :class:`stockup.session.UploadSession`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from stockup.accounting import Listener
from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import passphrase_source, store
from stockup.cli.progress import PlainRenderer, RichRenderer, describe
from stockup.errors import ExitCode
from stockup.planning import Plan
from stockup.ratelimit import parse_rate
from stockup.results import Summary
from stockup.session import UploadRequest, UploadSession, UploadSettings
from stockup.similar import SimilarLimits

DEFAULTS = UploadSettings()


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    upload = commands.add_parser("upload", parents=[common], help=summary("upload"))
    upload.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    upload.add_argument("--to", required=True, metavar="NAME[,NAME...]", help="account names")
    upload.add_argument("--connections", type=int, metavar="N", help="connections per account")
    upload.add_argument("--dry-run", action="store_true", help="print the plan, connect nowhere")
    upload.add_argument("--force", action="store_true", help="send again what was uploaded")
    upload.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    upload.add_argument("--no-progress", action="store_true", help="plain lines, no bars")
    upload.add_argument("--limit-rate", metavar="RATE", help="total bytes/s cap, e.g. 500K, 20M")
    upload.add_argument(
        "--retries",
        type=int,
        dest="attempts",
        metavar="N",
        help=f"attempts per file (default {DEFAULTS.attempts})",
    )
    upload.add_argument(
        "--skip-checks", action="store_true", help="send files the pre-upload checks reject"
    )
    upload.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up on a connection attempt, a reply or a stalled transfer after this long "
        f"(default {DEFAULTS.timeout:.0f}; the attempt is then retried)",
    )
    upload.add_argument(
        "--safe-names", action="store_true", help="rename to fit each agency's filename rule"
    )
    upload.add_argument(
        "--follow-links", action="store_true", help="take links to files outside the folders"
    )
    upload.add_argument(
        "--max-similar",
        metavar="N|ID=N[,...]",
        help="more than N versions of one motif (per account or agency) is an error "
        "(default: warnings only)",
    )
    upload.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps a `stockup -v upload` given before the command
        help="list every skipped file, not only their count",
    )
    upload.set_defaults(handler=run_upload)


def settings_from(args: argparse.Namespace) -> UploadSettings:
    """The upload's settings: the defaults, with what the user gave on the
    command line (of `upload`, or of `watch`, which has some of its options)."""
    given = {f.name: getattr(args, f.name) for f in fields(UploadSettings) if hasattr(args, f.name)}
    given = {k: v for k, v in given.items() if v is not None and v is not False}
    if args.limit_rate:
        given["limit_rate"] = parse_rate(args.limit_rate)
    if getattr(args, "max_similar", None):  # `watch` has no such option
        given["max_similar"] = SimilarLimits.parse(args.max_similar)
    return replace(DEFAULTS, **given)


def run_upload(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    names = tuple(n.strip() for n in args.to.split(",") if n.strip())
    request = UploadRequest(tuple(args.paths), names, settings)
    session = UploadSession(store(), request)
    if args.dry_run:
        with session.dry_run() as plan:
            return _print_plan(plan, args.json)
    interactive = sys.stderr.isatty() and not args.no_progress and not args.json
    renderer: Listener = (
        RichRenderer(output.console(stderr=True), session.accounting, verbose=args.verbose)
        if interactive
        else PlainRenderer(verbose=args.verbose)
    )
    session.accounting.listeners.append(renderer)
    try:
        summary = asyncio.run(_run_cancellable(session, args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        output.error("interrupted; the journal is consistent, run the same command to resume")
        return int(ExitCode.INTERRUPTED)
    if args.json:
        output.print_json(
            {"results": [r.to_json() for r in summary.results], "summary": summary.to_json()}
        )
    else:
        output.info(summary.line())
        for problem in summary.problems:
            output.info(f"  {problem.status}: {problem.account}: {problem.file}: {problem.error}")
    return int(ExitCode.OK if summary.ok else ExitCode.FAILURE)


async def _run_cancellable(session: UploadSession, args: argparse.Namespace) -> Summary:
    """Run the session; SIGTERM cancels it like Ctrl-C does."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await session.run(passphrase_source(args))
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _print_plan(plan: Plan, as_json: bool) -> int:
    if as_json:
        output.print_json(
            {
                "send": [
                    {
                        "file": j.artwork.label,
                        "account": j.account.name,
                        "remote_path": j.remote_path,
                        "bytes": j.artwork.size,
                        "resume": j.resume,
                    }
                    for j in plan.all_jobs()
                ],
                "skip": [r.to_json() for r in plan.decided],
                "notes": plan.notes,
            }
        )
        return 0
    for note in plan.notes:
        output.warning(note)
    for job in plan.all_jobs():
        note = " (resume)" if job.resume else ""
        output.info(f"send  {job.artwork.label} -> {job.account.name}:{job.remote_path}{note}")
    for result in plan.decided:
        output.info(describe(result))
    output.info(
        f"{len(plan.all_jobs())} to send ({plan.total_bytes:,} bytes), "
        f"{len(plan.decided)} skipped or rejected"
    )
    return 0
