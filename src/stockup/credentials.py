"""An account's login, apart from the vault that stores it, so that a
transport can take one without importing the vault's cryptography."""

from __future__ import annotations

from dataclasses import dataclass

from stockup.proxy import Proxy
from stockup.secret import Secret


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret
    proxy: Proxy | None = None
    """How this account's connections leave the machine, with the proxy's
    own login: resolved with the account's password when the vault opens
    (None: directly)."""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, proxy={self.proxy!r})"
