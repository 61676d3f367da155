"""The library API for accounts and credentials, used by the CLI and the web UI.

Every change runs as one transaction under the writers' lock: load config and
vault, change them, write the vault, then the config. A crash in between
leaves at worst an unused vault record, never a config entry without secrets
being mistaken for one with them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from stockup import keychain
from stockup.catalogue import get_agency
from stockup.config import (
    Account,
    Config,
    active_mode_refused,
    check_account_name,
    normalise_pin,
)
from stockup.credentials import Credentials
from stockup.errors import (
    AccountExists,
    ConfigError,
    EndpointNeedsLogin,
    PlaintextRefused,
    UsageError,
    VaultError,
    VaultExists,
    VaultMissing,
)
from stockup.fsutil import atomic_write, exclusive_lock
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths, default_paths
from stockup.proxy import DIRECT, FROM_ENVIRONMENT, Proxy, check_setting, from_environment
from stockup.secret import Secret
from stockup.transports import get_protocol
from stockup.vault import KdfParams, Vault


@dataclass
class AccountOptions:
    """What the user says when adding an account; unset fields come from the catalogue."""

    agency: str
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    remote_dir: str | None = None
    ca_file: str | None = None
    pin_sha256: str | None = None
    connections: int | None = None
    allow_plaintext: bool = False
    passive: bool = True
    rename: bool = True
    login: str = "password"
    key_file: str | None = None
    allow_sha1: bool = False
    rules: str | None = None
    proxy: str | None = None


def build_account(name: str, options: AccountOptions) -> Account:
    """Fill an account from the agency's catalogue entry and the user's options;
    refuse plain FTP unless the user opted in."""
    check_account_name(name)
    agency = get_agency(options.agency)
    if agency.is_custom and not (options.host and options.protocol):
        raise UsageError("a custom server needs its host and protocol", setting="host")
    if agency.host_from_panel and not options.host:
        raise UsageError(
            f"{agency.name} shows the upload host in its contributor panel; give that host "
            f"(seen: {agency.host})",
            setting="host",
        )
    if agency.port_from_panel and not options.port:
        raise UsageError(
            f"{agency.name} shows the upload port in its contributor panel (not the usual "
            f"{agency.port}); give that port",
            setting="port",
        )
    protocol = options.protocol or agency.protocol
    if protocol == "ftp" and not options.allow_plaintext:
        raise PlaintextRefused(
            f"{'this account' if options.protocol else agency.name} uses plain FTP, which sends "
            "your password in clear text to anyone on the path; allow plain FTP to accept",
            setting="allow_plaintext",
        )
    port = options.port or (
        agency.port
        if protocol == agency.protocol and agency.port
        else get_protocol(protocol).default_port
    )
    ca_file = _ca_file(options.ca_file) if options.ca_file is not None else None
    return Account(
        name=name,
        agency=agency.id,
        protocol=protocol,
        host=_host(options.host or agency.host),
        port=port,
        remote_dir=options.remote_dir or "",
        connections=options.connections,
        allow_plaintext=options.allow_plaintext,
        ca_file=ca_file,
        pin_sha256=normalise_pin(options.pin_sha256) if options.pin_sha256 else None,
        passive=options.passive,
        rename=options.rename,
        login=options.login,
        key_file=options.key_file,
        allow_sha1=options.allow_sha1,
        rules=_rules_for(agency.id, options.rules),
        folders={} if options.remote_dir else dict(agency.folders),
        proxy=options.proxy or None,
    )


@dataclass
class AccountChanges:
    """What `account edit` changes; None leaves a setting as it is."""

    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    remote_dir: str | None = None
    """"" clears it: files go to the agency's folders again."""
    ca_file: str | None = None
    """"" clears it."""
    pin_sha256: str | None = None
    """"" clears it."""
    connections: int | None = None
    """0 clears it: the agency's number again."""
    allow_plaintext: bool | None = None
    passive: bool | None = None
    rename: bool | None = None
    login: str | None = None
    key_file: str | None = None
    allow_sha1: bool | None = None
    rules: str | None = None
    """"" drops them."""
    proxy: str | None = None
    """"" clears it: the global proxy setting again."""

    def given(self) -> dict[str, Any]:
        """The settings that change."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not None}


def edit_account(account: Account, changes: AccountChanges) -> Account:
    """``account`` with ``changes`` applied and checked as `account add` checks them."""
    given = changes.given()
    agency = get_agency(account.agency)
    protocol = given.get("protocol", account.protocol)
    get_protocol(protocol)
    if "protocol" in given and "port" not in given:
        # Follow the protocol's port unless the account had a port of its own.
        old_default = get_protocol(account.protocol).default_port
        if account.port in (old_default, agency.port):
            given["port"] = (
                agency.port if protocol == agency.protocol and agency.port
                else get_protocol(protocol).default_port
            )  # fmt: skip
    if protocol == "ftp" and not given.get("allow_plaintext", account.allow_plaintext):
        raise PlaintextRefused(
            "plain FTP sends your password in clear text to anyone on the path; "
            "allow plain FTP to accept",
            setting="allow_plaintext",
        )
    if "host" in given:
        given["host"] = _host(given["host"])
    if "remote_dir" in given:
        given["folders"] = {} if given["remote_dir"] else dict(agency.folders)
    if "rules" in given:
        given["rules"] = _rules_for(agency.id, given["rules"] or None)
    if given.get("ca_file"):
        given["ca_file"] = _ca_file(given["ca_file"])
    if given.get("pin_sha256"):
        given["pin_sha256"] = normalise_pin(given["pin_sha256"])
    for key, cleared in (
        ("ca_file", ""), ("pin_sha256", ""), ("connections", 0), ("proxy", "")
    ):  # fmt: skip
        if key in given and given[key] == cleared:
            given[key] = None
    return replace(account, **given)


def _host(host: str) -> str:
    """A host as a transport dials it: lower case, an IPv6 literal without
    the brackets a URL or `--host [::1]` puts around it."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def proxy_for(config: Config, account: Account) -> Proxy | None:
    """The proxy an account's connections go through (its own setting, else
    the global one), without its password; None: directly."""
    setting = account.proxy if account.proxy is not None else config.proxy
    if setting is None or setting == DIRECT:
        return None
    proxy = from_environment(account.host) if setting == FROM_ENVIRONMENT else Proxy.parse(setting)
    if proxy is not None and not account.passive:
        raise ConfigError(active_mode_refused(account.name), setting="proxy")
    return proxy


