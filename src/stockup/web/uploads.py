"""Uploads started from the web UI: staged files, live progress, cancel, retry.

Checking, planning and sending are the library's (``check_files`` and
:class:`~stockup.session.UploadSession`), exactly as the CLI uses them, and so
are the figures (:class:`~stockup.accounting.Accounting`). This module only
keeps the runs of this server, wakes the pages' event streams when a run
changes, and stages the files a browser sends.
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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stockup.accounting import Event, Notice, RunStarted, Snapshot
from stockup.catalogue import Agency
from stockup.checks import Verdict, check_files, rules_agency
from stockup.collect import collect_files
from stockup.config import Account
from stockup.errors import StockupError, UsageError
from stockup.journal import Journal
from stockup.packaging import has_control_characters
from stockup.passphrase import PassphraseSource
from stockup.paths import ensure_private_dir
from stockup.results import FileResult, Summary
from stockup.secret import redact
from stockup.session import UploadRequest, UploadSession
from stockup.similar import SimilarLimits
from stockup.store import Store
from stockup.transfer import MAX_NAME_BYTES

logger = logging.getLogger(__name__)
STALE_STAGING_SECONDS = 24 * 3600
PICKED_IN_BROWSER = "(picked in the browser)"
"""How files sent by the browser are named in results and history."""


@dataclass
class Selection:
    """Files chosen and checked, waiting for the user to start the upload."""

    id: str
    request: UploadRequest
    files: list[Path]
    verdicts: list[Verdict]
    accounts: list[Account]
    notes: list[str]
    """What was left out (links outside the folders, pipes, devices)."""

    @property
    def staged(self) -> bool:
        """Files the browser sent: edits change the copies that are uploaded,
        not the contributor's own files."""
        return bool(self.request.labels)

    @property
    def warnings(self) -> list[str]:
        plain = [a.cleartext_warning for a in self.accounts if a.cleartext_warning]
        return [*plain, *self.notes]


def relative_upload_path(filename: str) -> Path | None:
    """A browser-sent file name (a folder pick sends ``folder/sub/name``) as a
    relative path that cannot leave the staging folder; None if nothing is left.
    A name no file system takes (a NUL or another control character, a part
    over 255 bytes) is the sender's mistake: :class:`UsageError`, a 400 page."""
    parts = [p for p in re.split(r"[\\/]+", filename) if p not in ("", ".", "..")]
    for part in parts:
        if has_control_characters(part):
            raise UsageError(f"the file name {part!r} has a control character; rename the file")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise UsageError(
                f"the file name {part[:40]!r}... is longer than {MAX_NAME_BYTES} bytes; "
                "rename the file"
            )
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


class Run:
    """One upload of this server: its session, and what its page shows."""

    def __init__(self, session: UploadSession) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.session = session
        self.request = session.request
        self.state = "preparing"
        """preparing, running, finished, cancelled or failed"""
        self.message = ""
        self.security = {a.name: a.security for a in session.accounts}
        self.warnings = session.warnings
        self.notices: list[str] = []
        self.started_at = time.time()
        self.version = 0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        session.accounting.listeners.append(self._heard)

    @property
    def active(self) -> bool:
        return self.state in ("preparing", "running")

    @property
    def results(self) -> list[FileResult]:
        return self.session.accounting.results

    @property
    def summary(self) -> Summary:
        return Summary(self.results)

    def snapshot(self) -> Snapshot:
        return self.session.accounting.snapshot()

    def _heard(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.state = "running"
        elif isinstance(event, Notice) and event.message not in self.warnings:
            self.notices.append(event.message)  # what to do at an agency, what was left out
        self.touch()

    def touch(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, seen: int, timeout: float) -> None:
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)


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
        collected = await asyncio.to_thread(collect_files, request.paths)
        files = collected.files
        if not files:
            raise UsageError("no files to upload in what was chosen")
        targets = [(a.name, rules_agency(a)) for a in accounts]
        limits = request.settings.max_similar
        verdicts = await asyncio.to_thread(self._check, files, targets, limits)
        selection = Selection(
            uuid.uuid4().hex[:12], request, files, verdicts, accounts, collected.notes()
        )
        self.selections[selection.id] = selection
        return selection

    async def recheck(self, selection: Selection) -> None:
        """Check the files again (after an edit): facts are read anew, never cached."""
        targets = [(a.name, rules_agency(a)) for a in selection.accounts]
        limits = selection.request.settings.max_similar
        selection.verdicts = await asyncio.to_thread(self._check, selection.files, targets, limits)

    def _check(
        self,
        files: list[Path],
        targets: list[tuple[str, Agency | None]],
        limits: SimilarLimits,
    ) -> list[Verdict]:
        """The checks, near-duplicates of what each account has included."""
        with contextlib.closing(Journal(self.store.paths.journal_file)) as journal:
            return check_files(files, targets, journal=journal, max_similar=limits)

    def start(self, request: UploadRequest, passphrase: PassphraseSource) -> Run:
        if any(run.active for run in self.runs.values()):
            raise UsageError("an upload is already running: wait for it to end or cancel it")
        run = Run(UploadSession(self.store, request))
        self.runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run, passphrase))
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

    async def _execute(self, run: Run, passphrase: PassphraseSource) -> None:
        try:
            await run.session.run(passphrase)
            run.state = "finished"
        except asyncio.CancelledError:
            run.state = "cancelled"
            run.message = "Cancelled: what arrived is kept; retry to resume the rest."
        except StockupError as exc:
            run.state = "failed"
            run.message = str(exc)
        except Exception as exc:  # a bug: say so on the page, as the CLI does, and log it
            run.state = "failed"
            run.message = redact(f"internal error ({type(exc).__name__}): {exc}")
            logger.exception("upload %s failed", run.id)
        finally:
            run.touch()
