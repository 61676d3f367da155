"""SFTP over asyncssh: the fastest client measured here, natively async.

Host keys are checked against stockup's own known-hosts file before any
password is sent: an unknown key is refused with its fingerprint and the
command to trust it; a changed key is always refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import BinaryIO, TypeVar

import asyncssh
from asyncssh.constants import MSG_IGNORE
from asyncssh.kex import get_default_kex_algs
from asyncssh.mac import get_default_mac_algs
from asyncssh.packet import SSHPacketLogger
from asyncssh.public_key import get_default_public_key_algs

from stockup.credentials import Credentials
from stockup.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    HostKeyChanged,
    HostKeyUnknown,
    InsecureServer,
    NameNotResolved,
    PermissionDenied,
    QuotaExceeded,
    ServerError,
    TransferTimeout,
    TransportError,
)
from stockup.proxy import dial
from stockup.transports.base import (
    ConnectionInfo,
    Endpoint,
    ProgressCallback,
    Transport,
    TransportOptions,
)
from stockup.transports.hostkeys import KnownHosts

T = TypeVar("T")
# Bytes handed to asyncssh per write call; asyncssh splits each into requests
# of the server's maximum write length. CHUNKS_IN_FLIGHT of them are out at
# once, so the next is on its way while the server answers the last one (with
# one at a time, every chunk ended in a round trip with nothing sent). Their
# product bounds memory per transfer: far away the chunks wait in the channel
# for the window, copied on the way (8 MiB in flight: 450 MiB for twelve
# connections at 100 ms). A chunk must be confirmed within the stall timeout,
# so the chunk size also sets the slowest connection that is not taken for
# stalled: 512 KiB per 60 s, 8.7 KB/s.
CHUNK_SIZE = 512 * 1024
CHUNKS_IN_FLIGHT = 4
# AES-GCM first: with AES-NI it is the cheapest on the CPU, which is what
# limits a Python SSH client (measured 262 MB/s against 163 MB/s for
# asyncssh's default chacha20-poly1305 on loopback).
ENCRYPTION_ALGS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]


EMPTY_STRING = b"\0\0\0\0"
"""An SSH string of no bytes, as asyncssh's String(b"") encodes it."""

SHA1_NAMES = ("ssh-rsa", "ssh-dss", "x509v3-ssh-rsa", "x509v3-ssh-dss")
PSEUDO_ALGORITHMS = ("ext-info-", "kex-strict-")
SHA1_BY_KIND = {
    "key exchange": [
        "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1",
        "diffie-hellman-group1-sha1",
    ],
    "host key": ["ssh-rsa", "ssh-dss"],
    "MAC": ["hmac-sha1", "hmac-sha1-etm@openssh.com", "hmac-sha1-96"],
}  # fmt: skip
"""The SHA-1 algorithms named when a server hangs up rather than say which it wants."""


def _is_sha1(name: str) -> bool:
    """Algorithms that rest on SHA-1: *-sha1 key exchanges and MACs, and the
    ssh-rsa / ssh-dss signatures (and their certificates)."""
    return "sha1" in name or name in SHA1_NAMES or name.startswith(("ssh-rsa-cert", "ssh-dss-cert"))


def _without_empty_ignore_packets(conn: asyncssh.SSHClientConnection) -> None:
    """Stop asyncssh sending an empty SSH_MSG_IGNORE before every packet.

    asyncssh sends one ahead of each packet once encryption is on, the
    countermeasure to the chosen-plaintext attack on CBC mode's chained IVs.
    stockup offers no CBC cipher (ENCRYPTION_ALGS), and with the counter and
    AEAD modes it does offer the packet protects nothing, while it doubles
    the packets asyncssh builds, encrypts and sends: 11,000 of them for
    40 x 8 MB, some 10 % of the run (docs/benchmarks.md). asyncssh has no
    option for it, so this one connection's ``send_packet`` is wrapped; the
    packet it drops carries no data, and the server discards it unread.
    """
    if "cbc" in str(conn.get_extra_info("send_cipher")):
        return
    send_packet = conn.send_packet

    def send_all_but_empty_ignore(
        pkttype: int, *args: bytes, handler: SSHPacketLogger | None = None
    ) -> None:
        if pkttype == MSG_IGNORE and args == (EMPTY_STRING,):
            return
        send_packet(pkttype, *args, handler=handler)

    conn.send_packet = send_all_but_empty_ignore  # type: ignore[method-assign]


