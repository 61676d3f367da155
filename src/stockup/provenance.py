"""Whether a file says it was made by generative AI, and how it says so.

Markers read, each where its writers put it:
- XMP ``Iptc4xmpExt:DigitalSourceType`` with an IPTC NewsCodes value
  (``trainedAlgorithmicMedia``, ``compositeWithTrainedAlgorithmicMedia``,
  ``algorithmicMedia``; ``digitalCapture`` and the like say "not AI"), and
  the IPTC 2025.1 AI fields (``AISystemUsed``, ``AIPromptInformation`` ...);
- a C2PA manifest (JPEG APP11, PNG ``caBX``, video ``uuid``) whose
  ``c2pa.actions`` carry an AI ``digitalSourceType``, read with the Content
  Authenticity Initiative's c2pa-python, never by hand;
- Stable Diffusion front ends' PNG text chunks: ``parameters`` (AUTOMATIC1111
  and its forks), ``prompt`` and ``workflow`` (ComfyUI).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEWSCODES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE_TYPES = (
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "algorithmicMedia",
)
AI_FIELDS = ("AISystemUsed", "AISystemVersionUsed", "AIPromptInformation", "AIPromptWriterName")
SD_CHUNKS = {"parameters": "AUTOMATIC1111", "prompt": "ComfyUI", "workflow": "ComfyUI"}
C2PA_SCAN_BYTES = 16 * 1024 * 1024
DIGITAL_SOURCE = re.compile(
    rb"DigitalSourceType(?:=\"|>)\s*(?:" + re.escape(NEWSCODES.encode()) + rb")?([A-Za-z]+)"
)
AI_FIELD = re.compile(
    rb"(?:Iptc4xmpExt|iptcExt):(" + b"|".join(f.encode() for f in AI_FIELDS) + rb")"
)


@dataclass(frozen=True)
class Marker:
    where: str
    """Where the marker is: "XMP DigitalSourceType", "C2PA manifest" ..."""
    value: str
    generated: bool
    """The marker says generative AI made the file (False: it says not)."""

    def __str__(self) -> str:
        return f"{self.where}: {self.value}"


@dataclass
class Provenance:
    markers: list[Marker] = field(default_factory=list)
    c2pa: bool = False
    """The file carries a C2PA manifest: writing into it breaks its signature."""
    note: str | None = None
    """Why a marker could not be read (no c2pa-python installed ...)."""

    @property
    def ai(self) -> Marker | None:
        """The first marker that says AI made the file, if any."""
        return next((m for m in self.markers if m.generated), None)


def source_type_name(value: str) -> str:
    return value.removeprefix(NEWSCODES).strip()


def read_provenance(
    path: Path,
    fmt: str | None,
    xmp: bytes | None,
    png_text: dict[str, Any],
    headers: bytes | None = None,
) -> Provenance:
    """``xmp`` is the file's XMP packet, ``png_text`` a PNG's text chunks (as
    Pillow reads them), ``headers`` the part of the file a C2PA manifest
    must be in, when the format says where (a JPEG's segments before its
    image data); otherwise the file's start is looked through."""
    found = Provenance()
    if xmp:
        for match in DIGITAL_SOURCE.finditer(xmp):
            name = match.group(1).decode("ascii", "replace")
            found.markers.append(Marker("XMP DigitalSourceType", name, name in AI_SOURCE_TYPES))
        for match in AI_FIELD.finditer(xmp):
            found.markers.append(Marker("XMP (IPTC 2025.1)", match.group(1).decode(), True))
    for chunk, tool in SD_CHUNKS.items():
        if chunk in png_text:
            found.markers.append(Marker(f"PNG text chunk {chunk!r}", f"written by {tool}", True))
    if fmt in ("jpeg", "png", "mp4", "mov", "tiff") and _may_have_c2pa(path, headers):
        _read_c2pa(path, found)
    return found


def _may_have_c2pa(path: Path, headers: bytes | None) -> bool:
    """A cheap look for a JUMBF box or PNG caBX chunk before asking c2pa."""
    if headers is None:
        with path.open("rb") as handle:
            headers = handle.read(C2PA_SCAN_BYTES)
    return b"jumb" in headers or b"caBX" in headers or b"c2pa" in headers


def _read_c2pa(path: Path, found: Provenance) -> None:
    try:
        import c2pa  # a native library: loaded only when a file has a manifest
    except ImportError:
        found.note = "a C2PA manifest was not read: c2pa-python is not installed"
        return
    try:
        report = json.loads(c2pa.Reader(str(path)).json())
    except Exception as exc:  # c2pa raises its own error types for damaged manifests
        found.note = f"a C2PA manifest could not be read ({type(exc).__name__})"
        return
    manifests = report.get("manifests") or {}
    if not manifests:
        return
    found.c2pa = True
    for manifest in manifests.values():
        for assertion in manifest.get("assertions", []):
            if not str(assertion.get("label", "")).startswith("c2pa.actions"):
                continue
            for action in (assertion.get("data") or {}).get("actions", []):
                kind = source_type_name(str(action.get("digitalSourceType") or ""))
                if kind:
                    name = f"C2PA manifest ({action.get('action', 'action')})"
                    found.markers.append(Marker(name, kind, kind in AI_SOURCE_TYPES))
