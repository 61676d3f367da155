"""stockup's own files: a damaged journal, a full or odd disk, two runs at
once. Each is a one-line error that says what to do; nothing is lost."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

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
