"""The upload engine: every planned file to every account, at once, resumably.

All accounts run concurrently; each has a pool of connections reused across
files, fed largest file first. Transports come from a factory, so tests drive
the engine over an in-memory transport and the session over real ones.

Retrying is decided here, from the error classes the transports raise (as
rclone's backends classify and its core retries): a retryable error is tried
again with exponential backoff and jitter, resuming the partial file; a file
whose attempts are spent, or that fails for good, fails alone and the account
goes on with its other files. Only errors about the account itself (login,
certificate, host key, name, quota), or a server that could not be reached
at all, stop that account; other accounts never notice. A server that takes
fewer connections than the pool asks for (a ``421 too many connections`` at
the greeting, or ProFTPD's ``530`` for too many logins of one user) keeps the
connections it took: the refused one gives its file back and the account goes
on with fewer. A connection refused at the greeting tries again later (no
login was tried, and a server full at eight may have room at nine); one
refused at login never does, for the rest of the run (repeated failed logins
lock agency accounts). Every attempt is
journaled before a byte is sent, so an interrupted run, even a ``kill -9``,
resumes where it stopped. A file edited while the run goes on is hashed again
and sent whole, never resumed across its two contents.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from stockup.accounting import (
    AccountStopped,
    Listener,
    Notice,
    RunFinished,
    RunStarted,
    TransferFinished,
    TransferPosition,
    TransferProgress,
    TransferStarted,
)
from stockup.catalogue import get_agency
from stockup.config import Account
from stockup.credentials import Credentials
from stockup.errors import (
    AuthenticationFailed,
    CertificateError,
    FileChanged,
    HostKeyChanged,
    HostKeyUnknown,
    InsecureServer,
    NameNotResolved,
    ProxyRefused,
    QuotaExceeded,
    TemporaryServerError,
    TransportError,
)
from stockup.journal import Journal, file_sha256
from stockup.planning import Job, Plan
from stockup.results import FileResult, Status
from stockup.secret import redact
from stockup.transfer import send_file
from stockup.transports.base import Transport

log = logging.getLogger(__name__)
DEFAULT_CONNECTIONS = 4
HASH_THREADS = 2
MAX_BACKOFF_SECONDS = 30.0
REJOIN_SECONDS = 60.0
"""A connection refused at the greeting beside others tries again after this
long, while the account has files waiting; twice as long each time it is
refused again, up to MAX_REJOIN_SECONDS."""
MAX_REJOIN_SECONDS = 960.0
# Errors that concern the whole account, not one file: stop that account.
ACCOUNT_ERRORS = (
    AuthenticationFailed,
    CertificateError,
    HostKeyChanged,
    HostKeyUnknown,
    InsecureServer,
    NameNotResolved,
    ProxyRefused,
    QuotaExceeded,
)
TransportFactory = Callable[[Account, Credentials], Transport]
"""A new, unconnected transport for an account."""


@dataclass
class _AccountState:
    stopped: str | None = None
    connected_once: bool = False
    """Some connection of this account logged in during this run: the server
    is there, so a failing file is that file's problem."""
    logged_in: set[Transport] = field(default_factory=set)
    """This account's connections that are logged in now."""
    logging_in: int = 0
    """This account's connections logging in now."""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    """Notified when a connection has logged in or failed to."""
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once no file waits for a connection (the last was taken, or the
    account stopped): a refused connection waiting to try again gives up."""


class _Refused(Exception):
    """A connection refused beside the account's others (see the module's
    docstring): its file was not tried and goes back to the queue."""

    def __init__(self, cause: TransportError, logged_in: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.logged_in = logged_in
        self.may_rejoin = isinstance(cause, TemporaryServerError)
        """Refused at the greeting, before any login: trying again later
        cannot count as a failed login."""


class UploadEngine:
    def __init__(
        self,
        journal: Journal,
        listener: Listener,
        open_transport: TransportFactory,
        *,
        attempts: int,
        retry_delay: float,
        connections: int | None = None,
        rejoin_delay: float = REJOIN_SECONDS,
    ) -> None:
        self.journal = journal
        self.emit = listener
        self.open_transport = open_transport
        self.connections = connections
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.rejoin_delay = rejoin_delay
        self.run_id = uuid.uuid4().hex[:12]
        self.results: list[FileResult] = []
        self._hashes: dict[Path, asyncio.Task[_Hashed]] = {}
        self._hashing = asyncio.Semaphore(HASH_THREADS)
        self._pending: dict[int, Job] = {}
        """Planned jobs not finished yet: cancelled if the run is."""

    async def run(self, plan: Plan, credentials: dict[str, Credentials]) -> list[FileResult]:
        self.emit(RunStarted(self.run_id, plan))
        for result in plan.decided:
            self._record(None, result)
        by_account: dict[str, list[Job]] = {}
        # Largest first, per account and for hashing: the run ends soonest.
        for head in sorted(plan.jobs, key=lambda j: j.artwork.size, reverse=True):
            by_account.setdefault(head.account.name, []).append(head)
            for job in head.chain():
                self._pending[job.id] = job
                path = job.artwork.path
                if job.sha256 is None and path not in self._hashes:
                    self._hashes[path] = asyncio.create_task(self._hash(path))
        cancelled = False
        try:
            await asyncio.gather(
                *(self._run_account(jobs, credentials[name]) for name, jobs in by_account.items())
            )
        except asyncio.CancelledError:
            cancelled = True
            for job in list(self._pending.values()):
                self._record(
                    job, job.result(Status.CANCELLED, error="not sent: the run was stopped")
                )
            raise
        finally:
            for task in self._hashes.values():
                task.cancel()
            self.emit(RunFinished(cancelled))
        return self.results

    async def _hash(self, path: Path) -> _Hashed:
        async with self._hashing:
            size, mtime_ns, digest = await asyncio.to_thread(file_sha256, path)
        self.journal.store_sha256(path, size, mtime_ns, digest)
        return _Hashed(digest, size, mtime_ns)

    @staticmethod
    def _hashed_as(job: Job, hashed: _Hashed) -> None:
        job.sha256 = hashed.sha256
        job.artwork = replace(job.artwork, size=hashed.size, mtime_ns=hashed.mtime_ns)

    async def _hashed_again_if_changed(self, job: Job) -> bool:
        """Whether the file changed since it was hashed (new keywords written
        while the batch runs); if so, its new content is hashed, and that is
        what gets sent and journaled."""
        if _unchanged(job):
            return False
        self._hashed_as(job, await self._hash(job.artwork.path))
        return True

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
                self._record(job, job.result(Status.FAILED, error=state.stopped))

    async def _worker(
        self, queue: deque[Job], state: _AccountState, credentials: Credentials
    ) -> None:
        connection: list[Transport] = []  # zero or one, reused across files
        rejoin_after: float | None = None  # None: never refused yet
        try:
            while queue and state.stopped is None:
                job: Job | None = queue.popleft()
                if not queue:
                    state.drained.set()
                while job is not None:
                    try:
                        result = await self._send(job, credentials, connection, state)
                    except _Refused as refused:
                        queue.appendleft(job)  # the account's other connections take it
                        state.drained.clear()
                        await _close(connection, state)
                        if rejoin_after is None:  # once per connection, not per try
                            self._announce_refusal(job.account.name, refused)
                            rejoin_after = self.rejoin_delay
                        else:
                            rejoin_after = min(2 * rejoin_after, MAX_REJOIN_SECONDS)
                        if not refused.may_rejoin or await _set_within(state.drained, rejoin_after):
                            return
                        break  # room again, perhaps: take the next waiting file
                    self._record(job, result)
                    if result.status != Status.UPLOADED and job.then is not None:
                        for follower in job.then.chain():
                            reason = f"not sent: {job.name} was not uploaded"
                            self._record(follower, follower.result(Status.FAILED, error=reason))
                        break
                    job = job.then
        finally:
            await _close(connection, state)

    async def _send(
        self, job: Job, credentials: Credentials, connection: list[Transport], state: _AccountState
    ) -> FileResult:
        """Send one file, trying again as the error allows. Raises
        :class:`_Refused` when the server refuses this worker's connection
        beside others of the account."""
        account, art = job.account, job.artwork
        self.emit(TransferStarted(job))
        sent = 0
        resumed_from: int | None = None
        resume = job.resume

        def progress(nbytes: int) -> None:
            nonlocal sent
            sent += nbytes
            self.emit(TransferProgress(job.id, nbytes))

        def position(offset: int) -> None:
            nonlocal resumed_from
            if resumed_from is None:
                resumed_from = offset
            self.emit(TransferPosition(job.id, offset))

        def outcome(status: Status, attempts: int, error: str | None = None) -> FileResult:
            return job.result(
                status, sent=sent, attempts=attempts, error=error, resumed_from=resumed_from or 0
            )

        unreachable = True  # every attempt so far failed before logging in
        for attempt in range(1, self.attempts + 1):
            try:
                if not connection:
                    try:
                        await self._connect(account, credentials, connection, state)
                    except TransportError as exc:
                        if await self._refused_beside_others(exc, state):
                            raise _Refused(exc, len(state.logged_in)) from exc
                        raise
                unreachable = False
                # The hash, begun with the run, is waited for only now, so the
                # first login and the first file's hash overlap (100 MB take
                # 70 ms here; from a slow disk, seconds).
                if job.sha256 is None:
                    try:
                        self._hashed_as(job, await self._hashes[art.path])
                    except OSError as exc:  # not begun: nothing for the journal
                        return job.result(Status.FAILED, error=_unreadable(job, exc))
                if await self._hashed_again_if_changed(job):
                    resume = False  # a part on the server holds the old content
                self.journal.start_attempt(
                    account.name, job.remote_path, art.label, _hashed_sha256(job), job.artwork.size
                )
                await send_file(
                    connection[0],
                    art.path,
                    job.remote_dir,
                    job.name,
                    use_rename=account.rename,
                    resume=resume,
                    progress=progress,
                    position=position,
                    unchanged=lambda: _unchanged(job),
                )
            except _Refused:
                raise  # not an attempt at this file: the worker gives it back
            except TransportError as exc:
                await _close(connection, state)
                if exc.retryable and attempt < self.attempts:
                    resume = True
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                cannot_connect = unreachable and not state.connected_once and exc.retryable
                if isinstance(exc, ACCOUNT_ERRORS) or cannot_connect:
                    self._stop_account(account.name, state, str(exc))
                return self._fail(job, outcome(Status.FAILED, attempt, str(exc)))
            except FileChanged as exc:  # the next attempt sends it again from its start
                if attempt < self.attempts:
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                return self._fail(job, outcome(Status.FAILED, attempt, str(exc)))
            except OSError as exc:  # the local file: unreadable, vanished
                return self._fail(job, outcome(Status.FAILED, attempt, _unreadable(job, exc)))
            except Exception as exc:  # a bug: this file fails, the run goes on
                await _close(connection, state)
                log.exception("sending %s to %s failed", art.label, account.name)
                error = redact(f"internal error ({type(exc).__name__}): {exc}")
                return self._fail(job, outcome(Status.FAILED, attempt, error))
            self.journal.finish(account.name, job.remote_path, Status.UPLOADED, None)
            if job.image_hash is not None:
                self.journal.record_sent_image(
                    account.name, job.remote_path, art.label, job.image_hash
                )
            return outcome(Status.UPLOADED, attempt)
        raise AssertionError("unreachable: the last attempt returns")

    async def _connect(
        self,
        account: Account,
        credentials: Credentials,
        connection: list[Transport],
        state: _AccountState,
    ) -> None:
        connection.append(self.open_transport(account, credentials))
        state.logging_in += 1
        try:
            await connection[0].connect()
            state.logged_in.add(connection[0])
            state.connected_once = True
        finally:
            state.logging_in -= 1
            async with state.changed:
                state.changed.notify_all()

    async def _refused_beside_others(self, exc: TransportError, state: _AccountState) -> bool:
        """Whether a connection that could not log in was refused for being
        one too many. The same credentials logged in on another connection,
        so the server saying no (a refused login, or a ``421`` at the
        greeting) is its limit, not the account's fault. A connection that
        timed out or broke on the way is not a refusal: it is tried again as
        before, and the pool keeps its size. Waits until the account's other
        connections have logged in or failed: a server refuses the extra
        connection at its greeting, before the others have finished
        logging in."""
        if not isinstance(exc, (TemporaryServerError, AuthenticationFailed)):
            return False
        async with state.changed:
            await state.changed.wait_for(lambda: state.logging_in == 0)
        return bool(state.logged_in)

    def _announce_refusal(self, account: str, refused: _Refused) -> None:
        # Once per refused connection: a server that takes two of four says so twice.
        later = " (it tries again later)" if refused.may_rejoin else ""
        self.emit(
            Notice(
                account,
                f"{account}: the server refused a connection beside the "
                f"{refused.logged_in} open ({refused.cause}); going on with those{later}",
            )
        )

    def _stop_account(self, name: str, state: _AccountState, reason: str) -> None:
        if state.stopped is None:
            state.stopped = f"account stopped: {reason}"
            state.drained.set()
            self.emit(AccountStopped(name, reason))

    def _fail(self, job: Job, result: FileResult) -> FileResult:
        self.journal.finish(job.account.name, job.remote_path, Status.FAILED, result.error)
        return result

    def _backoff(self, attempt: int) -> float:
        delay: float = min(MAX_BACKOFF_SECONDS, self.retry_delay * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.5)

    def _record(self, job: Job | None, result: FileResult) -> None:
        if job is not None:
            self._pending.pop(job.id, None)
        self.results.append(result)
        self.journal.record(self.run_id, result)
        self.emit(TransferFinished(job, result))


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` is set within ``seconds``."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _close(connection: list[Transport], state: _AccountState) -> None:
    for transport in connection:
        state.logged_in.discard(transport)
        await transport.close()
    connection.clear()


@dataclass(frozen=True)
class _Hashed:
    sha256: str
    size: int
    mtime_ns: int
    """The size and time the file had when it was read: which content the hash is of."""


def _unchanged(job: Job) -> bool:
    status = job.artwork.path.stat()
    return (status.st_size, status.st_mtime_ns) == (job.artwork.size, job.artwork.mtime_ns)


def _hashed_sha256(job: Job) -> str:
    if job.sha256 is None:
        raise AssertionError("unreachable: a file is hashed before its first attempt")
    return job.sha256


def _unreadable(job: Job, exc: OSError) -> str:
    return f"{job.artwork.label}: {exc.strerror or exc}"
