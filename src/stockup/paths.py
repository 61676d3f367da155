"""Where stockup keeps its files.

Everything comes from platformdirs, except when ``STOCKUP_HOME`` is set: then
config, vault and state all live under that one directory (tests and portable
installs use it).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "stockup"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    state_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def vault_file(self) -> Path:
        return self.data_dir / "vault.json"

    @property
    def keychain_file(self) -> Path:
        """Which OS keychain holds a keychain vault's key (a keyring backend's name)."""
        return self.data_dir / "vault.keychain"

    @property
    def lock_file(self) -> Path:
        """One lock guards every read-modify-write of the vault and the config."""
        return self.data_dir / "vault.lock"

    @property
    def known_hosts_file(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def journal_file(self) -> Path:
        return self.state_dir / "journal.sqlite3"

    def upload_lock(self, account: str) -> Path:
        """Held while a run uploads to ``account`` (account names are file-safe)."""
        return self.state_dir / "locks" / f"upload-{account}.lock"


def default_paths() -> Paths:
    home = os.environ.get("STOCKUP_HOME")
    if home:
        root = Path(home).expanduser().absolute()
        return Paths(config_dir=root, data_dir=root, state_dir=root / "state")
    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
        state_dir=Path(platformdirs.user_state_dir(APP_NAME)),
    )


def ensure_private_dir(path: Path) -> Path:
    """Create ``path``, and every missing parent, readable by the owner only
    (``mkdir(parents=True)`` would give the parents the umask's 0755). Folders
    that exist already are left as they are."""
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    return path
