"""Editing the embedded title, description and keywords, safely.

What agencies read is written the way they read it: XMP (``dc:title``,
``dc:description``, ``dc:subject``) and, in JPEG and TIFF, the matching IPTC
IIM fields (ObjectName, Caption-Abstract, Keywords, declared UTF-8), kept in
sync. JPEG, TIFF, PNG and EPS go through exiv2 (pyexiv2, which bundles it);
exiv2 cannot write MP4/MOV, so video goes through ExifTool when it is
installed. SVG and AI are not written (no maintained writer keeps them
intact): their metadata goes to the agency in its CSV (`stockup meta export`).

A file is never written in place: a copy beside it is changed, read back
(the fields as asked; pixels, EXIF and ICC profile as before), then renamed
over the original, so a crash leaves the old file or the new one. Each write
has a copy of its own, and a file that something else changed since the edit
read it is left as that made it: two edits of one file at once (a form sent
twice, the web UI beside the CLI) never mix, nor undo each other unseen.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stockup.checks import PREVIEW_SUFFIXES, VECTOR_SUFFIXES
from stockup.checks.facts import (
    START_OF_SCAN,
    FileFacts,
    MalformedJpeg,
    jpeg_segments,
    read_facts,
)
from stockup.checks.metadata import Metadata
from stockup.errors import StockupError
from stockup.provenance import NEWSCODES
from stockup.text import storable

EXIV2_FORMATS = ("jpeg", "tiff", "png", "eps")
IPTC_FORMATS = ("jpeg", "tiff")
EXIFTOOL_FORMATS = ("mp4", "mov")
EDITABLE_FORMATS = (*EXIV2_FORMATS, *EXIFTOOL_FORMATS)
IPTC_TEXT_LIMIT = 64
"""IPTC IIM's ObjectName (the title) and each Keywords entry hold at most 64
characters: stockup writes longer ones cut there (XMP keeps them whole)."""
IPTC_UTF8 = "\x1b%G"
"""ISO 2022 escape that declares IPTC IIM text UTF-8 (CodedCharacterSet)."""
EDIT_SUFFIX = ".stockup-edit"
COPY_BLOCK = 1024 * 1024
STALE_COPY_SECONDS = 3600


log = logging.getLogger(__name__)


class MetadataError(StockupError):
    """One file's metadata cannot be written; the others go on."""


FileIdentity = tuple[int, int, int, int]
"""Device, inode, size and modification time: a rename over the file (any
safe writer's way, ours too) or a write in place changes it."""


def _identity(status: os.stat_result) -> FileIdentity:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


@dataclass(frozen=True)
class Edit:
    """What to change; None leaves a field as it is, "" clears it."""

    title: str | None = None
    description: str | None = None
    keywords: Sequence[str] | None = None
    add_keywords: Sequence[str] = ()
    remove_keywords: Sequence[str] = ()
    source_type: str | None = None
    """An IPTC digital source type to record (``trainedAlgorithmicMedia`` for
    generative AI, ``digitalCapture`` for a photograph), as IPTC recommends."""
    ai_tool: str | None = None
    """The AI system used (IPTC 2025.1 ``AISystemUsed``)."""

    @property
    def empty(self) -> bool:
        return (
            self.title is None
            and self.description is None
            and self.keywords is None
            and not self.add_keywords
            and not self.remove_keywords
            and self.source_type is None
        )

    def applied_to(self, current: Metadata) -> Metadata:
        keywords = list(current.keywords if self.keywords is None else self.keywords)
        keywords += self.add_keywords
        removed = {k.strip().casefold() for k in self.remove_keywords}
        kept = [k for k in keywords if k.strip().casefold() not in removed]
        return Metadata(
            title=_text(current.title if self.title is None else self.title),
            description=_text(
                current.description if self.description is None else self.description
            ),
            keywords=clean_keywords(kept),
        )


