"""Folders that upload themselves: the library behind `stockup watch`.

watchfiles (inotify, FSEvents, ReadDirectoryChangesW, or polling) says what
changed; :class:`Settler` decides when a file is complete; each settled batch
goes through :class:`~stockup.session.UploadSession`, the one upload path
(checks, packaging, journal, engine), exactly as `stockup upload` sends it.

A file is taken once its size and modification time have not changed for
the settle time and no process holds it open for writing (psutil). A vector
waits for its JPG preview, and a JPG for a vector of the same name, one more
settle time, so a pair exported in either order goes out together. What the
journal knows is never sent twice: after a restart every file in the folders
is looked at again, and the plan skips what arrived, resumes what was half
sent, and reports a file edited after it was sent instead of sending it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockup.accounting import Listener
from stockup.checks import PREVIEW_SUFFIXES, VECTOR_SUFFIXES
from stockup.collect import is_system_file
from stockup.errors import StateError, TransportError, UsageError
from stockup.fsutil import atomic_write
from stockup.passphrase import PassphraseSource
from stockup.results import Status, Summary
from stockup.session import UploadRequest, UploadSession, UploadSettings
from stockup.store import Store

log = logging.getLogger(__name__)
DEFAULT_SETTLE = 30.0
DEFAULT_RETRY = 60.0
MAX_RETRY = 15 * 60.0
TICK = 1.0
"""Seconds between looks at the waiting files when nothing happens."""
STATUS_REFRESH = 60.0
"""An unchanged status is written again this often, to show the watcher lives."""
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, what: str) -> float:
    """``30s``, ``2m``, ``1h``, ``500ms``, or plain seconds."""
    match = DURATION.match(text)
    if not match:
        raise UsageError(f"{what} {text!r}: give a duration such as 30s, 2m or 1h")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class Window:
    """``--schedule HH:MM-HH:MM``: uploading only inside this daily window
    (local time; an end before the start runs past midnight)."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> Window:
        try:
            start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError:
            raise UsageError(
                f"schedule {text!r}: give a daily window as HH:MM-HH:MM, e.g. 22:00-06:00",
                setting="schedule",
            ) from None
        if start == end:
            raise UsageError("the schedule's start and end must differ", setting="schedule")
        return cls(start, end)

    def contains(self, moment: dt.datetime) -> bool:
        now = moment.time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass
class _Seen:
    size: int
    mtime: float
    changed_at: float
    """Wall-clock time of the last change seen (at first sight: the file's own
    modification time, so files that were there before are not waited for)."""
    not_before: float = 0.0
    """A file whose upload failed is tried again from then on."""


def _is_vector(path: Path) -> bool:
    return path.suffix.lower() in VECTOR_SUFFIXES


def _partners(path: Path) -> list[Path]:
    """The files that would pair with ``path``: its preview or its vector."""
    if _is_vector(path):
        return [path.with_suffix(s) for s in PREVIEW_SUFFIXES]
    if path.suffix in PREVIEW_SUFFIXES:
        return [path.with_suffix(s) for s in VECTOR_SUFFIXES]
    return []


def ignored(path: Path) -> bool:
    """What `upload` passes over in a folder (hidden names, system and
    sidecar files: collect.is_system_file), and the partial files of
    exporters and copy tools."""
    name = path.name
    return (
        name.startswith((".", "~$"))
        or is_system_file(name)
        or name.endswith((".part", ".partial", ".crdownload", ".download", "~"))
    )


@dataclass
class Settler:
    """Which files are complete. No clock or file system of its own: the
    caller passes the time and each file's state, so tests can drive it."""

    settle: float
    files: dict[Path, _Seen] = field(default_factory=dict)
    sent: dict[Path, tuple[int, float]] = field(default_factory=dict)
    """Size and modification time of each file when it was taken."""

    def observe(self, path: Path, state: os.stat_result | None, now: float) -> None:
        if state is None:
            self.files.pop(path, None)
            return
        key = (state.st_size, state.st_mtime)
        if self.sent.get(path) == key:
            return  # touched, not changed (a chmod, a read)
        seen = self.files.get(path)
        if seen is not None and (seen.size, seen.mtime) == key:
            return
        changed_at = now if seen is not None or path in self.sent else min(state.st_mtime, now)
        self.files[path] = _Seen(state.st_size, state.st_mtime, changed_at)

    def waiting(self) -> list[Path]:
        return sorted(self.files)

    def quiet(self, now: float) -> list[Path]:
        """Files unchanged for the settle time (and not waiting for a retry)."""
        return sorted(
            p for p, s in self.files.items()
            if now - s.changed_at >= self.settle and now >= s.not_before
        )  # fmt: skip

    def take(self, now: float, busy: set[Path]) -> list[Path]:
        """The files to send now, out of the waiting list: quiet, not open
        for writing (``busy``), and with their partner if one is coming."""
        settled = set(self.quiet(now)) - busy
        taken = []
        for path in sorted(settled):
            partners = [p for p in _partners(path) if p in self.files]
            if partners:
                if all(p in settled for p in partners):
                    taken.append(path)
            elif not _partners(path) or now - self.files[path].changed_at >= 2 * self.settle:
                # No partner in sight: a pair's other half had its settle time to come.
                taken.append(path)
        for path in taken:
            seen = self.files.pop(path)
            self.sent[path] = (seen.size, seen.mtime)
        return taken

    def retry(self, path: Path, state: os.stat_result | None, at: float) -> None:
        """Put a file whose upload failed back, to be tried from ``at`` on."""
        self.sent.pop(path, None)
        if state is not None:
            self.files[path] = _Seen(state.st_size, state.st_mtime, 0.0, at)


