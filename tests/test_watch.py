"""`stockup watch` through the real CLI, on real folders, to real servers:
files written slowly, pairs arriving in either order, 500 files at once, a
server killed mid-batch, stockup itself killed and started again."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import plistlib
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stockup.errors import UsageError
from stockup.transfer import PART_SUFFIX
from stockup.watch import Settler, Window, _states, parse_duration
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import Running, ServerFactory
from tests.support.accounts import add_account
from tests.support.artworks import eps, photo
from tests.support.cli import Cli
from tests.support.files import make_batch, make_file, sha
from tests.support.notifications import notification_server
from tests.support.ui import running_ui

SETTLE = "2s"
"""Long enough that a busy CI machine does not stretch a writer's pause past it."""


class Watching:
    """A `stockup watch` running in the background, its output in a file."""

    def __init__(self, cli: Cli, folder: Path, *extra: str, log: Path) -> None:
        self.log = log
        self.out = log.open("a")
        self.proc = cli.spawn(
            "watch", str(folder), "--to", "srv", "--settle", SETTLE, "--retry-every", "1s",
            *extra, stdout=self.out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.out.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self.out.close()

    def __enter__(self) -> Watching:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:  # a failed test: do not leave it running
            self.kill()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def landed(server: Running, files: list[Path]) -> bool:
    return all(
        (server.upload_root / f.name).exists()
        and sha(server.upload_root / f.name) == sha(f)
        for f in files
    )  # fmt: skip


def finished(server: Running, files: list[Path], cli: Cli) -> bool:
    """Every file on the server and recorded in the journal: stopping now
    interrupts nothing."""
    recorded = uploads_per_file(cli)
    return all(recorded.get(f.name) for f in files) and landed(server, files)


def uploads_per_file(cli: Cli) -> dict[str, int]:
    journal = cli.home / "state" / "journal.sqlite3"
    try:  # read-only: never create the journal before stockup does
        with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT local_path, COUNT(*) FROM events WHERE status = 'uploaded' "
                "GROUP BY local_path"
            ).fetchall()
    except sqlite3.OperationalError:  # not there yet, or its tables not yet made
        return {}
    return {Path(f).name: n for f, n in rows}


def assert_exactly(server: Running, files: list[Path], cli: Cli) -> None:
    """Every file on the server once, byte-identical, nothing partial, and
    the journal counts one upload of each."""
    names = sorted(p.name for p in server.upload_root.iterdir())
    assert names == sorted(f.name for f in files), "missing, extra or partial files"
    assert not [n for n in names if n.endswith(PART_SUFFIX)]
    assert landed(server, files)
    assert uploads_per_file(cli) == {f.name: 1 for f in files}


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "export"
    folder.mkdir()
    yield folder


