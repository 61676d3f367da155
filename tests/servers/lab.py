"""A network only a proxy can reach, and the real proxies that reach it.

The lab is a network namespace of its own. Servers (vsftpd, sshd) listen on
the lab's loopback, which this machine cannot reach: a connection that
bypasses the proxy fails. The proxies (Debian's dante-server for SOCKS5,
tinyproxy for HTTP CONNECT) run inside the lab too and listen on one end of
a veth pair whose other end is here. Names resolve inside the lab only:
``agency.lab.test`` (127.0.0.1) and ``agency6.lab.test`` (::1, IPv6 only)
are in the lab's /etc/hosts (``ip netns exec`` mounts /etc/netns/NAME/hosts
over /etc/hosts), so a client that resolved them itself would fail.

Needs root, iproute2, and the packages `dante-server` and `tinyproxy`;
`.ci/run` installs them. Without them the tests skip, naming the package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers.real import SystemUser, free_port, require, wait_listening

DANTED = "/usr/sbin/danted"
TINYPROXY = "/usr/bin/tinyproxy"
LAB_HOST = "agency.lab.test"
LAB_HOST6 = "agency6.lab.test"
HOSTS = f"127.0.0.1 localhost {LAB_HOST}\n::1 {LAB_HOST6}\n"
BLOCKED_PORT = 9
"""The SOCKS proxies' rules forbid connections to this port."""


@dataclass(frozen=True)
class Lab:
    netns: str
    address: str
    """The lab's end of the veth pair, where the proxies listen."""
    client_address: str
    """This machine's end."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    require("/usr/sbin/ip", "iproute2")
    name = f"stockup-lab-{os.getpid()}"
    subnet = f"10.251.{os.getpid() % 250}"
    outside, inside = f"stk{os.getpid() % 100000}a", f"stk{os.getpid() % 100000}b"
    etc = Path("/etc/netns") / name
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    _ip("netns", "add", name)
    try:
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(HOSTS)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", name)
        _ip("addr", "add", f"{subnet}.1/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", name, "addr", "add", f"{subnet}.2/30", "dev", inside)
        _ip("-n", name, "link", "set", inside, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield Lab(name, f"{subnet}.2", f"{subnet}.1")
    finally:
        pids = subprocess.run(
            ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        shutil.rmtree(etc, ignore_errors=True)


@dataclass
class ProxyServer:
    kind: str
    url: str
    """As an account gives it: with the user, without the password."""
    password: str | None
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def connections(self) -> int:
        """Connections the proxy made on a client's behalf, from its own log."""
        marker = "tcp/connect [:" if self.kind == "dante" else "Established connection to host"
        return self.log_text().count(marker)


def _run(lab: Lab, argv: list[str], port: int, what: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.netns, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_listening(port, proc, what, lab.address)
    except RuntimeError:
        proc.kill()
        raise
    return proc


@contextlib.contextmanager
def dante(lab: Lab, workdir: Path, user: SystemUser | None = None) -> Iterator[ProxyServer]:
    """A SOCKS5 proxy; with ``user``, it wants that system user's login."""
    require(DANTED, "dante-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "danted.log"
    method = "username" if user else "none"
    networks = ("0.0.0.0/0", "::/0")
    rules = "".join(
        [f"client pass {{\n from: 0.0.0.0/0 to: {to}\n log: error\n}}\n" for to in networks]
        + [
            f"socks block {{\n from: 0.0.0.0/0 to: {to} port = {BLOCKED_PORT}\n log: connect\n}}\n"
            for to in networks
        ]
        + [
            f"socks pass {{\n from: 0.0.0.0/0 to: {to}\n command: connect\n"
            " log: connect disconnect error\n}\n"
            for to in networks
        ]
    )
    config = workdir / "danted.conf"
    config.write_text(
        f"logoutput: {log}\ninternal: {lab.address} port = {port}\nexternal: lo\n"
        f"socksmethod: {method}\nclientmethod: none\n"
        "user.privileged: root\nuser.unprivileged: nobody\n" + rules
    )
    proc = _run(lab, [DANTED, "-f", str(config), "-p", str(workdir / "danted.pid")], port, "danted")
    login = f"{user.name}@" if user else ""
    try:
        yield ProxyServer(
            "dante", f"socks5h://{login}{lab.address}:{port}", user.password if user else None, log
        )
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)


@contextlib.contextmanager
def tinyproxy(
    lab: Lab, workdir: Path, login: tuple[str, str] | None = None
) -> Iterator[ProxyServer]:
    """An HTTP CONNECT proxy, open to every port; with ``login``, it wants
    that user and password (Basic)."""
    require(TINYPROXY, "tinyproxy")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o777)  # tinyproxy writes its log as nobody
    port = free_port()
    log = workdir / "tinyproxy.log"
    lines = [
        f"Port {port}", f"Listen {lab.address}", "Timeout 600", f'LogFile "{log}"',
        "LogLevel Connect", "MaxClients 200", f"Allow {lab.client_address}",
        "DisableViaHeader Yes", "User nobody", "Group nogroup",
    ]  # fmt: skip
    if login:
        lines.append(f"BasicAuth {login[0]} {login[1]}")
    config = workdir / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n")
    proc = _run(lab, [TINYPROXY, "-d", "-c", str(config)], port, "tinyproxy")
    user = f"{login[0]}@" if login else ""
    try:
        yield ProxyServer(
            "tinyproxy", f"http://{user}{lab.address}:{port}", login[1] if login else None, log
        )
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)
