"""FTP and FTPS (explicit and implicit) on top of ftplib.

ftplib is blocking, so each transport owns one worker thread and the async
methods hand it work; progress callbacks come back to the event loop. Two
ftplib behaviours are changed by hand, each explained where it is done: TLS
session reuse on data connections, and EPSV before PASV.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import select
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from stockup.credentials import Credentials
from stockup.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    NameNotResolved,
    PermissionDenied,
    QuotaExceeded,
    ServerError,
    TemporaryServerError,
    TransferTimeout,
    TransportError,
)
from stockup.proxy import Proxy, dial, send_at_once
from stockup.transports import tls
from stockup.transports.base import (
    ConnectionInfo,
    Endpoint,
    ProgressCallback,
    Transport,
    TransportOptions,
    split_remote,
)

T = TypeVar("T")
BLOCK_SIZE = 256 * 1024
PORT_AHEAD_SECONDS = 15.0
"""How long a passive port asked for ahead stays worth using: pyftpdlib stops
listening after 30 s (vsftpd after accept_timeout, 60 s)."""
MAX_REPLY_BYTES = 64 * 1024
"""Longer than any real FTP reply (RFC 959 sets no limit; greetings and
FEAT lists are a few hundred bytes)."""
MAX_LISTING_BYTES = 16 * 1024**2
"""A listing's names (`account test` lists one folder): over 300,000 names."""


class ReplyRefused(ConnectionLost):
    """A reply that never ends, or takes longer than the reply timeout in all:
    anyone on the path can send one before TLS starts. Retryable: another
    attempt may reach the real server; an account that never gets one stops."""


