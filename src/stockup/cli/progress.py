"""Progress for `stockup upload`: rich bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from stockup.engine import FileResult, Job, Plan
from stockup.secret import redact


def describe(result: FileResult) -> str:
    """One line for a finished or decided file: status, file, where, reason."""
    where = f"{result.account}:{result.remote_path}" if result.remote_path else result.account
    line = f"{result.status:8} {result.file} -> {where}"
    if result.status == "uploaded":
        line += f" ({result.bytes:,} bytes sent, {result.attempts} attempt(s))"
    if result.error:
        line += f": {result.error}"
    return redact(line)


class PlainReporter:
    """One line per finished file, for logs and pipes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def started(self, plan: Plan) -> None:
        self.console.print(
            f"Uploading {len(plan.all_jobs())} file transfer(s), {plan.total_bytes:,} bytes.",
            markup=False,
        )

    def file_started(self, job: Job) -> None:
        pass

    def advanced(self, job: Job, nbytes: int) -> None:
        pass

    def file_finished(self, job: Job | None, result: FileResult) -> None:
        self.console.print(describe(result), markup=False, highlight=False)

    def account_stopped(self, account: str, reason: str) -> None:
        self.console.print(redact(f"account {account} stopped: {reason}"), markup=False)

    def finished(self) -> None:
        pass


class RichReporter:
    """Overall bytes with speed and ETA, one bar per account, the files in flight."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.overall: TaskID | None = None
        self.accounts: dict[str, TaskID] = {}
        self.files: dict[int, TaskID] = {}

    def started(self, plan: Plan) -> None:
        self.progress.start()
        self.overall = self.progress.add_task("all accounts", total=plan.total_bytes)
        jobs = plan.all_jobs()
        for job in jobs:
            name = job.account.name
            if name not in self.accounts:
                total = sum(j.artwork.size for j in jobs if j.account.name == name)
                self.accounts[name] = self.progress.add_task(f"  {name}", total=total)

    def file_started(self, job: Job) -> None:
        if id(job) not in self.files:
            self.files[id(job)] = self.progress.add_task(
                f"    {job.account.name}: {job.artwork.path.name}", total=job.artwork.size
            )

    def advanced(self, job: Job, nbytes: int) -> None:
        assert self.overall is not None
        self.progress.advance(self.overall, nbytes)
        self.progress.advance(self.accounts[job.account.name], nbytes)
        self.progress.advance(self.files[id(job)], nbytes)

    def file_finished(self, job: Job | None, result: FileResult) -> None:
        if job is not None and id(job) in self.files:
            self.progress.remove_task(self.files.pop(id(job)))
        if result.status != "uploaded":
            style = "red" if result.status in ("failed", "rejected") else None
            self.progress.console.print(
                describe(result), markup=False, highlight=False, style=style
            )

    def account_stopped(self, account: str, reason: str) -> None:
        self.progress.console.print(
            redact(f"account {account} stopped: {reason}"), markup=False, style="bold red"
        )

    def finished(self) -> None:
        self.progress.stop()
