"""Pre-upload checks: catch what an agency would reject before a byte is sent.

Facts come from each file's content (``facts``); the rules are catalogue data
applied in ``rules``. A vector and its same-name JPG preview are judged as a
pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockup.catalogue import Agency, get_agency
from stockup.checks.facts import VECTOR, FileFacts, read_facts
from stockup.checks.rules import Finding, evaluate, worst
from stockup.config import Account

PREVIEW_SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG")
VECTOR_SUFFIXES = tuple(f".{fmt}" for fmt in VECTOR)


@dataclass
class Verdict:
    facts: FileFacts
    agency: Agency | None
    """None: a custom server checked for valid files only."""
    target: str
    findings: list[Finding]

    @property
    def level(self) -> str:
        return worst(self.findings)

    @property
    def judge(self) -> str:
        """Who judges: the agency, or the account of a custom server."""
        return self.agency.name if self.agency else f"{self.target} (valid files only)"

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.level == "error"]

    def to_json(self) -> dict[str, Any]:
        meta = self.facts.metadata
        return {
            "file": str(self.facts.path),
            "target": self.target,
            "agency": self.agency.id if self.agency else None,
            "level": self.level,
            "findings": [f.to_json() for f in self.findings],
            "format": self.facts.format,
            "width": self.facts.width,
            "height": self.facts.height,
            "title": meta.title,
            "keywords": meta.keywords,
        }


class Batch:
    """The files of one run with their facts, read once, and their pairings."""

    def __init__(self, files: list[Path]) -> None:
        self.facts = {path: read_facts(path) for path in files}
        self.preview_of: dict[Path, Path] = {}  # preview JPG -> its vector
        self.vector_preview: dict[Path, Path] = {}  # vector -> its preview JPG
        for path in files:
            if path.suffix.lower() not in VECTOR_SUFFIXES:
                continue
            for suffix in PREVIEW_SUFFIXES:
                preview = path.with_suffix(suffix)
                if preview in self.facts:
                    self.preview_of[preview] = path
                    self.vector_preview[path] = preview
                    break

    @property
    def files(self) -> list[Path]:
        return list(self.facts)

    def media(self, path: Path) -> str:
        return "vector" if path in self.preview_of else self.facts[path].media

    def verdict(
        self, path: Path, agency: Agency | None, target: str, *, safe_names: bool = False
    ) -> Verdict:
        findings = evaluate(
            self.facts[path],
            agency,
            has_preview=path in self.vector_preview,
            is_preview=path in self.preview_of,
            check_name=not safe_names,
        )
        return Verdict(self.facts[path], agency, target, findings)


def rules_agency(account: Account) -> Agency | None:
    """Whose rules an account's files are checked against: its agency's, or
    for a custom server the agency it opted into (``--rules``), or none."""
    if account.agency != "custom":
        return get_agency(account.agency)
    return get_agency(account.rules) if account.rules else None


def check_files(files: list[Path], targets: Sequence[tuple[str, Agency | None]]) -> list[Verdict]:
    """A verdict for every file at every target (account name or agency id)."""
    batch = Batch(files)
    return [batch.verdict(path, agency, name) for path in batch.files for name, agency in targets]
