"""In-process servers on loopback for `stockup demo` and the tests:
pyftpdlib (FTP, explicit FTPS) and asyncssh (SFTP).

Each runs in its own thread on a free loopback port. Faults are injected by
subclassing the server's handler, as pyftpdlib's and asyncssh's own tests do.
Needs the ``demo`` extra (pyftpdlib, pyOpenSSL).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

USER = "artist"
PASSWORD = "pw-Art1st-loopback"  # noqa: S105  # the loopback demo servers' login

logging.getLogger("pyftpdlib").setLevel(logging.WARNING)


@dataclass
class ServerInfo:
    """Where a test server listens and where its files land."""

    kind: str
    host: str
    port: int
    root: Path
    user: str = USER
    password: str = PASSWORD
    protocol: str = "ftp"
    ca_file: Path | None = None
    host_key: asyncssh.SSHKey | None = None
    restart: Callable[[float], None] | None = None
    """Kill the server, wait this many seconds, start it again (real servers)."""


class QuotaHandlerMixin:
    """Refuses every upload as a full quota, as agencies' servers do."""

    def ftp_STOR(self, file: str, mode: str = "w") -> None:
        self.respond("552 Disk quota exceeded.")  # type: ignore[attr-defined]


@contextmanager
def pyftpd(
    root: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    quota_full: bool = False,
    passive_ports: range | None = None,
    behaviour: tuple[type[Any], ...] = (),
    host: str = "127.0.0.1",
) -> Iterator[ServerInfo]:
    """``behaviour``: handler mixins that change what the server does (tests);
    ``host``: 127.0.0.1, or ::1 for an IPv6-only server."""
    root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
    base: type[Any] = TLS_FTPHandler if tls else FTPHandler
    bases = (*behaviour, *((QuotaHandlerMixin,) if quota_full else ()), base)
    attrs: dict[str, Any] = {"authorizer": authorizer, "banner": "stockup test ftpd"}
    if passive_ports is not None:
        attrs["passive_ports"] = list(passive_ports)
    if tls:
        attrs.update(
            certfile=str(tls[0]),
            keyfile=str(tls[1]),
            ssl_context=None,
            tls_control_required=True,
            tls_data_required=True,
        )
    handler = type("TestHandler", bases, attrs)
    # Each server gets its own IOLoop: pyftpdlib's default is a process-wide
    # singleton, and two servers in two threads must not share it.
    server = FTPServer((host, 0), handler, ioloop=IOLoop())
    port = server.socket.getsockname()[1]
    running = threading.Event()
    running.set()

    def serve() -> None:
        while running.is_set():
            server.serve_forever(timeout=0.01, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, name="pyftpd", daemon=True)
    thread.start()
    try:
        yield ServerInfo("pyftpdlib", host, port, root, protocol="ftps" if tls else "ftp")
    finally:
        running.clear()
        thread.join(10)


class _SSHServer(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


@contextmanager
def asyncssh_sftpd(
    root: Path,
    host_key: asyncssh.SSHKey | None = None,
    client_key: asyncssh.SSHKey | None = None,
    **algorithms: list[str],
) -> Iterator[ServerInfo]:
    """SFTP with password login, and key login for ``client_key`` when given;
    ``algorithms`` (kex_algs, mac_algs, signature_algs ...) limit what it offers."""
    root.mkdir(parents=True, exist_ok=True)
    key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftpd", daemon=True)
    thread.start()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            server_factory=_SSHServer,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
            allow_scp=False,
            **algorithms,
            authorized_client_keys=(
                asyncssh.import_authorized_keys(client_key.export_public_key().decode())
                if client_key
                else None
            ),
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = acceptor.sockets[0].getsockname()[1]
    try:
        yield ServerInfo("asyncssh", "127.0.0.1", port, root, protocol="sftp", host_key=key)
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
