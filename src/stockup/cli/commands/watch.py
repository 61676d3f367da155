"""`stockup watch`: a thin layer over :class:`stockup.watch.Watcher`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import plistlib
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import passphrase_source, store
from stockup.cli.commands.upload import settings_from
from stockup.cli.progress import PlainRenderer
from stockup.errors import ExitCode, UsageError
from stockup.notify import notify
from stockup.planning import CHANGED_SINCE_UPLOAD
from stockup.results import Status
from stockup.vault import read_key_source
from stockup.watch import (
    DEFAULT_RETRY,
    DEFAULT_SETTLE,
    BatchReport,
    Watcher,
    WatchSettings,
    Window,
    parse_duration,
    read_status,
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    watch = commands.add_parser("watch", parents=[common], help=summary("watch"))
    watch.add_argument("folders", nargs="*", type=Path, metavar="FOLDER")
    watch.add_argument("--to", metavar="NAME[,NAME...]", help="account names")
    watch.add_argument(
        "--settle",
        default=f"{DEFAULT_SETTLE:g}s",
        metavar="TIME",
        help="a file is taken once unchanged this long and closed by its writer (default 30s)",
    )
    checks = watch.add_mutually_exclusive_group()
    checks.add_argument("--checks", action="store_false", dest="skip_checks", default=False,
                        help="check files before sending (the default)")  # fmt: skip
    checks.add_argument("--skip-checks", action="store_true", help="send files the checks reject")
    watch.add_argument("--limit-rate", metavar="RATE", help="total bytes/s cap, e.g. 500K, 20M")
    watch.add_argument("--connections", type=int, metavar="N", help="connections per account")
    watch.add_argument(
        "--schedule", metavar="HH:MM-HH:MM", help="upload only in this daily window (local time)"
    )
    watch.add_argument(
        "--retry-every",
        default=f"{DEFAULT_RETRY:g}s",
        metavar="TIME",
        help="after a failed upload, try again this much later, doubling (default 60s)",
    )
    watch.add_argument("--once", action="store_true", help="send what the folders hold, then stop")
    watch.add_argument(
        "--status", action="store_true", help="what the running watcher has queued, sends, sent"
    )
    watch.add_argument(
        "--print-service",
        action="store_true",
        help="print a systemd user unit and a launchd agent that run this watch at login",
    )
    watch.set_defaults(handler=run_watch)


def _settings(args: argparse.Namespace) -> WatchSettings:
    if not args.to:
        raise UsageError("give the accounts to upload to with --to NAME[,NAME...]")
    return WatchSettings(
        folders=tuple(args.folders),
        accounts=tuple(n.strip() for n in args.to.split(",") if n.strip()),
        upload=settings_from(args),
        settle=parse_duration(args.settle, "settle time"),
        retry_every=parse_duration(args.retry_every, "retry time"),
        schedule=Window.parse(args.schedule) if args.schedule else None,
        once=args.once,
    )


def run_watch(args: argparse.Namespace) -> int:
    if args.status:
        return _print_status()
    settings = _settings(args)
    target = store()
    for name in settings.accounts:
        target.config().get(name)  # an unknown account is said before anything starts
    if args.print_service:
        return _print_service(args, settings)
    return asyncio.run(_watch(args, settings))


async def _watch(args: argparse.Namespace, settings: WatchSettings) -> int:
    target = store()

    async def report(batch: BatchReport) -> None:
        waiting = f"; {batch.waiting} waiting" if batch.waiting else ""
        output.info(f"batch {batch.number}: {batch.summary.line()}{waiting}")
        edited = [
            r for r in batch.summary.results
            if r.status == Status.SKIPPED and CHANGED_SINCE_UPLOAD in (r.error or "")
        ]  # fmt: skip
        for problem in [*batch.summary.problems, *edited]:
            output.info(f"  {problem.status}: {problem.account}: {problem.file}: {problem.error}")
        await notify("stockup: batch sent", f"{batch.summary.line()}{waiting}")

    watcher = Watcher(
        target,
        settings,
        passphrase_source(args),
        on_batch=report,
        listeners=[PlainRenderer()],
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, watcher.stop)
    folders = ", ".join(str(f) for f in settings.folders)
    when = f", uploading {settings.schedule}" if settings.schedule else ""
    output.info(f"Watching {folders} for {', '.join(settings.accounts)}{when}; Ctrl-C stops.")
    try:
        clean = await watcher.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    output.info(f"Stopped: {watcher.done} file(s) done, {len(watcher.failed)} failed.")
    return int(ExitCode.OK if clean else ExitCode.FAILURE)


def _print_status() -> int:
    status = read_status(store())
    if status is None:
        output.info("No watcher has run yet.")
        return 0
    updated = dt.datetime.fromtimestamp(status["updated"]).astimezone()
    state = status["state"] if status["running"] else "not running"
    output.info(
        f"{'state':9} {state} (pid {status['pid']}, updated {updated:%Y-%m-%d %H:%M:%S %Z})"
    )
    output.info(f"{'folders':9} {', '.join(status['folders'])}")
    output.info(f"{'accounts':9} {', '.join(status['accounts'])}")
    output.info(f"{'done':9} {status['done']} file(s) in {status['batches']} batch(es)")
    for key in ("sending", "waiting"):
        files = status[key]
        output.info(f"{key:9} {len(files)} file(s)")
        for name in files[:20]:
            output.info(f"  {name}")
        if len(files) > 20:
            output.info(f"  ... and {len(files) - 20} more")
    for failed in status["failed"]:
        output.info(f"{'failed':9} {failed['file']}: {failed['error']}")
    return 0


def _print_service(args: argparse.Namespace, settings: WatchSettings) -> int:
    """A systemd user unit and a launchd agent running this same watch. The
    passphrase is never written into them: keychain mode needs none, and a
    passphrase vault needs --passphrase-command (run by the service)."""
    target = store()
    keychain = target.vault_exists() and read_key_source(target.paths.vault_file) == "keychain"
    if not keychain and not (args.passphrase_command or args.passphrase_file):
        raise UsageError(
            "a service cannot type the vault passphrase: use a vault in keychain mode "
            "(`stockup init --keychain`), or give --passphrase-command CMD or "
            "--passphrase-file FILE"
        )
    installed = shutil.which("stockup")
    argv = [installed] if installed else [sys.executable, "-m", "stockup"]
    argv += ["watch", *(str(f.resolve()) for f in settings.folders)]
    argv += ["--to", ",".join(settings.accounts), "--settle", args.settle]
    argv += ["--retry-every", args.retry_every]
    for flag, value in (("--limit-rate", args.limit_rate), ("--schedule", args.schedule),
                        ("--connections", args.connections),
                        ("--passphrase-command", args.passphrase_command),
                        ("--passphrase-file", args.passphrase_file)):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    if settings.upload.skip_checks:
        argv.append("--skip-checks")
    home = os.environ.get("STOCKUP_HOME")
    environment = {"STOCKUP_HOME": home} if home else {}
    unit = [
        "# ~/.config/systemd/user/stockup-watch.service",
        "# then: systemctl --user daemon-reload && systemctl --user enable --now stockup-watch",
        "[Unit]",
        f"Description=stockup watch: {', '.join(settings.accounts)}",
        "After=network-online.target",
        "",
        "[Service]",
        f"ExecStart={' '.join(_systemd_quote(a) for a in argv)}",
        *(f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in environment.items()),
        "Restart=on-failure",
        "RestartSec=30",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
        "# ~/Library/LaunchAgents/org.stockup.watch.plist",
        "# then: launchctl load ~/Library/LaunchAgents/org.stockup.watch.plist",
    ]
    agent = {
        "Label": "org.stockup.watch",
        "ProgramArguments": argv,
        "EnvironmentVariables": environment,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
    }
    output.document("\n".join(unit) + "\n" + plistlib.dumps(agent).decode())
    return 0


def _systemd_quote(word: str) -> str:
    """One ExecStart word: double-quoted, with systemd's escapes (backslash,
    quote) and its specifier character (%) doubled. Written by hand: no
    library quotes for systemd, whose rules are not the shell's."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'
