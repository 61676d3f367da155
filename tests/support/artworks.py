"""Artwork fixtures made in the tests: real images (Pillow), headers that lie
about their size, and metadata written by exiftool, an independent tool."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

EXIFTOOL = shutil.which("exiftool")


def need_exiftool() -> str:
    if EXIFTOOL is None:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    return EXIFTOOL


def photo(path: Path, width: int, height: int, mode: str = "RGB") -> Path:
    """A photo whose picture depends on its name: blocks of colour, so that two
    photos never look alike to the near-duplicate check unless a test says so."""
    rng = random.Random(path.name)
    grid = Image.new("RGB", (6, 4))
    grid.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(24)])
    grid.resize((width, height), Image.Resampling.NEAREST).convert(mode).save(path, quality=90)
    return path


def eps(path: Path, illustrator: int | None = None) -> Path:
    creator = f"%%Creator: Adobe Illustrator(R) {illustrator}\n" if illustrator else ""
    path.write_text(
        f"%!PS-Adobe-3.0 EPSF-3.0\n{creator}%%BoundingBox: 0 0 400 400\n%%EndComments\n"
        "newpath 200 200 150 0 360 arc closepath fill\nshowpage\n%%EOF\n"
    )
    return path


def with_creator(path: Path, illustrator: int) -> Path:
    """Mark an EPS as saved by Illustrator ``illustrator`` (after tagging it:
    exiftool will not write XMP into Illustrator PostScript)."""
    first, rest = path.read_bytes().split(b"\n", 1)
    path.write_bytes(first + f"\n%%Creator: Adobe Illustrator(R) {illustrator}\n".encode() + rest)
    return path


def tag(path: Path, *, title: str | None = None, keywords: Sequence[str] = (),
        iptc: bool = False, description: str | None = None) -> Path:  # fmt: skip
    """Write metadata with exiftool: XMP dc (default) or IPTC IIM."""
    tool = need_exiftool()
    args = [tool, "-q", "-overwrite_original", "-codedcharacterset=utf8"]
    if iptc:
        if title:
            args.append(f"-IPTC:ObjectName={title}")
        if description:
            args.append(f"-IPTC:Caption-Abstract={description}")
        args += [f"-IPTC:Keywords={k}" for k in keywords]
    else:
        if title:
            args.append(f"-XMP-dc:Title={title}")
        if description:
            args.append(f"-XMP-dc:Description={description}")
        args += [f"-XMP-dc:Subject={k}" for k in keywords]
    subprocess.run([*args, str(path)], check=True, capture_output=True)
    return path


def exiftool_reads(path: Path) -> dict[str, object]:
    import json

    out = subprocess.run(
        [need_exiftool(), "-j", "-charset", "iptc=utf8", "-XMP-dc:Title", "-XMP-dc:Subject",
         "-XMP-dc:Description", "-IPTC:ObjectName", "-IPTC:Keywords", "-IPTC:Caption-Abstract",
         str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    data: dict[str, object] = json.loads(out)[0]
    return data


def lying_jpeg(path: Path, width: int, height: int) -> Path:
    """A JPEG whose header claims ``width`` x ``height``; there is no image data."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    path.write_bytes(b"\xff\xd8" + sof + sos + b"\x00" * 16 + b"\xff\xd9")
    return path


def lying_png(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path
