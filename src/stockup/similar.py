"""Near-duplicates: a perceptual hash per image (imagehash's DCT hash),
computed once from a reduced decode (JPEG draft mode decodes at 1/8 scale)
and kept in the journal, compared within a batch and with what an account
already has. A flipped copy counts as similar: each image also has the hash
of its mirror. Crops and tone changes move a hash only a little.

Agencies judge similarity, not stockup: findings are warnings, unless the
user sets a maximum number of versions of one motif per account or agency
(``--max-similar``), counting what the account was sent before."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockup.errors import UsageError

HASH_PIXELS = 256
PHASH_INPUT = 32
"""imagehash's phash: an 8 x 8 hash from the DCT of a 32 x 32 grey image."""
SIMILAR_DISTANCE = 12
"""Bits (of 64) two hashes may differ by and still show one motif."""
HASH_THREADS = 2
RASTER_FORMATS = ("jpeg", "png", "tiff")


@dataclass(frozen=True)
class ImageHash:
    plain: int
    mirrored: int

    def distance(self, other: ImageHash) -> int:
        return min(
            (self.plain ^ other.plain).bit_count(),
            (self.plain ^ other.mirrored).bit_count(),
        )


def compute(path: Path, *, decode: bool = True) -> ImageHash | None:
    """The hash of an image, or None if it cannot be decoded. A camera JPEG's
    embedded EXIF thumbnail is used when it shows the whole picture (the
    hash works on 32 x 32 pixels anyway); otherwise a reduced decode, unless
    ``decode`` is False (then None)."""
    import imagehash  # numpy and scipy: loaded only when images are compared
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            small = _exif_thumbnail(image)
            if small is None:
                if not decode:
                    return None
                image.draft("RGB", (HASH_PIXELS, HASH_PIXELS))
                small = image.convert("RGB")
                small.thumbnail((HASH_PIXELS, HASH_PIXELS))
    except Exception:
        # Not decodable: OSError, UnidentifiedImageError, a decompression
        # bomb, and for some damaged files other errors (SyntaxError "broken
        # PNG file" past the first data chunk, struct.error ...). The file is
        # not compared, and the batch's check goes on (as read_facts does).
        return None
    # Reduced once to the grey 32 x 32 that phash works on (it leaves an image
    # of that size as it is), then mirrored: half the resampling.
    grey = small.convert("L").resize((PHASH_INPUT, PHASH_INPUT), Image.Resampling.LANCZOS)
    plain = int(str(imagehash.phash(grey)), 16)
    mirrored = int(str(imagehash.phash(ImageOps.mirror(grey))), 16)
    return ImageHash(plain, mirrored)


def compute_all(
    paths: Iterable[Path], cached: Callable[[Path], ImageHash | None] | None = None
) -> dict[Path, ImageHash]:
    """Hashes of many images, taking what ``cached`` already knows. Files
    with an EXIF thumbnail go first, one after the other (under a
    millisecond each: threads would only fight over the GIL); the others
    need a decode and go two at a time (Pillow decodes without the GIL)."""
    found: dict[Path, ImageHash] = {}
    to_decode = []
    for path in paths:
        known = (cached(path) if cached else None) or compute(path, decode=False)
        if known is not None:
            found[path] = known
        else:
            to_decode.append(path)
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        for path, value in zip(to_decode, pool.map(compute, to_decode), strict=True):
            if value is not None:
                found[path] = value
    return found


THUMBNAIL_OFFSET, THUMBNAIL_LENGTH = 0x0201, 0x0202
EXIF_HEADER = b"Exif\x00\x00"
MIN_THUMBNAIL_SIDE = 100
ASPECT_TOLERANCE = 0.03


def _exif_thumbnail(image: Any) -> Any:
    """The JPEG's EXIF thumbnail as an image, if it has one that matches the
    picture's shape (a stale or letterboxed one would mislead)."""
    from PIL import ExifTags, Image

    raw = image.info.get("exif") if image.format == "JPEG" else None
    if not raw or not raw.startswith(EXIF_HEADER):
        return None
    thumbnail_ifd = image.getexif().get_ifd(ExifTags.IFD.IFD1)
    offset, length = thumbnail_ifd.get(THUMBNAIL_OFFSET), thumbnail_ifd.get(THUMBNAIL_LENGTH)
    if not offset or not length:
        return None
    data = raw[len(EXIF_HEADER) + offset : len(EXIF_HEADER) + offset + length]
    try:
        thumb = Image.open(io.BytesIO(data))
        thumb.load()
    except (OSError, ValueError):
        return None
    width, height = image.size
    if min(thumb.size) < MIN_THUMBNAIL_SIDE:
        return None
    if abs(thumb.width / thumb.height - width / height) > ASPECT_TOLERANCE * width / height:
        return None
    return thumb.convert("RGB")


@dataclass(frozen=True)
class SimilarLimits:
    """The most versions of one motif a target may get: ``everywhere``, or
    per account name or agency id (``per_target`` wins). None: warnings only."""

    everywhere: int | None = None
    per_target: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        numbers = [self.everywhere, *(n for _, n in self.per_target)]
        if any(n is not None and n < 1 for n in numbers):
            raise UsageError(
                "--max-similar: the most versions of one motif must be 1 or more",
                setting="max_similar",
            )

    @classmethod
    def parse(cls, text: str) -> SimilarLimits:
        """``3``, ``adobestock=3,shutterstock=1``, or both: ``1,adobestock=3``."""
        everywhere: int | None = None
        per_target: list[tuple[str, int]] = []
        for part in (p.strip() for p in text.split(",")):
            name, _, number = part.rpartition("=")
            malformed = part.count("=") > 1 or (part.count("=") == 1 and not name.strip())
            if malformed or not number.strip().isdigit():
                raise UsageError(
                    f"--max-similar {text!r}: give N or ID=N (N of 1 or more), comma-separated",
                    setting="max_similar",
                )
            if name:
                per_target.append((name.strip(), int(number)))
            else:
                everywhere = int(number)
        return cls(everywhere, tuple(per_target))

    def for_target(self, target: str, agency_id: str | None) -> int | None:
        named = dict(self.per_target)
        return named.get(target, named.get(agency_id or "", self.everywhere))


@dataclass(frozen=True)
class Match:
    other: str
    """The other file's name."""
    distance: int


def near_duplicates(
    hashes: dict[Path, ImageHash],
) -> tuple[dict[Path, list[Match]], list[list[Path]]]:
    """For each image, the others of the batch that show the same motif; and
    the motifs: images linked by similarity, each group sorted by name. Every
    pair is compared once (it is the quadratic part)."""
    similar: dict[Path, list[Match]] = {}
    parent = {path: path for path in hashes}

    def root(path: Path) -> Path:
        while parent[path] != path:
            parent[path] = parent[parent[path]]
            path = parent[path]
        return path

    paths = list(hashes)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            distance = hashes[a].distance(hashes[b])
            if distance <= SIMILAR_DISTANCE:
                similar.setdefault(a, []).append(Match(b.name, distance))
                similar.setdefault(b, []).append(Match(a.name, distance))
                parent[root(b)] = root(a)
    motifs: dict[Path, list[Path]] = {}
    for path in hashes:
        motifs.setdefault(root(path), []).append(path)
    return similar, [sorted(g, key=lambda p: p.name) for g in motifs.values() if len(g) > 1]