def clean_keywords(keywords: Iterable[str]) -> list[str]:
    """Trimmed, without repeats (compared without case), in the order given:
    agencies weigh the first keywords most."""
    seen: set[str] = set()
    kept = []
    for keyword in keywords:
        keyword = unicodedata.normalize("NFC", " ".join(keyword.split()))
        if keyword and keyword.casefold() not in seen:
            seen.add(keyword.casefold())
            kept.append(keyword)
    return kept


def split_keywords(text: str) -> list[str]:
    """``"a, b; c"`` as keywords (commas or semicolons between them)."""
    return clean_keywords(text.replace(";", ",").split(","))


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value.strip())
    return value or None


@dataclass
class Change:
    """One file's edit: what it held, what it will hold, and how it went."""

    path: Path
    before: Metadata
    after: Metadata
    error: str | None = None
    written: bool = False
    facts: FileFacts | None = None
    """The file as read when the edit was planned: compared with the copy."""
    seen: FileIdentity | None = None
    """Which file that was: the write goes ahead only while it is still the same."""
    source_type: str | None = None
    ai_tool: str | None = None

    @property
    def changes(self) -> bool:
        fields_change = (self.before.title, self.before.description, self.before.keywords) != (
            self.after.title,
            self.after.description,
            self.after.keywords,
        )
        return fields_change or self.source_type is not None


def with_partners(paths: Iterable[Path]) -> list[Path]:
    """The files, each vector with its same-name JPG preview and each preview
    with its vector: the two are one artwork and carry the same metadata."""
    found: dict[Path, None] = {}
    for path in paths:
        found[path] = None
        for partner in _partners(path):
            if partner.exists():
                found[partner] = None
    return list(found)


def _partners(path: Path) -> list[Path]:
    if path.suffix.lower() in VECTOR_SUFFIXES:
        return [path.with_suffix(s) for s in PREVIEW_SUFFIXES]
    if path.suffix in PREVIEW_SUFFIXES:
        return [path.with_suffix(s) for s in VECTOR_SUFFIXES]
    return []


def plan_edit(path: Path, edit: Edit, *, force: bool = False) -> Change:
    """What ``edit`` would make of the file. A file with a C2PA manifest
    (content credentials) is not written without ``force``: changing its
    metadata breaks the manifest's signature."""
    try:
        seen = _identity(path.stat())  # before reading: a change after it shows
    except OSError:
        seen = None  # read_facts says what is wrong
    facts = read_facts(path)
    if facts.error:
        return Change(path, facts.metadata, facts.metadata, error=facts.error)
    change = Change(
        path,
        facts.metadata,
        edit.applied_to(facts.metadata),
        facts=facts,
        seen=seen,
        source_type=edit.source_type,
        ai_tool=edit.ai_tool,
    )
    if change.changes and (problem := _unwritable(change.after)):
        change.error = f"{path.name}: {problem}, which metadata cannot carry; nothing was changed"
        return change
    if facts.provenance.c2pa and not force and change.changes:
        change.error = (
            f"{path.name} carries a C2PA manifest (content credentials): writing its metadata "
            "invalidates the manifest's signature; force writes anyway"
        )
    return change


def as_iptc(meta: Metadata) -> Metadata:
    """The values as IPTC IIM holds them when stockup writes them."""
    return replace(
        meta,
        title=meta.title[:IPTC_TEXT_LIMIT] if meta.title else meta.title,
        keywords=[k[:IPTC_TEXT_LIMIT] for k in meta.keywords],
    )


def _unwritable(meta: Metadata) -> str | None:
    """Which field holds a character XMP cannot carry, and which: XML 1.0 has
    no control characters but tab and line breaks (exiv2 drops DEL too), and
    a lone surrogate is what Python makes of bytes in argv that are not
    UTF-8. Caught here, the reason is said; at the read-back it was only
    "reads back other values"."""
    fields = [("title", meta.title), ("description", meta.description)]
    fields += [(f"keyword {k!r}", k) for k in meta.keywords]
    for name, value in fields:
        for char in value or "":
            code = ord(char)
            if 0xD800 <= code <= 0xDFFF:
                return f"the {name} holds bytes that are not UTF-8"
            if (code < 0x20 and char not in "\t\n\r") or code in (0x7F, 0xFFFE, 0xFFFF):
                return f"the {name} holds U+{code:04X}, a control character"
    return None


