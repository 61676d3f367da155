"""The one upload session the CLI, the web UI and the demo share: one set of
defaults, names as the user knows them, the journal's history of runs, and
`account edit`."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
from pathlib import Path

import pytest
from starlette.datastructures import FormData

from stockup.cli.app import build_parser
from stockup.cli.commands.upload import settings_from
from stockup.credentials import Credentials
from stockup.journal import Journal, write_history_csv
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths
from stockup.ratelimit import RateLimiter
from stockup.results import FileResult, Status
from stockup.secret import Secret
from stockup.session import UploadRequest, UploadSession, UploadSettings
from stockup.store import AccountOptions, Store, build_account
from stockup.transports.base import DEFAULT_TIMEOUT
from stockup.web.pages.uploads import _settings as web_settings
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch, make_file
from tests.support.memory import MemoryServer, factory


def test_the_front_ends_share_every_default() -> None:
    defaults = UploadSettings()
    args = build_parser(["upload"]).parse_args(["upload", "x", "--to", "a"])
    assert settings_from(args) == defaults
    assert web_settings(FormData()) == defaults
    assert defaults.timeout == DEFAULT_TIMEOUT and defaults.attempts == 5
    given = build_parser(["upload"]).parse_args(
        ["upload", "x", "--to", "a", "--retries", "2", "--timeout", "9", "--connections", "3"]
    )
    assert settings_from(given) == UploadSettings(attempts=2, timeout=9, connections=3)
    assert web_settings(FormData({"attempts": "2", "connections": "3"})) == UploadSettings(
        attempts=2, connections=3
    )
    options = UploadSettings(timeout=7, limit_rate=1000).transport_options(
        Paths(Path("c"), Path("d"), Path("s"))
    )
    assert (options.timeouts.connect, options.timeouts.reply, options.timeouts.stall) == (7, 7, 7)
    assert isinstance(options.limiter, RateLimiter) and options.limiter.rate == 1000


def test_demo_uses_the_session_and_its_defaults() -> None:
    source = Path("src/stockup/cli/commands/demo.py").read_text()
    assert "UploadSession(" in source and "UploadEngine" not in source
    assert re.search(r"UploadSettings\(limit_rate=DEMO_RATE\)", source)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(Paths(tmp_path / "home", tmp_path / "home", tmp_path / "home" / "state"))
    passphrase = PassphraseSource(environ={"STOCKUP_PASSPHRASE": PASSPHRASE})
    from stockup.vault import KdfParams

    store.init_vault(passphrase, kdf=KdfParams(memory_kib=1024, iterations=1, lanes=1))
    account = build_account(
        "mem", AccountOptions(agency="custom", host="mem.test", protocol="sftp", remote_dir="in")
    )
    store.add_account(account, Credentials("user", Secret("pw")), passphrase)
    return store


def test_history_names_files_as_the_user_picked_them(store: Store, tmp_path: Path) -> None:
    staged = tmp_path / "staging" / "batch1"
    (staged / "holiday").mkdir(parents=True)
    make_file(staged / "holiday" / "beach.jpg", 5000)
    request = UploadRequest(
        (staged,),
        ("mem",),
        UploadSettings(skip_checks=True, retry_delay=0),
        labels=((staged, "(picked in the browser)"),),
    )
    server = MemoryServer()
    session = UploadSession(store, request, open_transport=factory({"mem": server}))
    passphrase = PassphraseSource(environ={"STOCKUP_PASSPHRASE": PASSPHRASE})
    summary = asyncio.run(session.run(passphrase))
    assert summary.ok and server.final_files() == {
        "beach.jpg": (staged / "holiday" / "beach.jpg").read_bytes()
    }
    assert summary.results[0].file == "(picked in the browser)/holiday/beach.jpg"
    with contextlib.closing(Journal(store.paths.journal_file)) as journal:
        rows = journal.history()
    assert [r["file"] for r in rows] == ["(picked in the browser)/holiday/beach.jpg"]
    assert str(tmp_path) not in json.dumps(rows)


def test_history_newest_first_by_run_with_local_times(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    for run, name in (("run1", "a.jpg"), ("run2", "b.jpg")):
        journal.record(run, FileResult(name, "acct", name, Status.UPLOADED, 10, 1, size=10))
    rejected = FileResult("c.jpg", "acct", "", Status.REJECTED, error="CMYK")
    journal.record("run1", rejected)
    journal.record("run2", rejected)  # the same verdict again: not repeated
    journal.record("run2", FileResult("c.jpg", "acct", "", Status.REJECTED, error="too small"))
    rows = journal.history()
    assert [r["file"] for r in rows] == ["c.jpg", "c.jpg", "b.jpg", "a.jpg"]
    assert [r["error"] for r in rows if r["file"] == "c.jpg"] == ["too small", "CMYK"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", rows[0]["at"])
    assert [r["file"] for r in journal.history(run="run1")] == ["c.jpg", "a.jpg"]
    runs = journal.runs()
    assert [r["run"] for r in runs] == ["run2", "run1"]
    assert runs[1]["uploaded"] == 1 and runs[1]["rejected"] == 1
    journal.close()


def test_csv_cells_cannot_become_formulas() -> None:
    text = io.StringIO()
    write_history_csv(
        [
            {
                "run": "r", "at": "t", "account": "a", "file": "=HYPERLINK(\"x\")",
                "remote_path": "@SUM(1)", "status": "failed", "size": 1, "bytes": 0,
                "resumed_from": 0, "attempts": 1, "error": "-2+3",
            }
        ],
        text,
    )  # fmt: skip
    row = next(csv.DictReader(io.StringIO(text.getvalue())))
    assert row["file"].startswith("'=") and row["remote_path"] == "'@SUM(1)"
    assert row["error"] == "'-2+3" and row["status"] == "failed"


def test_history_command_lists_runs_and_filters_one(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    make_batch(tmp_path / "batch", [1000, 2000])
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--no-progress")
        (tmp_path / "batch" / "art_002.jpg").write_bytes(b"\xff\xd8new")
        cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--no-progress")
    runs = json.loads(cli.ok("history", "--runs", "--json").stdout)
    assert len(runs) == 2 and runs[0]["uploaded"] == 1 and runs[1]["uploaded"] == 2
    newest = json.loads(cli.ok("history", "--run", runs[0]["run"], "--json").stdout)
    assert {Path(r["file"]).name for r in newest} == {"art_000.jpg", "art_001.jpg", "art_002.jpg"}
    every = json.loads(cli.ok("history", "--json").stdout)
    assert every[0]["run"] == runs[0]["run"] and every[-1]["run"] == runs[1]["run"]
    table = cli.ok("history", "--runs").stdout
    assert runs[0]["run"] in table and "newest first" in table


def test_account_edit_asks_for_the_login_only_when_the_server_changes(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    make_batch(tmp_path / "batch", [1500])
    with start_server("pyftpdlib-ftps") as ftps, start_server("asyncssh-sftp") as sftp:
        cli.ok("init")
        add_account(cli, ftps, name="shop")
        edited = cli.ok(
            "account", "edit", "shop", "--remote-dir", "elsewhere", "--connections", "2"
        )
        assert "Changed account shop" in edited.stdout
        shown = json.loads(cli.ok("account", "show", "shop", "--json").stdout)
        assert shown["remote_dir"] == "elsewhere" and shown["connections"] == 2
        (ftps.info.root / "elsewhere").mkdir()
        cli.ok("account", "test", "shop")  # the saved login still works

        moved = cli(
            "account", "edit", "shop", "--protocol", "sftp", "--host", sftp.info.host,
            "--port", str(sftp.info.port),
        )  # fmt: skip
        assert moved.returncode == 2 and "--user" in moved.stderr
        assert json.loads(cli.ok("account", "show", "shop", "--json").stdout)["protocol"] == "ftps"
        cli.ok(
            "account", "edit", "shop", "--protocol", "sftp", "--host", sftp.info.host,
            "--port", str(sftp.info.port), "--remote-dir", sftp.remote_dir, "--ca-file", "",
            "--user", sftp.info.user, "--password-stdin", input=sftp.info.password + "\n",
        )  # fmt: skip
        cli.ok("account", "test", "shop", "--trust-host-key")
        cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "shop")
        assert (sftp.upload_root / "art_000.jpg").exists()
        nothing = cli("account", "edit", "shop")
        assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
        plain = cli("account", "edit", "shop", "--protocol", "ftp")
        assert plain.returncode == 2 and "--allow-plaintext" in plain.stderr
