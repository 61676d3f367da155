"""The credential vault: one JSON file, AES-256-GCM records under a data key.

Layout and reasoning are specified in docs/vault-format.md. In short: a random
256-bit data key encrypts each account's secrets; the data key is wrapped under
an Argon2id key derived from the passphrase (or kept in the OS keychain). The
header is associated data of the wrap, and each record is bound to the vault
id, the account name and the endpoint it may be sent to.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from stockup.credentials import Credentials
from stockup.errors import (
    EndpointChanged,
    VaultCorrupt,
    VaultExists,
    VaultMissing,
    VaultVersionError,
    WrongPassphrase,
)
from stockup.fsutil import atomic_write
from stockup.secret import Secret

FORMAT = "stockup-vault"
VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 16
VAULT_ID_BYTES = 16
PAD_BLOCK = 256
RECORD_AAD_LABEL = b"stockup-vault-record"

# Limits on KDF parameters read from a file, so a crafted vault cannot make
# stockup allocate unbounded memory or spin for hours.
MAX_MEMORY_KIB = 1024 * 1024
MAX_ITERATIONS = 10
MAX_LANES = 16
# One derivation at a time per process: with several lanes, two concurrent
# Argon2id derivations in cryptography 50 (OpenSSL 3.5) never return (seen
# here; the web UI can start one while another runs). Each needs its 64 MiB
# and both cores anyway, so running them one after the other costs nothing.
_KDF_LOCK = threading.Lock()


@dataclass(frozen=True)
class KdfParams:
    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4
    salt: bytes = b""

    def with_fresh_salt(self) -> KdfParams:
        return replace(self, salt=os.urandom(SALT_BYTES))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": "argon2id",
            "memory_kib": self.memory_kib,
            "iterations": self.iterations,
            "lanes": self.lanes,
            "salt": _b64(self.salt),
        }

    @classmethod
    def from_json(cls, data: Any) -> KdfParams:
        fields = _exact_keys(data, {"name", "memory_kib", "iterations", "lanes", "salt"}, "kdf")
        if fields["name"] != "argon2id":
            raise VaultCorrupt(f"vault uses unknown key derivation {fields['name']!r}")
        params = cls(
            memory_kib=_int(fields["memory_kib"]),
            iterations=_int(fields["iterations"]),
            lanes=_int(fields["lanes"]),
            salt=_unb64(fields["salt"]),
        )
        if not (
            1 <= params.lanes <= MAX_LANES
            and 1 <= params.iterations <= MAX_ITERATIONS
            and 8 * params.lanes <= params.memory_kib <= MAX_MEMORY_KIB
            and len(params.salt) >= 8
        ):
            raise VaultCorrupt(
                "vault key-derivation parameters are out of bounds "
                f"(memory <= {MAX_MEMORY_KIB} KiB, iterations <= {MAX_ITERATIONS}, "
                f"lanes <= {MAX_LANES}); the file was damaged or edited"
            )
        return params


def derive_key(
    passphrase: Secret,
    params: KdfParams,
    *,
    secret: bytes | None = None,
    ad: bytes | None = None,
    length: int = KEY_BYTES,
) -> bytes:
    """Argon2id over the NFC-normalised UTF-8 passphrase (so the same words
    typed on macOS, which produces NFD, and Linux open the same vault)."""
    normalised = unicodedata.normalize("NFC", passphrase.reveal()).encode("utf-8")
    kdf = Argon2id(
        salt=params.salt,
        length=length,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
        secret=secret,
        ad=ad,
    )
    with _KDF_LOCK:
        return kdf.derive(normalised)


@dataclass(frozen=True)
class _Record:
    endpoint: str
    nonce: bytes
    ciphertext: bytes


class Vault:
    """An unlocked vault in memory. Load it with :meth:`load` (or make one with
    :meth:`create`), change it, then :meth:`save` it under the writers' lock."""

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        data_key: bytes,
        wrapped_key: dict[str, str] | None,
        records: dict[str, _Record],
    ) -> None:
        self.path = path
        self._header = header
        self._data_key = data_key
        self._wrapped_key = wrapped_key
        self._records = records

    # -- construction -------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        passphrase: Secret | None = None,
        kdf: KdfParams | None = None,
        keychain_store: Callable[[str, bytes], None] | None = None,
    ) -> Vault:
        """A new empty vault, not yet saved. Exactly one of ``passphrase`` or
        ``keychain_store`` (which receives vault id and data key) is given."""
        if path.exists():
            raise VaultExists(f"a vault already exists at {path}")
        if (passphrase is None) == (keychain_store is None):
            raise ValueError("give a passphrase or a keychain store, not both")
        vault_id = _b64(os.urandom(VAULT_ID_BYTES))
        data_key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
        if passphrase is not None:
            vault = cls(path, {}, data_key, None, {})
            vault.set_passphrase(passphrase, kdf or KdfParams(), vault_id=vault_id)
            return vault
        assert keychain_store is not None
        header = _header(vault_id, "keychain", None)
        keychain_store(vault_id, data_key)
        return cls(path, header, data_key, None, {})

    @classmethod
    def load(
        cls,
        path: Path,
        passphrase: Callable[[], Secret],
        keychain_fetch: Callable[[str], bytes],
    ) -> Vault:
        """Read, authenticate and decrypt-check the whole vault. Any damage or
        tampering raises before anything is returned; nothing is written."""
        document = _parse(_read(path))
        header = document["header"]
        vault_id = header["vault_id"]
        if header["key_source"] == "passphrase":
            params = KdfParams.from_json(header["kdf"])
            wrapped = _exact_keys(document["data_key"], {"nonce", "ciphertext"}, "data_key")
            key = derive_key(passphrase(), params)
            try:
                data_key = AESGCM(key).decrypt(
                    _unb64(wrapped["nonce"]), _unb64(wrapped["ciphertext"]), _canonical(header)
                )
            except InvalidTag:
                raise WrongPassphrase(
                    "wrong passphrase (or the vault header was altered); nothing was changed"
                ) from None
        else:
            if document["data_key"] is not None or header["kdf"] is not None:
                raise VaultCorrupt("the vault file is damaged (keychain vault with a wrapped key)")
            wrapped = None
            data_key = keychain_fetch(vault_id)
        if len(data_key) != KEY_BYTES:
            raise VaultCorrupt("vault data key has the wrong length")
        records = {
            name: _Record(
                endpoint=_str(fields["endpoint"]),
                nonce=_unb64(fields["nonce"]),
                ciphertext=_unb64(fields["ciphertext"]),
            )
            for name, fields in (
                (name, _exact_keys(value, {"endpoint", "nonce", "ciphertext"}, "record"))
                for name, value in document["records"].items()
            )
        }
        vault = cls(path, header, data_key, wrapped, records)
        for name, record in records.items():
            vault._decrypt(name, record.endpoint, record)
        return vault

    # -- use ----------------------------------------------------------------

    @property
    def vault_id(self) -> str:
        return str(self._header["vault_id"])

    @property
    def key_source(self) -> str:
        return str(self._header["key_source"])

    def accounts(self) -> list[str]:
        return sorted(self._records)

    def get(self, account: str, endpoint: str) -> Credentials:
        """The credentials of ``account``, only if they were saved for
        ``endpoint``: a password is never released for another host."""
        record = self._records.get(account)
        if record is None:
            raise VaultMissing(f"the vault holds no password for account {account!r}")
        if record.endpoint != endpoint:
            raise EndpointChanged(
                f"account {account!r}: its server or the way it is trusted (certificate pin, "
                f"CA file) changed since its password was saved ({record.endpoint} -> "
                f"{endpoint}); nothing was sent. If you made that change, enter the password "
                f"again with `stockup account password {account}`"
            )
        return self._decrypt(account, endpoint, record)

    def put(self, account: str, endpoint: str, credentials: Credentials) -> None:
        plaintext = json.dumps(
            {"username": credentials.username, "password": credentials.password.reveal()},
            ensure_ascii=False,
        ).encode("utf-8")
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self._data_key).encrypt(
            nonce, _pad(plaintext), self._record_aad(account, endpoint)
        )
        self._records[account] = _Record(endpoint, nonce, ciphertext)

    def remove(self, account: str) -> bool:
        return self._records.pop(account, None) is not None

    def set_passphrase(
        self, passphrase: Secret, kdf: KdfParams | None = None, *, vault_id: str | None = None
    ) -> None:
        """Wrap the data key under a new passphrase (fresh salt); the records,
        encrypted under the unchanged data key, stay as they are."""
        if not passphrase:
            raise WrongPassphrase("the passphrase must not be empty")
        params = (kdf or KdfParams()).with_fresh_salt()
        header = _header(vault_id or self.vault_id, "passphrase", params.to_json())
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(derive_key(passphrase, params)).encrypt(
            nonce, self._data_key, _canonical(header)
        )
        self._header = header
        self._wrapped_key = {"nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}

    def save(self) -> None:
        """Write atomically; call with the writers' lock held."""
        atomic_write(self.path, self.to_bytes())

    def to_bytes(self) -> bytes:
        document = {
            "header": self._header,
            "data_key": self._wrapped_key,
            "records": {
                name: {
                    "endpoint": record.endpoint,
                    "nonce": _b64(record.nonce),
                    "ciphertext": _b64(record.ciphertext),
                }
                for name, record in self._records.items()
            },
        }
        return _serialise(document)

    # -- internals ----------------------------------------------------------

    def _record_aad(self, account: str, endpoint: str) -> bytes:
        return b"\x00".join(
            [
                RECORD_AAD_LABEL,
                self.vault_id.encode(),
                account.encode("utf-8"),
                endpoint.encode("utf-8"),
            ]
        )

    def _decrypt(self, account: str, endpoint: str, record: _Record) -> Credentials:
        try:
            padded = AESGCM(self._data_key).decrypt(
                record.nonce, record.ciphertext, self._record_aad(account, endpoint)
            )
            fields = json.loads(_unpad(padded))
            return Credentials(username=fields["username"], password=Secret(fields["password"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise VaultCorrupt(
                f"the vault record of account {account!r} is damaged or was moved from "
                "another account or vault; nothing was changed"
            ) from None


def read_key_source(path: Path) -> str:
    """``passphrase`` or ``keychain``: how the vault at ``path`` is unlocked."""
    return str(_parse(_read(path))["header"]["key_source"])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VaultMissing(f"no vault at {path}; run `stockup init` first") from None
    except OSError as exc:
        raise VaultCorrupt(f"cannot read vault {path}: {exc.strerror}") from None


def _header(vault_id: str, key_source: str, kdf: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "vault_id": vault_id,
        "key_source": key_source,
        "kdf": kdf,
    }


def _serialise(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def _canonical(header: dict[str, Any]) -> bytes:
    """The header's associated-data form: compact, sorted, ASCII JSON."""
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _parse(raw: bytes) -> dict[str, Any]:
    """Parse strictly: the file must be exactly what :func:`_serialise` would
    write for its content, so no byte can change without detection."""
    try:
        document = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: JSON nested thousands deep, which no vault is.
        raise VaultCorrupt("the vault file is damaged or truncated (not valid JSON)") from None
    if not isinstance(document, dict) or not isinstance(document.get("header"), dict):
        raise VaultCorrupt("the vault file is damaged (no header)")
    header = document["header"]
    if header.get("format") != FORMAT:
        raise VaultCorrupt("this file is not a stockup vault")
    if header.get("version") != VERSION:
        raise VaultVersionError(
            f"the vault has format version {header.get('version')!r}; this stockup reads "
            f"version {VERSION}: upgrade stockup"
        )
    _exact_keys(document, {"header", "data_key", "records"}, "vault")
    _exact_keys(header, {"format", "version", "vault_id", "key_source", "kdf"}, "header")
    if header["key_source"] not in ("passphrase", "keychain") or not isinstance(
        document["records"], dict
    ):
        raise VaultCorrupt("the vault file is damaged (bad key source or records)")
    _unb64(header["vault_id"])
    if _serialise(document) != raw:
        raise VaultCorrupt("the vault file was altered (not in its canonical form)")
    return document


def _exact_keys(value: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        raise VaultCorrupt(f"the vault file is damaged (bad {what} fields)")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise VaultCorrupt("the vault file is damaged (expected a number)")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise VaultCorrupt("the vault file is damaged (expected a string)")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        data = base64.b64decode(_str(value), validate=True)
    except (binascii.Error, ValueError):
        raise VaultCorrupt("the vault file is damaged (bad base64)") from None
    if _b64(data) != value:
        raise VaultCorrupt("the vault file is damaged (non-canonical base64)")
    return data


def _pad(plaintext: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to a multiple of 256 bytes, hiding the length."""
    padded = plaintext + b"\x80"
    return padded + b"\x00" * (-len(padded) % PAD_BLOCK)


def _unpad(padded: bytes) -> bytes:
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise ValueError("bad padding")
    return stripped[:-1]
