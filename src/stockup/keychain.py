"""Keeping the vault's data key in the OS keychain (``stockup init --keychain``).

Only the data key goes to the keychain; the records stay in the vault file.
Backends that cannot keep a secret (none available, or one that writes
plaintext, such as ``keyrings.alt``) are refused rather than silently used.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from stockup.errors import KeychainError

SERVICE = "stockup-vault"


def _backend() -> Any:
    import keyring

    backend = keyring.get_keyring()
    cls = type(backend)
    module, name = cls.__module__, cls.__name__
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        raise KeychainError(
            "no OS keychain is available (keyring found no backend); "
            "use a passphrase vault instead: `stockup init` without --keychain"
        )
    if module.startswith("keyrings.alt") or "plaintext" in name.lower():
        raise KeychainError(
            f"the keyring backend {module}.{name} does not encrypt what it stores; "
            "refusing to keep the vault key there. Use `stockup init` without --keychain"
        )
    return backend


def check_available() -> None:
    _backend()


def store_data_key(vault_id: str, key: bytes) -> None:
    try:
        _backend().set_password(SERVICE, vault_id, base64.b64encode(key).decode())
    except KeychainError:
        raise
    except Exception as exc:
        raise KeychainError(f"the OS keychain refused to store the vault key: {exc}") from None


def fetch_data_key(vault_id: str) -> bytes:
    try:
        encoded = _backend().get_password(SERVICE, vault_id)
    except KeychainError:
        raise
    except Exception as exc:
        raise KeychainError(f"the OS keychain could not be read: {exc}") from None
    if encoded is None:
        raise KeychainError(
            f"the OS keychain holds no key for this vault (id {vault_id}); "
            "it was deleted or this is another machine or user"
        )
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise KeychainError("the vault key in the OS keychain is damaged") from None
