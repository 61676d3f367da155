"""A corpus of realistic files for the checks, made on the spot: photos
(Pillow; metadata by exiftool where installed), vector pairs, clips with
XMP and QuickTime metadata (built box by box), and the junk that sits
beside artworks. `python -m tests.support.corpus DIR` writes one to look at."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.artworks import EXIFTOOL, eps, photo, tag
from tests.support.clips import built_clip, xmp

KEYWORDS = ["sunset", "beach", "sea", "summer", "travel", "sky", "orange", "holiday"]


def keyworded_eps(path: Path, illustrator: int) -> Path:
    """An Illustrator EPS with an XMP packet in its body, as Illustrator
    writes one (exiftool refuses to write into Illustrator PostScript)."""
    eps(path, illustrator=illustrator)
    head, tail = path.read_bytes().split(b"%%EndComments\n", 1)
    packet = xmp(f"Vector {path.stem}", KEYWORDS)
    path.write_bytes(head + b"%%EndComments\n%begin_xml_packet\n" + packet + b"\n" + tail)
    return path


def make_corpus(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def keep(path: Path) -> Path:
        files[path.name] = path
        return path

    tagged = EXIFTOOL is not None
    good = keep(photo(folder / "good_photo.jpg", 2400, 1800))
    small = keep(photo(folder / "small_photo.jpg", 1000, 800))
    dupes = keep(photo(folder / "dupes.jpg", 2400, 1800))
    if tagged:
        tag(good, title="Sunset over the beach", keywords=KEYWORDS)
        tag(small, title="Small", keywords=KEYWORDS)
        repeated = ["sun", "Sun", " sun", "sea", "SEA", "sea", "sky", "sky", "Sky", "sky"]
        tag(dupes, title="Repeated keywords", keywords=repeated)
    keep(keyworded_eps(folder / "wave.eps", illustrator=10))
    keep(photo(folder / "wave.jpg", 2000, 2000))
    keep(keyworded_eps(folder / "old_wave.eps", illustrator=17))
    keep(photo(folder / "old_wave.jpg", 2000, 2000))
    keep(keyworded_eps(folder / "tiny_preview.eps", illustrator=10))
    keep(photo(folder / "tiny_preview.jpg", 800, 600))
    keep(built_clip(folder / "clip_ok.mp4", seconds=12.5, xmp_box=xmp(
        "Waves at dusk", KEYWORDS, "Slow waves on a beach at dusk")))  # fmt: skip
    keep(built_clip(folder / "clip_short.mov", seconds=3, quicktime={
        "com.apple.quicktime.title": "Short clip",
        "com.apple.quicktime.keywords": "a,b,c,d,e,f,g,h"}))  # fmt: skip
    keep(built_clip(folder / "clip_long.mp4", seconds=75, udta_xmp=xmp("Long", KEYWORDS)))
    keep(built_clip(folder / "clip_small.mp4", seconds=10, width=640, height=360,
                    xmp_box=xmp("Small frame", KEYWORDS)))  # fmt: skip
    broken = folder / "clip_broken.mp4"
    broken.write_bytes(built_clip(folder / "tmp_clip.mp4", seconds=10).read_bytes()[:-3000])
    (folder / "tmp_clip.mp4").unlink()
    keep(broken)
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini", "._good_photo.jpg", "export.tmp",
                 "good_photo.xmp"):  # fmt: skip
        (folder / junk).write_bytes(b"not an artwork")
    return files


if __name__ == "__main__":
    made = make_corpus(Path(sys.argv[1]))
    print(f"{len(made)} files in {sys.argv[1]}")
