"""Non-secret settings: the accounts, in a TOML file. Secrets live only in the vault."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from stockup.errors import ConfigError, UnknownAccount, UsageError
from stockup.fsutil import atomic_write
from stockup.proxy import DIRECT, check_setting
from stockup.transports import PROTOCOLS
from stockup.transports.base import Endpoint

CONFIG_VERSION = 1
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOGIN_METHODS = ("password", "key", "agent")


def check_account_name(name: str) -> str:
    if not ACCOUNT_NAME.match(name):
        raise UsageError(
            f"invalid account name {name!r}: use letters, digits, '_', '.', '-' (max 64)"
        )
    return name


def normalise_pin(pin: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lowercase hex digits (colons allowed)."""
    hex_digits = pin.replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", hex_digits):
        raise UsageError(
            "the certificate pin is a SHA-256 fingerprint: 64 hex digits, colons allowed",
            setting="pin_sha256",
        )
    return hex_digits


def active_mode_refused(account: str) -> str:
    return (
        f"account {account!r} uses active-mode FTP, which cannot work through a proxy: "
        "the server would have to connect back to this machine; use passive mode or "
        "connect directly (--proxy direct)"
    )


@dataclass(frozen=True)
class Account:
    name: str
    agency: str
    protocol: str
    host: str
    port: int
    remote_dir: str = ""
    connections: int | None = None
    allow_plaintext: bool = False
    ca_file: str | None = None
    pin_sha256: str | None = None
    passive: bool = True
    rename: bool = True
    login: str = "password"
    key_file: str | None = None
    allow_sha1: bool = False
    rules: str | None = None
    """For a custom server: the agency whose rules the checks apply (none: only
    whether each file is a valid artwork)."""
    folders: dict[str, str] = field(default_factory=dict)
    proxy: str | None = None
    """A proxy URL (no password: that is in the vault), 'env', 'direct', or
    None for the global setting (`stockup proxy set`)."""

    def __post_init__(self) -> None:
        check_account_name(self.name)
        if self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"account {self.name!r}: unknown protocol {self.protocol!r} "
                f"(use one of {', '.join(PROTOCOLS)})"
            )
        if not self.host or any(c.isspace() or c in "/@" for c in self.host):
            raise ConfigError(f"account {self.name!r}: invalid host {self.host!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"account {self.name!r}: port must be 1-65535")
        if self.connections is not None and not 1 <= self.connections <= 32:
            raise ConfigError(f"account {self.name!r}: connections must be 1-32")
        if self.login not in LOGIN_METHODS:
            raise ConfigError(f"account {self.name!r}: login must be one of {LOGIN_METHODS}")
        if self.proxy is not None:
            try:
                object.__setattr__(self, "proxy", check_setting(self.proxy))
            except UsageError as exc:
                raise ConfigError(f"account {self.name!r}: {exc}", setting="proxy") from None
            if not self.passive and self.proxy != DIRECT:
                raise ConfigError(active_mode_refused(self.name), setting="proxy")
        if self.protocol == "ftp" and not self.allow_plaintext:
            raise ConfigError(
                f"account {self.name!r} uses plain FTP, which sends the password in clear, "
                "but plain FTP was not allowed for it",
                setting="allow_plaintext",
            )

    @property
    def endpoint(self) -> str:
        """What the vault binds the password to: ``protocol://host:port``."""
        return f"{self.protocol}://{self.server.address.lower()}"

    @property
    def binding(self) -> str:
        """What the vault binds the password to: the endpoint, and how the
        server is trusted (certificate pin, CA file's content). Editing
        config.toml to drop a pin or swap the CA changes it, so the password
        is not released to a server trusted some other way."""
        parts = [self.endpoint]
        if self.pin_sha256:
            parts.append(f"pin-sha256={self.pin_sha256}")
        if self.ca_file:
            try:
                digest = hashlib.sha256(Path(self.ca_file).read_bytes()).hexdigest()
            except OSError as exc:
                raise ConfigError(
                    f"account {self.name!r}: cannot read its CA file {self.ca_file} "
                    f"({exc.strerror or exc})",
                    setting="ca_file",
                ) from None
            parts.append(f"ca-sha256={digest}")
        return ";".join(parts)

    @property
    def server(self) -> Endpoint:
        """Where and how to connect, as a transport takes it."""
        return Endpoint(
            account=self.name,
            protocol=self.protocol,
            host=self.host,
            port=self.port,
            ca_file=self.ca_file,
            pin_sha256=self.pin_sha256,
            passive=self.passive,
            login=self.login,
            key_file=self.key_file,
            allow_sha1=self.allow_sha1,
        )

    @property
    def security(self) -> str:
        return PROTOCOLS[self.protocol].security

    @property
    def cleartext_warning(self) -> str | None:
        """Said every time a plain-FTP account is used: the password travels in clear."""
        if self.protocol != "ftp":
            return None
        return f"account {self.name} uses plain FTP: the password goes to {self.host} in clear text"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoint"] = self.endpoint
        data["security"] = self.security
        return data

    def _to_toml(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "name" and v not in (None, {})}

    @classmethod
    def _from_toml(cls, name: str, data: Any) -> Account:
        known = {f.name for f in fields(cls)} - {"name"}
        if not isinstance(data, dict) or not set(data) <= known:
            extra = set(data) - known if isinstance(data, dict) else set()
            raise ConfigError(f"account {name!r}: unknown settings {sorted(extra)} in config")
        import msgspec  # checks each setting's type: a hand-edited 'port = "22"' or 'rename = "no"'

        try:
            return msgspec.convert({**data, "name": name}, cls)
        except msgspec.ValidationError as exc:
            problem, _, where = str(exc).partition(" - at `$.")
            setting = where.rstrip("`").replace("[...]", "")
            raise ConfigError(
                f"account {name!r} in config: {setting + ': ' if setting else ''}{problem}"
            ) from None


@dataclass
class Config:
    accounts: dict[str, Account] = field(default_factory=dict)
    proxy: str | None = None
    """The proxy of every account that has none of its own: a URL without
    its password, or 'env'."""

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
        version = data.get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigError(f"config {path} has version {version!r}; upgrade stockup")
        accounts = data.get("accounts", {})
        if not isinstance(accounts, dict):
            raise ConfigError(f"config {path}: [accounts] must be a table")
        proxy = data.get("proxy")
        if proxy is not None:
            if not isinstance(proxy, str):
                raise ConfigError(f"config {path}: proxy must be a string")
            try:
                proxy = check_setting(proxy)
            except UsageError as exc:
                raise ConfigError(f"config {path}: {exc}", setting="proxy") from None
        return cls(
            {name: Account._from_toml(name, value) for name, value in accounts.items()}, proxy
        )

    def save(self, path: Path) -> None:
        document: dict[str, Any] = {"version": CONFIG_VERSION}
        if self.proxy:
            document["proxy"] = self.proxy
        document["accounts"] = {name: a._to_toml() for name, a in sorted(self.accounts.items())}
        atomic_write(path, tomli_w.dumps(document).encode("utf-8"))

    def get(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none yet"
            raise UnknownAccount(f"no account named {name!r} (accounts: {known})") from None