def test_files_wait_until_complete_and_closed(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        with Watching(cli, watched, "--skip-checks", log=tmp_path / "watch.log") as watch:
            ready = make_batch(tmp_path / "ready", [300_000, 20_000])
            for path in ready:
                shutil.copy(path, watched / path.name)
            # A writer that keeps its file open, quiet for longer than the settle time.
            held = watched / "held.jpg"
            content = os.urandom(400_000)
            with held.open("wb") as writer:
                writer.write(content[:100_000])
                writer.flush()
                time.sleep(4)  # twice the settle time, quiet but open
                assert not (server.upload_root / "held.jpg").exists(), "sent while open"
                writer.write(content[100_000:])
            # A writer that appends now and then (closing each time) for 3 s.
            slow = watched / "slow.jpg"
            for _ in range(10):
                with slow.open("ab") as appender:
                    appender.write(os.urandom(30_000))
                time.sleep(0.3)
                assert not (server.upload_root / "slow.jpg").exists(), "sent while growing"
            everything = [*(watched / p.name for p in ready), held, slow]
            wait_for(lambda: finished(server, everything, cli), 30, "the files to arrive")
            assert watch.stop() == 0, watch.text()
        assert_exactly(server, everything, cli)
        assert sha(server.upload_root / "held.jpg") == sha(held)
        assert "Traceback" not in watch.text() and "Notification" not in watch.text()
        assert re.search(r"batch \d+: \d+ uploaded", watch.text())


def test_a_file_edited_after_it_was_sent_is_reported_not_sent(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        with Watching(cli, watched, "--skip-checks", log=tmp_path / "watch.log") as watch:
            original = make_file(watched / "dunes.jpg", 50_000)
            sent = sha(original)
            wait_for(lambda: "batch 1:" in watch.text(), 30, "the first batch")
            with original.open("ab") as edit:
                edit.write(b"retouched")
            wait_for(lambda: "batch 2:" in watch.text(), 30, "the second batch")
            assert watch.stop() == 0, watch.text()
        assert "batch 2: 0 uploaded, 1 skipped" in watch.text()
        assert "changed since it was uploaded" in watch.text()
        assert sha(server.upload_root / "dunes.jpg") == sent


@pytest.mark.parametrize("first", ["vector", "preview"])
def test_a_vector_pair_goes_together_in_either_order(
    first: str, cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    vector, preview = eps(made / "logo.eps"), photo(made / "logo.jpg", 2400, 1600)
    order = [vector, preview] if first == "vector" else [preview, vector]
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        with Watching(cli, watched, log=tmp_path / "watch.log") as watch:
            shutil.copy(order[0], watched / order[0].name)
            time.sleep(2.6)  # past the settle time: the first half alone is settled
            shutil.copy(order[1], watched / order[1].name)
            wait_for(lambda: "batch 1:" in watch.text(), 30, "the first batch")
            time.sleep(2.5)
            assert watch.stop() == 0, watch.text()
        text = watch.text()
        # One batch, holding both: the first half waited for the second.
        assert "batch 2:" not in text, text
        assert re.search(r"batch 1: 2 uploaded", text), text
        assert {p.name for p in server.upload_root.iterdir()} == {"logo.eps", "logo.jpg"}


def test_500_files_dropped_at_once(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    staging = watched.parent / "staging"
    staging.mkdir()
    files = [make_file(staging / f"img_{i:03}.jpg", 2_000 + i, seed=i) for i in range(500)]
    with start_server("pyftpdlib-ftp") as server:
        cli.ok("init")
        add_account(cli, server)
        with Watching(cli, watched, "--skip-checks", log=tmp_path / "watch.log") as watch:
            time.sleep(0.5)
            staging.rename(watched / "drop")  # all 500 appear at once
            dropped = [watched / "drop" / f.name for f in files]
            wait_for(lambda: finished(server, dropped, cli), 120, "500 files")
            assert watch.stop() == 0, watch.text()
        assert_exactly(server, dropped, cli)


def test_a_server_killed_mid_batch(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [1_500_000] * 6)
    with start_server("vsftpd-ftps") as server:
        assert server.info.restart is not None
        cli.ok("init")
        add_account(cli, server)
        limited = ("--skip-checks", "--limit-rate", "2M", "--connections", "2")
        with Watching(cli, watched, *limited, log=tmp_path / "watch.log") as watch:
            for path in files:
                shutil.copy(path, watched / path.name)
            sent = [watched / f.name for f in files]
            wait_for(lambda: "uploaded" in watch.text(), 30, "the first file")
            server.info.restart(3.0)  # killed mid-batch, back 3 s later
            wait_for(lambda: finished(server, sent, cli), 120, "every file after the restart")
            assert watch.stop() == 0, watch.text()
        assert_exactly(server, sent, cli)


def test_stockup_killed_and_started_again(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [1_500_000] * 5)
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        with Watching(cli, watched, "--skip-checks", "--limit-rate", "2M",
                      log=tmp_path / "first.log") as first:  # fmt: skip
            for path in files[:3]:
                shutil.copy(path, watched / path.name)
            wait_for(lambda: "uploaded" in first.text(), 30, "the first file")
            first.kill()  # SIGKILL, mid-batch
        for path in files[3:]:  # added while stockup was not running
            shutil.copy(path, watched / path.name)
        with Watching(cli, watched, "--skip-checks", log=tmp_path / "second.log") as second:
            sent = [watched / f.name for f in files]
            wait_for(lambda: finished(server, sent, cli), 60, "every file after the restart")
            assert second.stop() == 0, second.text()
        assert_exactly(server, sent, cli)


def test_sigterm_mid_batch_stops_at_once_and_the_next_start_resumes(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    big = make_file(watched / "big.tif", 8_000_000)
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        with Watching(cli, watched, "--skip-checks", "--limit-rate", "1M",
                      log=tmp_path / "first.log") as first:  # fmt: skip
            wait_for(lambda: "sending" in cli("watch", "--status").stdout, 30, "the batch")
            time.sleep(1.5)
            started = time.monotonic()
            assert first.stop() == 0, first.text()
            assert time.monotonic() - started < 10  # not after the 8 s the file needs
        assert not (server.upload_root / "big.tif").exists()
        with Watching(cli, watched, "--skip-checks", log=tmp_path / "second.log") as second:
            wait_for(lambda: finished(server, [big], cli), 60, "the file after the restart")
            assert second.stop() == 0
        assert_exactly(server, [big], cli)


def test_once_status_and_schedule(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    files = make_batch(watched, [50_000, 60_000])
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        # Outside the schedule: nothing is sent, and the status says why.
        soon = dt.datetime.now() + dt.timedelta(hours=2)
        window = f"{soon:%H:%M}-{soon + dt.timedelta(hours=1):%H:%M}"
        with Watching(cli, watched, "--skip-checks", "--schedule", window,
                      log=tmp_path / "later.log") as later:  # fmt: skip
            wait_for(
                lambda: "waiting for the schedule" in cli("watch", "--status").stdout,
                20, "the schedule's status",
            )  # fmt: skip
            time.sleep(2)
            assert list(server.upload_root.iterdir()) == []
            with running_ui(cli) as ui:  # the web UI's History page shows it too
                ui.login()
                page = ui.get("/history").body
            assert "Watched folders" in page and "Waiting for the schedule" in page
            assert str(watched) in page
            assert later.stop() == 0
        result = cli("watch", str(watched), "--to", "srv", "--settle", "0s", "--once",
                     "--skip-checks")  # fmt: skip
        assert result.returncode == 0, result.output
        assert landed(server, files)
        status = cli.ok("watch", "--status").stdout
        assert "not running" in status and "2 file(s) in 1 batch(es)" in status


def test_watch_usage_errors(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    for args, message in [
        (["watch", str(tmp_path)], "--to"),
        (["watch", str(tmp_path / "nope"), "--to", "x"], "not a folder"),
        (["watch", str(tmp_path), "--to", "x"], "no account named"),
        (["watch", str(tmp_path), "--to", "x", "--settle", "soon"], "duration"),
    ]:
        result = cli(*args)
        assert result.returncode == 2, result.output
        assert message in result.stderr and "Traceback" not in result.stderr


def test_print_service(cli: Cli, tmp_path: Path, start_server: ServerFactory) -> None:
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
    folder = tmp_path / "my exports %d"
    folder.mkdir()
    refused = cli("watch", str(folder), "--to", "srv", "--print-service")
    assert refused.returncode == 2 and "keychain" in refused.stderr
    command = "pass show stockup"
    printed = cli.ok(
        "watch", str(folder), "--to", "srv", "--print-service", "--passphrase-command", command
    ).stdout
    exec_start = next(line for line in printed.splitlines() if line.startswith("ExecStart="))
    assert '"watch"' in exec_start
    assert '"' + str(folder).replace("%", "%%") + '"' in exec_start
    assert f'"{command}"' in exec_start and PASSPHRASE not in printed
    agent = plistlib.loads(printed[printed.index("<?xml") :].encode())
    program = agent["ProgramArguments"]
    assert program[program.index("watch") + 1] == str(folder)
    assert command in agent["ProgramArguments"]


def test_settler_rules() -> None:
    settler = Settler(settle=10)

    def state(size: int, mtime: float) -> os.stat_result:
        return os.stat_result((0o100644, 0, 0, 1, 0, 0, size, mtime, mtime, mtime))

    vector, preview, photo_ = Path("/w/a.eps"), Path("/w/a.jpg"), Path("/w/b.png")
    settler.observe(vector, state(100, 92), now=100)  # there before: since its mtime
    settler.observe(photo_, state(5, 95), now=100)
    assert settler.take(100, busy=set()) == []  # not settled yet
    assert settler.take(106, busy={photo_}) == []  # open for writing; the vector waits
    assert settler.take(106, busy=set()) == [photo_]
    settler.observe(preview, state(50, 104), now=104)
    assert settler.take(110, busy=set()) == []  # the preview is not settled yet
    assert settler.take(114, busy=set()) == [vector, preview]
    settler.observe(preview, state(50, 104), now=200)  # unchanged: not again
    assert settler.files == {}
    settler.observe(preview, state(51, 199), now=200)  # edited after sending: again
    assert settler.quiet(211) == [preview]
    lone = Path("/w/c.eps")
    settler.observe(lone, state(10, 300), now=300)
    assert lone not in settler.take(315, busy=set())  # its preview may still come
    assert lone in settler.take(321, busy=set())  # it had a settle time to come


def test_schedule_and_durations() -> None:
    night = Window.parse("22:00-06:00")
    assert night.contains(dt.datetime(2026, 1, 1, 23, 30))
    assert night.contains(dt.datetime(2026, 1, 1, 5, 59))
    assert not night.contains(dt.datetime(2026, 1, 1, 12, 0))
    assert Window.parse("09:00-17:00").contains(dt.datetime(2026, 1, 1, 9, 0))
    assert [parse_duration(t, "x") for t in ("30s", "2m", "1h", "500ms", "7")] == [
        30, 120, 3600, 0.5, 7,
    ]  # fmt: skip
    for bad in ("soon", "-1s"):
        with pytest.raises(UsageError):
            parse_duration(bad, "x")
    with pytest.raises(UsageError):
        Window.parse("9-5")


def test_a_desktop_notification_after_each_batch(
    cli: Cli, tmp_path: Path, watched: Path, start_server: ServerFactory
) -> None:
    """Through a real session bus to a notification service; silent (and no
    traceback) where there is none, as in every other test here."""
    make_batch(watched, [10_000])
    with start_server("pyftpdlib-ftps") as server, notification_server() as desktop:
        cli.ok("init")
        add_account(cli, server)
        env = {"DBUS_SESSION_BUS_ADDRESS": desktop.address}
        result = cli("watch", str(watched), "--to", "srv", "--settle", "0s", "--once",
                     "--skip-checks", env=env)  # fmt: skip
        assert result.returncode == 0, result.output
    assert desktop.shown == [("stockup: batch sent", "1 uploaded, 0 skipped, 0 rejected, 0 failed "
                                                     "(10,000 bytes sent)")]  # fmt: skip


def test_what_upload_passes_over_is_not_watched(tmp_path: Path) -> None:
    """System and sidecar files, hidden names and partial downloads never
    become a batch (with --skip-checks they would have been sent)."""
    names = ["Thumbs.db", "dunes.xmp", "._dunes.jpg", ".hidden.jpg", "dunes.jpg.part",
             "export.tmp", "dunes.jpg"]  # fmt: skip
    for name in names:
        make_file(tmp_path / name, 100)
    (tmp_path / "pipe").mkdir()
    os.mkfifo(tmp_path / "pipe" / "fifo.jpg")
    assert [p.name for p, _ in _states([tmp_path])] == ["dunes.jpg"]