def write(change: Change) -> Change:
    """Write one file's new metadata safely (module docstring); an error is
    kept on the change, never raised: one file's failure stops no other."""
    if change.error or not change.changes:
        return change
    try:
        _write_safely(change, change.facts or read_facts(change.path))
    except MetadataError as exc:
        change.error = str(exc)
    except OSError as exc:
        change.error = f"cannot write {change.path.name}: {exc.strerror or exc}"
    except Exception as exc:  # a bug, or a library's surprise: this file fails alone
        log.exception("writing metadata into %s failed", change.path)
        change.error = f"{change.path.name}: internal error ({type(exc).__name__}): {exc}"
    else:
        change.written = True
    return change


def _write_safely(change: Change, before: FileFacts) -> None:
    path, meta = change.path, change.after
    if before.error:
        raise MetadataError(f"{path.name}: {before.error}")
    fmt = before.format or "unknown"
    if fmt not in EDITABLE_FORMATS:
        raise MetadataError(
            f"{path.name}: stockup cannot write metadata into {fmt.upper()} files; give it to "
            "the agency in its CSV (stockup meta export) or set it in your editor"
        )
    # The mode bits too: root may write anything, but a file marked read-only
    # is its owner's way of saying "leave it".
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        raise MetadataError(f"{path.name} is read-only; nothing was changed")
    temporary = _copy_beside(path, change.seen)
    try:
        if fmt in EXIFTOOL_FORMATS:
            _write_exiftool(temporary, meta, change)
        else:
            _write_exiv2(temporary, meta, change, iptc=fmt in IPTC_FORMATS)
        _verify(before, temporary, meta, change)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        _still_the_same(path, change.seen)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _copy_beside(path: Path, seen: FileIdentity | None) -> Path:
    """A hidden copy of the file in the same folder (so the rename over the
    original is atomic), with a name of its own: a second write of the same
    file at once gets another copy, never this one half-overwritten."""
    # The suffix stays last: the copy must read back as the same kind of file.
    # The name is UTF-8 even when the file's is not: exiv2 takes its path as
    # UTF-8 text.
    prefix = f".{storable(path.stem)}{EDIT_SUFFIX}-"
    _remove_stale_copies(path.parent, prefix, path.suffix)
    with path.open("rb") as source:
        _still_the_same(path, seen, os.fstat(source.fileno()))
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
        temporary = Path(name)
        try:
            with os.fdopen(handle, "wb") as copy:
                shutil.copyfileobj(source, copy, COPY_BLOCK)
            shutil.copystat(path, temporary)
        except BaseException:
            temporary.unlink()
            raise
    return temporary


def _remove_stale_copies(folder: Path, prefix: str, suffix: str) -> None:
    """Copies of this file left by a write that was killed (each a whole copy
    of the file). One untouched for STALE_COPY_SECONDS is no write's any more:
    a write changes its copy within seconds."""
    cutoff = time.time() - STALE_COPY_SECONDS
    for copy in folder.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        with contextlib.suppress(OSError):
            status = copy.lstat()
            if stat.S_ISREG(status.st_mode) and status.st_mtime < cutoff:
                copy.unlink()


def _still_the_same(
    path: Path, seen: FileIdentity | None, status: os.stat_result | None = None
) -> None:
    """Refuse to write over a file that changed since the edit read it: what
    the edit would write was worked out from what the file held then."""
    if seen is not None and _identity(status or path.stat()) != seen:
        raise MetadataError(
            f"{path.name} changed since stockup read it (another edit at the same time?); "
            "nothing was changed: run it again"
        )


