"""An account's login, apart from the vault that stores it, so that a
transport can take one without importing the vault's cryptography."""

from __future__ import annotations

from dataclasses import dataclass

from stockup.secret import Secret


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"
