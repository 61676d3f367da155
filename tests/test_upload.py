"""`stockup upload` end to end through the real CLI against real servers."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from stockup.checks import Batch
from stockup.config import Account
from stockup.journal import Journal
from stockup.planning import plan_upload, remote_dir_for
from stockup.ratelimit import RateLimiter, parse_rate
from stockup.store import AccountOptions, build_account
from stockup.transfer import PART_SUFFIX
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import Running, ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch, make_file, sha
from tests.support.secrets_scan import files_under, find_secret

RESULT_KEYS = {
    "file", "account", "remote_path", "status", "bytes", "size", "resumed_from", "attempts",
    "error",
}  # fmt: skip


def assert_landed(server: Running, files: list[Path]) -> None:
    for path in files:
        remote = server.upload_root / path.name
        assert remote.exists(), f"{path.name} missing on {server.info.kind}"
        assert sha(remote) == sha(path), f"{path.name} differs on {server.info.kind}"
    assert not list(server.upload_root.glob(f"*{PART_SUFFIX}"))


def check_json_shape(report: dict) -> None:  # type: ignore[type-arg]
    assert set(report) == {"results", "summary"}
    for result in report["results"]:
        assert set(result) == RESULT_KEYS
        assert result["status"] in ("uploaded", "skipped", "failed", "rejected", "cancelled")
        assert isinstance(result["bytes"], int) and isinstance(result["attempts"], int)
    for key in ("uploaded", "skipped", "failed", "rejected", "cancelled", "bytes"):
        assert isinstance(report["summary"][key], int)


@pytest.fixture
def three(start_server: ServerFactory, request: pytest.FixtureRequest) -> Iterator[list[Running]]:
    kinds = request.param
    with ExitStack() as stack:
        yield [stack.enter_context(start_server(kind)) for kind in kinds]


@pytest.mark.parametrize(
    "three",
    [
        ("pyftpdlib-ftps", "asyncssh-sftp", "pyftpdlib-ftp"),
        ("vsftpd-ftps", "sshd-sftp", "vsftpd-ftp"),
    ],
    indirect=True,
    ids=["in-process", "vsftpd-sshd"],
)
def test_fan_out_to_three_accounts(
    cli: Cli, home: Path, tmp_path: Path, three: list[Running]
) -> None:
    files = make_batch(tmp_path / "batch", [3_000_000, 10, 0, 250_000, 1_000_000, 9_000_000])
    (tmp_path / "batch" / ".hidden.jpg").write_bytes(b"not me")
    cli.ok("init")
    for index, server in enumerate(three):
        add_account(cli, server, name=f"acct{index}")
    result = cli(
        "upload", "--skip-checks", str(tmp_path / "batch"), "--to", "acct0,acct1,acct2", "--json"
    )
    assert result.returncode == 0, result.output
    report = json.loads(result.stdout)
    check_json_shape(report)
    assert report["summary"]["uploaded"] == 18 and report["summary"]["failed"] == 0
    for server in three:
        assert_landed(server, files)
        assert not (server.upload_root / ".hidden.jpg").exists()
    assert "clear text" in result.stderr  # the opted-in plain FTP account

    again = json.loads(
        cli.ok(
            "upload",
            "--skip-checks",
            str(tmp_path / "batch"),
            "--to",
            "acct0,acct1,acct2",
            "--json",
        ).stdout
    )
    assert again["summary"]["skipped"] == 18 and again["summary"]["uploaded"] == 0

    history = json.loads(cli.ok("history", "--json", "--account", "acct1").stdout)
    assert [h["status"] for h in history].count("uploaded") == 6
    secrets = [PASSPHRASE] + [s.info.password for s in three]
    outputs = {str(r.args): r.output.encode() for r in cli.history}
    assert find_secret(secrets, outputs) == []
    assert find_secret(secrets, files_under(home, [home / "vault.json"])) == []


def test_wrong_password_on_one_of_three(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [200_000, 300_000, 400_000])
    with start_server("pyftpdlib-ftps") as ftps, start_server("asyncssh-sftp") as sftp:
        cli.ok("init")
        add_account(cli, ftps, name="good-ftps")
        add_account(cli, sftp, name="good-sftp")
        add_account(cli, ftps, name="bad", password="definitely-wrong-pw")
        result = cli(
            "upload",
            "--skip-checks",
            str(tmp_path / "batch"),
            "--to",
            "good-ftps,bad,good-sftp",
            "--json",
            "--connections",
            "2",
        )
        assert result.returncode == 1, result.output
        report = json.loads(result.stdout)
        check_json_shape(report)
        assert report["summary"]["uploaded"] == 6 and report["summary"]["failed"] == 3
        failures = report["summary"]["failures"]
        assert {f["account"] for f in failures} == {"bad"}
        assert all("login failed" in f["error"] for f in failures)
        assert_landed(ftps, files)
        assert_landed(sftp, files)
        plain = cli(
            "upload", "--skip-checks", str(tmp_path / "batch"), "--to", "bad", "--no-progress"
        )
        assert plain.returncode == 1 and "failed: bad" in plain.stdout
    failed = list(
        csv.DictReader(io.StringIO(cli.ok("history", "--status", "failed", "--csv").stdout))
    )
    assert len(failed) == 6 and {row["account"] for row in failed} == {"bad"}
    assert all("login failed" in row["error"] for row in failed)
    one = json.loads(cli.ok("history", "--search", files[1].name.upper(), "--json").stdout)
    assert {Path(row["file"]).name for row in one} == {files[1].name}
    assert {row["account"] for row in one} == {"good-ftps", "good-sftp", "bad"}
    assert "definitely-wrong-pw" not in "".join(r.output for r in cli.history)


class _TwoLoginsAtOnce:
    """ProFTPD's ``MaxClientsPerUser 2``, which pyftpdlib has no setting for:
    a third login of the user at once is refused with ProFTPD's 530."""

    logged_in = 0

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        handler = type(self)
        if handler.logged_in >= 2:
            self.respond(  # type: ignore[attr-defined]
                "530 Sorry, the maximum number of clients (2) for this user are already connected."
            )
            return
        handler.logged_in += 1
        self.counted = True
        super().handle_auth_success(home, password, msg_login)  # type: ignore[misc]

    def close(self) -> None:
        if getattr(self, "counted", False):
            type(self).logged_in -= 1
            self.counted = False
        super().close()  # type: ignore[misc]


