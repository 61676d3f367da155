"""Uploads started from the web UI: staged files, live progress, cancel, retry.

Planning, checking and sending are the library's (``plan_upload``,
``check_files``, ``UploadEngine``), exactly as the CLI uses them. This module
only keeps what a page shows (bytes per account and per file, speed, ETA,
outcomes) and wakes the server-sent event streams when that changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from stockup.catalogue import get_agency
from stockup.checks import Verdict, check_files
from stockup.config import Account
from stockup.engine import (
    FileResult,
    Job,
    Plan,
    UploadEngine,
    collect_files,
    plan_upload,
    summarise,
)
from stockup.errors import StockupError, UsageError
from stockup.journal import Journal
from stockup.passphrase import PassphraseSource
from stockup.paths import ensure_private_dir
from stockup.ratelimit import RateLimiter
from stockup.secret import redact
from stockup.store import Store

logger = logging.getLogger(__name__)
SPEED_WINDOW_SECONDS = 5.0
STALE_STAGING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class UploadRequest:
    """What the user chose on the upload page; a retry narrows it."""

    paths: tuple[Path, ...]
    accounts: tuple[str, ...]
    limit_rate: float | None = None
    skip_checks: bool = False
    safe_names: bool = False
    force: bool = False


@dataclass
class Selection:
    """Files chosen and checked, waiting for the user to start the upload."""

    id: str
    request: UploadRequest
    files: list[Path]
    verdicts: list[Verdict]
    accounts: list[Account]

    @property
    def warnings(self) -> list[str]:
        return cleartext_warnings(self.accounts)


def cleartext_warnings(accounts: list[Account]) -> list[str]:
    """What a page repeats for every plain-FTP account it is about to use."""
    return [a.cleartext_warning for a in accounts if a.cleartext_warning]


def relative_upload_path(filename: str) -> Path | None:
    """A browser-sent file name (a folder pick sends ``folder/sub/name``) as a
    relative path that cannot leave the staging folder; None if nothing is left."""
    parts = [p for p in re.split(r"[\\/]+", filename) if p not in ("", ".", "..")]
    return Path(*parts) if parts else None


class Staging:
    """Files the browser sent, copied under the state directory for this
    server's lifetime: the engine works on paths, and the journal recognises
    the same content sent again, so a later run resumes or skips it."""

    def __init__(self, root: Path) -> None:
        ensure_private_dir(root)
        for old in root.iterdir():  # left by a server that was killed
            if time.time() - old.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        self.folder = Path(tempfile.mkdtemp(prefix="ui-", dir=root))

    def new_batch(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.folder))

    @staticmethod
    def save(batch: Path, filename: str, content: BinaryIO) -> Path | None:
        relative = relative_upload_path(filename)
        if relative is None:
            return None
        target = batch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(content, out, 1024 * 1024)
        return target

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class Speed:
    """Bytes per second over the last few seconds (since the start, at first)."""

    def __init__(self) -> None:
        self.total = 0
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])

    def add(self, nbytes: int) -> None:
        self.total += nbytes
        now = time.monotonic()
        self._samples.append((now, self.total))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_SECONDS:
            self._samples.popleft()

    def per_second(self) -> float:
        (t0, b0), (_, b1) = self._samples[0], self._samples[-1]
        elapsed = time.monotonic() - t0
        return (b1 - b0) / elapsed if elapsed > 0 else 0.0


@dataclass
class FileProgress:
    name: str
    size: int
    sent: int = 0

    @property
    def percent(self) -> int:
        return 100 if self.size == 0 else min(100, self.sent * 100 // self.size)


@dataclass
class AccountProgress:
    name: str
    security: str
    total: int = 0
    files: int = 0
    finished_bytes: int = 0
    finished: int = 0
    stopped: str | None = None
    settled: bool = False
    """The run is over: an account with nothing to send shows as complete."""
    in_flight: dict[int, FileProgress] = field(default_factory=dict)
    speed: Speed = field(default_factory=Speed)

    @property
    def done(self) -> int:
        """Bytes accounted for: finished files whole, files in flight as sent so far."""
        return self.finished_bytes + sum(min(f.sent, f.size) for f in self.in_flight.values())

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.settled else 0
        return min(100, self.done * 100 // self.total)

    @property
    def eta_seconds(self) -> float | None:
        speed = self.speed.per_second()
        remaining = self.total - self.done
        return remaining / speed if speed > 0 and remaining > 0 else None


class Run:
    """One upload's progress, as the engine reports it (a :class:`Reporter`)."""

    def __init__(self, request: UploadRequest, accounts: list[Account]) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.request = request
        self.state = "preparing"
        """preparing, running, finished, cancelled or failed"""
        self.message = ""
        self.accounts = {a.name: AccountProgress(a.name, a.security) for a in accounts}
        self.warnings = cleartext_warnings(accounts)
        self.results: list[FileResult] = []
        self.started_at = time.time()
        self.version = 0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def active(self) -> bool:
        return self.state in ("preparing", "running")

    @property
    def summary(self) -> dict[str, Any]:
        """Counts per outcome and the failures with their reasons, as `stockup upload` reports."""
        return summarise(self.results)

    def touch(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, seen: int, timeout: float) -> None:
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    # -- Reporter -----------------------------------------------------------

    def started(self, plan: Plan) -> None:
        self.state = "running"
        for job in plan.all_jobs():
            progress = self.accounts[job.account.name]
            progress.total += job.artwork.size
            progress.files += 1
        for progress in self.accounts.values():
            progress.speed = Speed()  # from now: preparing took time that sent nothing
        self.touch()

    def file_started(self, job: Job) -> None:
        progress = self.accounts[job.account.name]
        progress.in_flight[id(job)] = FileProgress(job.name, job.artwork.size)
        self.touch()

    def advanced(self, job: Job, nbytes: int) -> None:
        progress = self.accounts[job.account.name]
        progress.speed.add(nbytes)
        if id(job) in progress.in_flight:
            progress.in_flight[id(job)].sent += nbytes
        self.touch()

    def file_finished(self, job: Job | None, result: FileResult) -> None:
        self.results.append(result)
        if job is not None:
            progress = self.accounts[job.account.name]
            progress.in_flight.pop(id(job), None)
            progress.finished += 1
            progress.finished_bytes += job.artwork.size
        self.touch()

    def account_stopped(self, account: str, reason: str) -> None:
        self.accounts[account].stopped = redact(reason)
        self.touch()

    def finished(self) -> None:
        for progress in self.accounts.values():
            progress.settled = True
        self.touch()


