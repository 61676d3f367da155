"""Time `stockup meta set` on 1,000 JPEGs against ExifTool doing the same
edit, in the same run (a ratio, not a timed assertion). Each file is written
the safe way: a copy beside it, verified (fields read back, pixels, EXIF and
ICC unchanged), then renamed over the original.

    .venv/bin/python bench/meta_bulk.py [--files 1000] [--size 3000x2000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def make_batch(folder: Path, count: int, size: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    base = Image.effect_noise(size, 40).convert("RGB")
    first = folder / "photo_0000.jpg"
    base.save(first, quality=90)
    for index in range(1, count):
        shutil.copyfile(first, folder / f"photo_{index:04d}.jpg")


def timed(command: list[str]) -> float:
    began = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    return time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", default="3000x2000", help="pixels, WxH")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    keywords = ", ".join(f"keyword{i}" for i in range(30))
    with tempfile.TemporaryDirectory(prefix="stockup-meta-bench-") as tmp:
        root = Path(tmp)
        make_batch(root / "stockup", args.files, (width, height))
        shutil.copytree(root / "stockup", root / "exiftool")
        ours = timed([sys.executable, "-m", "stockup", "meta", "set", str(root / "stockup"),
                      "--title", "A title for every photo", "--keywords", keywords])  # fmt: skip
        peer = None
        if shutil.which("exiftool"):
            tags = [
                "-XMP-dc:Title=A title for every photo",
                "-IPTC:ObjectName=A title for every photo",
            ]
            tags += [f"-XMP-dc:Subject=keyword{i}" for i in range(30)]
            tags += [f"-IPTC:Keywords=keyword{i}" for i in range(30)]
            peer = timed(["exiftool", "-q", "-overwrite_original", *tags, str(root / "exiftool")])
    print(f"{args.files} JPEGs of {width}x{height}:")
    print(f"  stockup meta set: {ours:.1f} s ({args.files / ours:.0f} files/s), verified copies")
    if peer is not None:
        print(f"  exiftool:         {peer:.1f} s ({args.files / peer:.0f} files/s), in place")
        print(f"  ratio (stockup / exiftool): {ours / peer:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