class _FtpTweaks(ftplib.FTP):
    """Behaviour shared by plain FTP and FTPS clients."""

    _epsv_refused = False
    _port_ahead: tuple[int, float] | None = None
    """A passive port asked for ahead of the next transfer, and when."""
    reply_seconds: float = 60.0
    """The most one reply, all its lines together, may take."""
    proxy: Proxy | None = None
    """Every connection, control and data, goes through this proxy."""

    def _read_replies(self, sock: socket.socket) -> None:
        """Replies and listings are read as UTF-8 (RFC 2640), but a byte that
        is not UTF-8 (a Latin-1 "Accès refusé", an old server's greeting) is
        text to show, not a reason to refuse the server: it reads as U+FFFD.
        ftplib would stop at it with UnicodeDecodeError."""
        self.file = sock.makefile("r", encoding=self.encoding, errors="replace")

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        # ftplib dials with socket.create_connection, out of a proxy's reach:
        # the same steps as ftplib.FTP.connect, with stockup's dialer.
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = self._dial(host, port)
        self.af = raw.family  # ftplib reads this when it opens data connections
        self.sock = sock = self._secure(raw)
        self._read_replies(sock)
        self.welcome = self.getresp()
        return self.welcome

    def log_in(self, user: str, password: str) -> str:
        """ftplib's login(), with USER and PASS sent together: one round trip
        fewer per connection (ftplib waits for the 331 first). The password
        goes where ftplib would send it anyway: to this server, after TLS."""
        self.putcmd(f"USER {user}")
        self.putcmd(f"PASS {password}")
        user_reply, pass_reply = _reply(self), _reply(self)
        # A 230 to USER needs no password: PASS's reply (503) then means nothing.
        reply = user_reply if user_reply[0] != "3" else pass_reply
        if reply[0] == "2":
            return reply
        if reply[0] in "45":
            raise (ftplib.error_perm if reply[0] == "5" else ftplib.error_temp)(reply)
        raise ftplib.error_reply(reply)  # 332: an ACCT stockup has none for

    def _dial(self, host: str, port: int) -> socket.socket:
        assert self.timeout is not None  # FtpTransport always sets one
        return dial(self.proxy, host, port, self.timeout)

    def _secure(self, sock: socket.socket) -> socket.socket:
        """The control connection before the greeting (implicit FTPS wraps it)."""
        return sock

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        if not self.passiveserver:  # active: the server connected to us
            conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
            return send_at_once(conn), size
        # ftplib dials passive data connections itself: the same steps as
        # ftplib.FTP.ntransfercmd, with stockup's dialer (so through the proxy).
        host, port = self.makepasv()
        conn = self._dial(host, port)
        try:
            if rest is not None:
                self.sendcmd(f"REST {rest}")
            self.putcmd(cmd)
            conn, reply = self._start_data(conn)
        except BaseException:
            conn.close()
            raise
        return conn, ftplib.parse150(reply) if reply[:3] == "150" else None

    def _start_data(self, conn: socket.socket) -> tuple[socket.socket, str]:
        """The data connection ready for bytes, once the transfer command is
        sent, and the server's preliminary reply to that command."""
        return conn, self._preliminary_reply()

    def _preliminary_reply(self) -> str:
        reply = self.getresp()  # raises on 4xx and 5xx
        if reply[0] == "2":  # some servers say 200 before 150
            reply = self.getresp()
        if reply[0] != "1":
            raise ftplib.error_reply(reply)
        return reply

    def nlst(self, *args: str) -> list[str]:
        """ftplib's NLST, but the data connection ends as an upload's does: not
        with ``unwrap()``, which fails with SHUTDOWN_WHILE_IN_INIT when a
        server closes the listing's TLS connection without close_notify
        (pyftpdlib now and then). The 226 on the control connection says
        whether the listing is complete. No TYPE A before it either: the
        connection stays in binary mode for uploads."""
        names: list[str] = []
        size = 0
        conn, _ = self.ntransfercmd(" ".join(("NLST", *args)))
        try:
            with conn.makefile("r", encoding=self.encoding, errors="replace") as listing:
                while line := listing.readline(self.maxline + 1):
                    size += len(line)
                    if len(line) > self.maxline or size > MAX_LISTING_BYTES:
                        raise ReplyRefused(
                            f"the server's listing ran past {MAX_LISTING_BYTES // 1024**2} MiB "
                            f"or a line past {self.maxline} bytes"
                        )
                    names.append(line.rstrip("\r\n"))
        finally:
            conn.close()
        self.voidresp()
        return names

    def ask_port_ahead(self, *commands: str) -> list[str]:
        """Send ``commands`` with an EPSV behind them and return their replies:
        the next transfer's port arrives with them, not one round trip later.
        An EPSV reply that is not 229 only means the next transfer asks again."""
        ahead = self.passiveserver and not self._epsv_refused
        for command in (*commands, "EPSV") if ahead else commands:
            self.putcmd(command)
        replies = [_reply(self) for _ in commands]
        if ahead and (epsv := _reply(self)).startswith("229"):
            with contextlib.suppress(ftplib.error_proto):  # the transfer asks again
                self._port_ahead = (_epsv_port(epsv), time.monotonic())
        return replies

    def getmultiline(self) -> str:
        # ftplib gathers a multi-line reply until its last line, however long
        # it grows and however slowly it comes: an endless "220-" greeting
        # filled gigabytes. Same parsing, with a size and a time bound.
        deadline = time.monotonic() + self.reply_seconds
        line = self.getline()
        if line[3:4] == "-":
            code = line[:3]
            lines = [line]
            size = len(line)
            while True:
                following = self.getline()
                size += len(following) + 1
                if size > MAX_REPLY_BYTES:
                    raise ReplyRefused(
                        f"the server's reply ran past {MAX_REPLY_BYTES // 1024} KiB without "
                        "ending; refused"
                    )
                if time.monotonic() > deadline:
                    raise ReplyRefused(
                        f"the server's reply was still going after {self.reply_seconds:g} s; "
                        "refused"
                    )
                lines.append(following)
                if following[:3] == code and following[3:4] != "-":
                    break
            line = "\n".join(lines)
        return line

    def makepasv(self) -> tuple[str, int]:
        # ftplib sends PASV on IPv4 and EPSV only on IPv6. EPSV first is what
        # RFC 2428 recommends and works through NAT; fall back to PASV once a
        # server refuses it. The address in a PASV reply is ignored in favour
        # of the control connection's peer (NAT, and FTP bounce protection);
        # through a proxy, in favour of the server's name, which the proxy
        # resolves (the peer is the proxy).
        assert self.sock is not None
        host = self.host if self.proxy else self.sock.getpeername()[0]
        ahead, self._port_ahead = self._port_ahead, None
        if ahead is not None and time.monotonic() - ahead[1] < PORT_AHEAD_SECONDS:
            return host, ahead[0]
        if not self._epsv_refused:
            try:
                return host, _epsv_port(self.sendcmd("EPSV"))
            except ftplib.error_perm:
                self._epsv_refused = True
        reply = self.sendcmd("PASV")
        return host, _possible_port(ftplib.parse227(reply)[1], reply)


