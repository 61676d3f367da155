"""`stockup account test` through the real CLI: facts shown, each failure's message."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from pyftpdlib.handlers import TLS_DTPHandler

from stockup.demo.servers import PASSWORD
from stockup.errors import HostKeyUnknown
from stockup.transfer import check_account
from stockup.transports.hostkeys import KnownHosts
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import Certs, Running, ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.secrets_scan import files_under, find_secret


@pytest.fixture
def sftp(start_server: ServerFactory) -> Iterator[Running]:
    with start_server("asyncssh-sftp", trust_host_key=False) as server:
        yield server


def test_sftp_unknown_key_refused_then_trusted(cli: Cli, home: Path, sftp: Running) -> None:
    cli.ok("init")
    add_account(cli, sftp)
    fingerprint = sftp.info.host_key.get_fingerprint("sha256")  # type: ignore[union-attr]
    refused = cli("account", "test", "srv")
    assert refused.returncode == 4
    assert fingerprint in refused.stderr
    assert "stockup account test srv --trust-host-key" in refused.stderr
    known_hosts = home / "state" / "known_hosts"
    assert not known_hosts.exists()

    trusted = cli.ok("account", "test", "srv", "--trust-host-key")
    assert fingerprint in trusted.stdout and "recorded" in trusted.stdout
    assert trusted.stdout.strip().endswith("ok")
    assert f"[127.0.0.1]:{sftp.info.port} ssh-ed25519" in known_hosts.read_text()
    again = cli.ok("account", "test", "srv")
    assert "recorded" not in again.stdout and again.stdout.strip().endswith("ok")
    assert find_secret([PASSWORD, PASSPHRASE], files_under(home, [home / "vault.json"])) == []
    assert (
        find_secret(
            [PASSWORD, PASSPHRASE], {"out": "".join(r.output for r in cli.history).encode()}
        )
        == []
    )


@pytest.mark.parametrize("kind", ["asyncssh-sftp", "sshd-sftp"])
def test_changed_host_key_always_refused(
    kind: str, cli: Cli, home: Path, start_server: ServerFactory
) -> None:
    with start_server(kind, trust_host_key=False) as server:
        cli.ok("init")
        add_account(cli, server)
        known = KnownHosts(home / "state" / "known_hosts")
        known.add("127.0.0.1", server.info.port, asyncssh.generate_private_key("ssh-ed25519"))
        before = known.path.read_bytes()
        for extra in ([], ["--trust-host-key"]):
            result = cli("account", "test", "srv", *extra)
            assert result.returncode == 4
            assert "POSSIBLE MAN-IN-THE-MIDDLE" in result.stderr
            assert "Nothing was sent" in result.stderr
        assert known.path.read_bytes() == before


def test_ftps_shows_tls_and_certificate(
    cli: Cli, start_server: ServerFactory, certs: Certs
) -> None:
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server)
        out = cli.ok("account", "test", "srv").stdout
    assert "TLSv1." in out
    assert "CN=localhost" in out and "expires" in out
    assert certs.good.sha256[:2].upper() in out
    assert out.strip().endswith("ok")


class _RaggedListingEnd(TLS_DTPHandler):  # type: ignore[misc]
    """Closes the data connection without TLS close_notify, as pyftpdlib does
    now and then on its own (it made this file's tests flaky)."""

    def close(self) -> None:
        self._error = True  # pyftpdlib's way to skip its SSL shutdown
        super().close()


class RaggedListings:
    dtp_handler = _RaggedListingEnd


def test_a_listing_ended_without_close_notify_is_listed(
    cli: Cli, start_server: ServerFactory
) -> None:
    """ftplib's listing calls unwrap(), which fails with SHUTDOWN_WHILE_IN_INIT
    on every such listing; the 226 is what says the listing is complete."""
    with start_server("pyftpdlib-ftps", behaviour=(RaggedListings,)) as server:
        (server.upload_root / "already-there.jpg").write_bytes(b"x")
        cli.ok("init")
        add_account(cli, server)
        result = cli("account", "test", "srv")
    assert result.returncode == 0, result.output
    assert result.stdout.strip().endswith("ok")


def test_a_listing_cut_once_is_tried_again(cli: Cli, start_server: ServerFactory) -> None:
    with start_server("pyftpdlib-ftps", proxy=True) as server:
        cli.ok("init")
        add_account(cli, server)
        assert server.proxy is not None
        server.proxy.cut_next(10, ports=server.data_ports)  # mid-handshake, as TLS flakes do
        out = cli.ok("account", "test", "srv").stdout
        assert server.proxy.cuts_done == 1
    assert out.strip().endswith("ok")


@pytest.mark.parametrize("kind", ["asyncssh-sftp", "sshd-sftp", "pyftpdlib-ftps"])
def test_a_remote_name_that_is_not_utf8_is_listed(
    cli: Cli, start_server: ServerFactory, kind: str
) -> None:
    """One file named in Latin-1 on the server made asyncssh refuse the whole
    listing ("Unable to decode name"): the account's test failed."""
    with start_server(kind) as server:
        (server.upload_root / os.fsdecode(b"caf\xe9.jpg")).write_bytes(b"x")
        cli.ok("init")
        add_account(cli, server)
        tested = cli.ok("account", "test", "srv", *(["--trust-host-key"] if "ssh" in kind else []))
    assert "remote folder" in tested.stdout and ": 1 entries" in tested.stdout
    assert tested.stdout.strip().endswith("ok")


def test_failure_messages(cli: Cli, start_server: ServerFactory, certs: Certs) -> None:
    cli.ok("init")
    with start_server("pyftpdlib-ftps", cert=certs.self_signed) as server:
        add_account(cli, server)
        untrusted = cli("account", "test", "srv")
        assert untrusted.returncode == 4 and "certificate not trusted" in untrusted.stderr
        assert "SHA-256" in untrusted.stderr
    cli.ok("account", "remove", "srv")
    with start_server("pyftpdlib-ftps") as server:
        add_account(cli, server, password="not-the-right-one")
        denied = cli("account", "test", "srv")
        assert denied.returncode == 4 and "login failed" in denied.stderr
        assert "not-the-right-one" not in denied.output
    refused = cli("account", "test", "srv")  # the server is gone now
    assert refused.returncode == 4 and "connection refused" in refused.stderr
    for result in (untrusted, denied, refused):
        assert "Traceback" not in result.output


def test_plain_ftp_warns_with_host(cli: Cli, start_server: ServerFactory) -> None:
    with start_server("pyftpdlib-ftp") as server:
        cli.ok("init")
        add_account(cli, server)
        result = cli.ok("account", "test", "srv")
    assert "password goes to 127.0.0.1 in clear text" in result.stderr


def test_only_the_fingerprint_shown_is_trusted(sftp: Running) -> None:
    """The web UI shows the offered key, then trusts exactly that one: a
    different key by the time the user clicks is refused, and not recorded."""
    account, login = sftp.account(), sftp.credentials()
    offered = sftp.info.host_key.get_fingerprint("sha256")  # type: ignore[union-attr]
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with pytest.raises(HostKeyUnknown) as refused:
        asyncio.run(check_account(account, login, sftp.paths, trust_fingerprint=other))
    assert refused.value.fingerprint == offered
    assert not sftp.paths.known_hosts_file.exists()
    check = asyncio.run(check_account(account, login, sftp.paths, trust_fingerprint=offered))
    assert check.info.host_key_recorded and check.info.host_key_fingerprint == offered
    assert KnownHosts(sftp.paths.known_hosts_file).keys_for(account.host, account.port)


@pytest.mark.parametrize("answer", ["y", "n"])
def test_terminal_prompt_trusts_the_key_it_showed(
    answer: str, cli: Cli, home: Path, sftp: Running
) -> None:
    cli.ok("init")
    add_account(cli, sftp)
    main, replica = os.openpty()  # a terminal on stdin, so stockup asks
    try:
        os.write(main, f"{answer}\n".encode())
        proc = cli.spawn(
            "account", "test", "srv", stdin=replica, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(main)
        os.close(replica)
    fingerprint = sftp.info.host_key.get_fingerprint("sha256")  # type: ignore[union-attr]
    assert fingerprint in stderr
    known = KnownHosts(home / "state" / "known_hosts").keys_for("127.0.0.1", sftp.info.port)
    if answer == "y":
        assert proc.returncode == 0, stderr
        assert "Trust this host key?" in stdout and stdout.rstrip().endswith("ok")
        assert [key.get_fingerprint("sha256") for key in known] == [fingerprint]
    else:
        assert proc.returncode == 4 and known == []


@pytest.mark.parametrize(("cuts", "ok"), [(2, True), (3, False)])
def test_a_lost_data_connection_is_tried_again(
    cuts: int, ok: bool, cli: Cli, start_server: ServerFactory
) -> None:
    """The listing's data connection cut twice still gives a verdict on the
    account; cut on every one of the three connections, the loss is said."""
    with start_server("pyftpdlib-ftps", proxy=True) as server:
        assert server.proxy is not None
        cli.ok("init")
        add_account(cli, server)
        server.proxy.cut_next(0, times=cuts, ports=server.data_ports)
        result = cli("account", "test", "srv")
        assert (result.returncode == 0) is ok, result.output
        assert server.proxy.cuts_done == cuts
        if not ok:
            assert result.returncode == 4 and "Traceback" not in result.stderr