def _proxy_records(config: Config) -> set[str]:
    """The vault records of the proxies config.toml names with a login."""
    settings = [config.proxy, *(a.proxy for a in config.accounts.values())]
    proxies = [Proxy.parse(s) for s in settings if s not in (None, DIRECT, FROM_ENVIRONMENT)]
    return {p.vault_record for p in proxies if p.username}


def _rules_for(agency: str, rules: str | None) -> str | None:
    """Agency rules for a custom server: an agency id, checked."""
    if rules is None:
        return None
    if agency != "custom":
        raise UsageError(
            "agency rules can be chosen for a custom server only; an agency account "
            "has its agency's",
            setting="rules",
        )
    return get_agency(rules).id


def _ca_file(path: str) -> str:
    ca = Path(path).expanduser().absolute()
    if not ca.is_file():
        raise UsageError(f"CA file {path}: no such file", setting="ca_file")
    return str(ca)


class Store:
    def __init__(self, paths: Paths | None = None) -> None:
        self.paths = paths or default_paths()

    # -- vault --------------------------------------------------------------

    def vault_exists(self) -> bool:
        return self.paths.vault_file.exists()

    def init_vault(
        self,
        passphrase: PassphraseSource | None,
        *,
        kdf: KdfParams | None = None,
    ) -> Vault:
        """Create the vault: under a passphrase, or (``passphrase=None``) with
        its data key in the OS keychain."""
        with exclusive_lock(self.paths.lock_file):
            if self.vault_exists():
                raise VaultExists(f"a vault already exists at {self.paths.vault_file}")
            if passphrase is None:
                held_by: list[str] = []

                def keep(vault_id: str, key: bytes) -> None:
                    held_by.append(keychain.store_data_key(vault_id, key))

                vault = Vault.create(self.paths.vault_file, keychain_store=keep)
                vault.save()
                atomic_write(self.paths.keychain_file, held_by[0].encode() + b"\n")
            else:
                vault = Vault.create(self.paths.vault_file, passphrase=passphrase.get(), kdf=kdf)
                vault.save()
        return vault

    def open_vault(self, passphrase: PassphraseSource) -> Vault:
        return Vault.load(self.paths.vault_file, passphrase.get, self._fetch_data_key)

    def _fetch_data_key(self, vault_id: str) -> bytes:
        """From the keychain that took it (a vault made before stockup kept
        that name, or whose note is lost, lets keyring find one)."""
        recorded = None
        with (
            contextlib.suppress(OSError, UnicodeDecodeError),
            self.paths.keychain_file.open(encoding="ascii") as note,
        ):
            # A backend's name, so a line at most: whatever else the file holds is not read.
            recorded = note.readline(keychain.MAX_NAME_CHARS).strip()
        return keychain.fetch_data_key(vault_id, recorded)

    def change_passphrase(
        self, old: PassphraseSource, new: PassphraseSource, *, kdf: KdfParams | None = None
    ) -> None:
        with self._transaction(old) as (vault, _):
            if vault.key_source != "passphrase":
                raise VaultError(
                    "this vault keeps its key in the OS keychain; it has no passphrase"
                )
            vault.set_passphrase(new.get(), kdf)

    # -- accounts -----------------------------------------------------------

    def config(self) -> Config:
        return Config.load(self.paths.config_file)

    def add_account(
        self,
        account: Account,
        credentials: Credentials,
        passphrase: PassphraseSource,
        *,
        replace: bool = False,
        proxy_password: Secret | None = None,
    ) -> None:
        """``proxy_password``: the login of the account's own proxy, when its
        URL names a user."""
        with self._transaction(passphrase) as (vault, config):
            if account.name in config.accounts and not replace:
                raise AccountExists(
                    f"account {account.name!r} exists; remove it first, or change its password "
                    f"with `stockup account password {account.name}`"
                )
            _save_proxy_login(vault, account.proxy, proxy_password)
            vault.put(account.name, account.binding, credentials)
            config.accounts[account.name] = account

    def set_credentials(
        self, name: str, credentials: Credentials, passphrase: PassphraseSource
    ) -> None:
        """Store new credentials for ``name``, bound to its current endpoint
        and trust settings."""
        with self._transaction(passphrase) as (vault, config):
            vault.put(name, config.get(name).binding, credentials)

    def edit_account(
        self,
        name: str,
        changes: AccountChanges,
        passphrase: PassphraseSource,
        credentials: Credentials | None = None,
        proxy_password: Secret | None = None,
    ) -> Account:
        """Change an account's settings. The password is bound to the server
        (protocol, host, port): when that changes, ``credentials`` must come
        with it, and are stored for the new server; otherwise they may be None."""
        with self._transaction(passphrase) as (vault, config):
            old = config.get(name)
            new = edit_account(old, changes)
            _save_proxy_login(vault, new.proxy, proxy_password)
            if new.endpoint != old.endpoint and credentials is None:
                raise EndpointNeedsLogin(
                    f"the server of {name} changes from {old.endpoint} to {new.endpoint}: "
                    "give the login for the new server (the saved password stays bound to "
                    "the old one)"
                )
            if credentials is None and new.binding != old.binding:
                # Same server, trusted another way (a new pin or CA file) through
                # stockup itself: the saved login moves to the new binding.
                credentials = vault.get(name, old.binding)
            if credentials is not None:
                vault.put(name, new.binding, credentials)
            config.accounts[name] = new
        return new

    def remove_account(self, name: str, passphrase: PassphraseSource) -> None:
        with self._transaction(passphrase) as (vault, config):
            config.get(name)
            del config.accounts[name]
            vault.remove(name)

    def set_proxy(
        self, setting: str | None, passphrase: PassphraseSource, proxy_password: Secret | None
    ) -> None:
        """The global proxy: a URL (its password in the vault), 'env', or None."""
        with self._transaction(passphrase) as (vault, config):
            config.proxy = None if setting is None else _global(setting)
            _save_proxy_login(vault, config.proxy, proxy_password)

    def credentials(self, name: str, passphrase: PassphraseSource) -> tuple[Account, Credentials]:
        config = self.config()
        account = config.get(name)
        return account, _login(self.open_vault(passphrase), config, account)

    def credentials_for(
        self, accounts: list[Account], passphrase: PassphraseSource
    ) -> dict[str, Credentials]:
        """Every account's login by name, from one opening of the vault."""
        vault, config = self.open_vault(passphrase), self.config()
        return {a.name: _login(vault, config, a) for a in accounts}

    @contextlib.contextmanager
    def _transaction(self, passphrase: PassphraseSource) -> Iterator[tuple[Vault, Config]]:
        with exclusive_lock(self.paths.lock_file):
            config = self.config()
            vault = self.open_vault(passphrase)
            yield vault, config
            in_use = _proxy_records(config)
            for record in vault.accounts():
                if record.startswith("proxy:") and record not in in_use:
                    vault.remove(record)  # nothing names that proxy any more
            vault.save()
            config.save(self.paths.config_file)


