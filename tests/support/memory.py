"""An in-memory transport for engine tests (as httpx's ``MockTransport``):
servers are dicts, faults are scripted, nothing touches a socket.

A :class:`MemoryServer` holds one account's remote files and a script of
faults; :func:`factory` gives the engine a transport factory over a set of
them, keyed by account name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stockup.config import Account
from stockup.credentials import Credentials
from stockup.errors import AuthenticationFailed, TemporaryServerError, TransportError
from stockup.transports.base import (
    ConnectionInfo,
    Endpoint,
    ProgressCallback,
    Transport,
    TransportOptions,
)

BLOCK = 64 * 1024


@dataclass
class Fault:
    operation: str
    """connect, upload, size or rename."""
    error: TransportError | None
    """None: hang until cancelled (a stall)."""
    name: str | None = None
    """Only for remote files whose name contains this; None: any."""
    times: int = 1
    """How many times it strikes; -1: every time."""
    after_bytes: int = 0
    """For upload: write this many bytes first (a partial write)."""
    skip: int = 0
    """Let this many matching operations pass before striking."""


@dataclass
class MemoryServer:
    password: str = "pw"
    files: dict[str, bytearray] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    """(operation, remote path) in the order the server saw them."""
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    max_open: int | None = None
    """Connections it takes at once (counted from the greeting, as servers
    count them); those beyond are refused with ``too_many``."""
    too_many: TransportError = field(
        default_factory=lambda: TemporaryServerError("server replied 421 too many connections")
    )
    greeted: int = 0
    """Connections past the greeting now: logging in or logged in."""

    def fail(
        self,
        operation: str,
        error: TransportError | None,
        *,
        name: str | None = None,
        times: int = 1,
        after_bytes: int = 0,
        skip: int = 0,
    ) -> None:
        self.faults.append(Fault(operation, error, name, times, after_bytes, skip))

    def fault(self, operation: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.operation != operation or fault.times == 0:
                continue
            if fault.name is not None and fault.name not in path.rsplit("/", 1)[-1]:
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            if fault.times > 0:
                fault.times -= 1
            return fault
        return None

    def final_files(self) -> dict[str, bytes]:
        """What carries a final name (not a temporary ``.stockup-part``)."""
        return {
            path.rsplit("/", 1)[-1]: bytes(data)
            for path, data in self.files.items()
            if not path.rsplit("/", 1)[-1].startswith(".")
        }


async def _strike(fault: Fault) -> None:
    if fault.error is None:
        await asyncio.Event().wait()  # a stall: only cancelling ends it
    raise fault.error  # type: ignore[misc]


class MemoryTransport(Transport):
    def __init__(
        self,
        server: MemoryServer,
        endpoint: Endpoint,
        credentials: Credentials,
        options: TransportOptions,
    ) -> None:
        super().__init__(endpoint, credentials, options)
        self.server = server
        self.connected = False

    async def connect(self) -> ConnectionInfo:
        server = self.server
        server.log.append(("connect", ""))
        if fault := server.fault("connect", ""):
            await _strike(fault)
        if server.max_open is not None and server.greeted >= server.max_open:
            raise server.too_many
        server.greeted += 1
        for _ in range(3):  # logging in takes turns: a refusal comes sooner
            await asyncio.sleep(0)
        if self.credentials.password.reveal() != server.password:
            server.greeted -= 1
            raise AuthenticationFailed(f"{self.endpoint.host}: login failed")
        self.connected = True
        server.connections += 1
        server.open_now += 1
        server.most_open = max(server.most_open, server.open_now)
        return ConnectionInfo(self.endpoint.protocol, self.endpoint.host, self.endpoint.port)

    async def ensure_dir(self, path: str) -> None:
        pass

    async def size(self, path: str) -> int | None:
        if fault := self.server.fault("size", path):
            await _strike(fault)
        data = self.server.files.get(path)
        return None if data is None else len(data)

    async def upload(
        self, local: Path, remote: str, offset: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        server = self.server
        server.log.append(("upload", remote))
        fault = server.fault("upload", remote)
        target = server.files.setdefault(remote, bytearray())
        del target[offset:]
        written = 0
        with local.open("rb") as source:
            source.seek(offset)
            while block := source.read(BLOCK):
                if fault is not None and written + len(block) > fault.after_bytes:
                    block = block[: fault.after_bytes - written]
                    target.extend(block)
                    if progress and block:
                        progress(len(block))
                    await _strike(fault)
                target.extend(block)
                written += len(block)
                if progress:
                    progress(len(block))
                await asyncio.sleep(0)  # let other transfers run, as a socket would
        if fault is not None:
            await _strike(fault)

    async def rename(self, source: str, target: str) -> None:
        self.server.log.append(("rename", target))
        if fault := self.server.fault("rename", target):
            await _strike(fault)
        self.server.files[target] = self.server.files.pop(source)

    async def remove(self, path: str) -> None:
        self.server.files.pop(path, None)

    async def list_dir(self, path: str) -> list[str]:
        return sorted(self.server.final_files())

    async def keepalive(self) -> None:
        pass

    async def close(self) -> None:
        if self.connected:
            self.server.open_now -= 1
            self.server.greeted -= 1
            self.connected = False


def factory(servers: dict[str, MemoryServer]) -> Callable[[Account, Credentials], Transport]:
    """A transport factory for the engine: each account talks to its own server."""

    def open_transport(account: Account, credentials: Credentials) -> Transport:
        return MemoryTransport(
            servers[account.name], account.server, credentials, TransportOptions()
        )

    return open_transport