class _PlainFTP(_FtpTweaks):
    pass


class _ExplicitFTPS(_FtpTweaks, ftplib.FTP_TLS):
    _prot_p: bool
    """ftplib's record of PROT P: data connections use TLS."""
    _session: ssl.SSLSession | None = None
    """The control connection's TLS session, which every data connection
    resumes (one client object per connection: FtpTransport._connect)."""

    def auth(self) -> str:
        reply = super().auth()
        self._read_replies(_control(self))  # ftplib made a new reader for the TLS socket
        return reply

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        # Stock FTP_TLS opens every data connection with a fresh TLS session.
        # vsftpd (require_ssl_reuse=YES, its default) and ProFTPD refuse that
        # with "522 SSL connection failed: session reuse required" (CPython
        # gh-63699, open since 2013): resume the control connection's session.
        if not self.passiveserver:
            conn, size = _FtpTweaks.ntransfercmd(self, cmd, rest)
            return self._wrap_data(conn), size
        return _FtpTweaks.ntransfercmd(self, cmd, rest)

    def _wrap_data(self, conn: socket.socket, *, handshake: bool = True) -> socket.socket:
        if not self._prot_p:
            return conn
        assert isinstance(self.sock, ssl.SSLSocket)
        if self._session is None:
            # Read once per connection: CPython copies the session each time
            # SSLSocket.session is read (serialised and parsed again, the
            # server's certificate with it), 0.14 ms with the GIL held. By the
            # first transfer the login's replies have been read, and with
            # them the tickets a TLS 1.3 server sends after its handshake.
            self._session = self.sock.session
        return self.context.wrap_socket(
            conn,
            server_hostname=self.host,
            session=self._session,
            do_handshake_on_connect=handshake,
        )

    def _start_data(self, conn: socket.socket) -> tuple[socket.socket, str]:
        # The TLS handshake starts right behind the transfer command, not after
        # its 150 reply: one round trip fewer per file. The server answers it
        # once it has taken the command (vsftpd and pyftpdlib leave the early
        # ClientHello in the socket until then); a refusal comes on the control
        # connection instead, so both are watched until the handshake is done.
        secure = self._wrap_data(conn, handshake=False)
        if secure is conn:  # PROT C
            return super()._start_data(conn)
        assert isinstance(secure, ssl.SSLSocket) and self.sock is not None
        reply: str | None = None
        deadline = time.monotonic() + (self.timeout or self.reply_seconds)
        secure.setblocking(False)
        while True:
            try:
                secure.do_handshake()
                break
            except ssl.SSLWantReadError:
                wanted: tuple[list[socket.socket], list[socket.socket]] = ([secure], [])
            except ssl.SSLWantWriteError:
                wanted = ([], [secure])
            watched = wanted[0] if reply is not None else [*wanted[0], self.sock]
            remaining = deadline - time.monotonic()
            readable, writable, _ = select.select(watched, wanted[1], [], max(0.0, remaining))
            if not readable and not writable:
                raise TimeoutError("TLS handshake on the data connection")
            if self.sock in readable:
                reply = self._preliminary_reply()
        secure.settimeout(self.timeout)
        return secure, reply if reply is not None else self._preliminary_reply()


class _ImplicitFTPS(_ExplicitFTPS):
    def _secure(self, sock: socket.socket) -> socket.socket:
        # ftplib knows only explicit FTPS (AUTH TLS); implicit FTPS speaks TLS
        # from the first byte, so wrap the socket before reading the greeting.
        return self.context.wrap_socket(sock, server_hostname=self.host)


