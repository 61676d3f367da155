"""Near-duplicates: flips, crops and tone changes of one photo are found, in
a batch and against what an account was sent; unrelated photos are not."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from stockup.journal import Journal
from stockup.similar import SIMILAR_DISTANCE, compute
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.artworks import need_exiftool
from tests.support.cli import Cli


def scene(path: Path, seed: int = 0, size: tuple[int, int] = (3000, 2000)) -> Path:
    """A picture with structure (a gradient sky, hills, a sun), as photos have."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    sun = (width * 0.6, height * 0.15, width * 0.8, height * 0.4)
    draw.ellipse(sun, fill=(250, 200, 60))
    hills = [(0, height), (width * 0.3, height * (0.5 + 0.05 * seed)), (width * 0.7, height * 0.7),
             (width, height * 0.55), (width, height)]  # fmt: skip
    draw.polygon(hills, fill=(40, 90 + 30 * seed, 50))
    image.save(path, quality=90)
    return path


def variants(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    original = scene(folder / "original.jpg")
    with Image.open(original) as image:
        ImageOps.mirror(image).save(folder / "flipped.jpg", quality=90)
        image.crop((150, 100, 2850, 1900)).save(folder / "cropped.jpg", quality=90)
        ImageEnhance.Brightness(image).enhance(1.25).save(folder / "brighter.jpg", quality=90)
        red, green, blue = image.split()  # recoloured: the channels swapped
        Image.merge("RGB", (blue, red, green)).save(folder / "recoloured.jpg", quality=90)
    unrelated = Image.radial_gradient("L").resize((3000, 2000)).convert("RGB")
    ImageDraw.Draw(unrelated).rectangle((200, 200, 900, 1400), fill=(200, 30, 30))
    unrelated.save(folder / "unrelated.jpg", quality=90)
    return {p.stem: p for p in folder.iterdir()}


def similar_to(report: list[dict[str, object]], name: str) -> list[str]:
    verdict = next(v for v in report if str(v["file"]).endswith(name))
    messages = [str(f["message"]) for f in verdict["findings"]]  # type: ignore[attr-defined]
    return [m for m in messages if "similar to" in m]


def test_flips_crops_and_tone_changes_are_one_motif(cli: Cli, tmp_path: Path) -> None:
    files = variants(tmp_path / "batch")
    original, flipped = compute(files["original"]), compute(files["flipped"])
    assert original is not None and flipped is not None
    assert original.distance(flipped) == 0  # the mirror's hash is kept too
    result = cli("check", str(tmp_path / "batch"), "--agency", "adobestock", "--json")
    report = json.loads(result.stdout)
    found = similar_to(report, "original.jpg")
    for name in ("flipped.jpg", "cropped.jpg", "brighter.jpg", "recoloured.jpg"):
        assert any(f"similar to {name} in this batch" in m for m in found), (name, found)
    assert not similar_to(report, "unrelated.jpg")
    levels = {Path(str(v["file"])).name: v["level"] for v in report}
    assert levels["original.jpg"] == "warning"  # agencies judge: a warning by default


def test_more_versions_than_allowed_is_an_error(cli: Cli, tmp_path: Path) -> None:
    variants(tmp_path / "batch")
    result = cli("check", str(tmp_path / "batch"), "--agency", "adobestock", "--max-similar", "2",
                 "--json")  # fmt: skip
    levels = {Path(str(v["file"])).name: v["level"] for v in json.loads(result.stdout)}
    assert result.returncode == 1
    # Sorted by name: brighter, cropped, flipped, original, recoloured; two are kept.
    assert levels["brighter.jpg"] == levels["cropped.jpg"] == "warning"
    assert levels["flipped.jpg"] == levels["original.jpg"] == levels["recoloured.jpg"] == "error"
    assert levels["unrelated.jpg"] == "warning"  # no keywords: not a near-duplicate
    for wrong in ("0", "x", "=3", "adobestock=", "adobestock=0", "a=1=2", "adobstock=3"):
        refused = cli("check", str(tmp_path / "batch"), "--agency", "adobestock",
                      "--max-similar", wrong)  # fmt: skip
        assert refused.returncode == 2 and "--max-similar" in refused.stderr, wrong
        assert "Traceback" not in refused.stderr


def test_the_limit_is_per_agency(cli: Cli, tmp_path: Path) -> None:
    variants(tmp_path / "batch")
    result = cli("check", str(tmp_path / "batch"), "--agency", "adobestock,shutterstock",
                 "--max-similar", "9,adobestock=3", "--json")  # fmt: skip
    over = {
        (Path(str(v["file"])).name, v["target"])
        for v in json.loads(result.stdout)
        for f in v["findings"]
        if "allowed for" in f["message"] and f["level"] == "error"
    }
    # The fourth and fifth versions; nine are allowed for Shutterstock.
    assert over == {("original.jpg", "adobestock"), ("recoloured.jpg", "adobestock")}


def test_a_motif_already_sent_to_the_account_is_named_with_its_date(
    cli: Cli, home: Path, tmp_path: Path, start_server: ServerFactory
) -> None:
    files = variants(tmp_path / "batch")
    (tmp_path / "first").mkdir()
    first = files["original"].rename(tmp_path / "first" / "original.jpg")
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server, "--rules", "adobestock", name="adobe")
        cli.ok("upload", str(first), "--to", "adobe", "--skip-checks")
        report = json.loads(cli("check", str(tmp_path / "batch"), "--to", "adobe", "--json").stdout)
        found = similar_to(report, "cropped.jpg")
        assert any("similar to original.jpg, sent to adobe on 20" in m for m in found), found
        # What the account has counts towards the limit: one version is there already.
        limited = cli("check", str(tmp_path / "batch"), "--to", "adobe", "--max-similar", "2",
                      "--json")  # fmt: skip
        levels = {Path(str(v["file"])).name: v["level"] for v in json.loads(limited.stdout)}
        assert levels["brighter.jpg"] == "warning"
        assert levels["cropped.jpg"] == levels["flipped.jpg"] == "error"
        assert "original.jpg (sent before)" in limited.stdout
        sent = cli("upload", str(tmp_path / "batch"), "--to", "adobe", "--max-similar", "2",
                   "--json")  # fmt: skip
    outcome = {Path(r["file"]).name: r for r in json.loads(sent.stdout)["results"]}
    assert outcome["brighter.jpg"]["status"] == outcome["unrelated.jpg"]["status"] == "uploaded"
    for extra in ("cropped.jpg", "flipped.jpg", "recoloured.jpg"):  # it has original.jpg
        assert outcome[extra]["status"] == "rejected"
        assert "allowed for adobe" in outcome[extra]["error"]
    with contextlib.closing(Journal(home / "state" / "journal.sqlite3")) as journal:
        assert journal.cached_image_hash(files["cropped"]) is not None  # computed once, kept
        assert {s.file for s in journal.sent_images("adobe")} >= {str(first)}