class Uploads:
    """The web UI's uploads: selections awaiting a start, and runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.staging = Staging(store.paths.state_dir / "ui-uploads")
        self.selections: dict[str, Selection] = {}
        self.runs: dict[str, Run] = {}

    async def select(self, request: UploadRequest) -> Selection:
        """Check the chosen files against every chosen account's agency."""
        if not request.accounts:
            raise UsageError("choose at least one account to upload to")
        config = self.store.config()
        accounts = [config.get(name) for name in request.accounts]
        files = await asyncio.to_thread(collect_files, request.paths)
        if not files:
            raise UsageError("no files to upload in what was chosen")
        targets = [(a.name, get_agency(a.agency)) for a in accounts]
        verdicts = await asyncio.to_thread(check_files, files, targets)
        selection = Selection(uuid.uuid4().hex[:12], request, files, verdicts, accounts)
        self.selections[selection.id] = selection
        return selection

    def start(self, request: UploadRequest, passphrase: PassphraseSource) -> Run:
        if any(run.active for run in self.runs.values()):
            raise UsageError("an upload is already running: wait for it to end or cancel it")
        config = self.store.config()
        accounts = [config.get(name) for name in request.accounts]
        run = Run(request, accounts)
        self.runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run, accounts, passphrase))
        return run

    def retry(self, run: Run, passphrase: PassphraseSource) -> Run:
        """The same upload again: the journal skips what arrived and resumes
        partial files, so only what failed or was cancelled is sent."""
        return self.start(run.request, passphrase)

    def cancel(self, run: Run) -> None:
        if run.task is not None and run.active:
            run.task.cancel()

    async def close(self) -> None:
        tasks = [run.task for run in self.runs.values() if run.task and not run.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.staging.close()

    async def _execute(
        self, run: Run, accounts: list[Account], passphrase: PassphraseSource
    ) -> None:
        request = run.request
        try:
            credentials = await asyncio.to_thread(self.store.credentials_for, accounts, passphrase)
            plan = await asyncio.to_thread(self._plan, request, accounts)
            journal = Journal(self.store.paths.journal_file)
            try:
                limiter = RateLimiter(request.limit_rate) if request.limit_rate else None
                engine = UploadEngine(self.store.paths, journal, run, limiter=limiter)
                await engine.run(plan, credentials)
            finally:
                journal.close()
                plan.close()
            run.state = "finished"
        except asyncio.CancelledError:
            run.state = "cancelled"
            run.message = "cancelled: the journal keeps what arrived; retry to resume the rest"
        except StockupError as exc:
            run.state = "failed"
            run.message = redact(str(exc))
        except Exception as exc:  # a bug: say so on the page, as the CLI does, and log it
            run.state = "failed"
            run.message = redact(f"internal error ({type(exc).__name__}): {exc}")
            logger.exception("upload %s failed", run.id)
        finally:
            run.touch()

    def _plan(self, request: UploadRequest, accounts: list[Account]) -> Plan:
        # A journal of this thread's own: SQLite connections stay in their thread.
        journal = Journal(self.store.paths.journal_file)
        try:
            return plan_upload(
                request.paths,
                accounts,
                journal,
                force=request.force,
                skip_checks=request.skip_checks,
                safe_names=request.safe_names,
            )
        finally:
            journal.close()
