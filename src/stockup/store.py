"""The library API for accounts and credentials, used by the CLI and the web UI.

Every change runs as one transaction under the writers' lock: load config and
vault, change them, write the vault, then the config. A crash in between
leaves at worst an unused vault record, never a config entry without secrets
being mistaken for one with them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stockup import keychain
from stockup.catalogue import DEFAULT_PORTS, get_agency
from stockup.config import Account, Config, check_account_name, normalise_pin
from stockup.errors import AccountExists, PlaintextRefused, UsageError, VaultError, VaultExists
from stockup.fsutil import exclusive_lock
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths, default_paths
from stockup.vault import Credentials, KdfParams, Vault


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


def build_account(name: str, options: AccountOptions) -> Account:
    """Fill an account from the agency's catalogue entry and the user's options;
    refuse plain FTP unless the user opted in."""
    check_account_name(name)
    agency = get_agency(options.agency)
    if agency.is_custom and not (options.host and options.protocol):
        raise UsageError("--agency custom needs --host and --protocol")
    if agency.host_from_panel and not options.host:
        raise UsageError(
            f"{agency.name} shows the upload host in its contributor panel; give it with --host "
            f"(seen: {agency.host})"
        )
    protocol = options.protocol or agency.protocol
    if protocol == "ftp" and not options.allow_plaintext:
        raise PlaintextRefused(
            f"{'this account' if options.protocol else agency.name} uses plain FTP, which sends "
            "your password in clear text to anyone on the path; add --allow-plaintext to accept"
        )
    port = options.port or (
        agency.port if protocol == agency.protocol and agency.port else DEFAULT_PORTS[protocol]
    )
    if options.ca_file is not None:
        ca = Path(options.ca_file).expanduser().absolute()
        if not ca.is_file():
            raise UsageError(f"--ca-file {options.ca_file}: no such file")
        ca_file: str | None = str(ca)
    else:
        ca_file = None
    return Account(
        name=name,
        agency=agency.id,
        protocol=protocol,
        host=(options.host or agency.host).lower(),
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
        folders={} if options.remote_dir else dict(agency.folders),
    )


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
                keychain.check_available()
                vault = Vault.create(self.paths.vault_file, keychain_store=keychain.store_data_key)
            else:
                vault = Vault.create(self.paths.vault_file, passphrase=passphrase.get(), kdf=kdf)
            vault.save()
        return vault

    def open_vault(self, passphrase: PassphraseSource) -> Vault:
        return Vault.load(self.paths.vault_file, passphrase.get, keychain.fetch_data_key)

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
    ) -> None:
        with self._transaction(passphrase) as (vault, config):
            if account.name in config.accounts and not replace:
                raise AccountExists(
                    f"account {account.name!r} exists; remove it first, or change its password "
                    f"with `stockup account password {account.name}`"
                )
            vault.put(account.name, account.endpoint, credentials)
            config.accounts[account.name] = account

    def set_credentials(
        self, name: str, credentials: Credentials, passphrase: PassphraseSource
    ) -> None:
        """Store new credentials for ``name``, bound to its current endpoint."""
        with self._transaction(passphrase) as (vault, config):
            vault.put(name, config.get(name).endpoint, credentials)

    def remove_account(self, name: str, passphrase: PassphraseSource) -> None:
        with self._transaction(passphrase) as (vault, config):
            config.get(name)
            del config.accounts[name]
            vault.remove(name)

    def credentials(self, name: str, passphrase: PassphraseSource) -> tuple[Account, Credentials]:
        account = self.config().get(name)
        return account, self.open_vault(passphrase).get(name, account.endpoint)

    def credentials_for(
        self, accounts: list[Account], passphrase: PassphraseSource
    ) -> dict[str, Credentials]:
        """Every account's login by name, from one opening of the vault."""
        vault = self.open_vault(passphrase)
        return {a.name: vault.get(a.name, a.endpoint) for a in accounts}

    @contextlib.contextmanager
    def _transaction(self, passphrase: PassphraseSource) -> Iterator[tuple[Vault, Config]]:
        with exclusive_lock(self.paths.lock_file):
            config = self.config()
            vault = self.open_vault(passphrase)
            yield vault, config
            vault.save()
            config.save(self.paths.config_file)
