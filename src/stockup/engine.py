"""The upload engine: every file to every account, at once, resumably.

All accounts run concurrently; each has a pool of connections reused across
files, fed largest file first. Retryable errors are retried with exponential
backoff and jitter, resuming from the remote partial file; an account-level
failure (login, certificate, host key, quota) stops that account alone; a file
that cannot be sent fails alone. Every attempt is journaled before a byte is
sent, so an interrupted run, even a ``kill -9``, resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stockup.catalogue import get_agency
from stockup.checks import Batch
from stockup.config import Account
from stockup.errors import (
    AuthenticationFailed,
    CertificateError,
    HostKeyChanged,
    HostKeyUnknown,
    NameNotResolved,
    QuotaExceeded,
    TransportError,
    UsageError,
)
from stockup.journal import STATUSES, Journal, file_sha256
from stockup.packaging import build_zip, safe_name
from stockup.paths import Paths
from stockup.ratelimit import RateLimiter
from stockup.transfer import send_file
from stockup.transports import open_transport
from stockup.transports.base import Timeouts, Transport, join_remote
from stockup.vault import Credentials

DEFAULT_CONNECTIONS = 4
DEFAULT_ATTEMPTS = 5
HASH_THREADS = 2
# Errors that concern the whole account, not one file: stop that account.
ACCOUNT_ERRORS = (
    AuthenticationFailed,
    CertificateError,
    HostKeyChanged,
    HostKeyUnknown,
    NameNotResolved,
    QuotaExceeded,
)


@dataclass(frozen=True)
class Artwork:
    path: Path
    size: int
    media: str


@dataclass
class Job:
    account: Account
    artwork: Artwork
    remote_dir: str
    name: str
    sha256: str | None
    """None until hashed: the engine hashes new files while others upload."""
    resume: bool = False
    then: Job | None = None
    """Sent right after this one by the same connection (a vector's preview)."""

    @property
    def remote_path(self) -> str:
        return join_remote(self.remote_dir, self.name)

    def chain(self) -> list[Job]:
        jobs: list[Job] = []
        job: Job | None = self
        while job is not None:
            jobs.append(job)
            job = job.then
        return jobs


@dataclass
class FileResult:
    file: str
    account: str
    remote_path: str
    status: str
    bytes: int = 0
    attempts: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "account": self.account,
            "remote_path": self.remote_path,
            "status": self.status,
            "bytes": self.bytes,
            "attempts": self.attempts,
            "error": self.error,
        }


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    skipped: list[FileResult] = field(default_factory=list)
    """Results decided before sending: skipped, or rejected by the checks."""
    workdir: Path | None = None
    """Where ZIPs built for this run live; removed by :meth:`close`."""

    def all_jobs(self) -> list[Job]:
        return [job for head in self.jobs for job in head.chain()]

    @property
    def total_bytes(self) -> int:
        return sum(job.artwork.size for job in self.all_jobs())

    def scratch(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="stockup-pack-"))
        return self.workdir

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


class Reporter(Protocol):
    """What a front end is told while a run progresses (all on the event loop)."""

    def started(self, plan: Plan) -> None: ...
    def file_started(self, job: Job) -> None: ...
    def advanced(self, job: Job, nbytes: int) -> None: ...
    def file_finished(self, job: Job | None, result: FileResult) -> None: ...
    def account_stopped(self, account: str, reason: str) -> None: ...
    def finished(self) -> None: ...


# -- planning -----------------------------------------------------------------


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files named, and files in folders named (walked; hidden names skipped).
    Broken links are kept, so that the checks report them."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if (p.is_file() or p.is_symlink())
                and not p.is_dir()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file() or path.is_symlink():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return [p.absolute() for p in found]


def remote_dir_for(account: Account, media: str) -> str | None:
    """The account's folder for this media type; None when the agency takes none."""
    if account.remote_dir or not account.folders:
        return account.remote_dir
    if media in account.folders:
        return account.folders[media]
    return None if media in ("video", "audio", "vector") else account.folders.get("photo", "")


def plan_upload(
    paths: Iterable[Path],
    accounts: list[Account],
    journal: Journal,
    *,
    force: bool = False,
    skip_checks: bool = False,
    safe_names: bool = False,
) -> Plan:
    """What goes where: checks, pairs, ZIPs, folders, names, and the journal's
    skip and resume decisions. Call :meth:`Plan.close` when done."""
    batch = Batch(collect_files(paths))
    if not batch.files:
        raise UsageError("no files to upload in the paths given")
    plan = Plan()
    for account in accounts:
        _plan_account(plan, batch, account, journal, force, skip_checks, safe_names)
    return plan