def _names(algs: list[bytes]) -> list[str]:
    return [alg.decode("ascii") for alg in algs]


def _without_sha1(algs: list[str], refused: bool) -> list[str]:
    return [alg for alg in algs if not (refused and _is_sha1(alg))]


class _HostKeyCheck(asyncssh.SSHClient):
    """Decides on the server's host key before authentication starts."""

    def __init__(
        self, known: list[asyncssh.SSHKey], trust_unknown: bool, trust_fingerprint: str | None
    ) -> None:
        self.known = known
        self.trust_unknown = trust_unknown
        self.trust_fingerprint = trust_fingerprint
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        if self.known:
            return any(key == known for known in self.known)
        return self.trust_unknown or key.get_fingerprint("sha256") == self.trust_fingerprint


class SftpTransport(Transport):
    def __init__(
        self, endpoint: Endpoint, credentials: Credentials, options: TransportOptions
    ) -> None:
        super().__init__(endpoint, credentials, options)
        if options.known_hosts is None:
            raise ValueError("SFTP needs stockup's known-hosts file")
        self._known_hosts = KnownHosts(options.known_hosts)
        self._limiter = options.limiter
        self._timeouts = options.timeouts
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._made_dirs: set[str] = set()
        self._written: dict[str, int | None] = {}
        """Sizes the server reported (fstat) when this connection closed a file."""

    def _where(self) -> str:
        return self.endpoint.address

    async def connect(self) -> ConnectionInfo:
        endpoint, options = self.endpoint, self.options
        known = self._known_hosts.keys_for(endpoint.host, endpoint.port)
        check = _HostKeyCheck(known, options.trust_unknown_host_key, options.trust_fingerprint)
        host_key_algs = (
            sorted({alg.decode() for key in known for alg in key.sig_algorithms})
            if known
            else [alg.decode() for alg in get_default_public_key_algs()]
        )
        refused = not endpoint.allow_sha1
        if not _without_sha1(host_key_algs, refused):
            raise InsecureServer(self._sha1_only("host key", host_key_algs))
        login: dict[str, object] = {}
        if endpoint.login == "password":
            login.update(
                password=self.credentials.password.reveal(),
                client_keys=None,
                agent_path=None,
                preferred_auth=["password", "keyboard-interactive"],
            )
        elif endpoint.login == "key":
            login.update(
                client_keys=[self._private_key()], agent_path=None, preferred_auth=["publickey"]
            )
        else:  # agent: keys from SSH_AUTH_SOCK
            login.update(preferred_auth=["publickey"])
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    endpoint.host,
                    endpoint.port,
                    sock=await self._proxied_socket(),
                    username=self.credentials.username,
                    known_hosts=asyncssh.import_known_hosts(""),
                    server_host_key_algs=_without_sha1(host_key_algs, refused),
                    kex_algs=_without_sha1(_names(get_default_kex_algs()), refused),
                    mac_algs=_without_sha1(_names(get_default_mac_algs()), refused),
                    encryption_algs=ENCRYPTION_ALGS,
                    client_factory=lambda: check,
                    connect_timeout=self._timeouts.connect,
                    login_timeout=self._timeouts.reply,
                    keepalive_interval=30,
                    config=None,
                    **login,
                ),
                self._timeouts.connect + self._timeouts.reply,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise self._host_key_error(check, known) from None
        except asyncssh.PermissionDenied:
            raise AuthenticationFailed(
                f"{endpoint.host}: login failed for user {self.credentials.username!r}"
            ) from None
        except asyncssh.KeyExchangeFailed as exc:
            raise self._negotiation_error(exc) from None
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            # A server that finds no algorithm in common may hang up before
            # the client can say why: ask it again, SHA-1 allowed, whether
            # that is the reason.
            if refused and check.offered is None and not isinstance(exc, TimeoutError):
                kind = await self._sha1_needed_for()
                if kind is not None:
                    raise InsecureServer(self._sha1_only(kind, SHA1_BY_KIND[kind])) from None
            raise self._error(exc, "connect") from None
        self._conn = conn
        _without_empty_ignore_packets(conn)
        recorded = False
        if not known and check.offered is not None:
            self._known_hosts.add(endpoint.host, endpoint.port, check.offered)
            recorded = True
        try:
            # A remote name that is not UTF-8 (a Latin-1 file on the server)
            # reads with U+FFFD: asyncssh would fail the whole listing.
            self._sftp = await asyncio.wait_for(
                conn.start_sftp_client(path_errors="replace"), self._timeouts.reply
            )
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            raise self._error(exc, "starting SFTP") from None
        key = check.offered
        proxy = self.credentials.proxy
        return ConnectionInfo(
            "sftp",
            endpoint.host,
            endpoint.port,
            host_key_fingerprint=key.get_fingerprint("sha256") if key else None,
            host_key_recorded=recorded,
            cipher=str(conn.get_extra_info("send_cipher")),
            proxy=proxy.describe() if proxy else None,
        )

    async def _proxied_socket(self) -> socket.socket | None:
        """A socket through the account's proxy, or None to let asyncssh dial.
        One dialer for FTP and SFTP (python-socks' blocking client), run in a
        thread: a connection set-up is not worth a second implementation."""
        proxy = self.credentials.proxy
        if proxy is None:
            return None
        endpoint = self.endpoint
        return await asyncio.to_thread(
            dial, proxy, endpoint.host, endpoint.port, self._timeouts.connect
        )

    def _private_key(self) -> asyncssh.SSHKey:
        """The account's key file; the vault's password for a key login is
        the key's passphrase (ignored for an unencrypted key)."""
        path = self.endpoint.key_file or ""
        try:
            return asyncssh.read_private_key(path, self.credentials.password.reveal() or None)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError):
            raise AuthenticationFailed(
                f"cannot open the SSH key {path}: wrong passphrase or not a private key"
            ) from None
        except OSError as exc:
            raise AuthenticationFailed(f"cannot read the SSH key {path}: {exc.strerror}") from None

    async def _sha1_needed_for(self) -> str | None:
        """Which kind of algorithm (key exchange, host key, MAC) the server
        agrees on only when SHA-1 is allowed; None if that is not why. Each
        probe stops after the key exchange: no login, no password."""
        endpoint = self.endpoint
        everything = {
            "key exchange": _names(get_default_kex_algs()) + SHA1_BY_KIND["key exchange"],
            "host key": [a.decode() for a in get_default_public_key_algs()]
            + ["ssh-rsa", "ssh-dss"],
            "MAC": _names(get_default_mac_algs()) + SHA1_BY_KIND["MAC"],
        }
        safe = {kind: _without_sha1(algs, True) for kind, algs in everything.items()}
        for kind in everything:
            algs = {**safe, kind: everything[kind]}
            options = asyncssh.SSHClientConnectionOptions(
                mac_algs=algs["MAC"], encryption_algs=ENCRYPTION_ALGS, config=None
            )
            try:
                await asyncio.wait_for(
                    asyncssh.get_server_host_key(
                        endpoint.host,
                        endpoint.port,
                        sock=await self._proxied_socket(),
                        kex_algs=algs["key exchange"],
                        server_host_key_algs=algs["host key"],
                        options=options,
                    ),
                    self._timeouts.connect,
                )
            except (TimeoutError, OSError, asyncssh.Error):
                continue
            return kind
        return None

    def _sha1_only(self, kind: str, offered: list[str]) -> str:
        return (
            f"{self._where()} offers only SHA-1 for its {kind} ({', '.join(offered)}), which "
            "stockup refuses, as OpenSSH 8.8 and later do. Ask the agency to upgrade; to "
            f"accept it anyway, allow SHA-1 for account {self.endpoint.account}"
        )

    def _negotiation_error(self, exc: asyncssh.KeyExchangeFailed) -> TransportError:
        """No algorithm in common: say which kind, and whether SHA-1 is why."""
        found = re.search(
            r"No matching (.+?) algorithm found, sent .* and received (\S*)", str(exc)
        )
        if found is None:
            return self._error(exc, "connect")
        kind = found.group(1)
        # ext-info-s and kex-strict-* are markers in the list, not algorithms.
        offered = [a for a in found.group(2).split(",") if not a.startswith(PSEUDO_ALGORITHMS)]
        if not self.endpoint.allow_sha1 and offered and all(map(_is_sha1, offered)):
            return InsecureServer(self._sha1_only(kind, offered))
        return InsecureServer(
            f"{self._where()}: no {kind} algorithm in common; the server offers "
            f"{', '.join(offered) or 'none'}"
        )

    def _host_key_error(self, check: _HostKeyCheck, known: list[asyncssh.SSHKey]) -> TransportError:
        offered = check.offered
        fingerprint = offered.get_fingerprint("sha256") if offered else "unknown"
        name = self.endpoint.account
        if known:
            return HostKeyChanged(
                f"WARNING: POSSIBLE MAN-IN-THE-MIDDLE ATTACK! The host key of {self._where()} "
                f"has CHANGED: it is now {fingerprint}, not the recorded "
                f"{known[0].get_fingerprint('sha256')}. Nothing was sent. If the agency really "
                f"changed its key, remove its line from {self._known_hosts.path} and run "
                f"`stockup account test {name} --trust-host-key`"
            )
        return HostKeyUnknown(
            f"the host key of {self._where()} is not known yet: {fingerprint}. Check it with "
            f"the agency, then trust it by testing account {name} (Test on the Accounts page, "
            f"or `stockup account test {name} --trust-host-key`)",
            fingerprint,
        )

    def _error(self, exc: BaseException, context: str) -> TransportError:
        where = self._where()
        if isinstance(exc, socket.gaierror):
            return NameNotResolved(f"{self.endpoint.host}: name not resolved ({exc.strerror})")
        if isinstance(exc, ConnectionRefusedError):
            return ConnectFailed(f"{where}: connection refused")
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return TransferTimeout(f"{where}: timed out during {context}")
        if isinstance(exc, asyncssh.SFTPError):
            message = f"{where}: {context}: {exc.reason} (SFTP code {exc.code})"
            if exc.code == asyncssh.FX_PERMISSION_DENIED:
                return PermissionDenied(message)
            if exc.code in (asyncssh.FX_NO_SPACE_ON_FILESYSTEM, asyncssh.FX_QUOTA_EXCEEDED):
                return QuotaExceeded(message)
            if exc.code in (asyncssh.FX_CONNECTION_LOST, asyncssh.FX_NO_CONNECTION):
                return ConnectionLost(message)
            return ServerError(message)
        if isinstance(exc, (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError, EOFError)):
            return ConnectionLost(f"{where}: connection lost during {context}: {exc}")
        return ServerError(f"{where}: {context}: {exc}")

    def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            raise ConnectionLost(f"{self._where()}: not connected")
        return self._sftp

    async def _do(self, context: str, operation: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(operation, self._timeouts.reply)
        except (TimeoutError, OSError, asyncssh.Error, EOFError) as exc:
            raise self._error(exc, context) from None

    async def ensure_dir(self, path: str) -> None:
        if path and path not in self._made_dirs:
            await self._do(f"mkdir {path}", self._client().makedirs(path, exist_ok=True))
            self._made_dirs.add(path)

    async def size(self, path: str) -> int | None:
        try:
            attrs = await asyncio.wait_for(self._client().stat(path), self._timeouts.reply)
        except asyncssh.SFTPNoSuchFile:
            return None
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            raise self._error(exc, f"stat {path}") from None
        return attrs.size

    def resume_offset(self, remote_size: int) -> int:
        # Chunks never cross a multiple of CHUNK_SIZE, and only the last
        # CHUNKS_IN_FLIGHT started can be incomplete (with holes, as their
        # parallel requests land in any order): they lie in the
        # CHUNKS_IN_FLIGHT blocks of CHUNK_SIZE that end with the one
        # holding the partial file's last byte.
        if remote_size <= 0:
            return 0
        block = (remote_size - 1) // CHUNK_SIZE
        return max(0, block - (CHUNKS_IN_FLIGHT - 1)) * CHUNK_SIZE

    async def upload(
        self, local: Path, remote: str, offset: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        sftp = self._client()
        mode = "r+b" if offset else "wb"
        try:
            handle = await self._do(f"open {remote}", sftp.open(remote, mode, encoding=None))
            try:
                with local.open("rb") as source:
                    source.seek(offset)
                    await self._write_chunks(handle, source, offset, progress)
            except BaseException:
                with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                    await asyncio.wait_for(handle.close(), self._timeouts.reply)
                raise
            # fstat goes out together with the close: the size for commit()
            # without a separate stat round trip.
            attrs, _ = await asyncio.wait_for(
                asyncio.gather(handle.stat(), handle.close()), self._timeouts.reply
            )
            self._written[remote] = attrs.size
        except TransportError:
            raise
        except (TimeoutError, OSError, asyncssh.Error, EOFError) as exc:
            raise self._error(exc, f"writing {remote}") from None

    async def _write_chunks(
        self,
        handle: asyncssh.SFTPClientFile,
        source: BinaryIO,
        position: int,
        progress: ProgressCallback | None,
    ) -> None:
        """The file from ``position`` on, CHUNKS_IN_FLIGHT chunks at a time
        (see :meth:`resume_offset`); progress counts a chunk once the server
        has confirmed all of it. Each chunk is given up on after the stall
        timeout. asyncssh sends a chunk as parallel requests in tasks of its
        own and, if the write is cancelled, leaves them running; when they then
        fail, nobody sees it and asyncio prints each failure on stderr. So a
        stalled, failed or cancelled write first drops the connection if
        requests are still out, which ends them, and lets asyncssh collect them."""
        in_flight: deque[tuple[asyncio.Future[int], int]] = deque()
        try:
            limit = self._limiter.chunk_size() if self._limiter else CHUNK_SIZE
            while chunk := source.read(min(limit, CHUNK_SIZE - position % CHUNK_SIZE)):
                if self._limiter is not None:
                    await self._limiter.wait(len(chunk))
                if len(in_flight) == CHUNKS_IN_FLIGHT:
                    await self._confirmed(*in_flight[0], progress)
                    in_flight.popleft()
                write = asyncio.ensure_future(handle.write(chunk, position))
                in_flight.append((write, len(chunk)))
                position += len(chunk)
            while in_flight:
                await self._confirmed(*in_flight[0], progress)
                in_flight.popleft()
        except BaseException:
            writes = [write for write, _ in in_flight]
            if self._conn is not None and not all(write.done() for write in writes):
                self._conn.abort()
            await asyncio.gather(*writes, return_exceptions=True)
            raise

    async def _confirmed(
        self, write: asyncio.Future[int], size: int, progress: ProgressCallback | None
    ) -> None:
        done, _ = await asyncio.wait({write}, timeout=self._timeouts.stall)
        if not done:
            raise TimeoutError
        write.result()
        if progress is not None:
            progress(size)

    async def commit(self, temporary: str, final: str, size: int) -> int | None:
        found = self._written.pop(temporary, None)
        if found is None:  # not written by this connection: ask the server
            return await super().commit(temporary, final, size)
        if found == size:
            await self.rename(temporary, final)
        return found

    async def rename(self, source: str, target: str) -> None:
        sftp = self._client()
        try:
            await sftp.rename(source, target, flags=asyncssh.FXR_OVERWRITE)
            return
        except asyncssh.SFTPOpUnsupported:
            pass  # a server with neither SFTPv5 nor posix-rename: remove, then rename
        except (OSError, asyncssh.Error) as exc:
            raise self._error(exc, f"rename {source}") from None
        if await self.size(target) is not None:
            await self.remove(target)
        await self._do(f"rename {source}", sftp.rename(source, target))

    async def remove(self, path: str) -> None:
        await self._do(f"remove {path}", self._client().remove(path))

    async def list_dir(self, path: str) -> list[str]:
        names = await self._do(f"list {path}", self._client().listdir(path or "."))
        return sorted(n for n in names if n not in (".", ".."))

    async def keepalive(self) -> None:
        pass  # asyncssh sends SSH keepalives itself (keepalive_interval)

    async def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None