def _states(paths: list[Path]) -> list[tuple[Path, os.stat_result | None]]:
    """Each regular file among ``paths`` (folders walked, hidden names and
    partial downloads passed over) with its state; None: it is gone."""
    found: list[tuple[Path, os.stat_result | None]] = []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            for root, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += _states([Path(root) / n for n in names])
            continue
        if ignored(path):
            continue
        try:
            state = path.lstat()
        except OSError:
            found.append((path, None))
            continue
        # Regular files only: a link's target can change with no event here,
        # and pipes and devices are never opened.
        if stat.S_ISREG(state.st_mode):
            found.append((path, state))
    return found


def open_for_writing(paths: list[Path]) -> set[Path]:
    """Those of ``paths`` that some process holds open for writing (psutil:
    /proc on Linux, the OS's own calls elsewhere). Processes this user may
    not look into are passed over: the settle time still covers them."""
    import psutil  # imported here: only `watch` needs it

    wanted = {str(p): p for p in paths}
    found: set[Path] = set()
    for process in psutil.process_iter():
        try:
            for opened in process.open_files():
                if opened.path in wanted and getattr(opened, "mode", "r") != "r":
                    found.add(wanted[opened.path])
        except (psutil.Error, OSError):
            continue
    return found


@dataclass
class BatchReport:
    number: int
    summary: Summary
    waiting: int
    """Files seen but not yet settled (or waiting for a retry)."""


@dataclass
class WatchSettings:
    folders: tuple[Path, ...]
    accounts: tuple[str, ...]
    upload: UploadSettings = field(default_factory=UploadSettings)
    settle: float = DEFAULT_SETTLE
    retry_every: float = DEFAULT_RETRY
    """After a failed upload (network down, agency down), try again this long
    later; doubled at each failure in a row, up to 15 minutes."""
    schedule: Window | None = None
    once: bool = False
    """Send what the folders hold once it has settled, then stop."""

    def __post_init__(self) -> None:
        if not self.folders:
            raise UsageError("give at least one folder to watch")
        for folder in self.folders:
            if not folder.is_dir():
                raise UsageError(f"{folder}: not a folder")
        if not self.accounts:
            raise UsageError("choose at least one account to upload to", setting="to")
        if self.settle < 0 or self.retry_every <= 0:
            raise UsageError("the settle and retry times must be positive")