@pytest.mark.parametrize(
    "kind", ["vsftpd-ftps", "pyftpdlib-ftps"], ids=["421-vsftpd", "530-proftpd"]
)
def test_a_server_taking_two_connections_of_four_gets_every_file_over_two(
    cli: Cli, tmp_path: Path, start_server: ServerFactory, kind: str
) -> None:
    """vsftpd's max_per_ip refuses the third connection at its greeting (421);
    ProFTPD refuses the third login (530). Neither is the file's fault nor a
    wrong password: the account goes on over the two it has."""
    files = make_batch(tmp_path / "batch", [150_000 + i for i in range(10)])
    limited = (
        start_server(kind, max_per_ip=2)
        if kind.startswith("vsftpd")
        else start_server(kind, behaviour=(_TwoLoginsAtOnce,))
    )
    with limited as server:
        cli.ok("init")
        add_account(cli, server)
        result = cli(
            "upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--json",
            "--connections", "4",
        )  # fmt: skip
        assert result.returncode == 0, result.output
        report = json.loads(result.stdout)
        assert report["summary"]["uploaded"] == 10 and report["summary"]["failed"] == 0
        assert all(r["attempts"] == 1 for r in report["results"])
        assert_landed(server, files)
    refused = [line for line in result.stderr.splitlines() if "refused a connection" in line]
    # "beside the N open" counts the connections logged in when the refusal
    # is judged: 2 as a rule, 1 if the other had not begun logging in yet.
    assert len(refused) == 2 and all(re.search(r"beside the [12] open", line) for line in refused)
    assert ("421" if kind.startswith("vsftpd") else "530") in refused[0]


