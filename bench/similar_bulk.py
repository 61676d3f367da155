"""Time the near-duplicate hashing of a batch of 24 MP photos against, in
the same run, reading their facts (headers, metadata) plus decoding their
thumbnail (the EXIF thumbnail, read with exiv2, or a 1/8-scale decode where
there is none): the target is that hashing costs no more. Measured twice:
photos with an EXIF thumbnail, as cameras write them (embedded with
ExifTool), and photos without one.

    .venv/bin/python bench/similar_bulk.py [--files 1000]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import imagehash  # noqa: F401  (imported here: its import is not per photo)
import pyexiv2
from PIL import Image, ImageChops, ImageDraw

from stockup.checks.facts import read_facts
from stockup.similar import compute_all

SIZE = (6000, 4000)  # 24 MP


def photo_like(path: Path) -> None:
    """Smooth areas, edges and grain: about as hard to decode as a real photo."""
    image = Image.linear_gradient("L").resize(SIZE).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((3600, 600, 4800, 1800), fill=(250, 200, 60))
    draw.polygon([(0, 4000), (1800, 2000), (4200, 2800), (6000, 2200), (6000, 4000)],
                 fill=(40, 110, 50))  # fmt: skip
    grain = Image.effect_noise(SIZE, 12).convert("RGB")
    ImageChops.add(image, grain, scale=1.0, offset=-12).save(path, quality=92)


def with_thumbnail(path: Path) -> None:
    """Embed a 160 x 107 EXIF thumbnail, as cameras do."""
    thumb = path.with_name("thumb.jpg")
    with Image.open(path) as image:
        image.resize((160, 107)).save(thumb, quality=80)
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-ThumbnailImage<={thumb}",
                    str(path)], check=True)  # fmt: skip
    thumb.unlink()


def decode_thumbnail(path: Path) -> None:
    """The reference decode, by other means than stockup's: exiv2's
    thumbnail reader, else Pillow's reduced (draft) decode."""
    with pyexiv2.Image(str(path)) as exiv2:
        thumbnail = exiv2.read_thumbnail()
    if thumbnail:
        Image.open(io.BytesIO(thumbnail)).load()
        return
    with Image.open(path) as image:
        image.draft("RGB", (256, 256))
        image.load()


def measure(folder: Path, files: int, thumbnail: bool) -> None:
    folder.mkdir()
    first = folder / "photo_0000.jpg"
    photo_like(first)
    if thumbnail:
        with_thumbnail(first)
    paths = [first]
    for index in range(1, files):
        paths.append(folder / f"photo_{index:04d}.jpg")
        shutil.copyfile(first, paths[-1])
    began = time.monotonic()
    for path in paths:
        read_facts(path)
        decode_thumbnail(path)
    reference = time.monotonic() - began
    began = time.monotonic()
    hashes = compute_all(paths)
    hashing = time.monotonic() - began
    assert len(hashes) == files
    kind = "with an EXIF thumbnail" if thumbnail else "without a thumbnail (reduced decode)"
    print(f"{files} photos of 24 MP ({first.stat().st_size / 1e6:.1f} MB each), {kind}:")
    print(f"  reading their facts and decoding a thumbnail: {reference:.1f} s")
    print(f"  perceptual hashes: {hashing:.1f} s ({files / hashing:.0f} photos/s)")
    print(f"  ratio hashing / (facts + thumbnail): {hashing / reference:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stockup-similar-bench-") as tmp:
        measure(Path(tmp) / "camera", args.files, thumbnail=True)
        measure(Path(tmp) / "plain", args.files, thumbnail=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