def _write_exiv2(path: Path, meta: Metadata, change: Change, *, iptc: bool) -> None:
    import pyexiv2  # exiv2's C++ library: loaded only when writing

    # pyexiv2 prints exiv2's warnings on stdout ("[warn] Directory Image,
    # entry 0x010f has unknown Exif (TIFF) type 0"), among stockup's own
    # output and into its JSON. Its errors still arrive as RuntimeError.
    pyexiv2.set_log_level(4)

    # An empty value is written as None, which pyexiv2 takes for "delete the
    # field": an empty string would leave an empty field behind, which some
    # readers take for a value (Pillow reads an empty IPTC field as None).
    def alt(value: str | None) -> dict[str, str] | None:
        return {'lang="x-default"': value} if value else None

    image_path = str(path)
    if storable(image_path) != image_path:  # exiv2 takes its path as UTF-8 text
        raise MetadataError(
            f"{change.path.name}: exiv2 cannot open a file in a folder whose name is not UTF-8; "
            "rename the folder"
        )
    try:
        with pyexiv2.Image(image_path) as image:
            xmp: dict[str, Any] = {
                "Xmp.dc.title": alt(meta.title),
                "Xmp.dc.description": alt(meta.description),
                "Xmp.dc.subject": list(meta.keywords) or None,
            }
            if change.source_type:
                xmp["Xmp.iptcExt.DigitalSourceType"] = NEWSCODES + change.source_type
            if change.ai_tool:
                xmp["Xmp.iptcExt.AISystemUsed"] = change.ai_tool
            image.modify_xmp(xmp)
            if iptc:
                cut = as_iptc(meta)
                image.modify_iptc(
                    {
                        "Iptc.Envelope.CharacterSet": IPTC_UTF8,
                        "Iptc.Application2.ObjectName": cut.title or None,
                        "Iptc.Application2.Caption": cut.description or None,
                        "Iptc.Application2.Keywords": cut.keywords or None,
                    }
                )
    except RuntimeError as exc:  # exiv2 reports a file it cannot parse or write so
        name = change.path.name
        hint = (
            " (exiv2 writes no EPS saved as Illustrator 8 to 10 PostScript: set it in "
            "Illustrator, or give it in the agency's CSV)"
            if path.suffix.lower() == ".eps"
            else ""
        )
        raise MetadataError(f"{name}: exiv2 could not write it ({exc}){hint}") from None


EXIFTOOL_IPTC_2025 = """
# The IPTC 2025.1 AI fields, for ExifTool releases older than them (Debian
# 12 has 12.57): ExifTool's documented way to add tags to a namespace.
%Image::ExifTool::UserDefined = (
    'Image::ExifTool::XMP::iptcExt' => {
        AISystemUsed => { },
        AISystemVersionUsed => { },
        AIPromptInformation => { },
        AIPromptWriterName => { },
    },
);
1;
"""


