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
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stockup.catalogue import get_agency
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
from stockup.journal import Journal, file_sha256
from stockup.paths import Paths
from stockup.ratelimit import RateLimiter
from stockup.transfer import send_file
from stockup.transports import open_transport
from stockup.transports.base import Timeouts, Transport, join_remote
from stockup.vault import Credentials

DEFAULT_CONNECTIONS = 4
DEFAULT_ATTEMPTS = 5
HASH_THREADS = 2
MEDIA_BY_SUFFIX = {
    **dict.fromkeys((".jpg", ".jpeg", ".tif", ".tiff", ".png", ".psd"), "photo"),
    **dict.fromkeys((".eps", ".ai", ".svg", ".zip"), "vector"),
    **dict.fromkeys((".mov", ".mp4", ".m4v", ".avi", ".mxf", ".webm"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".aif", ".aiff", ".flac"), "audio"),
}
VECTOR_SUFFIXES = (".eps", ".ai", ".svg")
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
    sha256: str | None
    """None until hashed: the engine hashes new files while others upload."""
    resume: bool = False

    @property
    def remote_path(self) -> str:
        return join_remote(self.remote_dir, self.artwork.path.name)


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

    @property
    def total_bytes(self) -> int:
        return sum(job.artwork.size for job in self.jobs)


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
    """Files named, and files in folders named (walked; hidden names skipped)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        elif path.is_symlink():
            raise UsageError(f"{path}: broken symbolic link")
        else:
            raise UsageError(f"{path}: no such file or folder")
    return [p.absolute() for p in found]


def classify(files: list[Path]) -> list[Artwork]:
    """Media type per file; a JPG beside a same-name vector is that vector's preview."""
    vector_stems = {
        (p.parent, p.stem.lower()) for p in files if p.suffix.lower() in VECTOR_SUFFIXES
    }
    artworks = []
    for path in files:
        media = MEDIA_BY_SUFFIX.get(path.suffix.lower(), "other")
        if media == "photo" and (path.parent, path.stem.lower()) in vector_stems:
            media = "vector"
        artworks.append(Artwork(path, path.stat().st_size, media))
    return artworks


def remote_dir_for(account: Account, media: str) -> str | None:
    """The account's folder for this media type; None when the agency takes none."""
    if account.remote_dir or not account.folders:
        return account.remote_dir
    if media in account.folders:
        return account.folders[media]
    return None if media in ("video", "audio", "vector") else account.folders.get("photo", "")


def plan_upload(
    paths: Iterable[Path], accounts: list[Account], journal: Journal, *, force: bool = False
) -> Plan:
    artworks = classify(collect_files(paths))
    if not artworks:
        raise UsageError("no files to upload in the paths given")
    plan = Plan()
    for account in accounts:
        seen: dict[str, Path] = {}
        for art in artworks:
            remote_dir = remote_dir_for(account, art.media)
            name = art.path.name
            if remote_dir is None:
                plan.skipped.append(
                    FileResult(
                        str(art.path),
                        account.name,
                        "",
                        "skipped",
                        error=f"{account.agency} takes no {art.media} files",
                    )
                )
                continue
            remote = join_remote(remote_dir, name)
            if remote in seen:
                plan.skipped.append(
                    FileResult(
                        str(art.path),
                        account.name,
                        remote,
                        "skipped",
                        error=f"same remote name as {seen[remote]}",
                    )
                )
                continue
            seen[remote] = art.path
            previous = journal.get(account.name, remote)
            # Hash now only where the journal has something to compare with;
            # other files are hashed by the engine while uploads run.
            digest = journal.sha256(art.path) if previous else journal.cached_sha256(art.path)
            if (
                previous
                and previous.status == "uploaded"
                and previous.sha256 == digest
                and not force
            ):
                plan.skipped.append(
                    FileResult(
                        str(art.path),
                        account.name,
                        remote,
                        "skipped",
                        error="already uploaded with the same content",
                    )
                )
                continue
            resume = bool(previous and previous.status != "uploaded" and previous.sha256 == digest)
            plan.jobs.append(Job(account, art, remote_dir, digest, resume=resume))
    return plan


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
        for job in sorted(plan.jobs, key=lambda j: j.artwork.size, reverse=True):
            by_account.setdefault(job.account.name, []).append(job)
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
        queue = deque(sorted(jobs, key=lambda j: j.artwork.size, reverse=True))
        state = _AccountState()
        await asyncio.gather(
            *(
                self._worker(queue, state, credentials)
                for _ in range(self._pool_size(account, len(jobs)))
            )
        )
        while queue:  # left over after the account stopped
            job = queue.popleft()
            self._record(job, self._result(job, "failed", 0, 0, state.stopped))

    async def _worker(
        self, queue: deque[Job], state: _AccountState, credentials: Credentials
    ) -> None:
        transport: list[Transport] = []  # zero or one connection, reused across files
        try:
            while queue and state.stopped is None:
                job = queue.popleft()
                result = await self._send(job, credentials, transport, state)
                self._record(job, result)
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
                    art.path.name,
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
    summary: dict[str, Any] = {s: 0 for s in ("uploaded", "skipped", "failed", "rejected")}
    for result in results:
        summary[result.status] += 1
    summary["bytes"] = sum(r.bytes for r in results)
    summary["failures"] = [
        {"account": r.account, "file": r.file, "error": r.error}
        for r in results
        if r.status == "failed"
    ]
    return summary
