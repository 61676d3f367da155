"""The self-contained demonstration behind `make demo`: nothing leaves loopback."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from stockup.catalogue import load_catalogue
from stockup.cli import output
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths
from stockup.secret import Secret
from stockup.store import AccountOptions, Store, build_account
from stockup.vault import Credentials, KdfParams


def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="stockup-demo-") as tmp:
        root = Path(tmp)
        store = Store(Paths(config_dir=root, data_dir=root, state_dir=root / "state"))
        output.info(f"1. The agency catalogue ({len(load_catalogue())} entries):")
        for agency in load_catalogue().values():
            output.info(f"   {agency.id:14} {agency.name:18} {agency.security}")

        passphrase = PassphraseSource(environ={"STOCKUP_PASSPHRASE": secrets.token_urlsafe(16)})
        store.init_vault(passphrase, kdf=KdfParams())
        output.info(f"2. Created a throwaway vault at {store.paths.vault_file}")

        password = Secret(secrets.token_urlsafe(12))
        account = build_account(
            "demo-sftp",
            AccountOptions(agency="custom", host="127.0.0.1", port=2222, protocol="sftp"),
        )
        store.add_account(account, Credentials("demo", password), passphrase)
        output.info(f"3. Added account {account.name} bound to {account.endpoint}")

        reopened = store.credentials(account.name, PassphraseSource(environ=passphrase.environ))
        assert reopened[1].password == password
        output.info(
            "4. Reopened the vault: the password round-trips; on disk it is only ciphertext"
        )
        assert password.reveal().encode() not in store.paths.vault_file.read_bytes()
    output.info("Demo finished; the throwaway vault was deleted.")
    return 0