def _end_of_data(conn: socket.socket, timeout: float, server_first: float | None) -> None:
    """Tell the server the file is complete: TLS close_notify (so that a cut
    cannot pass for the end), then TCP FIN. The server's own close_notify is
    not waited for (``ssl.SSLSocket.unwrap`` would): vsftpd answers 226 only
    once it sees the FIN, so waiting cost a round trip per file. The 226 and
    the size check say the file arrived.

    Except through a proxy (``server_first``: how long to wait). A proxy that
    does not pass a half-close on, as tinyproxy, closes the whole tunnel at
    the FIN, and the server loses what it had not read yet (vsftpd: "426
    Failure reading network stream", 80-115 KB of a 300 KB file, in about
    one upload in eight). The server's close_notify says it has read
    everything; a server that never sends one gets the FIN after
    ``server_first`` seconds."""
    if isinstance(conn, ssl.SSLSocket) and server_first is not None:
        conn.settimeout(server_first)
        with contextlib.suppress(TimeoutError):
            conn.unwrap()
        conn.settimeout(timeout)
    elif isinstance(conn, ssl.SSLSocket):
        conn.setblocking(False)
        while True:
            try:
                conn.unwrap()  # the server's close_notify had arrived already
                break
            except ssl.SSLWantReadError:
                break  # ours is sent; theirs is not waited for
            except ssl.SSLWantWriteError:  # the send buffer is still full
                if not select.select([], [conn], [], timeout)[1]:
                    raise TimeoutError("sending the end of the file") from None
        conn.settimeout(timeout)
    conn.shutdown(socket.SHUT_WR)


def _epsv_port(reply: str) -> int:
    """The port of a 229 reply. ftplib checks only its shape: a number that
    is no port (70000, or too many digits) would fail in socket code as
    OverflowError or ValueError, an internal error instead of the server's."""
    try:
        port = ftplib.parse229(reply, ("", 0))[1]
    except ValueError:
        raise ftplib.error_proto(reply) from None
    return _possible_port(port, reply)


def _possible_port(port: int, reply: str) -> int:
    if not 0 < port < 65536:
        raise ftplib.error_proto(f"{reply.strip()} (no such port)")
    return port


def _control(client: ftplib.FTP) -> socket.socket:
    if client.sock is None:
        raise EOFError("control connection closed")
    return client.sock


def _reply(client: ftplib.FTP) -> str:
    """The next reply, whatever its code (ftplib raises on 4xx and 5xx). One
    with no code at all (an empty line) raises ftplib's error_proto."""
    try:
        return client.getresp()
    except (ftplib.error_temp, ftplib.error_perm) as exc:
        return str(exc)


def size_from_reply(reply: str, path: str) -> int:
    """The number in a ``213`` reply to SIZE. Anything else is the server's
    fault, an error for this file, never a crash of the run."""
    text = reply[4:].strip()
    # At most 19 digits: 8 EiB is more than any file, and Python refuses to
    # read a number of over 4300 digits (ValueError, an internal error).
    if not reply.startswith("213") or not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ServerError(f"SIZE {path}: unexpected reply {reply.strip()[:80]!r}")
    return int(text)


def reply_error(reply: str, context: str) -> TransportError:
    """Map an FTP reply to the error tree (see stockup.errors)."""
    code = reply[:3]
    message = f"{context}: server replied {reply.strip()}"
    if not (code.isascii() and code.isdigit()):
        message = f"{context}: the server's reply is not FTP ({reply.strip()[:80]!r})"
    if code in ("530", "332"):
        return AuthenticationFailed(message)
    if code in ("425", "426"):
        return ConnectionLost(message)
    if code in ("452", "552"):
        return QuotaExceeded(message)
    if code in ("550", "553", "532", "450"):
        if code == "450":
            return TemporaryServerError(message)
        return PermissionDenied(message)
    if code.startswith("4"):
        return TemporaryServerError(message)
    return ServerError(message)


def os_error(exc: BaseException, endpoint: Endpoint, context: str) -> TransportError:
    where = endpoint.address
    if isinstance(exc, ftplib.Error):
        return reply_error(str(exc), context)
    if isinstance(exc, socket.gaierror):
        return NameNotResolved(f"{endpoint.host}: name not resolved ({exc.strerror})")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailed(f"{where}: connection refused")
    if isinstance(exc, TimeoutError):
        return TransferTimeout(f"{where}: timed out during {context}")
    if isinstance(exc, ssl.SSLError):
        return ConnectionLost(f"{where}: TLS error during {context}: {exc.reason or exc}")
    if isinstance(exc, EOFError):
        return ConnectionLost(f"{where}: the server closed the connection during {context}")
    return ConnectionLost(f"{where}: connection failed during {context}: {exc}")


