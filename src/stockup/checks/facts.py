"""What a file is, read from its content: format, dimensions, colour,
embedded title, description and keywords, the Illustrator version of an
EPS, video duration.

Nothing is decoded beyond headers: an image whose header claims 100000 x
100000 pixels is reported, not loaded. Every problem reading a file becomes
``FileFacts.error`` so that one bad file never stops the others.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from stockup.checks.metadata import Metadata, parse_xmp, raw_xmp, read_iptc, xmp_packet
from stockup.checks.video import BoxError, read_video
from stockup.provenance import Provenance, read_provenance

HEADER_BYTES = 4096
SVG_HEAD_BYTES = 65536
SVG_TAG_CHARS = 8192
JPEG_TAIL = 64
JPEG_HEADER_LIMIT = 16 * 1024 * 1024
"""Metadata segments read at most: a hostile file cannot make us read more."""
RASTER = ("jpeg", "png", "tiff", "psd")
VECTOR = ("eps", "ai", "svg")
VIDEO = ("mov", "mp4")
EXTENSIONS = {
    "jpeg": (".jpg", ".jpeg"),
    "png": (".png",),
    "tiff": (".tif", ".tiff"),
    "psd": (".psd",),
    "eps": (".eps",),
    "ai": (".ai",),
    "svg": (".svg",),
    "zip": (".zip",),
    "mov": (".mov",),
    "mp4": (".mp4", ".m4v"),
    "pdf": (".pdf", ".ai"),
}
# libjpeg's standard luminance quantisation table at quality 50, for
# estimating a JPEG's quality setting from the table it was saved with.
STD_LUMINANCE = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip


@dataclass
class FileFacts:
    path: Path
    size: int = 0
    format: str | None = None
    error: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    icc_profile: str | None = None
    jpeg_quality: int | None = None
    metadata: Metadata = field(default_factory=Metadata)
    """What agencies read: XMP first, then IPTC or QuickTime for what XMP lacks."""
    sources: dict[str, Metadata] = field(default_factory=dict)
    """Each place the metadata was read from (XMP, IPTC, QuickTime), as found."""
    illustrator_version: int | None = None
    svg_version: str | None = None
    duration: float | None = None
    duration_note: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
    """Markers saying whether generative AI made the file."""

    @property
    def megapixels(self) -> float | None:
        if self.width is None or self.height is None:
            return None
        return self.width * self.height / 1_000_000

    @property
    def media(self) -> str:
        if self.format in VECTOR:
            return "vector"
        if self.format in VIDEO:
            return "video"
        if self.format == "zip":
            return "vector"
        return "photo"


def sniff(header: bytes, path: Path) -> str:
    """The format by content, whatever the file is called."""
    if header.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if header.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if header.startswith(b"8BPS"):
        return "psd"
    if header.startswith(b"\xc5\xd0\xd3\xc6"):  # DOS EPS binary header
        return "eps"
    if header.startswith(b"%!PS-Adobe"):
        first_line = header.split(b"\n", 1)[0]
        if b"EPSF" in first_line:
            return "ai" if path.suffix.lower() == ".ai" else "eps"
        return "ps"
    if header.startswith(b"%PDF"):
        return "ai" if path.suffix.lower() == ".ai" else "pdf"
    if header.startswith(b"PK\x03\x04"):
        return "zip"
    if header[4:8] == b"ftyp":
        return "mov" if header[8:12] == b"qt  " else "mp4"
    text = header.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in header:
        return "svg"
    if b"\x00" not in header:
        try:
            header.decode("utf-8")
        except UnicodeDecodeError:
            return "unknown"
        return "text"
    return "unknown"


def read_facts(path: Path) -> FileFacts:
    facts = FileFacts(path)
    if path.is_symlink() and not path.exists():
        facts.error = "broken symbolic link"
        return facts
    try:
        facts.size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(HEADER_BYTES)
    except OSError as exc:
        facts.error = f"cannot read the file: {exc.strerror or exc}"
        return facts
    if facts.size == 0:
        facts.error = "empty file (0 bytes)"
        return facts
    facts.format = content = sniff(header, path)
    if path.suffix.lower() not in EXTENSIONS.get(content, ()):
        named = path.suffix.lower()
        if any(named in suffixes for suffixes in EXTENSIONS.values()):
            facts.error = f"content is {content.upper()}, but the file is named {named}"
        else:
            facts.error = f"not an artwork file (content is {content.upper()})"
        return facts
    try:
        if facts.format in RASTER:
            _image_facts(facts)
        elif facts.format in ("eps", "ai"):
            _postscript_facts(facts, header)
        elif facts.format == "svg":
            _svg_facts(facts)
        elif facts.format in VIDEO:
            _video_facts(facts)
    except OSError as exc:
        facts.error = f"cannot read the file: {exc.strerror or exc}"
    except Exception as exc:
        # The parsers (Pillow, the XML and box readers) meet every kind of
        # damaged file and answer some with KeyError, IndexError, struct.error
        # ...: that file fails alone, with what went wrong, and the batch goes
        # on (the engine treats a bug in one file's upload the same way).
        kind = type(exc)
        name = (
            kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        )
        facts.error = f"not a readable {content.upper()} ({name}: {exc})"
    return facts


def _image_facts(facts: FileFacts) -> None:
    from PIL import Image, ImageCms, UnidentifiedImageError

    if facts.format == "jpeg" and not _jpeg_complete(facts.path):
        facts.error = "truncated JPEG (no end-of-image marker)"
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(facts.path)  # reads headers only; nothing is decoded
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(pixels.group(1)) / 1e6:,.0f} MP" if pixels else "too many pixels"
        facts.error = f"image header claims {claimed}; refused without decoding"
        return
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError) as exc:
        # The file was readable a moment ago: an OSError here is Pillow's
        # word for broken content ("Truncated File Read").
        facts.error = f"not a readable {(facts.format or 'image').upper()}: {exc}"
        return
    with image:
        facts.width, facts.height = image.size
        facts.mode = image.mode
        icc = image.info.get("icc_profile")
        if icc:
            try:
                profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                facts.icc_profile = ImageCms.getProfileDescription(profile).strip()
            except (OSError, ImageCms.PyCMSError):
                facts.icc_profile = "unreadable profile"
        # Luminance is table 0 as encoders write it. A file that numbers its
        # tables otherwise gets no estimate: another table would give a wrong one.
        luminance = (getattr(image, "quantization", None) or {}).get(0)
        if facts.format == "jpeg" and luminance:
            facts.jpeg_quality = estimate_jpeg_quality(list(luminance))
        iptc = read_iptc(image)
        # PNG keeps XMP in an iTXt chunk that may be compressed: Pillow inflates it.
        png_text = {str(k): v for k, v in image.info.items()} if facts.format == "png" else {}
    png_xmp = png_text.get("XML:com.adobe.xmp")
    # A JPEG's metadata (XMP in APP1, a C2PA manifest in APP11) is all before
    # its image data: read those segments, not megabytes of pixels.
    headers = jpeg_header_segments(facts.path) if facts.format == "jpeg" else None
    if isinstance(png_xmp, str):
        packet: bytes | None = png_xmp.encode("utf-8")
    else:
        packet = raw_xmp(facts.path) if headers is None else xmp_packet(headers)
    xmp = parse_xmp(packet) if packet else Metadata()
    facts.provenance = read_provenance(facts.path, facts.format, packet, png_text, headers)
    facts.sources = {"XMP": xmp, "IPTC": iptc} if facts.format in ("jpeg", "tiff") else {"XMP": xmp}
    facts.metadata = xmp.merged_with(iptc)


START_OF_SCAN = 0xDA


class MalformedJpeg(ValueError):
    """Bytes where a JPEG segment should start that are not one."""


def jpeg_segments(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """A JPEG's segments before its first scan, each as (marker, its bytes),
    the start-of-image first; last, the start-of-scan marker's own four
    bytes, with ``handle`` left at the scan header. Ends early at the end of
    the file; raises MalformedJpeg where a segment should start and none does."""
    yield 0xD8, handle.read(2)
    while len(head := handle.read(4)) == 4:
        if head[0] != 0xFF:
            raise MalformedJpeg("not a well-formed JPEG")
        if head[1] == START_OF_SCAN:
            yield START_OF_SCAN, head
            return
        length = int.from_bytes(head[2:4], "big")
        yield head[1], head + handle.read(max(0, length - 2))


def jpeg_header_segments(path: Path) -> bytes:
    """A JPEG's segments before its first scan (markers, tables, metadata):
    what ExifTool reads too. Stops at anything malformed."""
    kept = bytearray()
    with path.open("rb") as handle, contextlib.suppress(MalformedJpeg):
        for marker, segment in jpeg_segments(handle):
            if marker == START_OF_SCAN or len(kept) >= JPEG_HEADER_LIMIT:
                break
            kept += segment
    return bytes(kept)


def _jpeg_complete(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - JPEG_TAIL))
        tail = handle.read().rstrip(b"\x00\r\n ")
    return tail.endswith(b"\xff\xd9")


def estimate_jpeg_quality(table: list[int]) -> int:
    """The libjpeg quality that produces this luminance table (approximately)."""
    scale = sum(q * 100 / s for q, s in zip(table, STD_LUMINANCE, strict=False)) / len(table)
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return max(1, min(100, round(quality)))


def _postscript_facts(facts: FileFacts, header: bytes) -> None:
    text = header.decode("latin-1")
    creator = re.search(r"%%Creator:\s*Adobe Illustrator\(R\)\s*(\d+)", text)
    if creator:
        facts.illustrator_version = int(creator.group(1))
    bbox = re.search(r"%%BoundingBox:\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)", text)
    if bbox:
        x0, y0, x1, y1 = map(int, bbox.groups())
        facts.width, facts.height = x1 - x0, y1 - y0
    _xmp_facts(facts)


def _xmp_facts(facts: FileFacts) -> None:
    """Metadata and AI markers of a format whose only metadata is XMP."""
    packet = raw_xmp(facts.path)
    facts.metadata = parse_xmp(packet) if packet else Metadata()
    facts.sources = {"XMP": facts.metadata}
    facts.provenance = read_provenance(facts.path, facts.format, packet, {})


def _svg_facts(facts: FileFacts) -> None:
    # Only the start of the file is read: an SVG can be gigabytes.
    with facts.path.open("rb") as handle:
        head = handle.read(SVG_HEAD_BYTES).decode("utf-8", "replace")
    start = head.find("<svg")
    tag = head[start : head.find(">", start, start + SVG_TAG_CHARS)] if start >= 0 else ""
    version = re.search(r"\sversion=[\"']([\d.]+)[\"']", tag)
    facts.svg_version = version.group(1) if version else None
    _xmp_facts(facts)


def _video_facts(facts: FileFacts) -> None:
    """From the container's boxes; ffprobe, when installed, only for a
    duration the boxes do not give."""
    try:
        video = read_video(facts.path)
    except BoxError as exc:
        facts.metadata = Metadata(readable=False)
        facts.duration_note = f"could not read the video's header ({exc})"
        return
    facts.width, facts.height = video.width, video.height
    facts.duration = video.duration
    facts.metadata = video.metadata
    facts.sources = video.sources
    facts.provenance = read_provenance(facts.path, facts.format, video.xmp, {})
    if facts.duration is None:
        facts.duration = _ffprobe_duration(facts)


def _ffprobe_duration(facts: FileFacts) -> float | None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        facts.duration_note = (
            "duration not checked: not in the file's header, and ffprobe is not installed"
        )
        return None
    result = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(facts.path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    try:
        return float(result.stdout.strip())
    except ValueError:
        facts.duration_note = "duration not checked: ffprobe could not read the video"
        return None