def _plan_account(
    plan: Plan,
    batch: Batch,
    account: Account,
    journal: Journal,
    force: bool,
    skip_checks: bool,
    safe_names: bool,
) -> None:
    agency = get_agency(account.agency)
    packaging = agency.vector_packaging
    jobs: dict[Path, Job] = {}
    seen: dict[str, Path] = {}

    def decided(path: Path, status: str, reason: str, remote: str = "") -> None:
        plan.skipped.append(FileResult(str(path), account.name, remote, status, error=reason))

    for path in batch.files:
        if path in batch.preview_of and packaging != "pair":
            decided(path, "skipped", "sent inside the vector's ZIP" if packaging == "zip"
                    else f"{agency.name} makes its own preview")  # fmt: skip
            continue
        if not skip_checks:
            errors = batch.verdict(path, agency, account.name, safe_names=safe_names).errors
            if errors:
                decided(path, "rejected", "; ".join(errors))
                continue
        media = batch.media(path)
        remote_dir = remote_dir_for(account, media)
        if remote_dir is None:
            decided(path, "skipped", f"{account.agency} takes no {media} files")
            continue
        local = path
        if packaging == "zip" and path in batch.vector_preview:
            local = build_zip(path, batch.vector_preview[path], plan.scratch())
        name = local.name
        if safe_names:
            name = safe_name(name, agency.rules.get("filename_pattern"))
        remote = join_remote(remote_dir, name)
        if remote in seen:
            decided(path, "skipped", f"same remote name as {seen[remote]}", remote)
            continue
        seen[remote] = path
        previous = journal.get(account.name, remote)
        # Hash now only where the journal has something to compare with;
        # other files are hashed by the engine while uploads run.
        digest = journal.sha256(local) if previous else journal.cached_sha256(local)
        if previous and previous.status == "uploaded" and previous.sha256 == digest and not force:
            decided(local, "skipped", "already uploaded with the same content", remote)
            continue
        resume = bool(previous and previous.status != "uploaded" and previous.sha256 == digest)
        artwork = Artwork(local, local.stat().st_size, media)
        jobs[path] = Job(account, artwork, remote_dir, name, digest, resume=resume)
    for preview, vector in batch.preview_of.items():
        if preview in jobs and vector in jobs:  # the vector first, then its preview
            jobs[vector].then = jobs.pop(preview)
    plan.jobs.extend(jobs.values())


# -- running ------------------------------------------------------------------


@dataclass
class _AccountState:
    stopped: str | None = None


