"""Planning an upload: what goes where, decided before a byte is sent.

The checks, vector pairs and ZIPs, each agency's folders, remote names, and
the journal's skip and resume decisions. Nothing here connects anywhere:
``stockup upload --dry-run`` is a plan printed.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stockup.catalogue import Agency, get_agency
from stockup.checks import Batch, rules_agency
from stockup.collect import collect_files
from stockup.config import Account
from stockup.editing import EDITABLE_FORMATS, Edit, plan_edit, write
from stockup.errors import UsageError
from stockup.journal import Journal, local_time
from stockup.packaging import build_zip, name_problem, safe_name
from stockup.results import FileResult, Status
from stockup.similar import ImageHash, SimilarLimits
from stockup.transports.base import join_remote

ALREADY_UPLOADED = "already uploaded with the same content"
CHANGED_SINCE_UPLOAD = "changed since it was uploaded"


@dataclass(frozen=True)
class Artwork:
    path: Path
    size: int
    mtime_ns: int
    """With ``size``, which content of the file this is: a file edited while
    the run waits to send it is hashed again (the engine compares them)."""
    media: str
    label: str
    """How the user knows the file: its path, or where the web UI got it from."""


@dataclass
class Job:
    """One file for one account. ``id`` is stable for the whole run, so that
    progress events can name the transfer they are about."""

    id: int
    account: Account
    artwork: Artwork
    remote_dir: str
    name: str
    sha256: str | None
    """None until hashed: the engine hashes new files while others upload."""
    resume: bool = False
    then: Job | None = None
    """Sent right after this one by the same connection (a vector's preview)."""
    image_hash: ImageHash | None = None
    """Kept in the journal once sent, to spot near-duplicates later."""

    @property
    def remote_path(self) -> str:
        return join_remote(self.remote_dir, self.name)

    def chain(self) -> list[Job]:
        jobs: list[Job] = []
        job: Job | None = self
        while job is not None:
            jobs.append(job)
            job = job.then
        return jobs

    def result(
        self,
        status: Status,
        *,
        sent: int = 0,
        attempts: int = 0,
        error: str | None = None,
        resumed_from: int = 0,
    ) -> FileResult:
        return FileResult(
            file=self.artwork.label,
            account=self.account.name,
            remote_path=self.remote_path,
            status=status,
            bytes=sent,
            attempts=attempts,
            error=error,
            size=self.artwork.size,
            resumed_from=resumed_from,
        )


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    """Heads of chains: a vector's preview hangs off its vector's job."""
    decided: list[FileResult] = field(default_factory=list)
    """Results decided before sending: skipped, or rejected by the checks."""
    notes: list[str] = field(default_factory=list)
    """What was left out before planning (links, pipes, devices), one line each."""
    workdir: Path | None = None
    """Where ZIPs built for this run live; removed by :meth:`close`."""

    def all_jobs(self) -> list[Job]:
        return [job for head in self.jobs for job in head.chain()]

    @property
    def total_bytes(self) -> int:
        return sum(job.artwork.size for job in self.all_jobs())

    def bytes_per_account(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for job in self.all_jobs():
            sizes[job.account.name] = sizes.get(job.account.name, 0) + job.artwork.size
        return sizes

    def scratch(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="stockup-pack-"))
        return self.workdir

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def labeller(labels: Mapping[Path, str]) -> Callable[[Path], str]:
    """Names for files under the folders in ``labels`` (a web UI staging folder
    and where its files came from); any other file is named by its path."""

    def label(path: Path) -> str:
        for root, name in labels.items():
            if path.is_relative_to(root):
                return str(Path(name) / path.relative_to(root))
        return str(path)

    return label


def remote_dir_for(account: Account, media: str) -> str | None:
    """The account's folder for this media type; None when the agency takes none."""
    if account.remote_dir or not account.folders:
        return account.remote_dir
    if media in account.folders:
        return account.folders[media]
    return None if media in ("video", "audio", "vector") else account.folders.get("photo", "")


def plan_upload(
    paths: Iterable[Path],
    accounts: list[Account],
    journal: Journal,
    *,
    force: bool = False,
    skip_checks: bool = False,
    safe_names: bool = False,
    follow_links: bool = False,
    labels: Mapping[Path, str] | None = None,
    max_similar: SimilarLimits | None = None,
) -> Plan:
    """What goes where. Call :meth:`Plan.close` when done."""
    collected = collect_files(paths, follow_links=follow_links)
    if not collected.files:
        raise UsageError("no files to upload in the paths given")
    batch = Batch(collected.files)
    # Hashed even when the checks are skipped: what is sent now is what later
    # batches are compared with.
    batch.compare_images(journal, [(a.name, rules_agency(a)) for a in accounts], max_similar)
    plan = Plan(notes=collected.notes())
    planner = _Planner(plan, batch, journal, labeller(labels or {}), itertools.count(1))
    for account in accounts:
        planner.plan_account(account, force=force, skip_checks=skip_checks, safe_names=safe_names)
    return plan


@dataclass
class _Planner:
    plan: Plan
    batch: Batch
    journal: Journal
    label: Callable[[Path], str]
    ids: Iterator[int]

    def plan_account(
        self, account: Account, *, force: bool, skip_checks: bool, safe_names: bool
    ) -> None:
        """Vectors are planned before their previews: a preview goes only with
        its vector (as the next file on the same connection, or inside its
        ZIP), never alone, and is judged by the agency's preview rules."""
        plan, batch = self.plan, self.batch
        agency = get_agency(account.agency)
        rules = rules_agency(account)
        packaging = agency.vector_packaging
        jobs: dict[Path, Job] = {}
        seen: dict[str, Path] = {}
        vector_fate: dict[Path, str] = {}
        """Why a vector is not sent in this run (absent: it is sent)."""

        def decide(path: Path, status: Status, reason: str, remote: str = "") -> None:
            plan.decided.append(
                FileResult(self.label(path), account.name, remote, status, error=reason)
            )
            if path in batch.vector_preview:
                vector_fate[path] = "was rejected" if status == Status.REJECTED else reason

        def errors_of(path: Path) -> list[str]:
            if skip_checks:
                return []
            verdict = batch.verdict(path, rules, account.name, safe_names=safe_names)
            # What the contributor must do at the agency (label AI content) is
            # said during the upload too, not only by `stockup check`.
            keyword = self.ai_keyword(path, rules)  # added by stockup: not the user's job
            plan.notes.extend(
                f"{account.name}: {path.name}: {f.message}"
                for f in verdict.findings
                if f.group == "ai" and f.level == "warning"
                and not (keyword and keyword in f.message)
            )  # fmt: skip
            return verdict.errors

        previews = [p for p in batch.files if p in batch.preview_of]
        for path in [p for p in batch.files if p not in batch.preview_of]:
            # A file the server does not take at all is skipped with the reason,
            # not judged by rules meant for what it does take.
            taken = remote_dir_for(account, batch.media(path)) is not None
            if taken and (errors := errors_of(path)):
                decide(path, Status.REJECTED, "; ".join(errors))
                continue
            self._plan_file(account, agency, rules, path, jobs, seen, decide, force, safe_names)
        for preview in previews:
            vector = batch.preview_of[preview]
            if vector_fate.get(vector) == ALREADY_UPLOADED:
                # Skipped too if it went with its vector; never sent alone.
                self._plan_file(
                    account, agency, rules, preview, jobs, seen, decide, force, safe_names
                )
                if jobs.pop(preview, None) is not None:
                    decide(preview, Status.REJECTED,
                           f"its vector {vector.name} was uploaded before; a preview is not "
                           "sent alone (force sends both again)")  # fmt: skip
                continue
            if vector in vector_fate:
                fate = vector_fate[vector]
                reason = f"its vector {vector.name} {fate}" if fate == "was rejected" else (
                    f"its vector {vector.name} is not sent: {fate}")  # fmt: skip
                decide(preview, Status.REJECTED, reason)
                continue
            if errors := errors_of(preview):
                # The pair goes together or not at all.
                jobs.pop(vector, None)
                decide(preview, Status.REJECTED, "; ".join(errors))
                decide(vector, Status.REJECTED, f"its preview {preview.name} was rejected")
                continue
            if packaging != "pair":
                decide(preview, Status.SKIPPED, "sent inside the vector's ZIP" if packaging == "zip"
                       else f"{agency.name} makes its own preview")  # fmt: skip
                continue
            self._plan_file(account, agency, rules, preview, jobs, seen, decide, force, safe_names)
        for preview, vector in batch.preview_of.items():
            if preview in jobs and vector in jobs:  # the vector first, then its preview
                jobs[vector].then = jobs.pop(preview)
        plan.jobs.extend(jobs.values())

    def ai_keyword(self, path: Path, rules: Agency | None) -> str | None:
        """The keyword that labels AI content for the agency (Freepik's
        ``_ai_generated``), if this AI-marked file lacks it and stockup can
        add it: not into a C2PA-signed file, whose signature it would break."""
        policy = rules.ai if rules else None
        facts = self.batch.facts[path]
        keyword = policy.keyword if policy else None
        if not keyword or facts.provenance.ai is None or facts.provenance.c2pa:
            return None
        if facts.format not in EDITABLE_FORMATS:
            return None
        have = {k.strip().casefold() for k in facts.metadata.keywords}
        return None if keyword.casefold() in have else keyword

    def _labelled_copy(self, path: Path, keyword: str, account: Account) -> Path:
        """A copy of the file with the label keyword, sent in its place: the
        contributor's file stays as it is (other agencies must not get it)."""
        copy = Path(tempfile.mkdtemp(dir=self.plan.scratch())) / path.name
        shutil.copy2(path, copy)
        change = write(plan_edit(copy, Edit(add_keywords=(keyword,))))
        if change.error:
            self.plan.notes.append(
                f"{account.name}: {path.name}: could not add the keyword {keyword} that labels "
                f"AI content ({change.error}); label it in the agency's panel"
            )
            return path
        self.plan.notes.append(
            f"{account.name}: {path.name}: sent with the keyword {keyword} that labels AI content "
            "(your file is unchanged)"
        )
        return copy

    def _plan_file(
        self,
        account: Account,
        agency: Agency,
        rules: Agency | None,
        path: Path,
        jobs: dict[Path, Job],
        seen: dict[str, Path],
        decide: Callable[..., None],
        force: bool,
        safe_names: bool,
    ) -> None:
        """Where one file goes, and whether the journal says it is there already."""
        plan, batch, journal = self.plan, self.batch, self.journal
        media = batch.media(path)
        remote_dir = remote_dir_for(account, media)
        if remote_dir is None:
            reason = agency.not_taken.get(media) or f"{agency.name} takes no {media} files"
            decide(path, Status.SKIPPED, reason)
            return
        local = path
        if agency.vector_packaging == "zip" and path in batch.vector_preview:
            local = build_zip(path, batch.vector_preview[path], plan.scratch())
        elif keyword := self.ai_keyword(path, rules):
            local = self._labelled_copy(path, keyword, account)
        name = local.name
        if safe_names:
            name = safe_name(name, rules.rules.filename_pattern if rules else None)
        if problem := name_problem(name):
            decide(path, Status.REJECTED, problem)
            return
        remote = join_remote(remote_dir, name)
        if remote in seen:
            decide(path, Status.SKIPPED, f"same remote name as {seen[remote]}", remote)
            return
        seen[remote] = path
        previous = journal.get(account.name, remote)
        # Hash now only where the journal has something to compare with;
        # other files are hashed by the engine while uploads run.
        digest = journal.sha256(local) if previous else journal.cached_sha256(local)
        same = previous is not None and previous.sha256 == digest
        uploaded = previous is not None and previous.status == Status.UPLOADED
        if uploaded and same and not force:
            decide(path, Status.SKIPPED, ALREADY_UPLOADED, remote)
            return
        if uploaded and not same and not force and previous is not None:
            # Edited since (new keywords, say): to the agency a re-send is a
            # duplicate of what it already has, so never silently.
            when = local_time(previous.updated_at)
            reason = (
                f"{CHANGED_SINCE_UPLOAD} to {account.name} on {when}; agencies take a re-send "
                "as a duplicate: force sends it again"
            )
            decide(path, Status.SKIPPED, reason, remote)
            return
        # A ZIP built for this run is named by its vector: the ZIP itself is temporary.
        status = local.stat()
        artwork = Artwork(local, status.st_size, status.st_mtime_ns, media, self.label(path))
        resume = same and previous is not None and previous.status != Status.UPLOADED
        jobs[path] = Job(
            next(self.ids), account, artwork, remote_dir, name, digest, resume,
            image_hash=batch.hashes.get(path),
        )  # fmt: skip