def test_sigkill_mid_upload_then_resume(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [1_500_000] * 8)
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        proc = cli.spawn(
            "upload",
            "--skip-checks",
            str(tmp_path / "batch"),
            "--to",
            "srv",
            "--connections",
            "1",
            "--limit-rate",
            "3M",
            "--no-progress",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while len(list(server.upload_root.glob("art_*.jpg"))) < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = {p.name for p in server.upload_root.glob("art_*.jpg")}
        assert 3 <= len(done_before) < 8

        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--json")
        assert result.returncode == 0, result.output
        report = json.loads(result.stdout)
        results = {Path(r["file"]).name: r for r in report["results"]}
        for name in done_before:
            # Killed between the rename and the journal's record, a file is
            # found complete under its final name: "uploaded", with no byte sent.
            done = results[name]
            assert done["status"] == "skipped" or (
                done["status"] == "uploaded" and done["bytes"] == 0
                and done["resumed_from"] == done["size"]
            ), f"{name} was sent again: {done}"  # fmt: skip
        sent_now = [r for n, r in results.items() if n not in done_before]
        assert [r["status"] for r in sent_now] == ["uploaded"] * (8 - len(done_before))
        assert_landed(server, files)


@pytest.mark.parametrize("kind", ["asyncssh-sftp", "pyftpdlib-ftps"])
def test_sigterm_stops_cleanly_with_130(
    kind: str, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    make_batch(tmp_path / "batch", [2_000_000] * 4)
    with start_server(kind) as server:
        cli.ok("init")
        add_account(cli, server)
        proc = cli.spawn(
            "upload",
            "--skip-checks",
            str(tmp_path / "batch"),
            "--to",
            "srv",
            "--connections",
            "1",
            "--limit-rate",
            "1M",
            "--no-progress",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        _, err = proc.communicate(timeout=30)
        # A transfer blocked in a worker thread must not hold the exit until
        # its stall timeout (60 s): the data socket is shut down.
        assert time.monotonic() - stopping < 10
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        journal = Journal(cli.home / "state" / "journal.sqlite3")
        rows = journal._db.rows("SELECT status FROM transfers")
        journal.close()
        assert {row[0] for row in rows} <= {"uploading", "uploaded"}
        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--json")
        assert result.returncode == 0, result.output
        assert len(list(server.upload_root.glob("art_*.jpg"))) == 4


def test_dry_run_connects_nowhere(cli: Cli, tmp_path: Path, start_server: ServerFactory) -> None:
    make_batch(tmp_path / "batch", [1000, 2000])
    with start_server("pyftpdlib-ftp") as server:
        cli.ok("init")
        add_account(cli, server)
    # The server is gone: a dry run still plans, without the vault or a connection.
    result = cli.ok(
        "upload",
        "--skip-checks",
        str(tmp_path / "batch"),
        "--to",
        "srv",
        "--dry-run",
        env={"STOCKUP_PASSPHRASE": "not-used"},
    )
    assert "send" in result.stdout and "art_000.jpg" in result.stdout
    assert "2 to send" in result.stdout
    plan = json.loads(
        cli.ok(
            "upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--dry-run", "--json"
        ).stdout
    )
    assert {Path(s["file"]).name for s in plan["send"]} == {"art_000.jpg", "art_001.jpg"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--to", "nobody"], "no account named 'nobody'"),
        (["--to", "srv", "--limit-rate", "fast"], "invalid rate"),
        (["--to", "srv", "--connections", "0"], "--connections"),
        (["--to", "srv", "--timeout", "0"], "--timeout"),
        (["--to", "srv", "--retries", "0"], "--retries"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    make_batch(tmp_path / "batch", [10])
    cli.ok("init")
    cli.ok(
        "account",
        "add",
        "srv",
        "--agency",
        "adobestock",
        "--user",
        "u",
        "--password-stdin",
        input="pw\n",
    )
    result = cli("upload", "--skip-checks", str(tmp_path / "batch"), *args)
    assert result.returncode == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    missing = cli("upload", str(tmp_path / "nope"), "--to", "srv")
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr


def test_routing_by_agency_folders(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    files = [tmp_path / "art" / n for n in ("a.jpg", "logo.eps", "logo.jpg", "clip.mov")]
    make_samples_for_routing(files)
    alamy = build_account("alamy", AccountOptions(agency="alamy", allow_plaintext=True))
    batch = Batch(files)
    routed = {p.name: remote_dir_for(alamy, batch.media(p)) for p in batch.files}
    assert routed == {"a.jpg": "Stock", "logo.eps": None, "logo.jpg": None, "clip.mov": None}
    journal = Journal(tmp_path / "j.sqlite3")
    plan = plan_upload([tmp_path / "art"], [alamy], journal, skip_checks=True)
    journal.close()
    assert {j.remote_path for j in plan.all_jobs()} == {"Stock/a.jpg"}
    assert sorted((str(r.status), r.error or "") for r in plan.decided) == [
        ("rejected", "its vector logo.eps is not sent: Alamy takes images as JPEGs only"),
        ("skipped", "Alamy takes images as JPEGs only"),
        ("skipped", "Alamy's upload server takes images only"),
    ]
    custom = Account(name="c", agency="custom", protocol="sftp", host="h", port=22, remote_dir="in")
    assert remote_dir_for(custom, "video") == "in"


def make_samples_for_routing(files: list[Path]) -> None:
    """Minimal files whose content matches their names (formats are sniffed)."""
    from PIL import Image

    for path in files:
        if path.suffix == ".jpg":
            Image.new("RGB", (8, 8)).save(path)
        elif path.suffix == ".eps":
            path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
        else:
            path.write_bytes(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00")


def test_rate_parsing_and_budget() -> None:
    assert parse_rate("500K") == 500 * 1024
    assert parse_rate("20M") == 20 * 1024**2
    assert parse_rate("1.5g") == 1.5 * 1024**3
    assert parse_rate("1000") == 1000
    limiter = RateLimiter(1000)
    delays = [limiter._reserve(1000) for _ in range(5)]
    # Each 1000 bytes books one more second of the budget, less the burst allowance.
    assert delays[-1] == pytest.approx(4.75, abs=0.05)


def test_progress_bars_on_a_terminal(cli: Cli, tmp_path: Path, start_server: ServerFactory) -> None:
    """On a terminal: overall bytes with speed and ETA, one bar per account."""
    import pty

    make_batch(tmp_path / "batch", [400_000] * 3)
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server, name="bars")
        leader, follower = pty.openpty()
        proc = cli.spawn(
            "upload",
            "--skip-checks",
            str(tmp_path / "batch"),
            "--to",
            "bars",
            "--limit-rate",
            "1M",
            env={"TERM": "xterm-256color", "COLUMNS": "120"},
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(60)
        os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen
    assert "all accounts" in screen and "bars" in screen
    assert re.search(r"\d+\.\d (KiB|MiB)/s", screen)  # speed, from the library's accounting
    assert re.search(r"\dm \d\ds", screen)  # ETA
    assert "━" in screen


def test_plain_ftp_is_warned_about_once_per_account_and_run(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    make_batch(tmp_path / "batch", [50_000] * 6)
    with start_server("pyftpdlib-ftp") as server:
        cli.ok("init")
        add_account(cli, server, name="plain")
        result = cli.ok(
            "upload", "--skip-checks", str(tmp_path / "batch"), "--to", "plain",
            "--connections", "3", "--no-progress",
        )  # fmt: skip
    assert result.stderr.count("clear text") == 1, result.stderr
    assert "account plain uses plain FTP" in result.stderr and "127.0.0.1" in result.stderr


def test_a_short_passphrase_does_not_mask_ordinary_text(
    home: Path, tmp_path: Path, start_server: ServerFactory
) -> None:
    """Redaction masks secrets where they can arrive, as whole words: not
    inside file names, and not in stockup's own messages."""
    cli = Cli(home=home, env={"STOCKUP_PASSPHRASE": "short"})
    (tmp_path / "batch").mkdir()
    make_file(tmp_path / "batch" / "short_4k_clip.mp4", 1000)
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        sent = cli.ok("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv",
                      "--no-progress")  # fmt: skip
    assert "short_4k_clip.mp4" in sent.stderr and "***" not in sent.output
    history = cli.ok("history", "--json").stdout
    assert "short_4k_clip.mp4" in history and "***" not in history
    wrong = cli("account", "remove", "srv", env={"STOCKUP_PASSPHRASE": "wrong"})
    assert wrong.returncode == 3 and "wrong passphrase" in wrong.stderr
