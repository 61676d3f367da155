"""One upload, from what the user asked for to a typed summary: the library
entry point that the CLI, the web UI and the demo share (as rclone's
``cmd/copy`` only calls ``sync.CopyDir``).

A front end builds an :class:`UploadRequest` (its :class:`UploadSettings`
hold every default, once), listens to the events, and renders the
:class:`~stockup.accounting.Accounting`'s snapshots and the returned
:class:`~stockup.results.Summary`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from stockup.accounting import Accounting, Listener, Notice
from stockup.config import Account
from stockup.credentials import Credentials
from stockup.engine import TransportFactory, UploadEngine
from stockup.errors import UploadBusy, UsageError
from stockup.fsutil import held_locks
from stockup.journal import Journal
from stockup.pacing import Pacer
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths
from stockup.planning import Plan, plan_upload
from stockup.ratelimit import RateLimiter
from stockup.results import Summary
from stockup.similar import SimilarLimits
from stockup.store import Store
from stockup.transports import open_transport
from stockup.transports.base import DEFAULT_TIMEOUT, Timeouts, Transport, TransportOptions

MAX_CONNECTIONS = 32
MAX_ATTEMPTS = 100
MAX_TIMEOUT = 3600.0


@dataclass(frozen=True)
class UploadSettings:
    """How an upload runs. Every default lives here and nowhere else."""

    connections: int | None = None
    """Per account; None: the account's setting, else the agency's, else 4."""
    attempts: int = 5
    """Per file, the first included."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds for a connection attempt, a reply, or a stalled transfer."""
    retry_delay: float = 1.0
    """Seconds before the first retry; doubled each time, with jitter."""
    limit_rate: float | None = None
    """Bytes per second over all accounts; None: no limit."""
    force: bool = False
    skip_checks: bool = False
    safe_names: bool = False
    follow_links: bool = False
    """Take links to files outside the folders given."""
    max_similar: SimilarLimits = field(default_factory=SimilarLimits)
    """More versions of one motif than this, per account or agency, is an
    error (agencies refuse near-duplicates; Adobe Stock's guidance is
    three). By default: warnings only."""

    def __post_init__(self) -> None:
        if self.connections is not None and not 1 <= self.connections <= MAX_CONNECTIONS:
            raise UsageError(
                f"connections must be between 1 and {MAX_CONNECTIONS}", setting="connections"
            )
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise UsageError(
                f"attempts per file must be between 1 and {MAX_ATTEMPTS}", setting="retries"
            )
        if not 1 <= self.timeout <= MAX_TIMEOUT:
            raise UsageError(
                f"the timeout must be between 1 and {MAX_TIMEOUT:.0f} seconds", setting="timeout"
            )
        if self.limit_rate is not None and self.limit_rate <= 0:
            raise UsageError(
                "the rate limit must be more than 0 bytes per second", setting="limit_rate"
            )

    def transport_options(self, paths: Paths) -> TransportOptions:
        timeout = self.timeout
        return TransportOptions(
            timeouts=Timeouts(connect=timeout, reply=timeout, stall=timeout),
            limiter=RateLimiter(self.limit_rate) if self.limit_rate else None,
            known_hosts=paths.known_hosts_file,
        )


@dataclass(frozen=True)
class UploadRequest:
    """What to send where, and how."""

    paths: tuple[Path, ...]
    accounts: tuple[str, ...]
    settings: UploadSettings = field(default_factory=UploadSettings)
    labels: tuple[tuple[Path, str], ...] = ()
    """Folders whose files are shown and recorded under another name: the web
    UI's copies of picked files, named as the user picked them."""


class UploadSession:
    """Resolve the accounts, open the journal, plan, unlock the vault, run."""

    def __init__(
        self,
        store: Store,
        request: UploadRequest,
        listeners: list[Listener] | None = None,
        *,
        open_transport: TransportFactory | None = None,
    ) -> None:
        names = list(dict.fromkeys(request.accounts))
        if not names:
            raise UsageError("choose at least one account to upload to")
        config = store.config()
        self.accounts: list[Account] = [config.get(name) for name in names]
        self.store = store
        self.request = request
        self.accounting = Accounting(names, listeners)
        options = request.settings.transport_options(store.paths)
        # Accounts share the uplink: with several, they are paced to finish together.
        self._pacer = Pacer(names, options.limiter) if len(names) > 1 else None
        self._open_transport = open_transport or self._real_transports(options)

    def _real_transports(self, options: TransportOptions) -> TransportFactory:
        def factory(account: Account, credentials: Credentials) -> Transport:
            paced = options
            if self._pacer is not None:
                paced = replace(options, limiter=self._pacer.account(account.name))
            return open_transport(account.server, credentials, paced)

        return factory

    @property
    def warnings(self) -> list[str]:
        """Said once per run for every plain-FTP account used."""
        return [a.cleartext_warning for a in self.accounts if a.cleartext_warning]

    def _plan(self, journal: Journal) -> Plan:
        request, settings = self.request, self.request.settings
        return plan_upload(
            request.paths,
            self.accounts,
            journal,
            force=settings.force,
            skip_checks=settings.skip_checks,
            safe_names=settings.safe_names,
            follow_links=settings.follow_links,
            labels=dict(request.labels),
            max_similar=settings.max_similar,
        )

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[Plan]:
        """The plan alone: no vault, no connection."""
        with contextlib.closing(Journal(self.store.paths.journal_file)) as journal:
            plan = self._plan(journal)
            try:
                yield plan
            finally:
                plan.close()

    def _busy(self, lock: Path) -> UploadBusy:
        account = lock.stem.removeprefix("upload-")
        return UploadBusy(
            f"another stockup is uploading to account {account} right now; wait for it to "
            "finish, then run this again (the journal will skip what it sent)"
        )

    async def run(self, passphrase: PassphraseSource) -> Summary:
        """Plan and send; cancelling this coroutine stops the run cleanly (the
        journal keeps what arrived, the next run resumes the rest). Each
        account is locked for the run: a second run to the same account, from
        this process or another, is refused at once, so no file is ever sent
        twice at the same time."""
        settings = self.request.settings
        paths = self.store.paths
        locks = [paths.upload_lock(a.name) for a in self.accounts]
        with (
            held_locks(locks, self._busy),
            contextlib.closing(Journal(paths.journal_file)) as journal,
        ):
            plan = await asyncio.to_thread(self._plan, journal)
            if self._pacer is not None:
                self._pacer.plan(plan.bytes_per_account())
            try:
                for note in plan.notes:
                    self.accounting(Notice("", note))
                for account in self.accounts:
                    if account.cleartext_warning:
                        self.accounting(Notice(account.name, account.cleartext_warning))
                credentials = await asyncio.to_thread(
                    self.store.credentials_for, self.accounts, passphrase
                )
                engine = UploadEngine(
                    journal,
                    self.accounting,
                    self._open_transport,
                    attempts=settings.attempts,
                    retry_delay=settings.retry_delay,
                    connections=settings.connections,
                )
                results = await engine.run(plan, credentials)
            finally:
                plan.close()
        return Summary(results)
