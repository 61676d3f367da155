"""Transports: one module per protocol behind :class:`base.Transport`, and
the one registry of protocols (class, default port, security label)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockup.errors import ConfigError

if TYPE_CHECKING:  # the registry is read by commands that never connect (start-up time)
    from stockup.credentials import Credentials
    from stockup.transports.base import Endpoint, Transport, TransportOptions


@dataclass(frozen=True)
class Protocol:
    name: str
    default_port: int
    security: str
    """What every page and listing says about this protocol's security."""
    module: str
    class_name: str
    """The transport class, imported on first use: asyncssh alone takes a
    tenth of a second to import, which a command that does not connect
    should not pay."""

    @property
    def encrypted(self) -> bool:
        return self.name != "ftp"

    def transport_class(self) -> type[Transport]:
        cls: type[Transport] = getattr(importlib.import_module(self.module), self.class_name)
        return cls


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("sftp", 22, "SFTP (encrypted)", "stockup.transports.sftp", "SftpTransport"),
        Protocol("ftps", 21, "FTPS (TLS)", "stockup.transports.ftp", "FtpTransport"),
        Protocol(
            "ftps-implicit", 990, "FTPS implicit (TLS)", "stockup.transports.ftp", "FtpTransport"
        ),
        Protocol(
            "ftp",
            21,
            "plain FTP: password sent in clear",
            "stockup.transports.ftp",
            "FtpTransport",
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {name!r} (use one of {', '.join(PROTOCOLS)})"
        ) from None


def open_transport(
    endpoint: Endpoint, credentials: Credentials, options: TransportOptions | None = None
) -> Transport:
    """A transport for ``endpoint``, not yet connected."""
    from stockup.transports.base import TransportOptions

    cls = get_protocol(endpoint.protocol).transport_class()
    return cls(endpoint, credentials, options or TransportOptions())
