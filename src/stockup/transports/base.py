"""The one interface every protocol implements, in the spirit of httpx's
transport layer: small, async, and free of retries (the engine retries).

A transport takes an :class:`Endpoint` (where and how to connect), the
account's :class:`~stockup.credentials.Credentials` and :class:`TransportOptions`
(timeouts, rate limit, host-key trust), never the whole account. Every
failure is raised as a :class:`stockup.errors.TransportError` subclass whose
``retryable`` flag tells the engine whether to try again.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stockup.credentials import Credentials
from stockup.errors import UsageError
from stockup.proxy import host_port
from stockup.ratelimit import Limiter

if TYPE_CHECKING:
    from cryptography import x509

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just sent."""


DEFAULT_TIMEOUT = 60.0
"""Seconds; generous, because agencies' servers are slow and far away."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = DEFAULT_TIMEOUT
    reply: float = DEFAULT_TIMEOUT
    stall: float = DEFAULT_TIMEOUT
    """A data transfer that makes no progress for this long is abandoned."""
    keepalive: float = 30.0
    """An idle FTP control connection gets a NOOP this often, so servers and
    NAT boxes do not drop it between files."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: all a transport needs to know of an account."""

    account: str
    """The account's name, for messages that tell the user what to do next."""
    protocol: str
    host: str
    port: int
    ca_file: str | None = None
    pin_sha256: str | None = None
    passive: bool = True
    login: str = "password"
    key_file: str | None = None
    allow_sha1: bool = False
    """Accept an SSH server that offers only SHA-1 algorithms."""

    @property
    def address(self) -> str:
        """``host:port``, with an IPv6 literal in brackets."""
        return host_port(self.host, self.port)


@dataclass(frozen=True)
class TransportOptions:
    """How a transport behaves, the same for every account of a run."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    limiter: Limiter | None = None
    """Called before each block: the run's rate limit (``--limit-rate``), and
    with several accounts, their pacing (:mod:`stockup.pacing`)."""
    known_hosts: Path | None = None
    """stockup's own SSH known-hosts file (SFTP)."""
    trust_unknown_host_key: bool = False
    trust_fingerprint: str | None = None
    """Record an unknown SSH host key only if it has this SHA-256 fingerprint
    (the one the user was shown)."""


@dataclass
class ConnectionInfo:
    """What `stockup account test` shows about a connection."""

    protocol: str
    host: str
    port: int
    tls_version: str | None = None
    cipher: str | None = None
    certificate_der: bytes | None = None
    """The server's TLS certificate; read for its facts only when they are shown."""
    certificate_sha256: str | None = None
    host_key_fingerprint: str | None = None
    host_key_recorded: bool = False
    proxy: str | None = None
    """The proxy the connection went through (URL without password, and
    which environment variable named it)."""

    @property
    def certificate_subject(self) -> str | None:
        return self._certificate.subject.rfc4514_string() if self._certificate else None

    @property
    def certificate_expires(self) -> str | None:
        return self._certificate.not_valid_after_utc.isoformat() if self._certificate else None

    @functools.cached_property
    def _certificate(self) -> x509.Certificate | None:
        if not self.certificate_der:
            return None
        # cryptography's X.509 code takes longer to import than an upload of
        # a small file takes to start; only `account test` shows these.
        from cryptography import x509

        return x509.load_der_x509_certificate(self.certificate_der)


class Transport(abc.ABC):
    """One logged-in connection to one server. Not safe for concurrent use:
    the engine runs several transports for parallelism."""

    def __init__(
        self, endpoint: Endpoint, credentials: Credentials, options: TransportOptions
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.options = options

    def resume_offset(self, remote_size: int) -> int:
        """Where to resume a partial file of ``remote_size`` bytes: every byte
        below it is on the server. A stream's partial file has no holes; a
        transport writing blocks in parallel resumes further back."""
        return remote_size

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
