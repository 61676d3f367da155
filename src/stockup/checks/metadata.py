"""Embedded title, description and keywords: XMP (any format) and IPTC IIM
(JPEG and TIFF). XMP wins where both are present, as agencies read it first."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

XMP_SCAN_BYTES = 8 * 1024 * 1024
MAX_XMP_BYTES = 2 * 1024 * 1024
XMP_START = b"<x:xmpmeta"
XMP_END = b"</x:xmpmeta>"
NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
IPTC_OBJECT_NAME = (2, 5)
IPTC_KEYWORDS = (2, 25)
IPTC_CAPTION = (2, 120)


@dataclass(frozen=True)
class Metadata:
    title: str | None = None
    description: str | None = None
    keywords: list[str] = field(default_factory=list)
    readable: bool = True
    """False: the format's metadata could not be parsed, so "no keywords"
    would be a guess; reports say "could not read" instead."""

    @property
    def distinct_keywords(self) -> list[str]:
        """Keywords counted once: trimmed, compared without case, first kept."""
        seen: dict[str, str] = {}
        for keyword in self.keywords:
            seen.setdefault(keyword.strip().casefold(), keyword.strip())
        return [k for k in seen.values() if k]

    def merged_with(self, other: Metadata) -> Metadata:
        return replace(
            self,
            title=self.title or other.title,
            description=self.description or other.description,
            keywords=self.keywords or other.keywords,
        )


def xmp_packet(data: bytes) -> bytes | None:
    """The first XMP packet in ``data``. Two plain searches, linear in the
    size: a lazy regex over a file with many unclosed ``<x:xmpmeta`` took
    minutes (each start scanned to the end)."""
    start = data.find(XMP_START)
    if start < 0:
        return None
    end = data.find(XMP_END, start, start + MAX_XMP_BYTES)
    return None if end < 0 else data[start : end + len(XMP_END)]


def raw_xmp(path: Path) -> bytes | None:
    """The first XMP packet in the file's first 8 MiB, if any."""
    with path.open("rb") as handle:
        data = handle.read(XMP_SCAN_BYTES)
    return xmp_packet(data)


def read_xmp(path: Path) -> Metadata:
    packet = raw_xmp(path)
    return Metadata() if packet is None else parse_xmp(packet)


def parse_xmp(packet: bytes) -> Metadata:
    """Title, description and keywords from one XMP packet; an XMP packet
    that is not XML is metadata that could not be read."""
    start = packet.find(XMP_START)
    if start > 0:
        packet = packet[start:]  # QuickTime's XMP_ box may start with the <?xpacket?> header
    end = packet.rfind(XMP_END)
    if end >= 0:
        packet = packet[: end + len(XMP_END)]
    try:
        root = SafeET.fromstring(packet)  # no entity expansion from files
    except (ET.ParseError, DefusedXmlException):
        return Metadata(readable=False)
    return Metadata(
        title=_alt(root, "title"),
        description=_alt(root, "description"),
        keywords=[
            (li.text or "").strip()
            # A Bag, as the standard says; some writers (exiv2) make it a Seq.
            for li in root.iterfind(".//dc:subject/*/rdf:li", NS)
            if (li.text or "").strip()
        ],
    )


def _alt(root: ET.Element, name: str) -> str | None:
    items = list(root.iterfind(f".//dc:{name}/rdf:Alt/rdf:li", NS))
    for item in items:
        if item.get(XML_LANG) == "x-default" and item.text:
            return item.text.strip()
    return items[0].text.strip() if items and items[0].text else None


def read_iptc(image: Any) -> Metadata:
    from PIL import IptcImagePlugin

    try:
        info = IptcImagePlugin.getiptcinfo(image) or {}
    except (SyntaxError, ValueError, IndexError, OSError):
        return Metadata()
    keywords = info.get(IPTC_KEYWORDS) or []  # Pillow gives None for an empty field
    if isinstance(keywords, bytes):
        keywords = [keywords]
    return Metadata(
        title=_text(info.get(IPTC_OBJECT_NAME)),
        description=_text(info.get(IPTC_CAPTION)),
        keywords=[k for k in (_text(k) for k in keywords) if k],
    )


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, bytes):
        return None
    try:
        return value.decode("utf-8").strip() or None
    except UnicodeDecodeError:
        return value.decode("latin-1").strip() or None
