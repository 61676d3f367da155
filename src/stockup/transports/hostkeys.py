"""stockup's own known-hosts file (OpenSSH format), separate from ~/.ssh."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stockup.fsutil import atomic_write

if TYPE_CHECKING:  # asyncssh is imported only when SFTP is used: it is slow to load
    import asyncssh


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def keys_for(self, host: str, port: int) -> list[asyncssh.SSHKey]:
        import asyncssh

        pattern = host_pattern(host.lower(), port)
        keys = []
        for line in self._lines():
            fields = line.split()
            if len(fields) >= 3 and not line.startswith("#") and pattern in fields[0].split(","):
                keys.append(asyncssh.import_public_key(f"{fields[1]} {fields[2]}"))
        return keys

    def add(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Record a key for a host that has none; changed keys are never replaced here."""
        public = key.export_public_key("openssh").decode().strip()
        entry = f"{host_pattern(host.lower(), port)} {public}"
        lines = [*self._lines(), entry]
        atomic_write(self.path, ("\n".join(lines) + "\n").encode(), mode=0o600)
