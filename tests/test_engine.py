"""The engine's rules over an in-memory transport: retries, which errors stop
an account, vector/preview order, cancel and resume offsets, accounting. No
sockets, no sleeps: the whole file runs in a couple of seconds."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from stockup.accounting import (
    Accounting,
    AccountStopped,
    Event,
    Notice,
    TransferPosition,
    TransferProgress,
    TransferStarted,
)
from stockup.cli.progress import RichRenderer
from stockup.config import Account
from stockup.credentials import Credentials
from stockup.engine import REJOIN_SECONDS, UploadEngine
from stockup.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    PermissionDenied,
    ProxyAuthFailed,
    ProxyCannotReach,
    ProxyRefused,
    QuotaExceeded,
    TemporaryServerError,
)
from stockup.journal import Journal, file_sha256
from stockup.planning import Plan, plan_upload
from stockup.results import FileResult, Status, Summary
from stockup.secret import Secret
from stockup.transports.base import ConnectionInfo
from tests.support.files import make_file
from tests.support.memory import MemoryServer, MemoryTransport, factory


def account(name: str, **settings: object) -> Account:
    return Account(
        name=name, agency="custom", protocol="sftp", host=f"{name}.test", port=22,
        remote_dir="in", **settings,  # type: ignore[arg-type]
    )  # fmt: skip


class Rig:
    """Accounts on in-memory servers, one journal, and every event heard."""

    def __init__(self, tmp_path: Path, *names: str) -> None:
        self.folder = tmp_path / "art"
        self.folder.mkdir()
        self.journal = Journal(tmp_path / "journal.sqlite3")
        self.accounts = [account(name) for name in names]
        self.servers = {name: MemoryServer() for name in names}
        self.events: list[Event] = []
        self.accounting = Accounting(list(names), [self.events.append])

    def file(self, name: str, size: int, seed: int = 0) -> Path:
        return make_file(self.folder / name, size, seed=seed)

    def plan(self, accounts: list[Account] | None = None) -> Plan:
        return plan_upload([self.folder], accounts or self.accounts, self.journal, skip_checks=True)

    def engine(
        self,
        attempts: int = 3,
        connections: int | None = None,
        rejoin_delay: float = REJOIN_SECONDS,
    ) -> UploadEngine:
        self.events.clear()
        self.accounting = Accounting([a.name for a in self.accounts], [self.events.append])
        return UploadEngine(
            self.journal,
            self.accounting,
            factory(self.servers),
            attempts=attempts,
            retry_delay=0.0,
            connections=connections,
            rejoin_delay=rejoin_delay,
        )

    def credentials(self) -> dict[str, Credentials]:
        return {a.name: Credentials("user", Secret("pw")) for a in self.accounts}

    def run(self, **options: Any) -> Summary:
        """Plan the folder and send it; ``options`` as for :meth:`engine`."""
        plan = self.plan()
        try:
            engine = self.engine(**options)
            return Summary(asyncio.run(engine.run(plan, self.credentials())))
        finally:
            plan.close()

    def by_file(self, summary: Summary, account: str) -> dict[str, FileResult]:
        return {Path(r.file).name: r for r in summary.results if r.account == account}

    def landed(self, name: str) -> dict[str, bytes]:
        return self.servers[name].final_files()

    def close(self) -> None:
        self.journal.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path, "one", "two")
    yield made
    made.close()


def test_every_file_reaches_every_account(rig: Rig) -> None:
    files = [rig.file(f"f{i}.jpg", size, seed=i) for i, size in enumerate([300_000, 10, 0, 90_000])]
    summary = rig.run(connections=2)
    assert summary.count(Status.UPLOADED) == 8 and summary.ok
    for name in ("one", "two"):
        assert rig.landed(name) == {f.name: f.read_bytes() for f in files}
        assert rig.servers[name].most_open <= 2
    snapshot = rig.accounting.snapshot()
    assert snapshot.overall.done == snapshot.overall.total == 2 * 390_010
    assert not snapshot.running and snapshot.overall.speed == 0 and snapshot.overall.eta is None

    again = rig.run()
    assert again.count(Status.SKIPPED) == 8 and again.bytes_sent == 0


def test_a_file_that_keeps_failing_fails_alone(rig: Rig) -> None:
    """The rule that was wrong: once its attempts are spent, a retryable
    failure is that file's, and the account goes on with the others."""
    rig.file("bad.jpg", 200_000)
    rig.file("good1.jpg", 100_000, seed=1)
    rig.file("good2.jpg", 50_000, seed=2)
    lost = ConnectionLost("data connection reset")
    rig.servers["one"].fail("upload", lost, name="bad.jpg", times=-1, after_bytes=1000)
    summary = rig.run(attempts=3, connections=1)
    one = rig.by_file(summary, "one")
    assert one["bad.jpg"].status == Status.FAILED and one["bad.jpg"].attempts == 3
    assert "data connection reset" in (one["bad.jpg"].error or "")
    assert one["good1.jpg"].status == one["good2.jpg"].status == Status.UPLOADED
    assert not [e for e in rig.events if isinstance(e, AccountStopped)]
    assert set(rig.landed("one")) == {"good1.jpg", "good2.jpg"}
    assert set(rig.landed("two")) == {"bad.jpg", "good1.jpg", "good2.jpg"}


