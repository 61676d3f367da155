"""Debian's vsftpd and OpenSSH sshd, started for a test on free loopback ports
with their own config files, a throwaway system user and generated keys.

They need root (to switch to the test user) and the packages `vsftpd` and
`openssh-server`; `.ci/run` installs both. Without them the tests skip,
naming the package.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockup.demo.servers import ServerInfo

VSFTPD = "/usr/sbin/vsftpd"
SSHD = "/usr/sbin/sshd"
TEST_USER = "stockuptest"


def require(binary: str, package: str) -> None:
    if not Path(binary).exists():
        pytest.skip(f"{binary} not installed (apt-get install {package})")
    if os.geteuid() != 0:
        pytest.skip(f"the real {package} server needs root to switch users")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_handed_out: set[int] = set()


def free_port_range(count: int) -> range:
    """``count`` consecutive free ports (for an FTP server's passive range),
    never handed out twice in one session: servers bind passive ports only on
    demand, and pyftpdlib binds with SO_REUSEPORT, so two servers given the
    same range would take each other's data connections."""
    for _ in range(200):
        start = free_port()
        if start + count >= 65535 or _handed_out & set(range(start, start + count)):
            continue
        socks = []
        try:
            for port in range(start, start + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            _handed_out.update(range(start, start + count))
            return range(start, start + count)
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


def listening(host: str, port: int, netns: str | None = None) -> bool:
    """Whether something accepts connections on ``host:port`` (in ``netns``:
    a network namespace this process is not in, so asked from inside it)."""
    if netns is not None:
        probe = f": > /dev/tcp/{host}/{port}"
        return subprocess.run(
            ["ip", "netns", "exec", netns, "bash", "-c", probe], capture_output=True, check=False
        ).returncode == 0  # fmt: skip
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False


def wait_listening(
    port: int,
    proc: subprocess.Popen[bytes],
    what: str,
    host: str = "127.0.0.1",
    netns: str | None = None,
) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {proc.returncode}: {proc.stderr and proc.stderr.read()!r}"
            )
        if listening(host, port, netns):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


class Daemon:
    """A server process that can be killed and started again on the same port,
    in this network namespace or in ``netns``."""

    def __init__(
        self,
        argv: list[str],
        port: int,
        what: str,
        sessions: str,
        host: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        self.argv = ["ip", "netns", "exec", netns, *argv] if netns else argv
        self.port, self.what, self.host, self.netns = port, what, host, netns
        self.sessions = sessions
        """A pattern of the per-connection processes' command lines (they call setsid)."""
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        # Its own process group: killing the server kills its per-session children too.
        proc = subprocess.Popen(self.argv, stderr=subprocess.PIPE, start_new_session=True)
        wait_listening(self.port, proc, self.what, self.host, self.netns)
        return proc

    def restart(self, down_seconds: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        subprocess.run(["pkill", "-KILL", "-f", self.sessions], check=False)
        time.sleep(down_seconds)
        self.proc = self._start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class SystemUser:
    name: str
    password: str
    home: Path


@contextlib.contextmanager
def system_user(base: Path, name: str = TEST_USER) -> Iterator[SystemUser]:
    """A throwaway login user with a random password; removed afterwards."""
    home = base / name
    subprocess.run(["userdel", "-r", name], capture_output=True, check=False)
    subprocess.run(
        ["useradd", "--home-dir", str(home), "--create-home", "--shell", "/bin/bash", name],
        check=True,
        capture_output=True,
    )
    password = "Pw-" + secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{name}:{password}".encode(), check=True)
    try:
        yield SystemUser(name, password, home)
    finally:
        subprocess.run(["pkill", "-u", name], capture_output=True, check=False)
        subprocess.run(["userdel", "-r", name], capture_output=True, check=False)


def clean_home(user: SystemUser, folder: str) -> Path:
    """An empty upload folder owned by the user, inside its home."""
    target = user.home / folder
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.chown(target, user.name, user.name)
    return target


@contextlib.contextmanager
def vsftpd(
    workdir: Path,
    user: SystemUser,
    *,
    cert: tuple[Path, Path] | None,
    implicit: bool = False,
    passive_ports: range | None = None,
    pasv_address: str | None = None,
    log_protocol: bool = False,
    host: str = "127.0.0.1",
    netns: str | None = None,
    max_per_ip: int = 0,
) -> Iterator[ServerInfo]:
    """``max_per_ip``: connections taken from one address (0: no limit);
    vsftpd refuses the others with ``421`` at the greeting."""
    require(VSFTPD, "vsftpd")
    workdir.mkdir(parents=True, exist_ok=True)
    empty = workdir / "empty"
    empty.mkdir(exist_ok=True)
    port = free_port()
    ports = passive_ports or free_port_range(20)
    ipv6 = ":" in host
    lines = [
        f"listen={'NO' if ipv6 else 'YES'}",
        f"listen_ipv6={'YES' if ipv6 else 'NO'}",
        f"listen_address{'6' if ipv6 else ''}={host}",
        f"listen_port={port}",
        "background=NO",
        "anonymous_enable=NO",
        "local_enable=YES",
        "write_enable=YES",
        "local_umask=022",
        "pam_service_name=vsftpd",
        "seccomp_sandbox=NO",
        "isolate=NO",
        "isolate_network=NO",
        f"secure_chroot_dir={empty}",
        "pasv_enable=YES",
        f"pasv_min_port={ports.start}",
        f"pasv_max_port={ports.stop - 1}",
        "connect_from_port_20=NO",
        "use_localtime=NO",
        f"vsftpd_log_file={workdir / 'vsftpd.log'}",
        "dirmessage_enable=NO",
        f"max_per_ip={max_per_ip}",
    ]
    if cert:
        lines += [
            "ssl_enable=YES",
            f"rsa_cert_file={cert[0]}",
            f"rsa_private_key_file={cert[1]}",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            "require_ssl_reuse=YES",
            "ssl_ciphers=HIGH",
            "ssl_sslv2=NO",
            "ssl_sslv3=NO",
            "allow_anon_ssl=NO",
        ]
        if implicit:
            lines.append("implicit_ssl=YES")
    if pasv_address:
        lines.append(f"pasv_address={pasv_address}")
    if log_protocol:  # vsftpd writes its log file only with xferlog_enable
        lines += ["log_ftp_protocol=YES", "xferlog_enable=YES", "xferlog_std_format=NO"]
    config = workdir / "vsftpd.conf"
    config.write_text("\n".join(lines) + "\n")
    daemon = Daemon([VSFTPD, str(config)], port, "vsftpd", str(config), host, netns)
    try:
        protocol = ("ftps-implicit" if implicit else "ftps") if cert else "ftp"
        yield ServerInfo(
            "vsftpd", host, port, user.home, user=user.name, password=user.password,
            protocol=protocol, restart=daemon.restart,
        )  # fmt: skip
    finally:
        daemon.stop()


@contextlib.contextmanager
def sshd(
    workdir: Path, user: SystemUser, host: str = "127.0.0.1", netns: str | None = None
) -> Iterator[ServerInfo]:
    require(SSHD, "openssh-server")
    import asyncssh

    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    key_file = workdir / "ssh_host_ed25519_key"
    if not key_file.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True
        )
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {host}",
                f"HostKey {key_file}",
                f"PidFile {workdir / 'sshd.pid'}",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication no",
                "UsePAM yes",
                f"AllowUsers {user.name}",
                "Subsystem sftp internal-sftp",
                "StrictModes no",
                "LogLevel ERROR",
                "MaxStartups 50",
            ]
        )
        + "\n"
    )
    argv = [SSHD, "-D", "-e", "-f", str(config)]
    daemon = Daemon(argv, port, "sshd", f"sshd: {user.name}", host, netns)
    try:
        yield ServerInfo(
            "sshd", host, port, user.home, user=user.name, password=user.password,
            protocol="sftp", host_key=asyncssh.read_public_key(str(key_file) + ".pub"),
            restart=daemon.restart,
        )  # fmt: skip
    finally:
        daemon.stop()