def _global(setting: str) -> str:
    if setting.strip() == DIRECT:
        raise UsageError("'direct' is an account's setting; clear the global proxy instead")
    return check_setting(setting)


def _save_proxy_login(vault: Vault, setting: str | None, password: Secret | None) -> None:
    """Keep the password of a proxy whose URL names a user: the one given,
    or the one the vault has for that URL already."""
    if setting in (None, DIRECT, FROM_ENVIRONMENT):
        if password is not None:
            raise UsageError("a proxy password goes with a proxy URL that names a user")
        return
    proxy = Proxy.parse(setting)
    if proxy.username is None:
        if password is not None:
            raise UsageError(
                "the proxy URL names no user: write it as scheme://user@host:port", setting="proxy"
            )
        return
    if password is not None:
        vault.put(proxy.vault_record, proxy.url, Credentials(proxy.username, password))
    elif proxy.vault_record not in vault.accounts():
        raise UsageError(f"give the password of proxy {proxy.url}", setting="proxy_password")


def _login(vault: Vault, config: Config, account: Account) -> Credentials:
    """The account's login from the vault, with the proxy it goes through."""
    credentials = vault.get(account.name, account.binding)
    proxy = proxy_for(config, account)
    if proxy is not None and proxy.username and proxy.password is None:
        try:
            proxy = proxy.with_password(vault.get(proxy.vault_record, proxy.url).password)
        except VaultMissing:
            raise VaultMissing(
                f"the vault holds no password for proxy {proxy.url}; set the proxy again "
                "with its password"
            ) from None
    return replace(credentials, proxy=proxy)