@pytest.mark.parametrize(
    "operation,error,reason",
    [
        ("connect", AuthenticationFailed("login failed for user 'u'"), "login failed"),
        ("upload", QuotaExceeded("552 quota exceeded"), "quota exceeded"),
        ("connect", ConnectFailed("connection refused"), "connection refused"),
        ("connect", ProxyAuthFailed("proxy authentication failed"), "proxy authentication"),
        ("connect", ProxyRefused("the proxy refused the connection"), "proxy refused"),
        ("connect", ProxyCannotReach("the proxy could not reach h:21"), "could not reach"),
    ],
    ids=["login", "quota", "unreachable", "proxy-login", "proxy-rules", "proxy-cannot-reach"],
)
def test_account_level_errors_stop_that_account_alone(
    rig: Rig, operation: str, error: Exception, reason: str
) -> None:
    for i in range(5):
        rig.file(f"f{i}.jpg", 20_000 * (i + 1), seed=i)
    rig.servers["one"].fail(operation, error, times=-1)  # type: ignore[arg-type]
    summary = rig.run(attempts=3, connections=1)
    stopped = [e for e in rig.events if isinstance(e, AccountStopped)]
    assert [e.account for e in stopped] == ["one"] and reason in stopped[0].reason
    one = rig.by_file(summary, "one")
    assert all(r.status == Status.FAILED for r in one.values()) and len(one) == 5
    # Stopping means not trying every file: at most one file's attempts were spent.
    assert rig.servers["one"].log.count(("connect", "")) <= 3
    assert len(rig.landed("two")) == 5


