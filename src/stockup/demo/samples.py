"""Sample artworks for the demo: JPEG photos with embedded title and keywords
(XMP), and an EPS vector with its same-name JPG preview."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw

# Most samples meet the big agencies' rules; two are caught by the checks,
# as real batches are: one too small, one with too few keywords.
SUBJECTS = [
    ("sunset_over_dunes", "Sunset over desert dunes", (2400, 1600),
     ["sunset", "desert", "dunes", "sand", "travel", "evening", "orange", "landscape"]),
    ("harbour_boats", "Fishing boats in a quiet harbour", (2600, 1750),
     ["boats", "harbour", "sea", "fishing"]),
    ("forest_path", "Misty path through a beech forest", (2800, 1900),
     ["forest", "mist", "path", "autumn", "trees", "beech", "morning", "nature"]),
    ("city_lights", "City lights at dusk", (3000, 2000),
     ["city", "night", "lights", "urban", "skyline", "dusk", "buildings", "travel"]),
]  # fmt: skip


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


def make_samples(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for seed, (stem, title, (width, height), keywords) in enumerate(SUBJECTS):
        path = folder / f"{stem}.jpg"
        _picture(width, height, seed).save(path, quality=92, xmp=xmp_packet(title, keywords))
        made.append(path)
    preview = Image.new("RGB", (1600, 1600), "white")
    draw = ImageDraw.Draw(preview)
    draw.ellipse((200, 200, 1400, 1400), fill=(240, 160, 40), outline="black", width=12)
    vector_jpg = folder / "sun_icon.jpg"
    preview.save(vector_jpg, quality=90)
    vector_eps = folder / "sun_icon.eps"
    keywords = ["sun", "icon", "vector", "summer", "weather", "symbol", "orange", "circle"]
    vector_eps.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%Creator: Adobe Illustrator(R) 10\n"
        b"%%BoundingBox: 0 0 400 400\n%%Title: Sun icon\n%%EndComments\n"
        b"%begin_xml_packet\n" + xmp_packet("Sun icon", keywords) + b"\n%end_xml_packet\n"
        b"newpath 200 200 150 0 360 arc closepath\n1 0.63 0.16 setrgbcolor fill\n"
        b"showpage\n%%EOF\n"
    )
    made += [vector_eps, vector_jpg]
    return made
