"""The files a user named: files, and the files in folders, walked.

Only regular files are ever taken: a FIFO, a device or a socket (named, or
behind a link) is skipped with its reason and never opened, so a link to
``/dev/zero`` or to a pipe cannot hang a check or an upload. A link inside a
folder whose target lies outside every path given is not followed unless the
user asks (``--follow-links``); hidden names are skipped. What was skipped is
said in a line or two, not per agency.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stockup.errors import UsageError

SYSTEM_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", ".directory"}
SIDECAR_SUFFIXES = {".tmp", ".xmp", ".thm", ".aae", ".lrv", ".dop", ".pp3", ".on1", ".bak"}
"""Files next to artworks that no agency takes: operating-system clutter,
editors' sidecars (XMP, DxO, RawTherapee, ON1, Apple Photos edits), camera
thumbnails and proxies, temporary files."""

KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


@dataclass
class Collected:
    files: list[Path] = field(default_factory=list)
    links_outside: int = 0
    """Links not followed: their targets lie outside the paths given."""
    not_files: list[tuple[Path, str]] = field(default_factory=list)
    """Paths that are not regular files, with what they are."""
    system_files: int = 0
    """.DS_Store, Thumbs.db, AppleDouble ._ files, sidecars: not artworks."""

    def notes(self) -> list[str]:
        """One line per kind of thing skipped, for every front end."""
        lines = []
        if self.system_files:
            lines.append(
                f"ignored {self.system_files} system or sidecar file(s) that are not artworks "
                "(.DS_Store, Thumbs.db, ._ files, .xmp, .tmp ...)"
            )
        if self.links_outside:
            lines.append(
                f"skipped {self.links_outside} link(s) to files outside the folders given "
                "(follow links to take them)"
            )
        kinds = Counter(kind for _, kind in self.not_files)
        for kind, count in sorted(kinds.items()):
            examples = ", ".join(p.name for p, k in self.not_files if k == kind)
            lines.append(f"skipped {count} path(s) that are {kind}, not files: {examples}")
        return lines


def is_system_file(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in SYSTEM_NAMES or name.startswith("._") or Path(lowered).suffix in SIDECAR_SUFFIXES
    )


def _kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (following links);
    None for a regular file or a broken link (the checks report those)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def collect_files(paths: Iterable[Path], *, follow_links: bool = False) -> Collected:
    """Every path that does not exist is named in one error."""
    given = [Path(p).absolute() for p in paths]
    missing = [str(p) for p in given if not p.exists() and not p.is_symlink()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    roots = [p.resolve() for p in given if p.is_dir()]
    collected = Collected()

    def take(path: Path, named: bool) -> None:
        if path.is_symlink() and not named and not follow_links:
            target = path.resolve()
            if path.exists() and not any(target.is_relative_to(r) for r in roots):
                collected.links_outside += 1
                return
        kind = _kind(path)
        if kind is not None:
            collected.not_files.append((path, kind))
        else:
            collected.files.append(path)

    for path in given:
        if not path.is_dir():
            take(path, named=True)
            continue
        # os.walk does not descend into linked folders (followlinks=False).
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if is_system_file(name):
                    collected.system_files += 1
                elif not name.startswith("."):
                    take(Path(folder) / name, named=False)
    return collected