@pytest.mark.parametrize(
    "too_many",
    [
        TemporaryServerError("server replied 421 too many connections from your address"),
        AuthenticationFailed("server replied 530 the maximum number of clients (2) are connected"),
    ],
    ids=["421-at-greeting", "530-at-login"],
)
def test_a_server_taking_fewer_connections_gets_every_file_over_those(
    rig: Rig, too_many: Exception
) -> None:
    """The refusals arrive before the two taken connections have logged in:
    the engine waits for them before it decides the server is full."""
    files = [rig.file(f"f{i}.jpg", 40_000 + i, seed=i) for i in range(8)]
    server = rig.servers["one"]
    server.max_open, server.too_many = 2, too_many  # type: ignore[assignment]
    started = time.monotonic()
    summary = rig.run(attempts=3, connections=4)
    # The run does not wait for a refused connection's next try.
    assert time.monotonic() - started < REJOIN_SECONDS / 2
    assert summary.ok and summary.count(Status.UPLOADED) == 16
    assert rig.landed("one") == {f.name: f.read_bytes() for f in files}
    one = rig.by_file(summary, "one")
    assert all(r.attempts == 1 for r in one.values())
    # Nor in the journal: a file given back by a refused connection was not tried.
    recorded = [rig.journal.get("one", f"in/{f.name}") for f in files]
    assert all(t is not None and t.attempts == 1 for t in recorded), recorded
    assert server.most_open == 2
    # A refused connection is not tried again: no failed logins piling up.
    assert server.log.count(("connect", "")) == 4
    assert not [e for e in rig.events if isinstance(e, AccountStopped)]
    notices = [e for e in rig.events if isinstance(e, Notice)]
    assert [n.account for n in notices] == ["one", "one"]
    assert all("beside the 2 open" in n.message for n in notices)
    snapshot = rig.accounting.snapshot()
    assert snapshot.overall.done == snapshot.overall.total


