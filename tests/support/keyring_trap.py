"""A keyring backend that must never load: importing this module leaves the
file named by STOCKUP_TRAP behind. A test names it in `vault.keychain`, which
stockup reads but must load only keyring's own OS keychains from."""

from __future__ import annotations

import os
from pathlib import Path

from keyring.backend import KeyringBackend

if trap := os.environ.get("STOCKUP_TRAP"):
    Path(trap).touch()


class Keyring(KeyringBackend):
    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        raise AssertionError("the trap keyring was asked for a password")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("the trap keyring was given a password")

    def delete_password(self, service: str, username: str) -> None:
        raise AssertionError("the trap keyring was asked to delete a password")