def embed_thumbnail(photo: Path, thumbnail: Image.Image) -> None:
    """As a camera does: a small JPEG in the EXIF block (ExifTool writes it)."""
    small = photo.with_name("thumb.jpg")
    thumbnail.save(small, quality=85)
    subprocess.run([need_exiftool(), "-q", "-overwrite_original", f"-ThumbnailImage<={small}",
                    str(photo)], check=True)  # fmt: skip
    small.unlink()


def test_a_camera_thumbnail_is_hashed_instead_of_the_picture(tmp_path: Path) -> None:
    files = variants(tmp_path / "batch")
    photo, other = files["original"], files["unrelated"]
    before = compute(photo)
    with Image.open(other) as image:
        embed_thumbnail(photo, image.resize((160, 107)))  # shows another picture: proves use
    assert compute(photo) == compute(other)
    assert before is not None and before.distance(compute(photo) or before) > SIMILAR_DISTANCE
    with Image.open(other) as image:
        embed_thumbnail(photo, image.resize((160, 160)))  # letterboxed: not the whole picture
    assert compute(photo) == before


def test_a_png_broken_past_its_first_data_chunk_is_checked_alone(cli: Cli, tmp_path: Path) -> None:
    """Its headers read well; decoding it for the comparison raises Pillow's
    SyntaxError ("broken PNG file"), which stopped the whole check."""
    (tmp_path / "batch").mkdir()
    noise = Image.effect_noise((1200, 900), 64).convert("RGB")
    noise.save(tmp_path / "batch" / "broken.png")  # many IDAT chunks
    data = bytearray((tmp_path / "batch" / "broken.png").read_bytes())
    second = data.index(b"IDAT", data.index(b"IDAT") + 4)
    data[second : second + 4] = b"\x00\x00IE"
    (tmp_path / "batch" / "broken.png").write_bytes(data)
    scene(tmp_path / "batch" / "a.jpg")
    ImageOps.mirror(Image.open(tmp_path / "batch" / "a.jpg")).save(tmp_path / "batch" / "b.jpg")
    result = cli("check", str(tmp_path / "batch"), "--agency", "adobestock", "--json")
    verdicts = {Path(v["file"]).name: v for v in json.loads(result.stdout)}
    assert set(verdicts) == {"a.jpg", "b.jpg", "broken.png"}, result.output
    messages = [f["message"] for f in verdicts["b.jpg"]["findings"]]
    assert any("similar to a.jpg in this batch" in m for m in messages)