@pytest.mark.parametrize(
    ("too_many", "rejoins"),
    [
        (TemporaryServerError("server replied 421 too many connections"), True),
        (AuthenticationFailed("server replied 530 the maximum number of clients (1)"), False),
    ],
    ids=["421-at-greeting-joins-again", "530-at-login-never"],
)
def test_a_refused_connection_joins_again_only_if_no_login_was_refused(
    rig: Rig, too_many: Exception, rejoins: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server full at the start has room after ten files: the connections
    it refused at the greeting come back; ones refused at login are never
    tried again (failed logins lock agency accounts)."""
    files = [rig.file(f"f{i}.jpg", 200_000 + i, seed=i) for i in range(40)]
    server = rig.servers["one"]
    server.max_open, server.too_many = 1, too_many  # type: ignore[assignment]
    rename = MemoryTransport.rename

    async def room_after_ten_files(self: MemoryTransport, source: str, target: str) -> None:
        await rename(self, source, target)
        every_connection_tried = self.server.log.count(("connect", "")) >= 4
        if len(self.server.final_files()) >= 10 and every_connection_tried:
            self.server.max_open = None

    monkeypatch.setattr(MemoryTransport, "rename", room_after_ten_files)
    summary = rig.run(attempts=3, connections=4, rejoin_delay=0.001)
    assert summary.ok and summary.count(Status.UPLOADED) == 80
    assert rig.landed("one") == {f.name: f.read_bytes() for f in files}
    notices = [e.message for e in rig.events if isinstance(e, Notice) and e.account == "one"]
    if rejoins:
        assert server.most_open == 4
        # Once per refused connection, however often it tries.
        assert 1 <= len(notices) <= 3
        assert all("beside the 1 open" in n and "tries again later" in n for n in notices)
    else:
        assert server.most_open == 1
        assert server.log.count(("connect", "")) == 4
        assert len(notices) == 3 and not [n for n in notices if "tries again" in n]


def test_a_connection_that_breaks_while_others_are_open_is_tried_again(rig: Rig) -> None:
    """Not a refusal: a flaky network must not shrink the pool for the rest
    of an evening's run."""
    for i in range(8):
        rig.file(f"f{i}.jpg", 40_000, seed=i)
    server = rig.servers["one"]
    # f3's connection breaks mid-file; its next login breaks too, while the
    # other three connections are logged in.
    server.fail("upload", ConnectionLost("connection reset"), name="f3.jpg", after_bytes=1000)
    server.fail("connect", ConnectionLost("connection reset during login"), skip=4)
    summary = rig.run(attempts=4, connections=4)
    assert summary.ok and summary.count(Status.UPLOADED) == 16
    assert rig.by_file(summary, "one")["f3.jpg"].attempts == 3
    assert not [e for e in rig.events if isinstance(e, Notice)]
    assert server.log.count(("connect", "")) == 6


def test_a_file_given_back_leaves_no_stale_bar(rig: Rig) -> None:
    """A refused connection's file starts again on another connection: the
    terminal shows it once, and nothing of it after the run."""
    for i in range(4):
        rig.file(f"f{i}.jpg", 40_000, seed=i)
    rig.servers["one"].max_open = 1
    plan = rig.plan()
    engine = rig.engine(connections=4)
    renderer = RichRenderer(Console(file=io.StringIO(), width=100), rig.accounting)
    rig.accounting.listeners.append(renderer)
    try:
        summary = Summary(asyncio.run(engine.run(plan, rig.credentials())))
    finally:
        plan.close()
    assert summary.ok and [e for e in rig.events if isinstance(e, Notice)]
    left = [t.description for t in renderer.progress.tasks if ".jpg" in t.description]
    assert left == []


def test_a_wrong_password_on_every_connection_still_stops_the_account(rig: Rig) -> None:
    """No connection logged in: a refused login is the account's, even with
    four connections failing at once."""
    for i in range(6):
        rig.file(f"f{i}.jpg", 10_000, seed=i)
    rig.servers["one"].password = "other"
    summary = rig.run(attempts=3, connections=4)
    stopped = [e for e in rig.events if isinstance(e, AccountStopped)]
    assert [e.account for e in stopped] == ["one"] and "login failed" in stopped[0].reason
    assert not [e for e in rig.events if isinstance(e, Notice)]
    assert all(r.status == Status.FAILED for r in rig.by_file(summary, "one").values())
    assert len(rig.landed("two")) == 6


def test_a_final_error_fails_the_file_at_once(rig: Rig) -> None:
    rig.file("locked.jpg", 10_000)
    rig.file("fine.jpg", 10_000, seed=1)
    rig.servers["one"].fail("upload", PermissionDenied("553 not allowed"), name="locked.jpg")
    one = rig.by_file(rig.run(), "one")
    assert one["locked.jpg"].status == Status.FAILED and one["locked.jpg"].attempts == 1
    assert one["fine.jpg"].status == Status.UPLOADED


def test_a_broken_transfer_resumes_where_it_broke(rig: Rig) -> None:
    big = rig.file("big.jpg", 1_000_000)
    rig.servers["one"].fail("upload", ConnectionLost("reset"), name="big.jpg", after_bytes=400_000)
    one = rig.by_file(rig.run(), "one")["big.jpg"]
    assert one.status == Status.UPLOADED and one.attempts == 2
    assert one.bytes == 1_000_000  # 400,000 before the break, 600,000 after
    positions = [e.offset for e in rig.events if isinstance(e, TransferPosition)]
    assert 400_000 in positions
    assert rig.landed("one")["big.jpg"] == big.read_bytes()


def edited_as_an_editor_saves(path: Path, content: bytes) -> None:
    """Written beside and renamed over, a moment later (as exiv2 and most editors save)."""
    mtime_ns = path.stat().st_mtime_ns
    beside = path.with_name(f".{path.name}.saving")
    beside.write_bytes(content)
    os.utime(beside, ns=(mtime_ns + 10**9, mtime_ns + 10**9))
    os.replace(beside, path)


@pytest.fixture
def solo(tmp_path: Path) -> Iterator[Rig]:
    (tmp_path / "solo").mkdir()
    made = Rig(tmp_path / "solo", "one")
    yield made
    made.close()


def test_the_first_login_and_the_first_hash_overlap(
    solo: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The largest file goes first, and its hash (seconds for a video on a
    slow disk) must not hold back the login: the hash waits here until a
    connection is being opened, or gives up after 5 s."""
    solo.file("video.mov", 300_000)
    logging_in = threading.Event()
    waited: list[bool] = []
    real_connect = MemoryTransport.connect

    def slow_hash(path: Path) -> tuple[int, int, str]:
        waited.append(logging_in.wait(5))
        return file_sha256(path)

    async def connect(self: MemoryTransport) -> ConnectionInfo:
        logging_in.set()
        return await real_connect(self)

    monkeypatch.setattr("stockup.engine.file_sha256", slow_hash)
    monkeypatch.setattr(MemoryTransport, "connect", connect)
    assert solo.by_file(solo.run(), "one")["video.mov"].status == Status.UPLOADED
    assert waited == [True]


def test_a_file_edited_between_attempts_is_sent_again_whole(
    solo: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New keywords saved while the batch runs, after a transfer broke: the
    retry must not resume the old content's part with the new content's rest."""
    photo = solo.file("photo.jpg", 400_000, seed=1)
    edited = bytes(reversed(photo.read_bytes())) + b"new keywords"
    solo.servers["one"].fail("upload", ConnectionLost("reset"), after_bytes=200_000)
    real_upload = MemoryTransport.upload

    async def upload(self: MemoryTransport, local: Path, *args: Any) -> None:
        try:
            await real_upload(self, local, *args)
        except ConnectionLost:
            edited_as_an_editor_saves(local, edited)
            raise

    monkeypatch.setattr(MemoryTransport, "upload", upload)
    one = solo.by_file(solo.run(), "one")["photo.jpg"]
    assert (one.status, one.attempts, one.size) == (Status.UPLOADED, 2, len(edited))
    assert solo.landed("one")["photo.jpg"] == edited
    recorded = solo.journal.get("one", "in/photo.jpg")
    assert recorded is not None and recorded.sha256 == hashlib.sha256(edited).hexdigest()


def test_a_file_written_in_place_while_it_is_sent_is_sent_again(
    solo: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor that writes into the file itself while it is sent: the server
    got the old first block and the new rest, so that is not renamed into
    place, and the next attempt sends the file as it is now. A file written to
    during every attempt fails, with that reason."""
    once = solo.file("once.jpg", 400_000, seed=1)
    solo.file("always.jpg", 300_000, seed=2)
    real_upload = MemoryTransport.upload
    writes: list[str] = []

    async def upload(
        self: MemoryTransport, local: Path, remote: str, offset: int = 0, progress: Any = None
    ) -> None:
        written = False

        def write_in_place(nbytes: int) -> None:
            nonlocal written
            # After the first block, whose bytes the server has already.
            if not written and (local.name == "always.jpg" or local.name not in writes):
                mtime_ns = local.stat().st_mtime_ns
                with local.open("r+b") as handle:
                    handle.write(f"edited {len(writes)}".encode() * 50)
                os.utime(local, ns=(mtime_ns + 10**9, mtime_ns + 10**9))
                writes.append(local.name)
                written = True
            progress(nbytes)

        await real_upload(self, local, remote, offset, write_in_place)

    monkeypatch.setattr(MemoryTransport, "upload", upload)
    results = solo.by_file(solo.run(attempts=3), "one")
    assert (results["once.jpg"].status, results["once.jpg"].attempts) == (Status.UPLOADED, 2)
    assert solo.landed("one")["once.jpg"] == once.read_bytes()
    always = results["always.jpg"]
    assert (always.status, always.attempts) == (Status.FAILED, 3)
    assert always.error == "always.jpg changed while it was being sent (written to meanwhile)"
    assert "always.jpg" not in solo.landed("one")


def test_vector_then_its_preview_and_never_the_preview_alone(rig: Rig) -> None:
    (rig.folder / "wave.eps").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    rig.file("wave.jpg", 30_000)
    rig.file("photo.jpg", 500_000, seed=3)
    rig.servers["two"].fail("upload", PermissionDenied("553 no vectors"), name="wave.eps")
    summary = rig.run(connections=1)
    uploads = [path for op, path in rig.servers["one"].log if op == "upload"]
    assert (
        uploads.index("in/.wave.jpg.stockup-part") == uploads.index("in/.wave.eps.stockup-part") + 1
    )
    two = rig.by_file(summary, "two")
    assert two["wave.eps"].status == Status.FAILED
    assert two["wave.jpg"].status == Status.FAILED
    assert "not sent: wave.eps was not uploaded" in (two["wave.jpg"].error or "")
    assert "in/.wave.jpg.stockup-part" not in [p for _, p in rig.servers["two"].log]
    assert two["photo.jpg"].status == Status.UPLOADED


def test_cancel_records_what_was_not_sent_and_the_next_run_resumes(rig: Rig) -> None:
    rig.accounts = rig.accounts[:1]
    big = rig.file("big.jpg", 2_000_000)
    rig.file("small.jpg", 1000, seed=1)
    rig.servers["one"].fail("upload", None, name="big.jpg", after_bytes=700_000)  # stalls

    async def cancel_when_stalled() -> list[FileResult]:
        plan = rig.plan()
        engine = rig.engine(connections=1)
        task = asyncio.create_task(engine.run(plan, rig.credentials()))
        while (
            rig.servers["one"].files.get("in/.big.jpg.stockup-part", b"")
            != big.read_bytes()[:700_000]
        ):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        plan.close()
        return engine.results

    results = asyncio.run(cancel_when_stalled())
    assert {Path(r.file).name: r.status for r in results} == {
        "big.jpg": Status.CANCELLED,
        "small.jpg": Status.CANCELLED,
    }
    assert rig.accounting.snapshot().overall.speed == 0

    summary = rig.run(connections=1)
    resumed = rig.by_file(summary, "one")["big.jpg"]
    assert resumed.status == Status.UPLOADED
    assert resumed.resumed_from == 700_000 and resumed.bytes == 1_300_000
    started = [e for e in rig.events if isinstance(e, TransferStarted)]
    assert started and rig.accounting.snapshot().overall.done == 2_001_000
    assert rig.landed("one")["big.jpg"] == big.read_bytes()
    row = rig.journal.history(run=None, limit=1, text="big.jpg")[0]
    assert (row["size"], row["bytes"], row["resumed_from"]) == (2_000_000, 1_300_000, 700_000)


def test_progress_counts_resumed_bytes_as_done(rig: Rig) -> None:
    """A bar starts at what the server already holds, and ends at the size."""
    rig.accounts = rig.accounts[:1]
    local = rig.file("part.jpg", 500_000)
    digest = rig.journal.sha256(local)
    rig.journal.start_attempt("one", "in/part.jpg", str(local), digest, 500_000)
    rig.servers["one"].files["in/.part.jpg.stockup-part"] = bytearray(local.read_bytes()[:300_000])
    seen: list[int] = []
    engine = rig.engine()
    rig.accounting.listeners.append(
        lambda event: (
            seen.append(rig.accounting.snapshot().overall.done)
            if isinstance(event, TransferProgress)
            else None
        )
    )
    plan = rig.plan()
    results = asyncio.run(engine.run(plan, rig.credentials()))
    plan.close()
    assert results[0].resumed_from == 300_000 and results[0].bytes == 200_000
    assert seen[0] == 300_000 + 64 * 1024 and seen[-1] == 500_000
    assert rig.landed("one")["part.jpg"] == local.read_bytes()


def test_an_unexpected_error_fails_its_file_not_the_run(rig: Rig) -> None:
    """A bug met while sending one file (here a transport raising something
    no transport should) is that file's failure; every other file still goes."""
    rig.file("odd.jpg", 10_000)
    rig.file("fine.jpg", 10_000, seed=1)
    rig.servers["one"].fail("rename", RuntimeError("a bug"), name="odd.jpg")  # type: ignore[arg-type]
    summary = rig.run()
    one = rig.by_file(summary, "one")
    assert one["odd.jpg"].status == Status.FAILED
    assert one["odd.jpg"].error == "internal error (RuntimeError): a bug"
    assert one["fine.jpg"].status == Status.UPLOADED
    assert len(rig.landed("two")) == 2
