"""The upload journal: SQLite in WAL mode under the state directory.

One row per (account, remote path) says what the server holds:
``uploading`` (a partial ``.stockup-part`` may exist: resume it), ``uploaded``
or ``failed`` (:class:`~stockup.results.Status`), with the content's SHA-256 so
an unchanged file is skipped and a changed one is never resumed onto the old
bytes. ``events`` keeps the history of every run: each file's size, the bytes
sent and the offset a run resumed from. Content hashes are cached by path,
size and mtime. Times are stored in UTC and shown in local time.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from stockup.errors import JournalBusy, JournalDamaged, StateError
from stockup.paths import ensure_private_dir
from stockup.results import OUTCOMES, FileResult, Status
from stockup.secret import redact
from stockup.similar import ImageHash
from stockup.text import storable

SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transfers (
    account TEXT NOT NULL, remote_path TEXT NOT NULL, local_path TEXT NOT NULL,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('uploading', 'uploaded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (account, remote_path)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at TEXT NOT NULL,
    account TEXT NOT NULL, local_path TEXT NOT NULL, remote_path TEXT NOT NULL,
    status TEXT NOT NULL, bytes INTEGER NOT NULL, attempts INTEGER NOT NULL, error TEXT,
    size INTEGER NOT NULL DEFAULT 0, resumed_from INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_account ON events (account, at);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id);
CREATE TABLE IF NOT EXISTS image_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    plain TEXT NOT NULL, mirrored TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sent_images (
    account TEXT NOT NULL, remote_path TEXT NOT NULL, file TEXT NOT NULL,
    plain TEXT NOT NULL, mirrored TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (account, remote_path)
);
"""
# Columns added since the first release, for journals written before them.
ADDED_COLUMNS = {
    "events": {
        "size": "INTEGER NOT NULL DEFAULT 0",
        "resumed_from": "INTEGER NOT NULL DEFAULT 0",
    }
}
HISTORY_COLUMNS = [
    "run", "at", "account", "file", "remote_path", "status", "size", "bytes", "resumed_from",
    "attempts", "error",
]  # fmt: skip


def file_sha256(path: Path) -> tuple[int, int, str]:
    """Size, mtime and SHA-256 of a file; safe to run in a worker thread."""
    stat = path.stat()
    with path.open("rb") as handle:
        # Reads into one buffer it reuses: 10 % less CPU than a new block per read.
        digest = hashlib.file_digest(handle, "sha256")
    return stat.st_size, stat.st_mtime_ns, digest.hexdigest()


def _clean(error: str | None) -> str | None:
    """Errors are redacted where they are made (a TransportError, an internal
    error); once more here, because nothing written to disk may carry a secret."""
    return redact(error) if error else error


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def local_time(stamp: str) -> str:
    """A stored UTC time as local time with its zone, e.g. ``2026-11-27 13:05:09 CET``."""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True)
class Transfer:
    account: str
    remote_path: str
    sha256: str
    size: int
    status: str
    attempts: int
    last_error: str | None
    updated_at: str
    """When the row last changed, in UTC (for an upload: when it arrived)."""


@dataclass(frozen=True)
class SentImage:
    file: str
    remote_path: str
    at: str
    hash: ImageHash


