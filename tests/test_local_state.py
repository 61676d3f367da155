"""stockup's own files: a damaged journal, a full or odd disk, two runs at
once. Each is a one-line error that says what to do; nothing is lost."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockup.errors import JournalDamaged, StateError, VaultLocked
from stockup.fsutil import exclusive_lock, held_locks
from stockup.journal import Journal, _Guarded
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch, sha


def assert_one_line(result_stderr: str, *fragments: str) -> None:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stockup: error: "), result_stderr
    assert "internal error" not in lines[0] and "Traceback" not in result_stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_journal_says_how_to_recover(
    cli: Cli, home: Path, tmp_path: Path, start_server: ServerFactory, damage: str
) -> None:
    files = make_batch(tmp_path / "batch", [3000] * 40)
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv")
        journal = home / "state" / "journal.sqlite3"
        cli.ok("history")  # checkpoints the WAL into the file
        for extra in (
            journal.with_name(journal.name + "-wal"),
            journal.with_name(journal.name + "-shm"),
        ):
            extra.unlink(missing_ok=True)
        data = journal.read_bytes()
        journal.write_bytes(b"\x00garbage" * 500 if damage == "garbage" else data[: len(data) // 2])
        for args in (
            ["history"],
            ["upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv"],
        ):
            result = cli(*args)
            assert result.returncode == 1
            assert_one_line(
                result.stderr, "journal", "is damaged", "rename it to journal.sqlite3.damaged"
            )
        journal.rename(journal.with_name("journal.sqlite3.damaged"))
        again = cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--json")
        assert json.loads(again.stdout)["summary"]["uploaded"] == len(files)


LEAVE_JOURNAL_OPEN = """
import os, sys
from pathlib import Path
from stockup.journal import Journal
Journal(Path(sys.argv[1])).store_sha256(Path("left-open.jpg"), 1, 1, "00" * 32)
os._exit(0)  # killed: the journal is never closed, its write-ahead log stays
"""


def test_the_whole_journal_is_read_only_after_an_unclean_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every page of the journal takes 0.2 s per 200,000 uploads
    recorded: it is done when the last writer did not close the journal,
    not on every run; and then it finds a page damaged anywhere."""
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    for index in range(3000):
        journal.store_sha256(Path(f"photo-{index:05d}.jpg"), index, index, f"{index:064x}")
    journal.close()
    whole_file_reads: list[str] = []
    rows = _Guarded.rows

    def counting(self: _Guarded, sql: str, parameters: Any = ()) -> list[Any]:
        if "quick_check" in sql:
            whole_file_reads.append(sql)
        return rows(self, sql, parameters)

    monkeypatch.setattr(_Guarded, "rows", counting)
    Journal(path).close()
    assert whole_file_reads == []
    subprocess.run([sys.executable, "-c", LEAVE_JOURNAL_OPEN, str(path)], check=True)
    assert path.with_name(f"{path.name}-wal").stat().st_size > 0
    # A page in the middle of the file goes bad; the file keeps its length.
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle : middle + 4096] = b"\x5a" * 4096
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match=r"rename it to journal\.sqlite3\.damaged"):
        Journal(path)
    assert whole_file_reads == ["PRAGMA quick_check"]


def test_a_home_that_is_not_a_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    cli = Cli(home=tmp_path / "not-a-folder" / "home", env={"STOCKUP_PASSPHRASE": "pass phrase"})
    result = cli("history")
    assert result.returncode == 1
    assert_one_line(result.stderr, "not-a-folder")


def test_two_runs_to_one_account_never_send_a_file_twice_at_once(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [400_000] * 4)
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        first = cli.spawn("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv",
                          "--limit-rate", "400K", "--no-progress",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while not list(server.upload_root.glob(".*stockup-part")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv")
        assert second.returncode == 1
        assert_one_line(second.stderr, "another stockup is uploading to account srv")
        assert first.wait(60) == 0, first.communicate()
        for path in files:
            assert sha(server.upload_root / path.name) == sha(path)
    rows = json.loads(cli.ok("history", "--json").stdout)
    assert sorted(r["status"] for r in rows) == ["uploaded"] * 4


HOLD_LOCK = """
import sys, time
from pathlib import Path
from stockup.fsutil import exclusive_lock
with exclusive_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_the_vault_lock_waits_for_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "vault.lock"

    def holder(seconds: float) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(lock), str(seconds)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        return process

    # Another process holds it for longer than we wait: a one-line error.
    first = holder(60)
    started = time.monotonic()
    with pytest.raises(VaultLocked, match="another stockup process has held"):
        with exclusive_lock(lock, timeout=0.3):
            pass
    assert time.monotonic() - started >= 0.3
    # Killed with -9, it holds nothing: the OS released the lock.
    first.kill()
    first.wait()
    with exclusive_lock(lock, timeout=0):
        assert oct(lock.stat().st_mode & 0o777) == "0o600"
    # Held for a moment only: we wait for it, then take it.
    second = holder(0.5)
    started = time.monotonic()
    with exclusive_lock(lock, timeout=30):
        assert time.monotonic() - started >= 0.3
    assert second.wait(30) == 0
    # Released when the block ends: another process takes it at once.
    holder(0).wait()


def test_a_file_system_without_locks_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NFS without its lock daemon answers ENOLCK: say where the folders
    are, rather than take no lock."""

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    lock = tmp_path / "state" / "vault.lock"
    with pytest.raises(StateError, match=r"cannot lock .*vault\.lock: No locks available"):
        with exclusive_lock(lock):
            pass
    with pytest.raises(StateError, match="STOCKUP_HOME"):
        with held_locks([lock], busy=lambda path: AssertionError(path)):
            pass


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own (tmpfs; needs root, as CI is)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_one_line_error_and_loses_nothing(
    small_disk: Path, tmp_path: Path, start_server: ServerFactory
) -> None:
    cli = Cli(home=small_disk / "home", env={"STOCKUP_PASSPHRASE": "a long enough pass phrase"})
    make_batch(tmp_path / "batch", [1000] * 3)
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        vault = (small_disk / "home" / "vault.json").read_bytes()
        filler = small_disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):  # fill the disk to the last byte
            while os.write(fd, b"\0" * 512):
                pass
        os.close(fd)
        for args in (
            ["upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv"],
            ["account", "password", "srv", "--user", "u", "--password-stdin"],
        ):
            result = cli(*args, input="new password\n")
            assert result.returncode == 1, result.output
            assert_one_line(result.stderr)
            assert "space" in result.stderr or "No space" in result.stderr, result.stderr
        assert (small_disk / "home" / "vault.json").read_bytes() == vault  # unchanged
        filler.unlink()
        cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv")
