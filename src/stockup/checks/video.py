"""Facts and metadata of an MP4 or MOV file, read from its boxes (ISO/IEC
14496-12, QuickTime): duration (mvhd), frame size (tkhd), XMP (a top-level
``uuid`` box, or QuickTime's ``moov/udta/XMP_``) and QuickTime metadata
(``keys`` + ``ilst``, and iTunes-style ``©nam``/``desc``).

Written by hand because no small, well-kept library reads all of these:
mutagen reads iTunes tags only, pymediainfo needs a native library, and
ffprobe is not always installed (it is used, when it is, for what this does
not know). Only box headers are read while walking; the media data is
skipped, and ``moov`` is read whole only up to a bound.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from stockup.checks.metadata import Metadata, parse_xmp

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
MAX_MOOV_BYTES = 64 * 1024 * 1024
MAX_XMP_BYTES = 2 * 1024 * 1024
MAX_BOXES = 100_000
CONTAINERS = {b"moov", b"trak", b"mdia", b"udta", b"minf", b"stbl", b"edts"}
# QuickTime keys (Apple's, and ffmpeg's plain ones) and iTunes-style items.
QT_TITLE = ("com.apple.quicktime.title", "title", "©nam")
QT_DESCRIPTION = ("com.apple.quicktime.description", "description", "desc", "©des")
QT_KEYWORDS = ("com.apple.quicktime.keywords", "keywords", "keyw")


class BoxError(ValueError):
    """The file's boxes do not add up."""


@dataclass
class VideoFacts:
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    metadata: Metadata = field(default_factory=Metadata)
    sources: dict[str, Metadata] = field(default_factory=dict)
    """Where each part came from: XMP, QuickTime."""
    xmp: bytes | None = None


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    found = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise BoxError("truncated box header")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise BoxError(f"box {kind!r} runs past its container")
        found.append((kind, offset + header, offset + size))
        offset += size
        if len(found) > MAX_BOXES:
            raise BoxError("too many boxes")
    return found


def _top_level(handle: BinaryIO, size: int) -> list[tuple[bytes, int, int]]:
    """Top-level boxes by reading their headers only (the media data can be
    gigabytes): (type, payload offset, payload size)."""
    boxes = []
    offset = 0
    while offset + 8 <= size:
        handle.seek(offset)
        head = handle.read(16)
        box_size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if box_size == 1:
            (box_size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif box_size == 0:
            box_size = size - offset
        if box_size < header or offset + box_size > size:
            raise BoxError(f"box {kind!r} runs past the end of the file")
        boxes.append((kind, offset + header, box_size - header))
        offset += box_size
        if len(boxes) > MAX_BOXES:
            raise BoxError("too many boxes")
    return boxes


def read_video(path: Path) -> VideoFacts:
    """Facts from the container; raises BoxError (or OSError) when its boxes
    cannot be read, which the caller reports as "could not read"."""
    facts = VideoFacts()
    size = path.stat().st_size
    xmp: bytes | None = None
    quicktime: dict[str, str] = {}
    with path.open("rb") as handle:
        for kind, offset, length in _top_level(handle, size):
            if kind == b"uuid" and length >= 16:
                handle.seek(offset)
                if handle.read(16) == XMP_UUID and length - 16 <= MAX_XMP_BYTES:
                    xmp = handle.read(length - 16)
            elif kind == b"moov":
                if length > MAX_MOOV_BYTES:
                    raise BoxError("the movie header is too large to read")
                handle.seek(offset)
                moov = handle.read(length)
                xmp = _read_moov(moov, facts, quicktime) or xmp
    from_xmp = parse_xmp(xmp) if xmp else Metadata()
    from_quicktime = Metadata(
        title=_first(quicktime, QT_TITLE),
        description=_first(quicktime, QT_DESCRIPTION),
        keywords=[
            k.strip() for k in (_first(quicktime, QT_KEYWORDS) or "").split(",") if k.strip()
        ],
    )
    facts.metadata = from_xmp.merged_with(from_quicktime)
    facts.sources = {"XMP": from_xmp, "QuickTime": from_quicktime}
    facts.xmp = xmp
    return facts


def _first(values: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if values.get(name):
            return values[name].strip() or None
    return None


def _read_moov(moov: bytes, facts: VideoFacts, quicktime: dict[str, str]) -> bytes | None:
    xmp: bytes | None = None
    stack = [(b"moov", 0, len(moov))]
    while stack:
        parent, start, end = stack.pop()
        for kind, payload, stop in _boxes(moov, start, end):
            if kind in CONTAINERS:
                stack.append((kind, payload, stop))
            elif kind == b"mvhd":
                _movie_header(moov[payload:stop], facts)
            elif kind == b"tkhd" and facts.width is None:
                _track_header(moov[payload:stop], facts)
            elif kind == b"XMP_" and parent == b"udta":
                xmp = moov[payload:stop]
            elif kind == b"meta":
                quicktime.update(_quicktime_metadata(moov, payload, stop))
    return xmp


def _movie_header(box: bytes, facts: VideoFacts) -> None:
    version = box[0] if box else 0
    if version == 1 and len(box) >= 32:
        timescale, duration = struct.unpack_from(">IQ", box, 20)
    elif len(box) >= 20:
        timescale, duration = struct.unpack_from(">II", box, 12)
    else:
        raise BoxError("short movie header")
    if timescale:
        facts.duration = duration / timescale


def _track_header(box: bytes, facts: VideoFacts) -> None:
    if len(box) < 8:
        raise BoxError("short track header")
    width, height = struct.unpack_from(">II", box, len(box) - 8)  # 16.16 fixed point
    if width >> 16 and height >> 16:
        facts.width, facts.height = width >> 16, height >> 16


def _quicktime_metadata(data: bytes, start: int, end: int) -> dict[str, str]:
    """``meta``: QuickTime (``hdlr`` mdta, ``keys``, ``ilst``) or iTunes style
    (full box with version and flags, ``ilst`` of four-letter items)."""
    children = _safe_boxes(data, start, end) or _safe_boxes(data, start + 4, end)
    keys: list[str] = []
    values: dict[str, str] = {}
    for kind, payload, stop in children:
        if kind == b"keys" and stop - payload >= 8:
            (count,) = struct.unpack_from(">I", data, payload + 4)
            offset = payload + 8
            for _ in range(count):
                if offset + 8 > stop:
                    raise BoxError("short keys box")
                (size,) = struct.unpack_from(">I", data, offset)
                if size < 8 or offset + size > stop:
                    raise BoxError("bad key size")
                keys.append(data[offset + 8 : offset + size].decode("utf-8", "replace"))
                offset += size
    for kind, payload, stop in children:
        if kind != b"ilst":
            continue
        for item, item_start, item_end in _boxes(data, payload, stop):
            index = int.from_bytes(item, "big")
            name = keys[index - 1] if 0 < index <= len(keys) else item.decode("latin-1")
            for inner, inner_start, inner_end in _boxes(data, item_start, item_end):
                if inner == b"data" and inner_end - inner_start >= 8:
                    text = data[inner_start + 8 : inner_end].decode("utf-8", "replace")
                    values[name] = text
    return values


def _safe_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    try:
        boxes = _boxes(data, start, end)
    except BoxError:
        return []
    return boxes if any(kind in (b"hdlr", b"keys", b"ilst") for kind, _, _ in boxes) else []
