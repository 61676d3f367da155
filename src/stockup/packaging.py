"""Shaping files the way each agency wants them: ZIPs of vector + preview,
and names that satisfy an agency's filename rule."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_zip(vector: Path, preview: Path, workdir: Path) -> Path:
    """``<vector's full stem>.zip`` holding the vector and its preview.

    The archive is byte-for-byte reproducible (fixed timestamps and order), so
    an unchanged pair hashes the same and is not sent twice. Each archive gets
    its own folder, so same-named vectors from different folders cannot collide.
    """
    folder = workdir / f"{len(list(workdir.iterdir())):04d}"
    folder.mkdir(parents=True)
    target = folder / f"{vector.stem}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in (vector, preview):
            info = zipfile.ZipInfo(member.name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with member.open("rb") as source, archive.open(info, "w") as sink:
                while block := source.read(1024 * 1024):
                    sink.write(block)
    return target


NAME_WITH_CONTROLS = (
    "the file name has a line break or another control character, which no server can "
    "take safely; rename the file, or upload with safe names"
)


NAME_NOT_UTF8 = (
    "the file name is not UTF-8 (it was named on a system with another encoding), which "
    "agencies' servers cannot take; rename the file, or upload with safe names"
)


def has_control_characters(name: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in name)


def name_problem(name: str) -> str | None:
    """Why no server can take this file name as it is, or None. A byte that
    is not UTF-8 reaches Python as a lone surrogate (category Cs)."""
    categories = {unicodedata.category(c) for c in name}
    if "Cc" in categories:
        return NAME_WITH_CONTROLS
    if "Cs" in categories:
        return NAME_NOT_UTF8
    return None


def safe_name(name: str, pattern: str | None) -> str:
    """``name`` made to match ``pattern``: accents dropped, other characters
    replaced; control characters (a newline) and bytes that are not UTF-8
    are always replaced. Deterministic, so a vector and its preview keep one stem."""
    name = "".join("_" if unicodedata.category(c) in ("Cc", "Cs") else c for c in name)
    if not pattern or re.match(pattern, name):
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    for filler in ("_", " ", ""):
        candidate_stem = re.sub(r"[^A-Za-z0-9]+", filler, ascii_stem).strip(filler) or "file"
        candidate = f"{candidate_stem}.{suffix.lower()}" if suffix else candidate_stem
        if re.match(pattern, candidate):
            return candidate
    return name
