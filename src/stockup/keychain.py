"""Keeping the vault's data key in the OS keychain (``stockup init --keychain``).

Only the data key goes to the keychain; the records stay in the vault file.
Backends that cannot keep a secret (none available, or one that writes
plaintext, such as ``keyrings.alt``) are refused rather than silently used.

The backend that took the key is recorded beside the vault
(:func:`store_data_key` returns its name) and asked directly afterwards.
Left to find one, keyring loads every backend it knows and probes each: 75
to 125 ms measured here with GNOME Keyring, where reading the key from the
backend that holds it takes about 50 ms, keyring's import included. And
where several are viable it chains them all, asking each in turn, a
plaintext one among them: the one that holds the key is the one to ask.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from stockup.errors import KeychainError

SERVICE = "stockup-vault"
OS_KEYCHAINS = frozenset(
    {
        "keyring.backends.SecretService.Keyring",
        "keyring.backends.libsecret.Keyring",
        "keyring.backends.kwallet.DBusKeyring",
        "keyring.backends.kwallet.DBusKeyringKWallet4",
        "keyring.backends.macOS.Keyring",
        "keyring.backends.Windows.WinVaultKeyring",
    }
)
"""The recorded names loaded directly: keyring's own OS keychains, so a name
read from a file never makes stockup import anything else. Any other backend
(a plugin, or the one PYTHON_KEYRING_BACKEND names) is found as keyring
finds it."""
MAX_NAME_CHARS = 200
"""The longest recorded name read: keyring's are under 50 characters."""


def _backend(recorded: str | None = None) -> Any:
    import keyring.core
    from keyring.backends.chainer import ChainerBackend

    try:
        # What the user told keyring to use (PYTHON_KEYRING_BACKEND,
        # keyringrc.cfg) wins, then the keychain that took the key.
        backend = keyring.core.load_env() or keyring.core.load_config()
        if backend is None and recorded in OS_KEYCHAINS:
            backend = keyring.core.load_keyring(recorded)
        if backend is None:
            backend = keyring.get_keyring()
        if isinstance(backend, ChainerBackend) and backend.backends:
            backend = backend.backends[0]  # where the chain stores a new password
    except Exception as exc:  # keyring raises RuntimeError and others for an unusable one
        raise KeychainError(f"the OS keychain cannot be used: {exc}") from None
    module, name = type(backend).__module__, type(backend).__name__
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


def store_data_key(vault_id: str, key: bytes) -> str:
    """Keep ``key`` in the OS keychain; returns the name of the backend that
    took it, for :func:`fetch_data_key`."""
    backend = _backend()
    try:
        backend.set_password(SERVICE, vault_id, base64.b64encode(key).decode())
    except Exception as exc:
        raise KeychainError(f"the OS keychain refused to store the vault key: {exc}") from None
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def fetch_data_key(vault_id: str, recorded: str | None = None) -> bytes:
    """The vault's key, from the backend named ``recorded`` (what
    :func:`store_data_key` returned) where that is an OS keychain."""
    backend = _backend(recorded)
    try:
        encoded = backend.get_password(SERVICE, vault_id)
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
