"""pytest fixtures that start every kind of test server on loopback."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stockup.config import Account
from stockup.credentials import Credentials
from stockup.demo.pki import Issued, LocalPKI
from stockup.demo.servers import ServerInfo, asyncssh_sftpd, pyftpd
from stockup.paths import Paths
from stockup.secret import Secret
from stockup.transports import open_transport
from stockup.transports.base import Timeouts, Transport, TransportOptions
from stockup.transports.hostkeys import KnownHosts
from tests.servers import real
from tests.servers.faultproxy import FaultProxy
from tests.servers.lab import LAB_HOST, LAB_HOST6, Lab, ProxyServer, dante, lab, tinyproxy

PROXY_HOST = "127.0.0.2"
SERVER_KINDS = [
    "pyftpdlib-ftp",
    "pyftpdlib-ftps",
    "asyncssh-sftp",
    "vsftpd-ftp",
    "vsftpd-ftps",
    "vsftpd-ftps-implicit",
    "sshd-sftp",
]


@dataclass
class Certs:
    pki: LocalPKI
    good: Issued
    wrong_host: Issued
    self_signed: Issued
    expired: Issued


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    pki = LocalPKI(tmp_path_factory.mktemp("pki"))
    return Certs(
        pki=pki,
        good=pki.issue(
            "good", hosts=("localhost", "127.0.0.1", "::1", PROXY_HOST, LAB_HOST, LAB_HOST6)
        ),
        wrong_host=pki.issue("wrong-host", hosts=("other.example",)),
        self_signed=pki.issue("self-signed", self_signed=True),
        expired=pki.issue("expired", expired=True),
    )


@pytest.fixture(scope="session")
def system_user() -> Iterator[real.SystemUser]:
    real.require(real.VSFTPD if Path(real.VSFTPD).exists() else real.SSHD, "vsftpd")
    # Outside pytest's 0700 temp tree: the user must be able to reach its home.
    base = Path(tempfile.mkdtemp(prefix="stockup-users-"))
    base.chmod(0o755)
    try:
        with real.system_user(base) as user:
            yield user
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Running:
    """A started server, how to reach it (directly or through the fault proxy)."""

    info: ServerInfo
    proxy: FaultProxy | None
    paths: Paths
    remote_dir: str = "upload"
    lab: Lab | None = None
    """The server runs in this lab, reachable through its proxies only."""

    @property
    def host(self) -> str:
        """The name or address an account gives for this server."""
        if self.lab is not None:
            return LAB_HOST6 if ":" in self.info.host else LAB_HOST
        return PROXY_HOST if self.proxy else self.info.host

    @property
    def data_ports(self) -> list[int] | None:
        """The proxied ports that carry file data: FTP's passive ports; None for
        SFTP, whose one connection carries everything."""
        assert self.proxy is not None
        return None if self.info.protocol == "sftp" else self.proxy.ports[1:]

    @property
    def upload_root(self) -> Path:
        return self.info.root / self.remote_dir

    def account(self, **overrides: Any) -> Account:
        settings: dict[str, Any] = {
            "name": "test",
            "agency": "custom",
            "protocol": self.info.protocol,
            "host": self.host,
            "port": self.info.port,
            "remote_dir": self.remote_dir,
            "allow_plaintext": self.info.protocol == "ftp",
            "ca_file": str(self.info.ca_file) if self.info.ca_file else None,
        }
        settings.update(overrides)
        return Account(**settings)

    def credentials(self, password: str | None = None) -> Credentials:
        return Credentials(self.info.user, Secret(password or self.info.password))

    def transport(
        self, password: str | None = None, timeouts: Timeouts | None = None, **overrides: Any
    ) -> Transport:
        """An unconnected transport to this server, as the engine would open it."""
        options = TransportOptions(
            timeouts=timeouts or Timeouts(), known_hosts=self.paths.known_hosts_file
        )
        return open_transport(self.account(**overrides).server, self.credentials(password), options)

    def trust_host_key(self) -> None:
        if self.info.host_key is not None:
            account = self.account()
            KnownHosts(self.paths.known_hosts_file).add(
                account.host, account.port, self.info.host_key
            )


ServerFactory = Callable[..., contextlib.AbstractContextManager[Running]]


@pytest.fixture
def start_server(request: pytest.FixtureRequest, tmp_path: Path, certs: Certs) -> ServerFactory:
    """``start_server(kind, proxy=False, cert=certs.good, quota_full=False,
    trust_host_key=True, lab=None, ipv6=False, max_per_ip=0)``: a context
    manager yielding a :class:`Running`. ``lab``: run a real server in that lab
    (see tests.servers.lab); ``ipv6``: listen on ::1 only; ``max_per_ip``:
    vsftpd takes that many connections at once (0: no limit)."""

    counter = itertools.count()

    @contextlib.contextmanager
    def start(
        kind: str,
        *,
        proxy: bool = False,
        cert: Issued | None = None,
        quota_full: bool = False,
        trust_host_key: bool = True,
        behaviour: tuple[type[Any], ...] = (),
        lab: Lab | None = None,
        ipv6: bool = False,
        max_per_ip: int = 0,
    ) -> Iterator[Running]:
        cert = cert or certs.good
        serial = next(counter)
        remote_dir = "upload"
        paths = Paths(tmp_path / "home", tmp_path / "home", tmp_path / "home" / "state")
        ports = real.free_port_range(10)
        with contextlib.ExitStack() as stack:
            if kind.startswith("pyftpdlib"):
                tls = (cert.cert_file, cert.key_file) if kind.endswith("ftps") else None
                info = stack.enter_context(
                    pyftpd(
                        tmp_path / f"ftproot{serial}",
                        tls=tls,
                        quota_full=quota_full,
                        passive_ports=ports,
                        behaviour=behaviour,
                        host="::1" if ipv6 else "127.0.0.1",
                    )
                )
            elif kind == "asyncssh-sftp":
                info = stack.enter_context(asyncssh_sftpd(tmp_path / f"sftproot{serial}"))
            else:
                user = request.getfixturevalue("system_user")
                # Real servers share the one system user's home: a folder each, or
                # two accounts of one test would race on the same partial files.
                remote_dir = f"upload{serial}"
                real.clean_home(user, remote_dir)
                host = "::1" if ipv6 else "127.0.0.1"
                netns = lab.netns if lab else None
                if kind == "sshd-sftp":
                    info = stack.enter_context(
                        real.sshd(tmp_path / f"sshd{serial}", user, host, netns)
                    )
                else:
                    tls_kind = kind.removeprefix("vsftpd-")
                    info = stack.enter_context(
                        real.vsftpd(
                            tmp_path / f"vsftpd{serial}",
                            user,
                            cert=(cert.cert_file, cert.key_file) if tls_kind != "ftp" else None,
                            implicit=tls_kind == "ftps-implicit",
                            passive_ports=ports,
                            pasv_address=PROXY_HOST if proxy else None,
                            host=host,
                            netns=netns,
                            max_per_ip=max_per_ip,
                        )
                    )
            if info.protocol != "ftp" and info.protocol != "sftp":
                info.ca_file = certs.pki.ca_file
            (info.root / remote_dir).mkdir(exist_ok=True)
            fault = None
            if proxy:
                fault = stack.enter_context(FaultProxy(PROXY_HOST, info.host, [info.port, *ports]))
            running = Running(info, fault, paths, remote_dir, lab)
            if trust_host_key:
                running.trust_host_key()
            yield running

    return start


@pytest.fixture(scope="session")
def lab_net() -> Iterator[Lab]:
    """A network namespace that only the proxies reach (tests.servers.lab)."""
    with lab() as net:
        yield net


@pytest.fixture(scope="session")
def proxies(lab_net: Lab) -> Iterator[dict[str, ProxyServer]]:
    """Real proxies into the lab: dante (SOCKS5) and tinyproxy (HTTP CONNECT),
    each open and with a login."""
    base = Path(tempfile.mkdtemp(prefix="stockup-proxies-"))
    base.chmod(0o755)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        user = stack.enter_context(real.system_user(base, "stockupproxy"))
        yield {
            "socks5h": stack.enter_context(dante(lab_net, base / "dante")),
            "socks5h-login": stack.enter_context(dante(lab_net, base / "dante-login", user)),
            "http": stack.enter_context(tinyproxy(lab_net, base / "tiny")),
            "http-login": stack.enter_context(
                tinyproxy(lab_net, base / "tiny-login", ("uploader", "Px-" + user.password))
            ),
        }
