"""Transports: one module per protocol behind :class:`base.Transport`."""

from __future__ import annotations

from stockup.config import Account
from stockup.paths import Paths
from stockup.ratelimit import RateLimiter
from stockup.transports.base import Timeouts, Transport
from stockup.transports.hostkeys import KnownHosts
from stockup.vault import Credentials


def open_transport(
    account: Account,
    credentials: Credentials,
    paths: Paths,
    *,
    trust_unknown_host_key: bool = False,
    trust_fingerprint: str | None = None,
    timeouts: Timeouts | None = None,
    limiter: RateLimiter | None = None,
) -> Transport:
    """A transport for ``account`` (not yet connected). An SFTP server's unknown
    host key is recorded if ``trust_unknown_host_key``, or if its SHA-256
    fingerprint is ``trust_fingerprint`` (the one the user was shown)."""
    if account.protocol == "sftp":
        from stockup.transports.sftp import SftpTransport

        return SftpTransport(
            account,
            credentials,
            KnownHosts(paths.known_hosts_file),
            trust_unknown_host_key=trust_unknown_host_key,
            trust_fingerprint=trust_fingerprint,
            timeouts=timeouts,
            limiter=limiter,
        )
    from stockup.transports.ftp import FtpTransport

    return FtpTransport(account, credentials, timeouts, limiter)
