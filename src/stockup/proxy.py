"""Leaving the machine through a SOCKS5 or HTTP CONNECT proxy.

python-socks speaks SOCKS5 and this module the few lines of HTTP CONNECT
(see :func:`_http_connect` for why); it also decides what a proxy setting
means and turns failures into errors that say which hop failed. A
:class:`Proxy` is only a way out: TLS and SSH run end to end through the
tunnel it opens, so the proxy sees neither the agency password (on FTPS and
SFTP) nor the files.

``socks5h`` and HTTP CONNECT hand the agency's *name* to the proxy, which
resolves it: no DNS query for the agency leaves the machine. ``socks5``
resolves the name here and sends the address, as curl's schemes do.
"""

from __future__ import annotations

import base64
import os
import socket
import urllib.parse
from dataclasses import dataclass, replace

from stockup.errors import (
    ConfigError,
    ConnectFailed,
    NameNotResolved,
    ProxyAuthFailed,
    ProxyCannotReach,
    ProxyRefused,
    TransferTimeout,
    TransportError,
    UsageError,
)
from stockup.secret import Secret

SCHEMES = ("socks5h", "socks5", "http")
DIRECT = "direct"
"""An account setting: connect directly even when a global proxy is set."""
FROM_ENVIRONMENT = "env"
"""A setting: take the proxy from ALL_PROXY / HTTPS_PROXY when stockup runs."""
ENVIRONMENT_VARIABLES = ("ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy")
SOCKS5_REFUSED = 2
"""SOCKS5 reply "connection not allowed by ruleset": the proxy's decision."""
HTTP_AUTH_REQUIRED = (401, 407)
"""407 is the standard answer; tinyproxy's BasicAuth answers 401."""
HTTP_FORBIDDEN = 403
MAX_PROXY_REPLY = 16 * 1024
"""An HTTP proxy's answer to CONNECT is a status line and a few headers."""


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets (RFC 3986), as URLs,
    CONNECT requests and messages write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Proxy:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: Secret | None = None
    source: str = "config"
    """Where the setting came from, for `account test`: "config" or the
    environment variable's name."""

    @classmethod
    def parse(cls, url: str, *, source: str = "config") -> Proxy:
        """A proxy URL as the user writes it: ``socks5h://[user@]host:port``.
        A password in the URL is refused unless it comes from the environment:
        on a command line every local user can read it (ps), and config.toml
        holds no secrets."""
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError:
            port = None
            parts = urllib.parse.urlsplit("")
        if parts.scheme not in SCHEMES or not parts.hostname or port is None:
            raise UsageError(
                f"proxy {_without_password(url)!r}: write it as socks5h://[user@]host:port, "
                "socks5://... or http://... (or 'env', or 'direct')",
                setting="proxy",
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise UsageError(f"proxy {_without_password(url)!r}: no path after host:port")
        password = None
        if parts.password is not None:
            if source == "config":
                raise UsageError(
                    "a proxy password does not go in the proxy URL, where other users and "
                    "config.toml would see it: give the URL as scheme://user@host:port and "
                    "the password when asked (or with --proxy-password-stdin)",
                    setting="proxy",
                )
            password = Secret(urllib.parse.unquote(parts.password))
        username = urllib.parse.unquote(parts.username) if parts.username else None
        return cls(parts.scheme, parts.hostname, port, username, password, source)

    @property
    def url(self) -> str:
        """The URL without the password: what config.toml and every message show."""
        user = f"{urllib.parse.quote(self.username, safe='')}@" if self.username else ""
        return f"{self.scheme}://{user}{host_port(self.host, self.port)}"

    @property
    def vault_record(self) -> str:
        """The vault record holding this proxy's password (account names
        cannot contain a colon, so this never names an account)."""
        return f"proxy:{self.url}"

    def with_password(self, password: Secret) -> Proxy:
        return replace(self, password=password)

    def describe(self) -> str:
        where = "" if self.source == "config" else f" (from ${self.source})"
        return f"{self.url}{where}"


def _without_password(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(unreadable)"


def check_setting(value: str) -> str:
    """A proxy setting as config.toml keeps it: 'direct', 'env' or a URL
    without a password. Raises UsageError for anything else."""
    value = value.strip()
    if value in (DIRECT, FROM_ENVIRONMENT):
        return value
    return Proxy.parse(value).url


def from_environment(host: str) -> Proxy | None:
    """The proxy the environment names for ``host`` (ALL_PROXY, then
    HTTPS_PROXY; NO_PROXY exempts hosts), or None."""
    # The standard library's NO_PROXY matching (curl's rules), which typeshed
    # does not declare: undocumented, but stable since Python 2. Imported
    # here: urllib.request pulls in http.client and email, which every
    # command would pay for otherwise.
    import urllib.request

    if urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]
        return None
    for name in ENVIRONMENT_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                return Proxy.parse(value, source=name)
            except UsageError as exc:
                raise ConfigError(f"${name}: {exc}") from None
    return None


def dial(proxy: Proxy | None, host: str, port: int, timeout: float) -> socket.socket:
    """A connected TCP socket to ``host:port``: directly, or through ``proxy``
    (which resolves ``host`` itself unless the scheme is socks5), that sends
    what is written at once (:func:`send_at_once`).

    Blocking: FTP calls it from its worker thread, SFTP from a thread of its own.
    """
    return send_at_once(_connected(proxy, host, port, timeout))


def send_at_once(sock: socket.socket) -> socket.socket:
    """Turn Nagle's algorithm off (TCP_NODELAY), as asyncio does for its own
    connections and Go for every one (rclone).

    With it on, a small write waits until everything sent before it is
    acknowledged. Of FTP commands written together (USER with PASS, SIZE
    with RNFR, RNTO with the next file's EPSV) the second would leave a
    round trip after the first far away, and the short tail of every TLS
    record on a data connection waited for an ACK: on 40 x 8 MB over
    loopback FTPS that was half of stockup's kernel time
    (docs/benchmarks.md). stockup writes whole commands and whole blocks,
    so nothing is gained by holding them back.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _connected(proxy: Proxy | None, host: str, port: int, timeout: float) -> socket.socket:
    if proxy is None:
        return socket.create_connection((host, port), timeout)
    target = host_port(host, port)
    if proxy.scheme == "http":
        return _http_connect(proxy, target, timeout)
    # Imported here: only accounts behind a SOCKS proxy pay for it.
    from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
    from python_socks.sync import Proxy as SocksProxy

    client = SocksProxy(
        ProxyType.SOCKS5,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password.reveal() if proxy.password else None,
        rdns=proxy.scheme == "socks5h",
    )
    try:
        sock = client.connect(host, port, timeout=timeout)
    except ProxyConnectionError as exc:
        raise _unreachable(proxy, exc.strerror) from None
    except ProxyTimeoutError:
        raise _no_answer(proxy, target, timeout) from None
    except ProxyError as exc:
        raise _proxy_error(proxy, target, exc.error_code, str(exc)) from None
    except socket.gaierror as exc:  # socks5: the agency's name, resolved here
        raise NameNotResolved(f"{host}: name not resolved ({exc.strerror})") from None
    sock.settimeout(timeout)
    return sock


def _http_connect(proxy: Proxy, target: str, timeout: float) -> socket.socket:
    """A tunnel through an HTTP proxy (CONNECT, RFC 9110 9.3.6).

    By hand, not python-socks: its HTTP client reads the proxy's reply with
    one large recv(), which also swallows whatever the server sent right
    after it. FTP and SSH servers speak first, so their greeting was lost
    whenever it arrived with the reply (seen with tinyproxy: a login hung
    until its timeout). Here the reply is peeked at and only its own bytes
    are consumed.
    """
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout)
    except OSError as exc:
        raise _unreachable(proxy, exc.strerror or str(exc)) from None
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.username is not None:
        login = f"{proxy.username}:{proxy.password.reveal() if proxy.password else ''}"
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(login.encode()).decode()}")
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            seen = sock.recv(MAX_PROXY_REPLY, socket.MSG_PEEK)
            if not seen:
                raise ConnectionResetError("the proxy closed the connection")
            end = seen.find(b"\r\n\r\n")
            head += sock.recv(end + 4 if end >= 0 else len(seen))
            if len(head) > MAX_PROXY_REPLY:
                raise ConnectionResetError("the proxy's reply never ended")
    except TimeoutError:
        sock.close()
        raise _no_answer(proxy, target, timeout) from None
    except OSError as exc:
        sock.close()
        raise ConnectFailed(f"proxy {proxy.url}: {exc.strerror or exc}") from None
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status.split(" ", 2)
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    if code is None or not 200 <= code < 300:
        sock.close()
        raise _proxy_error(proxy, target, code, status[:120])
    return sock


def _unreachable(proxy: Proxy, reason: str | None) -> TransportError:
    return ConnectFailed(f"proxy {proxy.url}: cannot connect to the proxy ({reason})")


def _no_answer(proxy: Proxy, target: str, timeout: float) -> TransportError:
    return TransferTimeout(
        f"proxy {proxy.url}: no answer within {timeout:g} s while connecting to {target}"
    )


def _proxy_error(proxy: Proxy, target: str, code: int | None, reason: str) -> TransportError:
    """Which hop failed: the proxy's login, the proxy's rules, or the way on."""
    where = f"proxy {proxy.url}"
    if code in HTTP_AUTH_REQUIRED or "authentication" in reason.lower():
        login = f"user {proxy.username!r}" if proxy.username else "no login"
        return ProxyAuthFailed(f"{where}: proxy authentication failed ({login}: {reason})")
    if code in (SOCKS5_REFUSED, HTTP_FORBIDDEN):
        return ProxyRefused(f"{where}: the proxy refused the connection to {target} ({reason})")
    return ProxyCannotReach(f"{where}: the proxy could not reach {target} ({reason})")
