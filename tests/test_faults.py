"""Fault injection through the real CLI: every file ends complete and
byte-identical on the server exactly once, nothing half-written under a final
name, the journal agrees with the server, and the summary and exit code tell
the truth."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import asyncssh
import pytest

from stockup.transfer import PART_SUFFIX
from stockup.transports.hostkeys import KnownHosts
from tests.servers.fixtures import Certs, Running, ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli, Result
from tests.support.files import make_batch, sha

ALL_KINDS = ["pyftpdlib-ftp", "pyftpdlib-ftps", "asyncssh-sftp", "vsftpd-ftp", "vsftpd-ftps",
             "sshd-sftp"]  # fmt: skip


def upload(cli: Cli, folder: Path, to: str, *extra: str) -> Result:
    return cli("upload", "--skip-checks", "--json", str(folder), "--to", to, *extra)


def assert_complete(cli: Cli, server: Running, files: list[Path], account: str = "srv") -> None:
    """Exactly the batch on the server, byte-identical, and the journal agrees."""
    on_server = sorted(p.name for p in server.upload_root.iterdir())
    assert on_server == sorted(f.name for f in files), "missing, extra or temporary files"
    for path in files:
        remote = server.upload_root / path.name
        assert sha(remote) == sha(path), f"{path.name} differs"
    with sqlite3.connect(cli.home / "state" / "journal.sqlite3") as db:
        rows = dict(
            db.execute("SELECT remote_path, status FROM transfers WHERE account = ?", (account,))
        )
    assert rows == {f"{server.remote_dir}/{f.name}": "uploaded" for f in files}


def assert_nothing_sent(server: Running) -> None:
    assert list(server.upload_root.iterdir()) == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_data_connection_cut_repeatedly(
    kind: str, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [3_000_000] * 4)
    with start_server(kind, proxy=True) as server:
        assert server.proxy is not None
        server.proxy.cut_next(1_500_000, times=3, ports=server.data_ports)
        cli.ok("init")
        add_account(cli, server)
        result = upload(cli, tmp_path / "batch", "srv", "--retries", "6", "--connections", "2")
        assert result.returncode == 0, result.output
        report = json.loads(result.stdout)
        assert report["summary"]["uploaded"] == 4 and report["summary"]["failed"] == 0
        assert server.proxy.cuts_done == 3
        assert sum(r["attempts"] for r in report["results"]) >= 4 + 1
        assert_complete(cli, server, files)


@pytest.mark.parametrize("kind", ["pyftpdlib-ftps", "asyncssh-sftp", "vsftpd-ftps", "sshd-sftp"])
def test_stall_longer_than_the_timeout(
    kind: str, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [4_000_000] * 2)
    with start_server(kind, proxy=True) as server:
        assert server.proxy is not None
        # vsftpd locks a file while a session writes it (lock_upload_files): the
        # stalled session holds the partial file until its data ends, so the
        # stall is finite here, though three times the client's timeout.
        server.proxy.stall_next(1_000_000, seconds=6, ports=server.data_ports)
        cli.ok("init")
        add_account(cli, server)
        result = upload(cli, tmp_path / "batch", "srv", "--timeout", "2", "--connections", "1",
                        "--retries", "8")  # fmt: skip
        assert result.returncode == 0, result.output
        report = json.loads(result.stdout)
        assert max(r["attempts"] for r in report["results"]) >= 2
        assert_complete(cli, server, files)


@pytest.mark.parametrize("kind", ["vsftpd-ftps", "sshd-sftp"])
def test_server_killed_and_restarted_mid_run(
    kind: str, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [2_000_000] * 6)
    with start_server(kind) as server:
        assert server.info.restart is not None
        cli.ok("init")
        add_account(cli, server)
        restarted = threading.Timer(1.5, server.info.restart, args=(2.0,))
        restarted.start()
        result = upload(cli, tmp_path / "batch", "srv", "--limit-rate", "3M", "--retries", "8",
                        "--connections", "2")  # fmt: skip
        restarted.join()
        assert result.returncode == 0, result.output
        report = json.loads(result.stdout)
        assert max(r["attempts"] for r in report["results"]) >= 2, "the kill was not felt"
        assert_complete(cli, server, files)


def test_quota_on_one_account_others_unaffected(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [500_000] * 3)
    with (
        start_server("pyftpdlib-ftps", quota_full=True) as full,
        start_server("asyncssh-sftp") as fine,
    ):
        cli.ok("init")
        add_account(cli, full, name="full")
        add_account(cli, fine, name="srv")
        result = upload(cli, tmp_path / "batch", "full,srv")
        assert result.returncode == 1
        summary = json.loads(result.stdout)["summary"]
        assert summary["uploaded"] == 3 and summary["failed"] == 3
        assert all(f["account"] == "full" for f in summary["failures"])
        assert any("552 Disk quota exceeded" in (f["error"] or "") for f in summary["failures"])
        assert_complete(cli, fine, files)
        assert [p for p in full.upload_root.iterdir() if not p.name.endswith(PART_SUFFIX)] == []


def test_sftp_host_key_changed_between_runs(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [200_000] * 3)
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        assert upload(cli, tmp_path / "batch", "srv").returncode == 0
        before = {p.name: p.stat().st_mtime_ns for p in server.upload_root.iterdir()}
        known = KnownHosts(cli.home / "state" / "known_hosts")
        known.path.write_text("")  # as if the server's key had been replaced
        known.add("127.0.0.1", server.info.port, asyncssh.generate_private_key("ssh-ed25519"))
        second = upload(cli, tmp_path / "batch", "srv", "--force")
        assert second.returncode == 1
        failures = json.loads(second.stdout)["summary"]["failures"]
        assert len(failures) == 3 and all("MAN-IN-THE-MIDDLE" in f["error"] for f in failures)
        assert {p.name: p.stat().st_mtime_ns for p in server.upload_root.iterdir()} == before
    assert len(files) == len(before)


@pytest.mark.parametrize("kind", ["pyftpdlib-ftps", "vsftpd-ftps"])
@pytest.mark.parametrize("which", ["expired", "self_signed"])
def test_expired_or_untrusted_certificate_refused(
    kind: str, which: str, cli: Cli, tmp_path: Path, start_server: ServerFactory, certs: Certs
) -> None:
    make_batch(tmp_path / "batch", [100_000] * 2)
    with start_server(kind, cert=getattr(certs, which)) as server:
        cli.ok("init")
        add_account(cli, server)
        result = upload(cli, tmp_path / "batch", "srv")
        assert result.returncode == 1
        failures = json.loads(result.stdout)["summary"]["failures"]
        expected = "expired" if which == "expired" else "not trusted"
        assert len(failures) == 2 and all(expected in f["error"] for f in failures)
        assert_nothing_sent(server)


def test_sigkill_twenty_times_in_a_row(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [700_000] * 12)
    rng = random.Random(20261126)
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        for _ in range(20):
            proc = cli.spawn(
                "upload",
                "--skip-checks",
                "--no-progress",
                str(tmp_path / "batch"),
                "--to",
                "srv",
                "--limit-rate",
                "4M",
                "--connections",
                "3",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.3, 1.2))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        final = upload(cli, tmp_path / "batch", "srv")
        assert final.returncode == 0, final.output
        assert_complete(cli, server, files)


def test_load_2000_files_to_three_accounts(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = make_batch(tmp_path / "batch", [2_000] * 2000)
    with (
        start_server("pyftpdlib-ftps") as ftps,
        start_server("asyncssh-sftp") as sftp,
        start_server("pyftpdlib-ftp") as ftp,
    ):
        cli.ok("init")
        for name, server in (("a-ftps", ftps), ("b-sftp", sftp), ("c-ftp", ftp)):
            add_account(cli, server, name=name)
        started = time.perf_counter()
        peak = tmp_path / "peak-rss"
        proc = cli.spawn(
            "upload", "--skip-checks", "--json", str(tmp_path / "batch"),
            "--to", "a-ftps,b-sftp,c-ftp", stdout=subprocess.PIPE, peak_rss_to=peak,
        )  # fmt: skip
        out, _ = proc.communicate()
        elapsed = time.perf_counter() - started
        assert proc.returncode == 0
        summary = json.loads(out)["summary"]
        assert summary["uploaded"] == 6000
        peak_mib = int(peak.read_text()) / 1024
        print(f"\nload: 6000 transfers in {elapsed:.1f} s, {elapsed / 6000 * 1000:.1f} ms "
              f"per file, peak RSS {peak_mib:.0f} MiB")  # fmt: skip
        assert peak_mib < 200
        for name, server in (("a-ftps", ftps), ("b-sftp", sftp), ("c-ftp", ftp)):
            assert_complete(cli, server, files, account=name)


def test_many_sftp_connections_far_away_stay_under_200_mib(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    # Far away, what a connection hands its SSH channel waits there for the
    # window to open: a chunk per connection, and asyncssh's copies of it.
    files = make_batch(tmp_path / "batch", [10_000_000] * 24)
    with start_server("asyncssh-sftp", proxy=True) as server:
        assert server.proxy is not None
        server.proxy.delay_seconds = 0.05
        cli.ok("init")
        add_account(cli, server)
        peak = tmp_path / "peak-rss"
        proc = cli.spawn(
            "upload", "--skip-checks", "--no-progress", str(tmp_path / "batch"), "--to", "srv",
            "--connections", "12", peak_rss_to=peak,
        )  # fmt: skip
        assert proc.wait(timeout=300) == 0
        assert_complete(cli, server, files)
    peak_mib = int(peak.read_text()) / 1024
    print(f"\n12 SFTP connections at 100 ms: peak RSS {peak_mib:.0f} MiB")
    assert peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB"


def test_two_gib_sparse_file_streams_with_flat_memory(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    with (folder / "huge.mov").open("wb") as handle:
        handle.truncate(2 * 1024**3)
    with start_server("sshd-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        peak = tmp_path / "peak-rss"
        proc = cli.spawn(
            "upload", "--skip-checks", str(folder), "--to", "srv", "--no-progress",
            peak_rss_to=peak,
        )  # fmt: skip
        assert proc.wait() == 0
        assert (server.upload_root / "huge.mov").stat().st_size == 2 * 1024**3
        (server.upload_root / "huge.mov").unlink()
    peak_mib = int(peak.read_text()) / 1024
    assert peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB"
