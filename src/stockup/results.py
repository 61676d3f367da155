"""What became of each file at each account: one status vocabulary for the
engine, the journal, history, the CLI and the web UI, and the typed summary
an upload returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    UPLOADING = "uploading"
    """Journal only: an attempt started; a partial file may be on the server."""
    UPLOADED = "uploaded"
    SKIPPED = "skipped"
    """Decided before sending: already there, or not taken by the agency."""
    REJECTED = "rejected"
    """The pre-upload checks found an error for this agency."""
    FAILED = "failed"
    CANCELLED = "cancelled"
    """The run was stopped before this file was sent; the next run resumes it."""


OUTCOMES = (Status.UPLOADED, Status.SKIPPED, Status.REJECTED, Status.FAILED, Status.CANCELLED)
"""Every status a finished file can have (all but ``uploading``)."""
PROBLEMS = (Status.FAILED, Status.REJECTED, Status.CANCELLED)


@dataclass
class FileResult:
    file: str
    """The file as the user named it (a path, or where the web UI got it from)."""
    account: str
    remote_path: str
    status: Status
    bytes: int = 0
    """Bytes sent in this run."""
    attempts: int = 0
    error: str | None = None
    size: int = 0
    """The size of what was sent (the file, or its ZIP)."""
    resumed_from: int = 0
    """Where this run took over a partial file left by an earlier one."""

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "account": self.account,
            "remote_path": self.remote_path,
            "status": str(self.status),
            "bytes": self.bytes,
            "size": self.size,
            "resumed_from": self.resumed_from,
            "attempts": self.attempts,
            "error": self.error,
        }


@dataclass
class Summary:
    """What an upload did, counted once for every front end."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def problems(self) -> list[FileResult]:
        """Failed, rejected and cancelled files, with their reasons."""
        return [r for r in self.results if r.status in PROBLEMS]

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """One line of counts, as every front end prints it."""
        counts = ", ".join(
            f"{self.count(s)} {s}" for s in OUTCOMES if s != Status.CANCELLED or self.count(s)
        )
        return f"{counts} ({self.bytes_sent:,} bytes sent)"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {str(s): self.count(s) for s in OUTCOMES}
        data["bytes"] = self.bytes_sent
        data["failures"] = [
            {"account": r.account, "file": r.file, "status": str(r.status), "error": r.error}
            for r in self.problems
        ]
        return data
