"""Progress for `stockup upload` and the demo: rich bars on a terminal, plain
lines elsewhere. Both render the library's accounting; neither counts."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING

from stockup.accounting import (
    Accounting,
    AccountStopped,
    Event,
    Notice,
    RunFinished,
    RunStarted,
    Totals,
    TransferFinished,
    TransferStarted,
)
from stockup.cli import output
from stockup.planning import ALREADY_UPLOADED, CHANGED_SINCE_UPLOAD
from stockup.results import FileResult, Status
from stockup.text import human_bytes, human_duration

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID


def describe(result: FileResult) -> str:
    """One line for a finished or decided file: status, file, where, reason."""
    where = f"{result.account}:{result.remote_path}" if result.remote_path else result.account
    line = f"{result.status:8} {result.file} -> {where}"
    if result.status == Status.UPLOADED:
        resumed = f", resumed at {result.resumed_from:,}" if result.resumed_from else ""
        line += f" ({result.bytes:,} bytes sent{resumed}, {result.attempts} attempt(s))"
    if result.error:
        line += f": {result.error}"
    return line


class Skipped:
    """Skipped files, counted per account and said in one line each at the
    end of the run (the details with ``--verbose``)."""

    def __init__(self) -> None:
        self.reasons: dict[str, Counter[str]] = {}

    def count(self, result: FileResult) -> None:
        error = result.error or ""
        reason = (
            "already uploaded"
            if error == ALREADY_UPLOADED
            else "changed since uploaded: --force sends again"
            if error.startswith(CHANGED_SINCE_UPLOAD)
            else "not taken there"
        )
        self.reasons.setdefault(result.account, Counter())[reason] += 1

    def lines(self) -> list[str]:
        return [
            f"{account}: {sum(reasons.values())} skipped ("
            + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
            + "; --verbose lists them)"
            for account, reasons in self.reasons.items()
        ]


class PlainRenderer:
    """One line per finished file, for logs and pipes; skipped files are
    counted, and listed only with ``verbose``."""

    def __init__(self, *, verbose: bool = False) -> None:
        self.verbose = verbose
        self.skipped = Skipped()

    def __call__(self, event: Event) -> None:
        match event:
            case RunStarted(plan=plan):
                self._say(f"Uploading {len(plan.all_jobs())} file(s), {plan.total_bytes:,} bytes.")
            case Notice(message=message):
                output.warning(message)
            case TransferFinished(result=result):
                if result.status == Status.SKIPPED and not self.verbose:
                    self.skipped.count(result)
                else:
                    self._say(describe(result))
            case AccountStopped(account=account, reason=reason):
                self._say(f"account {account} stopped: {reason}")
            case RunFinished():
                for line in self.skipped.lines():
                    self._say(line)

    def _say(self, line: str) -> None:
        output.line(line, sys.stderr)


def _speed(totals: Totals) -> str:
    return f"{human_bytes(totals.speed)}/s" if totals.speed else "--"


class RichRenderer:
    """Overall bytes with speed and ETA, one bar per account, the files in
    flight; every figure comes from the accounting's snapshot."""

    def __init__(self, console: Console, accounting: Accounting, *, verbose: bool = False) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.console = console
        self.accounting = accounting
        self.verbose = verbose
        self.skipped = Skipped()
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[speed]}", markup=False),
            TextColumn("{task.fields[eta]}", markup=False),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.files: dict[int, TaskID] = {}

    def __call__(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.progress.start()
                self.tasks["*"] = self._task("all accounts")
                for account in self.accounting.snapshot().accounts:
                    self.tasks[account.name] = self._task(f"  {account.name}")
            case Notice(message=message):
                output.warning(message)
            case TransferStarted(job=job) if job.id not in self.files:
                # A file a refused connection gave back starts again on another.
                self.files[job.id] = self._task(output.plain(f"    {job.account.name}: {job.name}"))
            case TransferFinished(job=job, result=result):
                if job is not None and job.id in self.files:
                    self.progress.remove_task(self.files.pop(job.id))
                if result.status == Status.SKIPPED and not self.verbose:
                    self.skipped.count(result)
                elif result.status != Status.UPLOADED:
                    style = "red" if result.status in (Status.FAILED, Status.REJECTED) else None
                    self.progress.console.print(
                        output.plain(describe(result)), markup=False, highlight=False, style=style
                    )
            case AccountStopped(account=account, reason=reason):
                self.progress.console.print(
                    output.plain(f"account {account} stopped: {reason}"),
                    markup=False,
                    style="bold red",
                )
            case RunFinished():
                if self.tasks:
                    self._refresh()
                self.progress.stop()
                for line in self.skipped.lines():
                    self.console.print(output.plain(line), markup=False, highlight=False)
                return
        if self.tasks:
            self._refresh()

    def _task(self, description: str) -> TaskID:
        return self.progress.add_task(description, total=None, speed="", eta="")

    def _refresh(self) -> None:
        snapshot = self.accounting.snapshot()
        for totals, task in [(snapshot.overall, self.tasks["*"])] + [
            (a, self.tasks[a.name]) for a in snapshot.accounts if a.name in self.tasks
        ]:
            self.progress.update(
                task,
                total=totals.total,
                completed=totals.done,
                speed=_speed(totals),
                eta=human_duration(totals.eta),
            )
        for transfer in snapshot.in_flight:
            if transfer.id in self.files:
                self.progress.update(
                    self.files[transfer.id], total=transfer.size, completed=transfer.done
                )
