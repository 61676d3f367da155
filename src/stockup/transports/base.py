"""The one interface every protocol implements, in the spirit of httpx's
transport layer: small, async, and free of retries (the engine retries).

What a transport can do is data (:class:`Capabilities`), not ``isinstance``.
Every failure is raised as a :class:`stockup.errors.TransportError` subclass
whose ``retryable`` flag tells the engine whether to try again.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stockup.errors import UsageError

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just sent."""


@dataclass(frozen=True)
class Capabilities:
    resume: bool
    rename: bool
    parallel_blocks: bool
    resume_alignment: int = 1
    """Parallel block writes can leave holes just below a broken transfer's
    remote size; resuming restarts at the last multiple of this many bytes
    below it (1: the remote size itself is safe, as for a stream)."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 20.0
    reply: float = 30.0
    stall: float = 60.0
    """A data transfer that makes no progress for this long is abandoned."""
    keepalive: float = 30.0
    """An idle FTP control connection gets a NOOP this often, so servers and
    NAT boxes do not drop it between files."""


@dataclass
class ConnectionInfo:
    """What `stockup account test` shows about a connection."""

    protocol: str
    host: str
    port: int
    encrypted: bool
    tls_version: str | None = None
    cipher: str | None = None
    certificate_subject: str | None = None
    certificate_expires: str | None = None
    certificate_sha256: str | None = None
    host_key_fingerprint: str | None = None
    host_key_recorded: bool = False


class Transport(abc.ABC):
    """One logged-in connection to one server. Not safe for concurrent use:
    the engine runs several transports for parallelism."""

    capabilities: Capabilities

    @abc.abstractmethod
    async def connect(self) -> ConnectionInfo:
        """Connect and log in; verify the server (certificate or host key) first."""

    @abc.abstractmethod
    async def ensure_dir(self, path: str) -> None:
        """Create ``path`` and its parents if missing ("" is the login directory)."""

    @abc.abstractmethod
    async def size(self, path: str) -> int | None:
        """Size of a remote file, or None when it is absent."""

    @abc.abstractmethod
    async def upload(
        self, local: Path, remote: str, offset: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        """Send ``local`` from byte ``offset`` on, writing ``remote`` from that offset."""

    @abc.abstractmethod
    async def rename(self, source: str, target: str) -> None:
        """Rename, replacing ``target`` if it exists."""

    async def commit(self, temporary: str, final: str, size: int) -> int | None:
        """Rename ``temporary`` to ``final`` only if it holds ``size`` bytes;
        returns the size found (None: absent). Protocols may save round trips."""
        found = await self.size(temporary)
        if found == size:
            await self.rename(temporary, final)
        return found

    @abc.abstractmethod
    async def remove(self, path: str) -> None: ...

    @abc.abstractmethod
    async def list_dir(self, path: str) -> list[str]: ...

    @abc.abstractmethod
    async def keepalive(self) -> None:
        """Keep an idle connection open (FTP NOOP)."""

    @abc.abstractmethod
    async def close(self) -> None: ...


def join_remote(directory: str, name: str) -> str:
    """A remote path from a folder and a name; refuses CR/LF (FTP command injection)."""
    path = f"{directory.rstrip('/')}/{name}" if directory else name
    if any(c in path for c in "\r\n\x00"):
        raise UsageError(f"remote path {path!r} contains a line break or NUL")
    return path


def split_remote(path: str) -> tuple[str, str]:
    directory, _, name = path.rpartition("/")
    return directory, name