def _write_exiftool(path: Path, meta: Metadata, change: Change) -> None:
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        raise MetadataError(
            "writing metadata into MP4/MOV needs ExifTool (Debian/Ubuntu: apt-get install "
            "libimage-exiftool-perl; macOS: brew install exiftool)"
        )
    args = [exiftool, "-q", "-m", "-overwrite_original", "-charset", "utf8",
            f"-XMP-dc:Title={meta.title or ''}", f"-XMP-dc:Description={meta.description or ''}",
            "-XMP-dc:Subject="]  # fmt: skip
    args += [f"-XMP-dc:Subject={k}" for k in meta.keywords]
    if change.source_type:
        args.append(f"-XMP-iptcExt:DigitalSourceType={NEWSCODES}{change.source_type}")
    if change.ai_tool:
        args.append(f"-XMP-iptcExt:AISystemUsed={change.ai_tool}")
    with tempfile.NamedTemporaryFile("w", suffix=".config") as config:
        config.write(EXIFTOOL_IPTC_2025)
        config.flush()
        done = subprocess.run(
            [exiftool, "-config", config.name, *args[1:], str(path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise MetadataError(f"ExifTool could not write the clip: {done.stderr.strip()[:200]}")


def _verify(before: FileFacts, written: Path, meta: Metadata, change: Change) -> None:
    """The copy holds what was asked, and nothing else changed."""
    after = read_facts(written)
    name = before.path.name
    if after.error:
        raise MetadataError(f"{name}: the written copy does not read back ({after.error})")
    got = after.metadata
    if (got.title, got.description, got.keywords) != (meta.title, meta.description, meta.keywords):
        raise MetadataError(
            f"{name}: the written copy reads back other values; nothing was changed"
        )
    recorded = {m.value for m in after.provenance.markers}
    if change.source_type and change.source_type not in recorded:
        raise MetadataError(f"{name}: the source type did not read back; nothing was changed")
    if change.ai_tool and "AISystemUsed" not in recorded:
        raise MetadataError(f"{name}: the AI system did not read back; nothing was changed")
    same = (before.format, before.width, before.height, before.mode, before.icc_profile,
            before.duration, before.illustrator_version)  # fmt: skip
    now = (after.format, after.width, after.height, after.mode, after.icc_profile,
           after.duration, after.illustrator_version)  # fmt: skip
    if same != now:
        raise MetadataError(f"{name}: writing changed more than its metadata; nothing was changed")
    if before.format == "jpeg":
        # Decoding two large JPEGs per file dominated bulk edits: compare what
        # decoding reads instead (every segment but the metadata ones, and the
        # scans); equal bytes decode to equal pixels.
        if jpeg_image_data(before.path) != jpeg_image_data(written):
            raise MetadataError(f"{name}: the image data changed; nothing was changed")
        _same_exif(before.path, written)
    elif before.format in ("tiff", "png"):
        _same_pixels_and_exif(before.path, written)


METADATA_TAGS = {700, 33723, 34377}
"""TIFF tags that hold XMP, IPTC and Photoshop's resources: what is written."""
LAYOUT_TAGS = {273, 279, 324, 325, 513, 514, 34665, 34853, 40965}
"""Offsets and byte counts, which move when a file grows: not content."""
EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def _exif(image: Any) -> tuple[dict[int, Any], ...]:
    """The camera's fields: the main directory without offsets or what is
    written, the EXIF and GPS directories whole."""
    exif = image.getexif()
    # By tag, not items(): Pillow parses a value when it is read, and warns on
    # stderr about the IPTC tag as exiv2 writes it (a block, counted in longs).
    main = {t: exif[t] for t in exif if t not in METADATA_TAGS | LAYOUT_TAGS}
    return main, dict(exif.get_ifd(EXIF_IFD)), dict(exif.get_ifd(GPS_IFD))


def _same_pixels_and_exif(original: Path, written: Path) -> None:
    from PIL import Image

    try:
        with Image.open(original) as a, Image.open(written) as b:
            same = a.tobytes() == b.tobytes()
    except Exception as exc:  # Pillow's errors on damaged data: OSError, SyntaxError ...
        raise MetadataError(
            f"{original.name}: its image data does not decode ({exc}), so the written copy "
            "cannot be checked; nothing was changed"
        ) from None
    if not same:
        raise MetadataError(f"{original.name}: the image data changed; nothing was changed")
    _same_exif(original, written)


def _same_exif(original: Path, written: Path) -> None:
    from PIL import Image

    with Image.open(original) as a, Image.open(written) as b:
        if _exif(a) != _exif(b) or a.info.get("icc_profile") != b.info.get("icc_profile"):
            raise MetadataError(
                f"{original.name}: its EXIF or colour profile changed; nothing was changed"
            )


METADATA_MARKERS = {*range(0xE0, 0xEE), 0xEF, 0xFE}
"""JPEG APP0-APP13, APP15 and COM: metadata. APP14 (Adobe) stays: it says
how to convert colours, so it changes the decoded pixels."""


def jpeg_image_data(path: Path) -> bytes:
    """Everything of a JPEG that decoding reads: the tables and frame
    segments, and the scans to the end of the file."""
    kept = []
    with path.open("rb") as handle:
        try:
            for marker, segment in jpeg_segments(handle):
                if marker == START_OF_SCAN:  # the rest is image data
                    kept.append(segment + handle.read())
                elif marker not in METADATA_MARKERS:
                    kept.append(segment)
        except MalformedJpeg:
            raise MetadataError(f"{path.name}: not a well-formed JPEG") from None
    return b"".join(kept)
