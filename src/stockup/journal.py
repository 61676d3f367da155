"""The upload journal: SQLite in WAL mode under the state directory.

One row per (account, remote path) says what the server holds: ``pending``,
``uploading`` (a partial ``.stockup-part`` may exist: resume it), ``uploaded``
or ``failed``, with the content's SHA-256 so an unchanged file is skipped and
a changed one is never resumed onto the old bytes. ``events`` keeps the
history of every run. Content hashes are cached by path, size and mtime.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from stockup.paths import ensure_private_dir
from stockup.secret import redact

SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transfers (
    account TEXT NOT NULL, remote_path TEXT NOT NULL, local_path TEXT NOT NULL,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'uploading', 'uploaded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (account, remote_path)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at TEXT NOT NULL,
    account TEXT NOT NULL, local_path TEXT NOT NULL, remote_path TEXT NOT NULL,
    status TEXT NOT NULL, bytes INTEGER NOT NULL, attempts INTEGER NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS events_account ON events (account, at);
"""
HASH_BLOCK = 1024 * 1024
HISTORY_COLUMNS = [
    "run", "at", "account", "file", "remote_path", "status", "bytes", "attempts", "error",
]  # fmt: skip
STATUSES = ("uploaded", "skipped", "rejected", "failed")


def file_sha256(path: Path) -> tuple[int, int, str]:
    """Size, mtime and SHA-256 of a file; safe to run in a worker thread."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return stat.st_size, stat.st_mtime_ns, digest.hexdigest()


def _clean(error: str | None) -> str | None:
    """Server replies end up in errors: never let one carry a secret to disk."""
    return redact(error) if error else error


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Transfer:
    account: str
    remote_path: str
    sha256: str
    size: int
    status: str
    attempts: int
    last_error: str | None


class Journal:
    def __init__(self, path: Path) -> None:
        ensure_private_dir(path.parent)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    # -- content hashes -----------------------------------------------------

    def sha256(self, path: Path) -> str:
        """The file's SHA-256, read once per (path, size, mtime)."""
        cached = self.cached_sha256(path)
        if cached is not None:
            return cached
        return self.store_sha256(path, *file_sha256(path))

    def cached_sha256(self, path: Path) -> str | None:
        stat = path.stat()
        row = self._db.execute(
            "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path.resolve()), stat.st_size, stat.st_mtime_ns),
        ).fetchone()
        return str(row[0]) if row else None

    def store_sha256(self, path: Path, size: int, mtime_ns: int, value: str) -> str:
        self._db.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
            (str(path.resolve()), size, mtime_ns, value),
        )
        return value

    # -- transfers ----------------------------------------------------------

    def get(self, account: str, remote_path: str) -> Transfer | None:
        row = self._db.execute(
            "SELECT account, remote_path, sha256, size, status, attempts, last_error "
            "FROM transfers WHERE account = ? AND remote_path = ?",
            (account, remote_path),
        ).fetchone()
        return Transfer(*row) if row else None

    def start_attempt(
        self, account: str, remote_path: str, local: Path, sha256: str, size: int
    ) -> None:
        """Record an attempt before any byte is sent; a different content resets the row."""
        stamp = now()
        self._db.execute(
            """INSERT INTO transfers VALUES (?, ?, ?, ?, ?, 'uploading', 1, NULL, ?, ?)
               ON CONFLICT (account, remote_path) DO UPDATE SET
                 local_path = excluded.local_path,
                 attempts = CASE WHEN transfers.sha256 = excluded.sha256
                                 AND transfers.status != 'uploaded'
                            THEN transfers.attempts + 1 ELSE 1 END,
                 sha256 = excluded.sha256, size = excluded.size,
                 status = 'uploading', updated_at = excluded.updated_at""",
            (account, remote_path, str(local), sha256, size, stamp, stamp),
        )

    def finish(self, account: str, remote_path: str, status: str, error: str | None) -> None:
        self._db.execute(
            "UPDATE transfers SET status = ?, last_error = ?, updated_at = ? "
            "WHERE account = ? AND remote_path = ?",
            (status, _clean(error), now(), account, remote_path),
        )

    # -- history ------------------------------------------------------------

    def record_event(
        self,
        run_id: str,
        account: str,
        local_path: str,
        remote_path: str,
        status: str,
        nbytes: int,
        attempts: int,
        error: str | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO events (run_id, at, account, local_path, remote_path, status, bytes, "
            "attempts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                now(),
                account,
                local_path,
                remote_path,
                status,
                nbytes,
                attempts,
                _clean(error),
            ),
        )

    def history(
        self,
        account: str | None = None,
        limit: int = 1000,
        *,
        status: str | None = None,
        text: str | None = None,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` events, oldest first; ``text`` matches the local
        or remote path, case-insensitively."""
        rows = self._db.execute(
            "SELECT run_id, at, account, local_path, remote_path, status, bytes, attempts, error "
            "FROM events WHERE (:account IS NULL OR account = :account) "
            "AND (:status IS NULL OR status = :status) "
            "AND (:text IS NULL OR instr(lower(local_path), :text) "
            "     OR instr(lower(remote_path), :text)) "
            "ORDER BY id DESC LIMIT :limit",
            {
                "account": account or None,
                "status": status or None,
                "text": text.lower() if text else None,
                "limit": limit,
            },
        ).fetchall()
        return [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in reversed(rows)]


def write_history_csv(rows: list[dict[str, Any]], stream: TextIO) -> None:
    """History rows as CSV with a header line, for spreadsheets."""
    writer = csv.DictWriter(stream, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