def journal_error(exc: sqlite3.Error | OSError, path: Path) -> StateError:
    """What went wrong with the journal, and what the user can do about it."""
    text = str(exc)
    if isinstance(exc, OSError):
        return StateError(f"cannot use the journal {path}: {exc.strerror or exc}")
    if "locked" in text or "busy" in text:
        return JournalBusy(
            f"the journal {path} is busy: another stockup is writing it; try again in a moment"
        )
    if "full" in text:
        return StateError(
            f"no room on the disk for the journal {path}; free some space and run again"
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return JournalDamaged(
            f"the journal {path} is damaged ({text}). Move it aside (rename it to "
            f"{path.name}.damaged) and run again: stockup then starts a new, empty journal. "
            "It will not know what was uploaded before, so a file sent earlier is sent again "
            "unless you leave it out"
        )
    return StateError(f"the journal {path}: {text}")


def _storable(parameters: Any) -> Any:
    """Statement parameters as SQLite takes them: a path or name with a byte
    that is not UTF-8 (a file named on another system) is text SQLite
    cannot store, and would stop the whole run; it is kept as ``\\xNN``."""
    if isinstance(parameters, dict):
        return {k: storable(v) if isinstance(v, str) else v for k, v in parameters.items()}
    return [storable(v) if isinstance(v, str) else v for v in parameters]


class _Guarded:
    """The SQLite connection, with every error turned into a stockup error
    that says what to do (never "internal error (DatabaseError)")."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # One run plans in a worker thread and sends on the event loop, one
            # after the other, never at once: the connection may change threads.
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise journal_error(exc, path) from None

    def execute(self, sql: str, parameters: Any = ()) -> None:
        try:
            self._db.execute(sql, _storable(parameters))
        except sqlite3.Error as exc:
            raise journal_error(exc, self.path) from None

    def rows(self, sql: str, parameters: Any = ()) -> list[Any]:
        """Every row the statement gives, read here: a damaged page can show
        while rows are read, after the statement has started."""
        try:
            return self._db.execute(sql, _storable(parameters)).fetchall()
        except sqlite3.Error as exc:
            raise journal_error(exc, self.path) from None

    def row(self, sql: str, parameters: Any = ()) -> Any:
        """The first row, or None."""
        found = self.rows(sql, parameters)
        return found[0] if found else None

    def executescript(self, script: str) -> None:
        try:
            self._db.executescript(script)
        except sqlite3.Error as exc:
            raise journal_error(exc, self.path) from None

    def close(self) -> None:
        self._db.close()


class Journal:
    def __init__(self, path: Path) -> None:
        ensure_private_dir(path.parent)
        self.path = path
        # A damaged page can pass the statements below. Reading the whole file
        # for one takes 0.2 s per 200,000 uploads recorded, on every run, so it
        # is read only when the last writer did not close the journal (its
        # write-ahead log is still there: a crash, a kill, another stockup
        # still running). Otherwise the file must be as long as its header
        # says (not cut short by a copy or a full disk); damage anywhere else
        # is reported as damage when its page is read, before a transfer that
        # needs it is sent.
        wal = path.with_name(f"{path.name}-wal")
        try:
            left_open = wal.exists() and wal.stat().st_size > 0
            length = path.stat().st_size if path.exists() else 0
        except OSError as exc:
            raise journal_error(exc, path) from None
        self._db = _Guarded(path)
        try:
            if not left_open:  # before anything is written
                (pages,) = self._db.row("PRAGMA page_count")
                (page_size,) = self._db.row("PRAGMA page_size")
                if pages * page_size > length:
                    verdict = f"{length} bytes, where its header says {pages * page_size}"
                    raise journal_error(sqlite3.DatabaseError(verdict), path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            for table, columns in ADDED_COLUMNS.items():
                have = {row[1] for row in self._db.rows(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            if left_open:
                (verdict,) = self._db.row("PRAGMA quick_check")
                if verdict != "ok":
                    raise journal_error(sqlite3.DatabaseError(verdict), path)
            path.chmod(0o600)
        except BaseException:
            self._db.close()
            raise

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
        row = self._db.row(
            "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path.resolve()), stat.st_size, stat.st_mtime_ns),
        )
        return str(row[0]) if row else None

    def store_sha256(self, path: Path, size: int, mtime_ns: int, value: str) -> str:
        self._db.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
            (str(path.resolve()), size, mtime_ns, value),
        )
        return value

    # -- perceptual hashes (stockup.similar) ------------------------------------

    def cached_image_hash(self, path: Path) -> ImageHash | None:
        stat = path.stat()
        row = self._db.row(
            "SELECT plain, mirrored FROM image_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(path.resolve()), stat.st_size, stat.st_mtime_ns),
        )
        return ImageHash(int(row[0], 16), int(row[1], 16)) if row else None

    def store_image_hash(self, path: Path, value: ImageHash) -> None:
        stat = path.stat()
        self._db.execute(
            "INSERT OR REPLACE INTO image_hashes VALUES (?, ?, ?, ?, ?)",
            (str(path.resolve()), stat.st_size, stat.st_mtime_ns, f"{value.plain:016x}",
             f"{value.mirrored:016x}"),
        )  # fmt: skip

    def record_sent_image(
        self, account: str, remote_path: str, file: str, value: ImageHash
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sent_images VALUES (?, ?, ?, ?, ?, ?)",
            (account, remote_path, file, f"{value.plain:016x}", f"{value.mirrored:016x}", now()),
        )

    def sent_images(self, account: str) -> list[SentImage]:
        """What an account was sent, with each image's hash: to warn about a
        new file that shows a motif the agency already has."""
        rows = self._db.rows(
            "SELECT file, remote_path, at, plain, mirrored FROM sent_images WHERE account = ?",
            (account,),
        )
        return [
            SentImage(file, remote, local_time(at), ImageHash(int(plain, 16), int(mirrored, 16)))
            for file, remote, at, plain, mirrored in rows
        ]

    # -- transfers ----------------------------------------------------------

    def get(self, account: str, remote_path: str) -> Transfer | None:
        row = self._db.row(
            "SELECT account, remote_path, sha256, size, status, attempts, last_error, updated_at "
            "FROM transfers WHERE account = ? AND remote_path = ?",
            (account, remote_path),
        )
        return Transfer(*row) if row else None

    def start_attempt(
        self, account: str, remote_path: str, local: str, sha256: str, size: int
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
            (account, remote_path, local, sha256, size, stamp, stamp),
        )

    def finish(self, account: str, remote_path: str, status: Status, error: str | None) -> None:
        self._db.execute(
            "UPDATE transfers SET status = ?, last_error = ?, updated_at = ? "
            "WHERE account = ? AND remote_path = ?",
            (str(status), _clean(error), now(), account, remote_path),
        )

    # -- history ------------------------------------------------------------

    def record(self, run_id: str, result: FileResult) -> None:
        """Add a finished file to the history. A decision made before sending
        (skipped, rejected) that repeats the last entry for the same file and
        account word for word is not added again: a re-run of an unchanged
        batch does not fill the history with the same rejections."""
        if result.status in (Status.SKIPPED, Status.REJECTED):
            last = self._db.row(
                "SELECT status, remote_path, error FROM events "
                "WHERE account = ? AND local_path = ? ORDER BY id DESC LIMIT 1",
                (result.account, result.file),
            )
            if last == (str(result.status), result.remote_path, _clean(result.error)):
                return
        self._db.execute(
            "INSERT INTO events (run_id, at, account, local_path, remote_path, status, size, "
            "bytes, resumed_from, attempts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                now(),
                result.account,
                result.file,
                result.remote_path,
                str(result.status),
                result.size,
                result.bytes,
                result.resumed_from,
                result.attempts,
                _clean(result.error),
            ),
        )

    def history(
        self,
        account: str | None = None,
        limit: int = 1000,
        *,
        status: str | None = None,
        text: str | None = None,
        run: str | None = None,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` events, newest first, with local times; ``text``
        matches the local or remote path, case-insensitively."""
        rows = self._db.rows(
            "SELECT run_id, at, account, local_path, remote_path, status, size, bytes, "
            "resumed_from, attempts, error "
            "FROM events WHERE (:account IS NULL OR account = :account) "
            "AND (:status IS NULL OR status = :status) "
            "AND (:run IS NULL OR run_id = :run) "
            "AND (:text IS NULL OR instr(lower(local_path), :text) "
            "     OR instr(lower(remote_path), :text)) "
            "ORDER BY id DESC LIMIT :limit",
            {
                "account": account or None,
                "status": status or None,
                "run": run or None,
                "text": text.lower() if text else None,
                "limit": limit,
            },
        )
        entries = [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]
        for entry in entries:
            entry["at"] = local_time(entry["at"])
        return entries

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs, newest first: when, which accounts, counts per outcome."""
        counts = ", ".join("sum(status = ?)" for _ in OUTCOMES)
        rows = self._db.rows(
            f"SELECT run_id, min(at), group_concat(DISTINCT account), count(*), {counts}, "  # noqa: S608  # placeholders only
            "sum(bytes) FROM events GROUP BY run_id ORDER BY max(id) DESC LIMIT ?",
            (*(str(s) for s in OUTCOMES), limit),
        )
        runs = []
        for run_id, at, accounts, files, *counts, sent in rows:
            runs.append(
                {
                    "run": run_id,
                    "at": local_time(at),
                    "accounts": sorted(accounts.split(",")),
                    "files": files,
                    **{str(s): n for s, n in zip(OUTCOMES, counts, strict=True)},
                    "bytes": sent,
                }
            )
        return runs


def spreadsheet_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return (OWASP's list for CSV injection)
    gets a leading apostrophe. File names and server replies are not ours."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_history_csv(rows: list[dict[str, Any]], stream: TextIO) -> None:
    """History rows as CSV with a header line, for spreadsheets."""
    writer = csv.DictWriter(stream, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
