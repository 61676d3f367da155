"""Video clips for the checks: MP4/MOV files built box by box (so the tests
need nothing installed), and real clips from ffmpeg with metadata written by
exiftool where those are installed, to cross-check stockup's reading."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def xmp(
    title: str | None = None, keywords: Sequence[str] = (), description: str | None = None
) -> bytes:
    def alt(name: str, value: str | None) -> str:
        if value is None:
            return ""
        return (f"<dc:{name}><rdf:Alt><rdf:li xml:lang='x-default'>{value}</rdf:li></rdf:Alt>"
                f"</dc:{name}>")  # fmt: skip

    items = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    subject = f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>" if keywords else ""
    return (
        "<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>"
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
        "xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        "<rdf:Description rdf:about='' xmlns:dc='http://purl.org/dc/elements/1.1/'>"
        f"{alt('title', title)}{alt('description', description)}{subject}"
        "</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end='w'?>"
    ).encode()


def quicktime_keys(values: dict[str, str]) -> bytes:
    """A QuickTime ``meta`` box (mdta handler, keys, ilst)."""
    keys = b"".join(struct.pack(">I4s", 8 + len(k.encode()), b"mdta") + k.encode() for k in values)
    items = b"".join(
        box(struct.pack(">I", i + 1), box(b"data", struct.pack(">II", 1, 0) + v.encode()))
        for i, v in enumerate(values.values())
    )
    handler = box(b"hdlr", b"\0" * 8 + b"mdta" + b"\0" * 13)
    return box(b"meta", handler + box(b"keys", struct.pack(">II", 0, len(values)) + keys)
               + box(b"ilst", items))  # fmt: skip


def built_clip(
    path: Path,
    *,
    seconds: float,
    width: int = 1920,
    height: int = 1080,
    xmp_box: bytes | None = None,
    udta_xmp: bytes | None = None,
    quicktime: dict[str, str] | None = None,
    moov_last: bool = True,
    media_bytes: int = 4096,
) -> Path:
    """An MP4 (``.mp4``) or QuickTime (``.mov``) file made of real boxes:
    ftyp, mdat, moov (mvhd, trak/tkhd, udta), and an XMP uuid box, in the
    order cameras and editors write them (moov after the media by default)."""
    brand = b"qt  " if path.suffix.lower() == ".mov" else b"isom"
    ftyp = box(b"ftyp", brand + b"\0\0\0\0" + brand)
    timescale = 1000
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, timescale, round(seconds * timescale))
               + bytes(80))  # fmt: skip
    tkhd = box(b"tkhd", bytes(4) + bytes(72) + struct.pack(">II", width << 16, height << 16))
    udta_children = (box(b"XMP_", udta_xmp) if udta_xmp else b"") + (
        quicktime_keys(quicktime) if quicktime else b"")  # fmt: skip
    moov = box(
        b"moov", mvhd + box(b"trak", tkhd) + (box(b"udta", udta_children) if udta_children else b"")
    )
    mdat = box(b"mdat", b"\x11" * media_bytes)
    uuid = box(b"uuid", XMP_UUID + xmp_box) if xmp_box else b""
    parts = [ftyp, mdat, moov, uuid] if moov_last else [ftyp, moov, uuid, mdat]
    path.write_bytes(b"".join(parts))
    return path


def need_ffmpeg() -> str:
    if FFMPEG is None:
        pytest.skip("ffmpeg not installed (apt-get install ffmpeg)")
    return FFMPEG


def ffmpeg_clip(path: Path, *, seconds: float, width: int = 1280, height: int = 720) -> Path:
    """A real H.264 clip (MP4 or MOV by its suffix), made by ffmpeg."""
    subprocess.run(
        [need_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size={width}x{height}:rate=10:duration={seconds}", "-pix_fmt", "yuv420p",
         "-c:v", "libx264", "-preset", "ultrafast", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def ffprobe_facts(path: Path) -> tuple[float, int, int]:
    """Duration, width and height as ffprobe reads them."""
    assert FFPROBE is not None
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height:format=duration", "-of", "default=nw=1", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    values = dict(line.split("=", 1) for line in out.split())
    return float(values["duration"]), int(values["width"]), int(values["height"])