class UploadEngine:
    def __init__(
        self,
        paths: Paths,
        journal: Journal,
        reporter: Reporter,
        *,
        connections: int | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay: float = 1.0,
        limiter: RateLimiter | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.paths = paths
        self.journal = journal
        self.reporter = reporter
        self.connections = connections
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.limiter = limiter
        self.timeouts = timeouts or Timeouts()
        self.run_id = uuid.uuid4().hex[:12]
        self.results: list[FileResult] = []
        self._hashes: dict[Path, asyncio.Task[str]] = {}

    async def run(self, plan: Plan, credentials: dict[str, Credentials]) -> list[FileResult]:
        self.reporter.started(plan)
        for result in plan.skipped:
            self._record(None, result)
        by_account: dict[str, list[Job]] = {}
        hashing = asyncio.Semaphore(HASH_THREADS)
        # Largest first, per account and for hashing: the run ends soonest.
        for head in sorted(plan.jobs, key=lambda j: j.artwork.size, reverse=True):
            by_account.setdefault(head.account.name, []).append(head)
            for job in head.chain():
                path = job.artwork.path
                if job.sha256 is None and path not in self._hashes:
                    self._hashes[path] = asyncio.create_task(self._hash(path, hashing))
        try:
            await asyncio.gather(
                *(self._run_account(jobs, credentials[name]) for name, jobs in by_account.items())
            )
        finally:
            for task in self._hashes.values():
                task.cancel()
            self.reporter.finished()
        return self.results

    async def _hash(self, path: Path, hashing: asyncio.Semaphore) -> str:
        async with hashing:
            size, mtime_ns, digest = await asyncio.to_thread(file_sha256, path)
        return self.journal.store_sha256(path, size, mtime_ns, digest)

    def _pool_size(self, account: Account, jobs: int) -> int:
        wanted = self.connections or account.connections
        if wanted is None:
            wanted = get_agency(account.agency).connections or DEFAULT_CONNECTIONS
        return max(1, min(wanted, jobs))

    async def _run_account(self, jobs: list[Job], credentials: Credentials) -> None:
        account = jobs[0].account
        queue = deque(jobs)  # run() hands them over largest first
        state = _AccountState()
        await asyncio.gather(
            *(
                self._worker(queue, state, credentials)
                for _ in range(self._pool_size(account, len(jobs)))
            )
        )
        while queue:  # left over after the account stopped
            for job in queue.popleft().chain():
                self._record(job, self._result(job, "failed", 0, 0, state.stopped))

    async def _worker(
        self, queue: deque[Job], state: _AccountState, credentials: Credentials
    ) -> None:
        transport: list[Transport] = []  # zero or one connection, reused across files
        try:
            while queue and state.stopped is None:
                job: Job | None = queue.popleft()
                while job is not None:
                    result = await self._send(job, credentials, transport, state)
                    self._record(job, result)
                    if result.status != "uploaded" and job.then is not None:
                        for follower in job.then.chain():
                            self._record(
                                follower,
                                self._result(
                                    follower, "failed", 0, 0, f"not sent: {job.name} failed"
                                ),
                            )
                        break
                    job = job.then
        finally:
            for connection in transport:
                await connection.close()

    async def _send(
        self, job: Job, credentials: Credentials, transport: list[Transport], state: _AccountState
    ) -> FileResult:
        account, art = job.account, job.artwork
        if job.sha256 is None:
            try:
                job.sha256 = await self._hashes[art.path]
            except OSError as exc:
                return self._result(job, "failed", 0, 0, f"{art.path}: {exc.strerror or exc}")
        self.reporter.file_started(job)
        sent = 0
        resume = job.resume

        def progress(nbytes: int) -> None:
            nonlocal sent
            sent += nbytes
            self.reporter.advanced(job, nbytes)

        attempt = 0
        while True:
            attempt += 1
            self.journal.start_attempt(
                account.name, job.remote_path, art.path, job.sha256, art.size
            )
            connecting = not transport
            try:
                if connecting:
                    connection = open_transport(
                        account,
                        credentials,
                        self.paths,
                        timeouts=self.timeouts,
                        limiter=self.limiter,
                    )
                    transport.append(connection)
                    await connection.connect()
                await send_file(
                    transport[0],
                    art.path,
                    job.remote_dir,
                    job.name,
                    use_rename=account.rename,
                    resume=resume,
                    progress=progress,
                )
            except TransportError as exc:
                for connection in transport:
                    await connection.close()
                transport.clear()
                if exc.retryable and attempt < self.attempts:
                    resume = True
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                account_level = isinstance(exc, ACCOUNT_ERRORS) or (connecting and exc.retryable)
                if account_level and state.stopped is None:
                    state.stopped = f"account stopped: {exc}"
                    self.reporter.account_stopped(account.name, str(exc))
                return self._fail(job, sent, attempt, str(exc))
            except OSError as exc:  # the local file: unreadable, vanished
                return self._fail(job, sent, attempt, f"{art.path}: {exc.strerror or exc}")
            self.journal.finish(account.name, job.remote_path, "uploaded", None)
            return self._result(job, "uploaded", sent, attempt, None)

    def _fail(self, job: Job, sent: int, attempt: int, error: str) -> FileResult:
        self.journal.finish(job.account.name, job.remote_path, "failed", error)
        return self._result(job, "failed", sent, attempt, error)

    def _backoff(self, attempt: int) -> float:
        delay: float = min(30.0, self.retry_delay * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.5)

    @staticmethod
    def _result(job: Job, status: str, sent: int, attempts: int, error: str | None) -> FileResult:
        return FileResult(
            str(job.artwork.path), job.account.name, job.remote_path, status, sent, attempts, error
        )

    def _record(self, job: Job | None, result: FileResult) -> None:
        self.results.append(result)
        self.journal.record_event(
            self.run_id,
            result.account,
            result.file,
            result.remote_path,
            result.status,
            result.bytes,
            result.attempts,
            result.error,
        )
        self.reporter.file_finished(job, result)


def summarise(results: list[FileResult]) -> dict[str, Any]:
    summary: dict[str, Any] = {s: 0 for s in STATUSES}
    for result in results:
        summary[result.status] += 1
    summary["bytes"] = sum(r.bytes for r in results)
    summary["failures"] = [
        {"account": r.account, "file": r.file, "status": r.status, "error": r.error}
        for r in results
        if r.status in ("failed", "rejected")
    ]
    return summary
