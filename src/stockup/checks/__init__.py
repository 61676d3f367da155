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
from stockup.errors import UsageError
from stockup.journal import Journal, SentImage
from stockup.similar import (
    RASTER_FORMATS,
    SIMILAR_DISTANCE,
    ImageHash,
    Match,
    SimilarLimits,
    compute_all,
    near_duplicates,
)

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
        self.hashes: dict[Path, ImageHash] = {}
        self.similar: dict[Path, list[Match]] = {}
        self.motif: dict[Path, list[Path]] = {}
        """For each image in a group of near-duplicates: the group, by name."""
        self.limits = SimilarLimits()
        self.sent_like: dict[tuple[str, Path], list[SentImage]] = {}
        """Per account and image: what the account was sent before that looks
        like it (not the file itself, sent again)."""

    def compare_images(
        self,
        journal: Journal | None,
        targets: Sequence[tuple[str, Agency | None]] = (),
        limits: SimilarLimits | None = None,
    ) -> None:
        """Hash the batch's images (a journal keeps the hashes) and find
        near-duplicates, within the batch and against what each account has."""
        self.limits = limits or SimilarLimits()
        known = {name for name, _ in targets} | {a.id for _, a in targets if a is not None}
        if unknown := sorted(set(dict(self.limits.per_target)) - known):
            raise UsageError(
                f"--max-similar names {', '.join(unknown)}: no account or agency of this run",
                setting="max_similar",
            )
        images = [
            p for p, f in self.facts.items()
            if f.format in RASTER_FORMATS and not f.error and p not in self.preview_of
        ]  # fmt: skip
        cached = journal.cached_image_hash if journal else None
        self.hashes = compute_all(images, cached)
        if journal is not None:
            for path, value in self.hashes.items():
                journal.store_image_hash(path, value)
            for account, _ in targets:
                sent = journal.sent_images(account)
                for path, mine in self.hashes.items():
                    self.sent_like[account, path] = [
                        s for s in sent
                        if Path(s.file) != path and mine.distance(s.hash) <= SIMILAR_DISTANCE
                    ]  # fmt: skip
        self.similar, motifs = near_duplicates(self.hashes)
        self.motif = {path: motif for motif in motifs for path in motif}

    def _similarity(self, path: Path, target: str, agency: Agency) -> list[Finding]:
        mine = self.hashes.get(path)
        if mine is None:
            return []
        found = [
            Finding("warning", f"similar to {m.other} in this batch (distance {m.distance}): "
                               "agencies refuse near-duplicates; send the best one", "images")
            for m in self.similar.get(path, [])
        ]  # fmt: skip
        for sent in self.sent_like.get((target, path), []):
            distance = mine.distance(sent.hash)
            found.append(Finding(
                "warning", f"similar to {Path(sent.file).name}, sent to {target} on "
                           f"{sent.at} (distance {distance})", "images"))  # fmt: skip
        limit = self.limits.for_target(target, agency.id)
        if limit is not None:
            motif = self.motif.get(path, [path])
            earlier = sorted({
                Path(s.file).name for p in motif for s in self.sent_like.get((target, p), [])
                if Path(s.file) not in motif
            })  # fmt: skip
            room = max(0, limit - len(earlier))
            if path in motif[room:]:
                kept = [f"{name} (sent before)" for name in earlier] + [
                    p.name for p in motif[:room]
                ]
                found.append(Finding(
                    "error", f"more versions of one motif than the {limit} allowed for {target} "
                             f"(with {', '.join(kept)}): agencies refuse near-duplicates",
                    "images"))  # fmt: skip
        return found

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
        if agency is not None and not self.facts[path].error:
            findings += self._similarity(path, target, agency)
        return Verdict(self.facts[path], agency, target, findings)


def rules_agency(account: Account) -> Agency | None:
    """Whose rules an account's files are checked against: its agency's, or
    for a custom server the agency it opted into (``--rules``), or none."""
    if account.agency != "custom":
        return get_agency(account.agency)
    return get_agency(account.rules) if account.rules else None


def check_files(
    files: list[Path],
    targets: Sequence[tuple[str, Agency | None]],
    *,
    journal: Journal | None = None,
    max_similar: SimilarLimits | None = None,
) -> list[Verdict]:
    """A verdict for every file at every target (account name or agency id).
    With a journal, near-duplicates of what each account was sent are found too."""
    batch = Batch(files)
    batch.compare_images(journal, targets, max_similar)
    return [batch.verdict(path, agency, name) for path in batch.files for name, agency in targets]