class FtpTransport(Transport):
    def __init__(
        self, endpoint: Endpoint, credentials: Credentials, options: TransportOptions
    ) -> None:
        super().__init__(endpoint, credentials, options)
        self._limiter = options.limiter
        self._timeouts = options.timeouts
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"stockup-ftp-{endpoint.account}")
        self._ftp: _PlainFTP | _ExplicitFTPS | None = None
        self._data: socket.socket | None = None
        self._made_dirs: set[str] = set()
        self._busy = 0
        self._last_used = time.monotonic()
        self._keepalive_task: asyncio.Task[None] | None = None

    # -- plumbing -----------------------------------------------------------

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        self._busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        except ValueError as exc:
            # A reply ftplib cannot parse (not UTF-8, a number that is not one):
            # the server's fault and this operation's failure, never the run's.
            # The control connection's state is unknown after it: reconnect.
            self._drop()
            raise ServerError(
                f"{self.endpoint.address}: the server sent a reply that makes no sense ({exc})"
            ) from None
        finally:
            self._busy -= 1
            self._last_used = time.monotonic()

    async def _keep_alive(self) -> None:
        """NOOP on an idle control connection; a dead one is dropped so the
        next operation reports a retryable ConnectionLost."""
        interval = self._timeouts.keepalive
        while self._ftp is not None:
            await asyncio.sleep(interval / 2)
            if self._busy or time.monotonic() - self._last_used < interval:
                continue
            try:
                await self.keepalive()
            except TransportError:
                self._ftp = None

    def _drop(self) -> None:
        """Forget a control connection whose state is unknown; the next
        operation reconnects (the engine retries)."""
        client, self._ftp = self._ftp, None
        if client is not None:
            client.close()

    def _client(self) -> _PlainFTP | _ExplicitFTPS:
        if self._ftp is None:
            raise ConnectionLost(f"{self.endpoint.host}: not connected")
        return self._ftp

    def _call(self, context: str, func: Callable[..., T], *args: Any) -> T:
        try:
            return func(*args)
        except TransportError:
            raise
        except (ftplib.Error, OSError, EOFError) as exc:
            raise os_error(exc, self.endpoint, context) from None

    # -- connect ------------------------------------------------------------

    async def connect(self) -> ConnectionInfo:
        # Plain FTP's warning is the front ends' to give, once per account and
        # run (stockup.session), not once per connection.
        info = await self._run(self._connect)
        self._keepalive_task = asyncio.create_task(self._keep_alive())
        return info

    def _connect(self) -> ConnectionInfo:
        endpoint, timeouts = self.endpoint, self._timeouts
        client: _PlainFTP | _ExplicitFTPS
        if endpoint.protocol == "ftp":
            client = _PlainFTP(timeout=timeouts.connect)
        else:
            cls = _ImplicitFTPS if endpoint.protocol == "ftps-implicit" else _ExplicitFTPS
            client = cls(context=tls.client_context(endpoint), timeout=timeouts.connect)
        client.reply_seconds = timeouts.reply
        client.proxy = self.credentials.proxy
        info = ConnectionInfo(endpoint.protocol, endpoint.host, endpoint.port)
        if client.proxy is not None:
            info.proxy = client.proxy.describe()
        try:
            client.connect(endpoint.host, endpoint.port, timeout=timeouts.connect)
            _control(client).settimeout(timeouts.reply)
            if isinstance(client, _ExplicitFTPS):
                if not isinstance(client.sock, ssl.SSLSocket):
                    client.auth()
                assert isinstance(client.sock, ssl.SSLSocket)
                tls.check_pin(endpoint, client.sock)
                tls.describe(client.sock, info)
        except ssl.SSLCertVerificationError as exc:
            client.close()
            raise tls.verification_error(endpoint, exc, self._peek_certificate()) from None
        except TransportError:  # a bad certificate, a reply refused
            client.close()
            raise
        except (ftplib.Error, OSError, EOFError, ValueError) as exc:
            client.close()
            raise os_error(exc, endpoint, "connect") from None
        try:
            client.log_in(self.credentials.username, self.credentials.password.reveal())
        except ftplib.error_perm as exc:
            client.close()
            raise AuthenticationFailed(
                f"{endpoint.host}: login failed for user {self.credentials.username!r} "
                f"({str(exc).strip()})"
            ) from None
        except TransportError:
            client.close()
            raise
        except (ftplib.Error, OSError, EOFError, ValueError) as exc:
            client.close()
            raise os_error(exc, endpoint, "login") from None
        self._ftp = client
        self._call("setup", self._setup, client)
        return info

    def _setup(self, client: _PlainFTP | _ExplicitFTPS) -> None:
        # PBSZ, PROT and TYPE go out together and their replies are read in
        # order: two round trips fewer per login than ftplib's prot_p().
        secure = isinstance(client, _ExplicitFTPS)
        commands = ["PBSZ 0", "PROT P", "TYPE I"] if secure else ["TYPE I"]
        for command in commands:
            client.putcmd(command)
        for command, reply in [(c, _reply(client)) for c in commands]:
            if not reply.startswith("2"):
                raise reply_error(reply, command)
        if isinstance(client, _ExplicitFTPS):
            client._prot_p = True  # as ftplib's prot_p() records it
        client.set_pasv(self.endpoint.passive)
        client.timeout = self._timeouts.stall  # data connections: the stall timeout

    def _peek_certificate(self) -> bytes | None:
        """The rejected certificate, fetched again unverified for the error message."""
        try:
            if self.endpoint.protocol == "ftps-implicit":
                sock = dial(
                    self.credentials.proxy,
                    self.endpoint.host,
                    self.endpoint.port,
                    self._timeouts.connect,
                )
                return tls.peek_certificate(sock, self.endpoint.host)
            probe = _PlainFTP(timeout=self._timeouts.connect)
            probe.reply_seconds = self._timeouts.reply
            probe.proxy = self.credentials.proxy
            probe.connect(self.endpoint.host, self.endpoint.port)
            probe.sendcmd("AUTH TLS")
            return tls.peek_certificate(_control(probe), self.endpoint.host)
        except (ftplib.Error, OSError, EOFError, ValueError, TransportError):
            return None

    # -- file operations ----------------------------------------------------

    async def ensure_dir(self, path: str) -> None:
        await self._run(self._ensure_dir, path)

    def _ensure_dir(self, path: str) -> None:
        client = self._client()
        parts = [p for p in path.split("/") if p]
        prefix = "/" if path.startswith("/") else ""
        for part in parts:
            prefix = f"{prefix}{part}" if not prefix or prefix == "/" else f"{prefix}/{part}"
            if prefix in self._made_dirs:
                continue
            try:
                client.mkd(prefix)
            except ftplib.error_perm:
                pass  # exists already, or not allowed: the upload will tell
            except (ftplib.Error, OSError, EOFError) as exc:
                raise os_error(exc, self.endpoint, f"MKD {prefix}") from None
            self._made_dirs.add(prefix)

    async def size(self, path: str) -> int | None:
        return await self._run(self._size, path)

    def _size(self, path: str) -> int | None:
        try:
            reply = self._client().sendcmd(f"SIZE {path}")
        except ftplib.error_perm as exc:
            if str(exc).startswith("550"):
                return None
            raise reply_error(str(exc), f"SIZE {path}") from None
        except (ftplib.Error, OSError, EOFError) as exc:
            raise os_error(exc, self.endpoint, f"SIZE {path}") from None
        return size_from_reply(reply, path)

    async def upload(
        self, local: Path, remote: str, offset: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        loop = asyncio.get_running_loop()

        def report(sent: int) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, sent)

        await self._run(self._upload, local, remote, offset, report)

    def _upload(self, local: Path, remote: str, offset: int, report: Callable[[int], None]) -> None:
        client = self._client()
        with local.open("rb") as source:
            source.seek(offset)
            command = f"STOR {remote}"
            conn, _ = self._call(command, client.ntransfercmd, command, offset or None)
            self._data = conn
            try:
                block = min(BLOCK_SIZE, self._limiter.chunk_size()) if self._limiter else BLOCK_SIZE
                while chunk := source.read(block):
                    if self._limiter is not None:
                        self._limiter.wait_sync(len(chunk))
                    conn.sendall(chunk)
                    report(len(chunk))
                through_proxy = self.credentials.proxy is not None
                _end_of_data(
                    conn, self._timeouts.stall, self._timeouts.reply if through_proxy else None
                )
            except (OSError, EOFError) as exc:
                self._data = None
                conn.close()
                raise self._data_failure(exc, command) from None
            try:
                # The 226 is read before the data connection is closed: closing
                # it first can reset it while vsftpd still lingers on it, and
                # vsftpd then reports the transfer failed.
                self._call(command, client.voidresp)
            finally:
                self._data = None
                conn.close()

    def _data_failure(self, exc: BaseException, command: str) -> TransportError:
        """After a broken data connection the server's own reply on the control
        connection (426, 451, 552 ...) says what happened: report that."""
        client = self._client()
        reply: str | None
        try:
            _control(client).settimeout(min(5.0, self._timeouts.reply))
            reply = client.getresp()
        except ftplib.Error as err:
            reply = str(err)
        except (OSError, EOFError):
            reply = None
        self._ftp = None  # the control connection's state is unknown: reconnect
        client.close()
        if reply and reply[:1] in "45":
            return reply_error(reply, f"{command} (data connection: {exc})")
        return os_error(exc, self.endpoint, f"{command} data transfer")

    async def commit(self, temporary: str, final: str, size: int) -> int | None:
        return await self._run(self._call, f"SIZE/RNFR {temporary}", self._commit, temporary,
                               final, size)  # fmt: skip

    def _commit(self, temporary: str, final: str, size: int) -> int | None:
        # SIZE and RNFR go out together and their replies are read in order,
        # and the next file's EPSV rides with RNTO: 4 round trips per file
        # once the TLS session is set up (STOR with the data connection's TLS
        # handshake, the 226, SIZE+RNFR, RNTO+EPSV). RNTO follows only if the
        # size is right; otherwise the pending rename is never completed.
        client = self._client()
        client.putcmd(f"SIZE {temporary}")
        client.putcmd(f"RNFR {temporary}")
        size_reply, rename_reply = _reply(client), _reply(client)
        found = size_from_reply(size_reply, temporary) if size_reply.startswith("213") else None
        if found == size:
            if not rename_reply.startswith("350"):
                raise reply_error(rename_reply, f"RNFR {temporary}")
            # The next file's passive port is asked for with the rename.
            [renamed] = client.ask_port_ahead(f"RNTO {final}")
            if not renamed.startswith("2"):
                raise reply_error(renamed, f"RNTO {final}")
        return found

    async def rename(self, source: str, target: str) -> None:
        await self._run(self._call, f"RNFR {source}", self._client().rename, source, target)

    async def remove(self, path: str) -> None:
        await self._run(self._call, f"DELE {path}", self._client().delete, path)

    async def list_dir(self, path: str) -> list[str]:
        names = await self._run(self._call, f"NLST {path}", self._client().nlst, path or ".")
        return sorted(split_remote(name)[1] for name in names)

    async def keepalive(self) -> None:
        await self._run(self._call, "NOOP", self._client().voidcmd, "NOOP")

    async def close(self) -> None:
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        data, client = self._data, self._ftp
        if data is not None:  # a transfer is blocked in the worker thread: break it
            # shutdown, not just close: close() does not wake a thread blocked in send().
            with contextlib.suppress(OSError):
                data.shutdown(socket.SHUT_RDWR)
        if client is not None and data is None:
            # QUIT without waiting for its 221: the run ends a round trip sooner.
            with contextlib.suppress(ftplib.Error, OSError, EOFError, TimeoutError):
                await asyncio.wait_for(self._run(client.putcmd, "QUIT"), self._timeouts.reply)
        if client is not None:
            client.close()
        self._ftp = None
        self._executor.shutdown(wait=False)