class Watcher:
    """Watch, settle, send, report; until :meth:`stop` (or, with ``once``,
    until the folders' files are sent)."""

    def __init__(
        self,
        store: Store,
        settings: WatchSettings,
        passphrase: PassphraseSource,
        *,
        on_batch: Callable[[BatchReport], Awaitable[None]] | None = None,
        listeners: list[Listener] | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.passphrase = passphrase
        self.on_batch = on_batch
        self.listeners = listeners or []
        self.clock = clock
        self.settler = Settler(settings.settle)
        self.folders = tuple(f.resolve() for f in settings.folders)
        self.failed: dict[Path, str] = {}
        """Files whose last attempt failed, with the reason."""
        self.done = 0
        self.batches = 0
        self.sending: list[Path] = []
        self._failures_in_row = 0
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._status_file = store.paths.state_dir / "watch.json"
        self._started = time.time()
        self._batch: asyncio.Task[Summary] | None = None
        self._last_status: tuple[dict[str, Any], float] | None = None

    def stop(self) -> None:
        """Stop watching; a batch in flight is cancelled (the journal keeps
        what arrived, and the next start resumes the rest)."""
        self._stop.set()
        if self._batch is not None:
            self._batch.cancel()

    async def run(self) -> bool:
        """Watch until stopped; True when no file is left failed."""
        # Unlock once, at the start: a wrong passphrase is said now, not at
        # the first batch; the passphrase stays in memory for later batches.
        config = self.store.config()
        accounts = [config.get(name) for name in self.settings.accounts]
        await asyncio.to_thread(self.store.credentials_for, accounts, self.passphrase)
        watching = asyncio.create_task(self._watch())
        try:
            await self._look(self.folders)
            while not self._stop.is_set():
                await self._step()
                if self.settings.once and not self.settler.files:
                    break
                self._write_status(self._idle_state())
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake(), TICK)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            self._write_status("stopped")
        return not self.failed

    async def _wake(self) -> None:
        stop = asyncio.create_task(self._stop.wait())
        changed = asyncio.create_task(self._changed.wait())
        try:
            await asyncio.wait({stop, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            changed.cancel()

    async def _watch(self) -> None:
        from watchfiles import awatch  # imported here: only `watch` needs it

        async for changes in awatch(*self.folders, stop_event=self._stop, debounce=200):
            await self._look({Path(p) for _, p in changes})
            self._changed.set()

    async def _look(self, paths: Iterable[Path]) -> None:
        """Look at ``paths`` (files, or folders to walk) as they are now. The
        file system is read in a thread; the settler is only ever touched
        from the event loop."""
        found = await asyncio.to_thread(_states, list(paths))
        now = time.time()
        for path, state in found:
            self.settler.observe(path, state, now)

    def _in_window(self) -> bool:
        window = self.settings.schedule
        return window is None or window.contains(self.clock())

    def _idle_state(self) -> str:
        if self._in_window():
            return "watching"
        return f"waiting for the schedule ({self.settings.schedule})"

    async def _step(self) -> None:
        if not self._in_window():
            return
        quiet = self.settler.quiet(time.time())
        if not quiet:
            return
        await self._look(quiet)  # an event may have been missed: look again
        quiet = self.settler.quiet(time.time())
        busy = await asyncio.to_thread(open_for_writing, quiet) if quiet else set()
        batch = self.settler.take(time.time(), busy)
        if batch:
            await self._send(batch)

    async def _send(self, batch: list[Path]) -> None:
        self.sending = batch
        self._write_status("sending")
        request = UploadRequest(tuple(batch), self.settings.accounts, self.settings.upload)
        session = UploadSession(self.store, request, list(self.listeners))
        self._batch = asyncio.create_task(session.run(self.passphrase))
        try:
            summary = await self._batch
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            return  # stopped mid-batch: nothing to report, nothing failed
        except (TransportError, StateError) as exc:
            # Another upload to the account, a busy journal: the whole batch later.
            summary = Summary([])
            for path in batch:
                self.failed[path] = str(exc)
            self._again(batch)
        else:
            self._settle_outcomes(batch, summary)
        finally:
            self._batch = None
            self.sending = []
        self.batches += 1
        report = BatchReport(self.batches, summary, len(self.settler.files))
        self._write_status(self._idle_state())
        if self.on_batch is not None:
            await self.on_batch(report)

    def _settle_outcomes(self, batch: list[Path], summary: Summary) -> None:
        """Failed (or cancelled) files go back to wait for a retry; the rest
        are done: uploaded, skipped as sent before, or rejected (reported,
        left in place, and looked at again only if changed)."""
        again: list[Path] = []
        failures: dict[str, str] = {}  # a file's first failure, on any account
        for result in summary.results:
            if result.status in (Status.FAILED, Status.CANCELLED):
                failures.setdefault(result.file, result.error or str(result.status))
        for path in batch:
            error = failures.get(str(path))
            if error is not None:
                self.failed[path] = error
                again.append(path)
            else:
                self.failed.pop(path, None)
                self.done += 1
        self._again(again)

    def _again(self, paths: list[Path]) -> None:
        if not paths:
            self._failures_in_row = 0
            return
        if self.settings.once:
            return  # sent once, as asked: what failed is reported, not retried
        self._failures_in_row += 1
        delay = min(MAX_RETRY, self.settings.retry_every * 2 ** (self._failures_in_row - 1))
        at = time.time() + delay
        for path in paths:
            try:
                state = path.stat()
            except OSError:
                state = None
            self.settler.retry(path, state, at)

    def _write_status(self, state: str) -> None:
        """What `stockup watch --status` shows, replaced atomically."""
        document: dict[str, Any] = {
            "pid": os.getpid(),
            "state": state,
            "started": self._started,
            "folders": [str(f) for f in self.folders],
            "accounts": list(self.settings.accounts),
            "waiting": [str(p) for p in self.settler.waiting()],
            "sending": [str(p) for p in self.sending],
            "done": self.done,
            "batches": self.batches,
            "failed": [{"file": str(p), "error": e} for p, e in sorted(self.failed.items())],
        }
        now = time.time()
        if self._last_status is not None:
            last, written = self._last_status
            if last == document and now - written < STATUS_REFRESH:
                return  # unchanged: no write (and no fsync) every tick
        self._last_status = (document, now)
        with contextlib.suppress(OSError):
            atomic_write(
                self._status_file, json.dumps({**document, "updated": now}, indent=1).encode()
            )


def read_status(store: Store) -> dict[str, Any] | None:
    """The last watcher's status, with ``running`` (is that process alive)."""
    try:
        document: dict[str, Any] = json.loads(
            (store.paths.state_dir / "watch.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return None
    document["running"] = document.get("state") != "stopped" and _alive(document.get("pid"))
    return document


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
