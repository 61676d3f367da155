"""Uploading through real SOCKS5 (dante) and HTTP CONNECT (tinyproxy) proxies
to real servers that only the proxies can reach (tests.servers.lab), and
over IPv6."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stockup.config import Account, Config
from stockup.credentials import Credentials
from stockup.errors import (
    CertificateError,
    ConfigError,
    ConnectFailed,
    HostKeyUnknown,
    NameNotResolved,
    ProxyAuthFailed,
    ProxyCannotReach,
    ProxyRefused,
    UsageError,
)
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths
from stockup.proxy import Proxy, dial, from_environment
from stockup.secret import Secret
from stockup.store import AccountOptions, Store, build_account, proxy_for
from stockup.transports.base import Timeouts
from tests.conftest import PASSPHRASE
from tests.servers import real
from tests.servers.faultproxy import FaultProxy
from tests.servers.fixtures import Certs, Running, ServerFactory
from tests.servers.lab import BLOCKED_PORT, LAB_HOST, Lab, ProxyServer
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch, sha
from tests.support.secrets_scan import files_under, find_secret

SERVERS = ["vsftpd-ftps", "vsftpd-ftp", "sshd-sftp"]
PROXIES = ["socks5h", "socks5h-login", "http", "http-login"]


def resolved(
    proxy: ProxyServer, *, scheme: str | None = None, password: str | None = None
) -> Proxy:
    """The proxy as the vault would give it to a transport."""
    parsed = Proxy.parse(proxy.url)
    if scheme:
        parsed = Proxy(scheme, parsed.host, parsed.port, parsed.username)
    secret = password or proxy.password
    return parsed.with_password(Secret(secret)) if secret else parsed


def via(server: Running, proxy: Proxy | None, **overrides: Any) -> Any:
    """A transport to ``server`` through ``proxy``, as the engine opens it."""
    transport = server.transport(timeouts=Timeouts(connect=5, reply=10, stall=10), **overrides)
    transport.credentials = Credentials(
        transport.credentials.username, transport.credentials.password, proxy
    )
    return transport


async def send_one(transport: Any, local: Path, remote: str) -> None:
    try:
        await transport.connect()
        await transport.upload(local, remote)
    finally:
        await transport.close()


@pytest.mark.parametrize("proxy_kind", PROXIES)
@pytest.mark.parametrize("kind", SERVERS)
def test_upload_through_each_proxy(
    kind: str,
    proxy_kind: str,
    proxies: dict[str, ProxyServer],
    lab_net: Lab,
    cli: Cli,
    tmp_path: Path,
    start_server: ServerFactory,
) -> None:
    proxy = proxies[proxy_kind]
    files = make_batch(tmp_path / "batch", [2_500_000, 40_000, 1_000])
    with start_server(kind, lab=lab_net) as server:
        # The server is out of reach but for the proxy: a bypass would fail.
        assert not real.listening("127.0.0.1", server.info.port)
        before = proxy.connections()
        cli.ok("init")
        add_account(cli, server, proxy=proxy.url, proxy_password=proxy.password)
        result = cli("upload", "--skip-checks", "--json", str(tmp_path / "batch"), "--to", "srv")
        assert result.returncode == 0, result.output
        assert json.loads(result.stdout)["summary"]["uploaded"] == 3
        for path in files:
            assert sha(server.upload_root / path.name) == sha(path)
        assert sorted(p.name for p in server.upload_root.iterdir()) == sorted(f.name for f in files)
        # Every connection went through the proxy: control and one data
        # connection a file for FTP, one for SFTP.
        least = 1 if kind == "sshd-sftp" else 1 + len(files)
        assert proxy.connections() - before >= least, proxy.log_text()[-2000:]
        test = cli.ok("account", "test", "srv")
        assert f"proxy          {proxy.url}" in test.stdout
        config = (cli.home / "config.toml").read_text()
        assert f'proxy = "{proxy.url}"' in config
    secrets = [server.info.password] + ([proxy.password] if proxy.password else [])
    outputs = {" ".join(r.args): r.output.encode() for r in cli.history}
    assert find_secret(secrets, outputs) == []
    vault = cli.home / "vault.json"
    assert find_secret(secrets, files_under(cli.home, exclude=[vault])) == []


def test_a_direct_connection_cannot_reach_the_lab(
    lab_net: Lab, start_server: ServerFactory
) -> None:
    """What makes the test above a test: without the proxy, nothing arrives."""
    with start_server("vsftpd-ftps", lab=lab_net) as server:
        with pytest.raises(NameNotResolved):  # the name exists only in the lab
            asyncio.run(via(server, None).connect())
        with pytest.raises(ConnectFailed):  # the address is this machine's own loopback
            asyncio.run(via(server, None, host="127.0.0.1").connect())


@pytest.mark.parametrize("scheme", ["socks5h", "http"])
def test_the_agency_name_is_resolved_at_the_proxy_only(
    scheme: str,
    proxies: dict[str, ProxyServer],
    lab_net: Lab,
    tmp_path: Path,
    start_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    local = make_batch(tmp_path / "batch", [300_000])[0]
    proxy = resolved(proxies["socks5h" if scheme == "socks5h" else "http"])
    for kind in ("vsftpd-ftps", "sshd-sftp"):
        with start_server(kind, lab=lab_net) as server:
            asyncio.run(send_one(via(server, proxy), local, f"{server.remote_dir}/a.jpg"))
            assert sha(server.upload_root / "a.jpg") == sha(local)
    assert LAB_HOST not in looked_up
    assert proxy.host in looked_up  # the recorder saw the lookups there were


def test_ftps_through_a_proxy_that_ends_the_tunnel_at_a_half_close(
    proxies: dict[str, ProxyServer], lab_net: Lab, tmp_path: Path, start_server: ServerFactory
) -> None:
    """tinyproxy closes the whole tunnel when the client's FIN arrives: sent
    at once after the data, the FIN cost vsftpd the data it had not read yet
    in about one upload in eight ("426 Failure reading network stream").
    Through a proxy the server's close_notify is awaited first. Twenty
    uploads, without a retry."""
    files = make_batch(tmp_path / "batch", [300_000] * 20)

    async def send_all(transport: Any, folder: str) -> None:
        try:
            await transport.connect()
            for path in files:
                await transport.upload(path, f"{folder}/{path.name}")
        finally:
            await transport.close()

    with start_server("vsftpd-ftps", lab=lab_net) as server:
        asyncio.run(send_all(via(server, resolved(proxies["http"])), server.remote_dir))
        for path in files:
            assert sha(server.upload_root / path.name) == sha(path)


def test_socks5_without_h_resolves_here(
    proxies: dict[str, ProxyServer], lab_net: Lab, start_server: ServerFactory
) -> None:
    """socks5:// (curl's meaning) resolves the name on this machine, which
    cannot: the difference socks5h makes."""
    proxy = resolved(proxies["socks5h"], scheme="socks5")
    with start_server("vsftpd-ftps", lab=lab_net) as server:
        with pytest.raises(NameNotResolved, match=LAB_HOST):
            asyncio.run(via(server, proxy).connect())
        # An address needs no name: the same proxy carries it.
        asyncio.run(via(server, proxy, host="127.0.0.1").connect())


def test_each_failing_hop_is_named(
    proxies: dict[str, ProxyServer], lab_net: Lab, start_server: ServerFactory
) -> None:
    with start_server("vsftpd-ftps", lab=lab_net) as server:
        for kind in ("socks5h-login", "http-login"):
            with pytest.raises(ProxyAuthFailed, match="proxy authentication failed"):
                asyncio.run(via(server, resolved(proxies[kind], password="wrong")).connect())
        socks = resolved(proxies["socks5h"])
        with pytest.raises(ProxyRefused, match="the proxy refused the connection"):
            asyncio.run(via(server, socks, port=BLOCKED_PORT).connect())
        for kind in ("socks5h", "http"):
            with pytest.raises(ProxyCannotReach, match=f"could not reach {LAB_HOST}:1 "):
                asyncio.run(via(server, resolved(proxies[kind]), port=1).connect())
        closed = Proxy("socks5h", lab_net.address, 1)
        with pytest.raises(ConnectFailed, match="cannot connect to the proxy"):
            asyncio.run(via(server, closed).connect())


def test_certificates_and_host_keys_are_checked_through_the_proxy(
    proxies: dict[str, ProxyServer], lab_net: Lab, certs: Certs, start_server: ServerFactory
) -> None:
    """The tunnel changes nothing about trust: a certificate for another name
    and an unknown host key are refused as they are without a proxy."""
    proxy = resolved(proxies["socks5h"])
    with start_server("vsftpd-ftps", lab=lab_net, cert=certs.wrong_host) as server:
        with pytest.raises(CertificateError):
            asyncio.run(via(server, proxy).connect())
    with start_server("sshd-sftp", lab=lab_net, trust_host_key=False) as server:
        with pytest.raises(HostKeyUnknown):
            asyncio.run(via(server, proxy).connect())


def test_account_test_names_the_failing_hop(
    proxies: dict[str, ProxyServer], lab_net: Lab, cli: Cli, start_server: ServerFactory
) -> None:
    proxy = proxies["socks5h-login"]
    with start_server("sshd-sftp", lab=lab_net) as server:
        cli.ok("init")
        add_account(cli, server, proxy=proxy.url, proxy_password="not-the-password")
        result = cli("account", "test", "srv")
        assert result.returncode == 4
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "proxy authentication failed" in result.stderr
        # The proxy's password changes alone, without naming the proxy again.
        cli.ok("account", "edit", "srv", "--proxy-password-stdin", input=f"{proxy.password}\n")
        assert f"proxy          {proxy.url}" in cli.ok("account", "test", "srv").stdout
        # An account without a proxy of its own has no proxy password to change.
        cli.ok("account", "edit", "srv", "--proxy", "")
        result = cli("account", "edit", "srv", "--proxy-password-stdin", input="x\n")
        assert result.returncode == 2 and "goes with a proxy URL" in result.stderr


@pytest.mark.parametrize("kind", ["vsftpd-ftps", "sshd-sftp"])
def test_cut_connection_through_the_proxy_resumes(
    kind: str,
    proxies: dict[str, ProxyServer],
    lab_net: Lab,
    cli: Cli,
    tmp_path: Path,
    start_server: ServerFactory,
) -> None:
    """The fault proxy sits between stockup and dante: cutting the tunnel
    cuts the connection inside it; the upload takes up again through the
    proxy (how far back it restarts is the engine's, tested there)."""
    dante_port = Proxy.parse(proxies["socks5h"].url).port
    files = make_batch(tmp_path / "batch", [3_000_000] * 2)
    with (
        start_server(kind, lab=lab_net) as server,
        FaultProxy("127.0.0.2", lab_net.address, [dante_port]) as fault,
    ):
        fault.cut_next(1_500_000, times=2)
        cli.ok("init")
        add_account(cli, server, proxy=f"socks5h://127.0.0.2:{dante_port}")
        result = cli(
            "upload", "--skip-checks", "--json", str(tmp_path / "batch"), "--to", "srv",
            "--retries", "5", "--connections", "1",
        )  # fmt: skip
        assert result.returncode == 0, result.output
        report = json.loads(result.stdout)
        assert fault.cuts_done == 2
        results = report["results"]
        assert sum(r["attempts"] for r in results) >= len(files) + 2
        assert sorted(p.name for p in server.upload_root.iterdir()) == [f.name for f in files]
        for path in files:
            assert sha(server.upload_root / path.name) == sha(path)


@pytest.mark.parametrize("kind", ["vsftpd-ftps", "sshd-sftp", "vsftpd-ftp"])
def test_what_the_proxy_sees(
    kind: str,
    proxies: dict[str, ProxyServer],
    lab_net: Lab,
    tmp_path: Path,
    start_server: ServerFactory,
) -> None:
    """Everything stockup hands the proxy, captured on the way: the agency's
    name (socks5h), but neither the password nor the file on FTPS and SFTP;
    on plain FTP both, which is why it needs --allow-plaintext."""
    dante_port = Proxy.parse(proxies["socks5h"].url).port
    local = make_batch(tmp_path / "batch", [200_000])[0]
    content = local.read_bytes()
    with (
        start_server(kind, lab=lab_net) as server,
        FaultProxy("127.0.0.2", lab_net.address, [dante_port]) as tap,
    ):
        tap.captured = bytearray()
        proxy = Proxy("socks5h", "127.0.0.2", dante_port)
        asyncio.run(send_one(via(server, proxy), local, f"{server.remote_dir}/seen.jpg"))
        assert sha(server.upload_root / "seen.jpg") == sha(local)
    seen = bytes(tap.captured)
    assert LAB_HOST.encode() in seen
    password, sample = server.info.password.encode(), content[100_000:100_064]
    in_clear = kind == "vsftpd-ftp"
    assert (password in seen) is in_clear and (sample in seen) is in_clear


def test_proxy_settings_and_passwords(
    proxies: dict[str, ProxyServer], lab_net: Lab, cli: Cli, start_server: ServerFactory
) -> None:
    proxy = proxies["socks5h-login"]
    with start_server("vsftpd-ftps", lab=lab_net) as server:
        cli.ok("init")
        # A password on the command line is refused, and not echoed.
        in_url = proxy.url.replace("@", f":{proxy.password}@")
        result = cli("proxy", "set", in_url)
        assert result.returncode == 2 and "password does not go in the proxy URL" in result.stderr
        assert proxy.password and proxy.password not in result.output
        # The global proxy serves every account without one of its own.
        cli.ok("proxy", "set", proxy.url, "--proxy-password-stdin", input=proxy.password + "\n")
        add_account(cli, server)
        assert f"proxy          {proxy.url}" in cli.ok("account", "test", "srv").stdout
        # 'direct' overrides it for one account (and cannot reach the lab).
        cli.ok("account", "edit", "srv", "--proxy", "direct")
        assert "name not resolved" in cli("account", "test", "srv").stderr
        # 'env': the environment's proxy, when stockup runs, said where it came from.
        cli.ok("account", "edit", "srv", "--proxy", "env")
        env = {"ALL_PROXY": proxy.url.replace("@", f":{proxy.password}@")}
        shown = cli.ok("account", "test", "srv", env=env).stdout
        assert f"proxy          {proxy.url} (from $ALL_PROXY)" in shown
        assert proxy.password not in shown
        no_proxy = {**env, "NO_PROXY": LAB_HOST}
        assert "name not resolved" in cli("account", "test", "srv", env=no_proxy).stderr
        # Back to the global one, then none at all.
        cli.ok("account", "edit", "srv", "--proxy", "")
        assert cli.ok("proxy", "show").stdout.startswith(proxy.url)
        assert Proxy.parse(proxy.url).vault_record in vault_records(cli)
        cli.ok("proxy", "clear")
        assert "name not resolved" in cli("account", "test", "srv").stderr
        assert "proxy" not in (cli.home / "config.toml").read_text()
        # Nothing names that proxy any more: its password left the vault.
        assert vault_records(cli) == ["srv"]


def vault_records(cli: Cli) -> list[str]:
    paths = Paths(cli.home, cli.home, cli.home / "state")
    source = PassphraseSource(environ={"STOCKUP_PASSPHRASE": PASSPHRASE})
    return Store(paths).open_vault(source).accounts()


def test_active_ftp_through_a_proxy_is_refused(cli: Cli) -> None:
    with pytest.raises(ConfigError, match="active-mode FTP, which cannot work through a proxy"):
        build_account(
            "a",
            AccountOptions(
                agency="custom", host="h", protocol="ftps", passive=False, proxy="socks5h://p:1"
            ),
        )
    active = build_account("a", AccountOptions(agency="custom", host="h", protocol="ftps",
                                               passive=False))  # fmt: skip
    with pytest.raises(ConfigError, match="cannot work through a proxy"):
        proxy_for(Config({"a": active}, proxy="socks5h://p:1"), active)
    assert proxy_for(Config({"a": active}), active) is None
    cli.ok("init")
    result = cli(
        "account", "add", "a", "--agency", "custom", "--host", "h", "--protocol", "ftps",
        "--active", "--proxy", "http://p:3128", "--user", "u", "--password-stdin",
        input="pw\n",
    )  # fmt: skip
    assert result.returncode == 2 and "cannot work through a proxy" in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://p:1", "write it as socks5h://"),
        ("socks5h://p", "write it as socks5h://"),
        ("socks5h://p:99999", "write it as socks5h://"),
        ("socks5h://p:1/path", "no path"),
        ("socks5h://u:secret@p:1", "password does not go in the proxy URL"),
    ],
)
def test_proxy_urls_are_checked(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        Proxy.parse(url)
    assert "secret" not in str(caught.value)


def test_proxy_urls_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Proxy.parse("socks5h://me@[::1]:1080")
    assert (proxy.host, proxy.port, proxy.url) == ("::1", 1080, "socks5h://me@[::1]:1080")
    monkeypatch.setenv("HTTPS_PROXY", "http://u:p%40ss@proxy.example:3128")
    found = from_environment("agency.example")
    assert found is not None and found.password is not None
    assert found.password.reveal() == "p@ss" and found.describe().endswith("(from $HTTPS_PROXY)")
    assert "p@ss" not in repr(found)
    monkeypatch.setenv("NO_PROXY", ".example")
    assert from_environment("agency.example") is None


# -- IPv6 ---------------------------------------------------------------------


class _RecordsDataCommands:
    """pyftpdlib handler mixin: notes which data-connection commands it got."""

    seen: ClassVar[list[str]] = []

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        if cmd in ("PORT", "EPRT", "PASV", "EPSV"):
            _RecordsDataCommands.seen.append(cmd)
        super().pre_process_command(line, cmd, arg)  # type: ignore[misc]


@pytest.mark.parametrize("passive", [True, False])
def test_ipv6_literal_host_uses_epsv_and_eprt(
    passive: bool, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    _RecordsDataCommands.seen.clear()
    files = make_batch(tmp_path / "batch", [200_000, 3_000])
    with start_server("pyftpdlib-ftps", ipv6=True, behaviour=(_RecordsDataCommands,)) as server:
        assert server.info.host == "::1"
        cli.ok("init")
        mode = [] if passive else ["--active"]
        add_account(cli, server, "--host", "[::1]", *mode)
        assert cli.ok("account", "show", "srv", "--json").stdout.count('"::1"') == 1
        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv")
        assert result.returncode == 0, result.output
        for path in files:
            assert sha(server.upload_root / path.name) == sha(path)
    assert set(_RecordsDataCommands.seen) == ({"EPSV"} if passive else {"EPRT"})


@pytest.mark.parametrize("kind", ["vsftpd-ftps", "sshd-sftp"])
def test_ipv6_only_servers(
    kind: str,
    proxies: dict[str, ProxyServer],
    lab_net: Lab,
    cli: Cli,
    tmp_path: Path,
    start_server: ServerFactory,
) -> None:
    """Real servers on ::1 only: directly by literal, and in the lab by a name
    with an AAAA record only, through the SOCKS proxy."""
    files = make_batch(tmp_path / "batch", [500_000])
    with start_server(kind, ipv6=True) as server:
        cli.ok("init")
        add_account(cli, server, "--host", "[::1]")
        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv")
        assert result.returncode == 0, result.output
        assert sha(server.upload_root / files[0].name) == sha(files[0])
    with start_server(kind, ipv6=True, lab=lab_net) as server:
        assert server.host == "agency6.lab.test"
        local = files[0]
        proxy = resolved(proxies["socks5h"])
        asyncio.run(send_one(via(server, proxy), local, f"{server.remote_dir}/v6.jpg"))
        assert sha(server.upload_root / "v6.jpg") == sha(local)


def test_an_account_host_keeps_no_brackets() -> None:
    account = build_account("a", AccountOptions(agency="custom", host="[::1]", protocol="sftp"))
    assert account.host == "::1" and account.server.address == "[::1]:22"
    assert isinstance(account, Account)


def test_a_greeting_sent_with_the_proxys_reply_is_not_lost() -> None:
    """FTP and SSH servers speak first: their greeting can reach us in the
    same packet as an HTTP proxy's "200". It must stay in the socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def proxy_once() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(1024)
            assert request.startswith(b"CONNECT agency.example:21 HTTP/1.1\r\n")
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n220 hello\r\n")
            conn.recv(1)

    thread = threading.Thread(target=proxy_once)
    thread.start()
    sock = dial(Proxy("http", "127.0.0.1", port), "agency.example", 21, 5)
    with sock:
        assert sock.recv(100) == b"220 hello\r\n"
    thread.join(5)
    listener.close()
