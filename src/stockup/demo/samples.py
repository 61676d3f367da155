"""Sample artworks for the demo: JPEG photos with embedded title and keywords
(XMP), and an EPS vector with its same-name JPG preview."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw

SUBJECTS = [
    (
        "sunset_over_dunes",
        "Sunset over desert dunes",
        ["sunset", "desert", "dunes", "sand", "travel"],
    ),
    ("harbour_boats", "Fishing boats in a quiet harbour", ["boats", "harbour", "sea", "fishing"]),
    ("forest_path", "Misty path through a beech forest", ["forest", "mist", "path", "autumn"]),
    ("city_lights", "City lights at dusk", ["city", "night", "lights", "urban", "skyline"]),
]


def xmp_packet(title: str, keywords: list[str]) -> bytes:
    items = "".join(f"<rdf:li>{escape(k)}</rdf:li>" for k in keywords)
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">'
        f"{escape(title)}</rdf:li></rdf:Alt></dc:title>"
        f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def _picture(width: int, height: int, seed: int) -> Image.Image:
    """A gradient with noise: compresses like a photo, not like a flat colour."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 60 + seed * 5).convert("RGB")
    tint = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), 128))
    return Image.blend(Image.blend(image, noise, 0.5), tint, 0.3)


def make_samples(folder: Path, *, width: int = 2400, height: int = 1600) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for seed, (stem, title, keywords) in enumerate(SUBJECTS):
        path = folder / f"{stem}.jpg"
        _picture(width + seed * 200, height + seed * 150, seed).save(
            path, quality=92, xmp=xmp_packet(title, keywords)
        )
        made.append(path)
    preview = Image.new("RGB", (1600, 1600), "white")
    draw = ImageDraw.Draw(preview)
    draw.ellipse((200, 200, 1400, 1400), fill=(240, 160, 40), outline="black", width=12)
    vector_jpg = folder / "sun_icon.jpg"
    preview.save(vector_jpg, quality=90, xmp=xmp_packet("Sun icon", ["sun", "icon", "vector"]))
    vector_eps = folder / "sun_icon.eps"
    vector_eps.write_text(
        "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 400 400\n%%Title: Sun icon\n"
        "%%EndComments\nnewpath 200 200 150 0 360 arc closepath\n"
        "1 0.63 0.16 setrgbcolor fill\nshowpage\n%%EOF\n"
    )
    made += [vector_eps, vector_jpg]
    return made
