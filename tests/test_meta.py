"""`stockup meta`: titles, descriptions and keywords written in place, safely,
read back by an independent reader (ExifTool), and CSVs for agencies."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageCms

from stockup import editing
from stockup.checks.facts import read_facts
from stockup.checks.metadata import Metadata
from stockup.editing import Change, Edit, plan_edit, write
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.artworks import exiftool_reads, need_exiftool, photo, tag
from tests.support.cli import Cli
from tests.support.clips import ffmpeg_clip

TITLE = "Été à Montréal: 東京の夜 — ночь"
KEYWORDS = [f"mot{i}-é" for i in range(47)] + ["日本", "ночь", "ελληνικά"]


def camera_photo(path: Path, fmt: str | None = None) -> Path:
    """A photo with EXIF camera fields and an sRGB ICC profile, as cameras write."""
    image = Image.linear_gradient("L").convert("RGB").resize((640, 480))
    exif = image.getexif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R5"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.save(path, format=fmt, exif=exif, icc_profile=srgb)
    return path


def ai_eps(path: Path) -> Path:
    """An EPS as Illustrator CS and later write them (exiv2 writes these)."""
    path.write_text(
        "%!PS-Adobe-3.1 EPSF-3.0\n%%Creator: Adobe Illustrator(R) 17.0\n"
        "%%AI8_CreatorVersion: 17.0.0\n%%BoundingBox: 0 0 400 400\n%%EndComments\n"
        "newpath 200 200 150 0 360 arc closepath fill\nshowpage\n%%EOF\n"
    )
    return path


def pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.tobytes()


@pytest.mark.parametrize("name", ["photo.jpg", "photo.tif", "photo.png", "vector.eps", "clip.mp4"])
def test_round_trip_read_back_by_exiftool(cli: Cli, tmp_path: Path, name: str) -> None:
    need_exiftool()
    path = tmp_path / name
    if name == "vector.eps":
        ai_eps(path)
    elif name == "clip.mp4":
        ffmpeg_clip(path, seconds=2)
    else:
        camera_photo(path)
    before_pixels = pixels(path) if path.suffix in (".jpg", ".tif", ".png") else None
    before = read_facts(path)
    result = cli("meta", "set", str(path), "--title", TITLE, "--description", "Une ville, la nuit",
                 "--keywords", ", ".join([*KEYWORDS, "  mot1-é ", "MOT2-É"]))  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.stderr == ""  # no library's warnings on the terminal
    independent = exiftool_reads(path)
    assert independent["Title"] == TITLE and independent["Description"] == "Une ville, la nuit"
    assert independent["Subject"] == KEYWORDS  # trimmed, repeats dropped, order kept
    if name in ("photo.jpg", "photo.tif"):  # IPTC IIM kept in sync, declared UTF-8
        assert independent["ObjectName"] == TITLE and independent["Keywords"] == KEYWORDS
        assert independent["Caption-Abstract"] == "Une ville, la nuit"
    after = read_facts(path)
    assert (after.width, after.height, after.icc_profile, after.duration) == (
        before.width, before.height, before.icc_profile, before.duration)  # fmt: skip
    if before_pixels is not None:
        assert pixels(path) == before_pixels
        read = [need_exiftool(), "-s3", "-Make", "-Model", str(path)]
        camera = subprocess.run(read, capture_output=True, text=True, check=True).stdout.split()
        assert camera == ["Canon", "EOS", "R5"]
    assert not list(tmp_path.glob(".*stockup-edit*"))
    shown = json.loads(cli.ok("meta", "show", str(path), "--json").stdout)[0]
    assert shown["title"] == TITLE and shown["keyword_count"] == 50


def test_one_file_that_cannot_be_written_fails_alone(cli: Cli, tmp_path: Path) -> None:
    good = camera_photo(tmp_path / "good.jpg")
    locked = camera_photo(tmp_path / "locked.jpg")
    locked.chmod(0o444)
    (tmp_path / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" version="1.1"/>')
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    # A PNG whose headers read well, broken past its first data chunk.
    Image.effect_noise((1200, 900), 64).convert("RGB").save(tmp_path / "damaged.png")
    data = bytearray((tmp_path / "damaged.png").read_bytes())
    second = data.index(b"IDAT", data.index(b"IDAT") + 4)
    data[second : second + 4] = b"\x00\x00IE"
    (tmp_path / "damaged.png").write_bytes(data)
    original = locked.read_bytes()
    result = cli("meta", "set", str(tmp_path), "--add-keywords", "night, city")
    assert result.returncode == 1
    assert "changed  good.jpg" in result.stdout
    assert "failed   locked.jpg: locked.jpg is read-only" in result.stdout
    assert "failed   drawing.svg: stockup cannot write metadata into SVG" in result.stdout
    assert "failed   broken.jpg" in result.stdout and "Traceback" not in result.output
    assert "failed   damaged.png: its image data does not decode (broken PNG file" in result.stdout
    assert (tmp_path / "damaged.png").read_bytes() == data
    assert read_facts(good).metadata.keywords == ["night", "city"]
    assert locked.read_bytes() == original


def test_a_vector_and_its_preview_get_the_same_metadata(cli: Cli, tmp_path: Path) -> None:
    vector = ai_eps(tmp_path / "wave.eps")
    preview = photo(tmp_path / "wave.jpg", 800, 800)
    cli.ok("meta", "set", str(vector), "--title", "Wave", "--keywords", "sea, wave, blue")
    for path in (vector, preview):
        meta = read_facts(path).metadata
        assert (meta.title, meta.keywords) == ("Wave", ["sea", "wave", "blue"]), path.name


def test_keyword_edits_and_a_dry_run(cli: Cli, tmp_path: Path) -> None:
    path = camera_photo(tmp_path / "p.jpg")
    cli.ok("meta", "set", str(path), "--keywords", "sun, sea, sky")
    dry = cli.ok("meta", "set", str(path), "--add-keywords", "Sea, beach", "--dry-run")
    assert "would    p.jpg: 4 keywords (were 3)" in dry.stdout
    assert read_facts(path).metadata.keywords == ["sun", "sea", "sky"]  # nothing written
    cli.ok("meta", "set", str(path), "--add-keywords", "Sea, beach", "--remove-keywords", "SUN")
    assert read_facts(path).metadata.keywords == ["sea", "sky", "beach"]
    nothing = cli("meta", "set", str(path))
    assert nothing.returncode == 2 and "say what to change" in nothing.stderr


def test_show_says_where_each_value_comes_from_and_when_they_disagree(
    cli: Cli, tmp_path: Path
) -> None:
    path = tag(camera_photo(tmp_path / "mixed.jpg"), title="From XMP", keywords=["a", "b"])
    tag(path, title="From IPTC", keywords=["a", "b"], iptc=True)
    shown = cli.ok("meta", "show", str(path)).stdout
    assert "from: XMP, IPTC" in shown and "title: From XMP" in shown
    assert "title differ between sources (XMP: 'From XMP'; IPTC: 'From IPTC')" in shown
    data = json.loads(cli.ok("meta", "show", str(path), "--json").stdout)[0]
    assert data["disagree"] == ["title"] and data["sources"]["IPTC"]["title"] == "From IPTC"


def test_empty_fields_are_removed_and_read_as_empty(cli: Cli, tmp_path: Path) -> None:
    """A title alone on a photo without keywords leaves no empty keyword field
    behind, and a photo whose IPTC fields are there but empty (as some tools
    write them) reads as having none."""
    path = camera_photo(tmp_path / "photo.jpg")
    cli.ok("meta", "set", str(path), "--title", "Harbour")
    assert exiftool_reads(path) == {
        "SourceFile": str(path), "Title": "Harbour", "ObjectName": "Harbour"}  # fmt: skip
    cli.ok("meta", "set", str(path), "--title", "")
    assert exiftool_reads(path) == {"SourceFile": str(path)}
    import pyexiv2

    empty = camera_photo(tmp_path / "empty.jpg")
    with pyexiv2.Image(str(empty)) as image:
        fields = ("ObjectName", "Caption", "Keywords")
        image.modify_iptc({f"Iptc.Application2.{field}": "" for field in fields})
    shown = json.loads(cli.ok("meta", "show", str(empty), "--json").stdout)[0]
    assert (shown["title"], shown["description"], shown["keywords"]) == (None, None, [])
    checked = cli("check", str(empty), "--agency", "adobestock", "--json")
    assert json.loads(checked.stdout)[0]["keywords"] == [], checked.output  # read, not a crash


def test_a_character_metadata_cannot_carry_is_named(cli: Cli, tmp_path: Path) -> None:
    """XMP has no control characters but tab and line breaks, and bytes in
    argv that are not UTF-8 reach Python as lone surrogates: the file fails
    with the reason, before anything is written."""
    path = camera_photo(tmp_path / "photo.jpg")
    cases = {
        "Red\x1b[31m": "the title holds U+001B, a control character",
        os.fsdecode(b"caf\xe9"): "the title holds bytes that are not UTF-8",
    }
    for title, reason in cases.items():
        result = cli("meta", "set", str(path), "--title", title)
        assert result.returncode == 1, result.output
        assert f"{reason}, which metadata cannot carry; nothing was changed" in result.stdout
    result = cli("meta", "set", str(path), "--keywords", "harbour, \x01night")
    assert "the keyword '\\x01night' holds U+0001" in result.stdout, result.output
    assert read_facts(path).metadata.title is None
    cli.ok("meta", "set", str(path), "--title", "Two\nlines\tand a tab")
    assert read_facts(path).metadata.title == "Two\nlines\tand a tab"


def test_a_title_past_iptc_s_64_characters_is_not_a_disagreement(cli: Cli, tmp_path: Path) -> None:
    """stockup cuts what it writes into IPTC at IIM's 64 characters: 'meta
    show' then said its own title and keyword "differ between sources"."""
    path = camera_photo(tmp_path / "photo.jpg")
    title = "Fishing boats in the harbour at dawn, gulls overhead and nets on the quay"
    cli.ok("meta", "set", str(path), "--title", title, "--keywords", "a" * 70 + ", harbour")
    assert exiftool_reads(path)["ObjectName"] == title[:64]
    shown = cli.ok("meta", "show", str(path))
    assert "differ" not in shown.stdout and f"title: {title}" in shown.stdout
    tag(path, title="Another title", iptc=True)
    assert "title differ between sources" in cli.ok("meta", "show", str(path)).stdout


def test_import_understands_agency_csvs_and_reports_what_it_cannot_match(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = camera_photo(tmp_path / "a" / "one.jpg")
    two = camera_photo(tmp_path / "a" / "two.jpg")
    camera_photo(tmp_path / "a" / "twin.jpg")
    camera_photo(tmp_path / "b" / "twin.jpg")
    sheet = tmp_path / "shutterstock.csv"
    sheet.write_text(
        "Filename,Description,Keywords,Categories\n"
        'one.jpg,"Harbour at dawn","boat, harbour, dawn",Transportation\n'
        'missing.jpg,"Nothing",x,\n'
        'twin.jpg,"Which one?",y,\n'
    )
    result = cli("meta", "import", str(sheet), str(tmp_path))
    assert result.returncode == 1
    assert "line 3: no file named 'missing.jpg': nothing done" in result.stdout
    assert "line 4: 'twin.jpg' matches 2 files" in result.stdout
    meta = read_facts(one).metadata
    assert (meta.title, meta.description, meta.keywords) == (
        "Harbour at dawn", "Harbour at dawn", ["boat", "harbour", "dawn"])  # fmt: skip
    adobe = tmp_path / "adobe.csv"
    adobe.write_text('Filename,Title,Keywords,Category,Releases\ntwo.jpg,Two boats,"boat,sea",2,\n')
    cli.ok("meta", "import", str(adobe), str(tmp_path / "a"))
    assert read_facts(two).metadata.title == "Two boats"


def test_import_reads_cells_as_written_and_refuses_a_broken_csv(cli: Cli, tmp_path: Path) -> None:
    """A line separator (U+2028, from a web page) inside a cell cut its row in
    two; a cell past 128 KiB was an internal error (csv.Error)."""
    photo_file = camera_photo(tmp_path / "one.jpg")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("Filename,Description\none.jpg,Harbour\u2028at dawn\n", encoding="utf-8")
    cli.ok("meta", "import", str(sheet), str(photo_file))
    assert read_facts(photo_file).metadata.description == "Harbour\u2028at dawn"
    sheet.write_text("Filename,Title\none.jpg," + "x" * 200_000 + "\n", encoding="utf-8")
    refused = cli("meta", "import", str(sheet), str(photo_file))
    assert refused.returncode == 2 and "Traceback" not in refused.output
    assert f"{sheet}: not a CSV stockup can read (field larger than field limit" in refused.stderr


def test_export_writes_each_agency_s_csv_neutralised(cli: Cli, tmp_path: Path) -> None:
    path = camera_photo(tmp_path / "=cmd.jpg")
    long_name = camera_photo(tmp_path / "a_file_name_longer_than_thirty_chars.jpg")
    cli.ok("meta", "set", str(path), "--title", "@SUM(1+1), with a comma", "--keywords", "-1, b")
    cli.ok("meta", "set", str(long_name), "--title", "Fine", "--keywords", "k")
    for fmt, header in [
        ("shutterstock", ["Filename", "Description", "Keywords", "Categories", "Illustration",
                          "Mature Content", "Editorial"]),
        ("adobestock", ["Filename", "Title", "Keywords", "Category", "Releases"]),
        ("generic", ["Filename", "Title", "Description", "Keywords"]),
    ]:  # fmt: skip
        result = cli.ok("meta", "export", str(tmp_path), "--format", fmt)
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == header
        by_name = {r[0]: r for r in rows[1:]}
        assert "'=cmd.jpg" in by_name and by_name["'=cmd.jpg"][1].startswith("'@SUM")
        assert by_name["'=cmd.jpg"][header.index("Keywords")] == "'-1, b"
        if fmt == "adobestock":
            assert "takes titles without commas" in result.stderr
            assert "file names of at most 30 characters" in result.stderr
    out = tmp_path / "out" / "adobe.csv"
    cli.ok("meta", "export", str(tmp_path), "--format", "adobestock", "-o", str(out))
    assert out.read_text().startswith("Filename,Title,Keywords")


def test_check_sees_the_new_values_at_once(cli: Cli, tmp_path: Path) -> None:
    path = tag(camera_photo(tmp_path / "p.jpg"), title="T", keywords=["a", "b"])
    before = json.loads(cli("check", str(path), "--agency", "shutterstock", "--json").stdout)[0]
    assert any("at least 7" in f["message"] for f in before["findings"])
    cli.ok("meta", "set", str(path), "--add-keywords", "c, d, e, f, g")
    after = json.loads(cli("check", str(path), "--agency", "shutterstock", "--json").stdout)[0]
    assert not any("keywords" in f["message"] for f in after["findings"])


def test_a_file_edited_after_upload_is_not_sent_again_silently(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    (tmp_path / "art").mkdir()
    path = camera_photo(tmp_path / "art" / "p.jpg")
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server, name="shop")
        cli.ok("upload", "--skip-checks", str(path), "--to", "shop")
        cli.ok("meta", "set", str(path), "--keywords", "new, words")
        again = cli.ok("upload", "--skip-checks", str(path), "--to", "shop", "--json")
        result = json.loads(again.stdout)["results"][0]
        assert result["status"] == "skipped"
        assert "changed since it was uploaded to shop on" in result["error"]
        assert "force sends it again" in result["error"]
        forced = json.loads(cli.ok("upload", "--skip-checks", str(path), "--to", "shop",
                                   "--force", "--json").stdout)  # fmt: skip
        assert forced["results"][0]["status"] == "uploaded"
        assert (server.upload_root / "p.jpg").read_bytes() == path.read_bytes()


def test_video_without_exiftool_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    clip = ffmpeg_clip(tmp_path / "clip.mp4", seconds=1)
    bare = tmp_path / "bin"
    bare.mkdir()
    result = cli("meta", "set", str(clip), "--title", "x", env={"PATH": str(bare)})
    assert result.returncode == 1
    assert "writing metadata into MP4/MOV needs ExifTool" in result.stdout


def test_two_edits_of_one_file_at_once_never_share_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form sent twice, or the web UI beside the CLI: the second write does
    not write into the first one's copy, and the first, finishing last, does
    not undo the second unseen."""
    path = camera_photo(tmp_path / "photo.jpg")
    copies: list[Path] = []
    paused, go_on = threading.Event(), threading.Event()
    real_write = editing._write_exiv2

    def write_then_wait(copy: Path, meta: Metadata, change: Change, *, iptc: bool) -> None:
        copies.append(copy)
        real_write(copy, meta, change, iptc=iptc)
        if meta.title == "first":
            paused.set()
            assert go_on.wait(30)

    monkeypatch.setattr(editing, "_write_exiv2", write_then_wait)
    first = plan_edit(path, Edit(title="first", keywords=["one"]))
    worker = threading.Thread(target=write, args=(first,))
    worker.start()
    assert paused.wait(30)
    second = write(plan_edit(path, Edit(title="second")))
    go_on.set()
    worker.join()
    assert second.written and second.error is None
    assert not first.written
    assert first.error and "photo.jpg changed since stockup read it" in first.error
    assert len(set(copies)) == 2
    assert read_facts(path).metadata.title == "second"
    assert not list(tmp_path.glob(".*stockup-edit*"))


def test_exiv2_s_warnings_stay_out_of_the_output(cli: Cli, tmp_path: Path) -> None:
    """A camera's EXIF entry of a type exiv2 does not know: it printed
    "[warn] Directory Image, entry 0x010f has unknown Exif (TIFF) type 0" on
    stdout, among stockup's own lines (and into any JSON there)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R5"
    data = bytearray(exif.tobytes())
    first_entry = 6 + 8 + 2  # "Exif\0\0", the TIFF header, the entry count
    data[first_entry + 2 : first_entry + 4] = b"\x00\x00"  # its type: 0
    path = tmp_path / "odd.jpg"
    Image.linear_gradient("L").convert("RGB").save(path, exif=bytes(data))
    result = cli.ok("meta", "set", str(path), "--title", "Harbour")
    assert result.stderr == "" and "[warn]" not in result.stdout
    assert result.stdout.splitlines()[0] == "changed  odd.jpg: title 'Harbour'"


def test_a_bug_writing_one_file_fails_that_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = camera_photo(tmp_path / "first.jpg"), camera_photo(tmp_path / "second.jpg")
    real_verify = editing._verify

    def verify(before: Any, written: Path, meta: Metadata, change: Change) -> None:
        if change.path == first:
            raise KeyError(0)
        real_verify(before, written, meta, change)

    monkeypatch.setattr(editing, "_verify", verify)
    changes = [write(plan_edit(path, Edit(title="Harbour"))) for path in (first, second)]
    assert changes[0].error == "first.jpg: internal error (KeyError): 0"
    assert not changes[0].written and changes[1].written
    assert read_facts(first).metadata.title is None
    assert not list(tmp_path.glob(".*stockup-edit*"))


def test_an_edit_read_before_another_edit_changes_nothing(tmp_path: Path) -> None:
    """What an edit writes is worked out from what the file held when it was
    read: written over a newer edit, it would drop that edit's keywords."""
    path = camera_photo(tmp_path / "photo.jpg")
    stale = plan_edit(path, Edit(title="Harbour at night"))
    assert write(plan_edit(path, Edit(keywords=["harbour", "night"]))).written
    write(stale)
    assert not stale.written
    assert stale.error == (
        "photo.jpg changed since stockup read it (another edit at the same time?); "
        "nothing was changed: run it again"
    )
    meta = read_facts(path).metadata
    assert (meta.title, meta.keywords) == (None, ["harbour", "night"])
    assert not list(tmp_path.glob(".*stockup-edit*"))


def test_copies_left_by_a_killed_write_are_removed_by_the_next(tmp_path: Path) -> None:
    """Each write has a copy of its own, so a copy left by a kill -9 is not
    overwritten by the next write: one untouched for an hour is removed then.
    A recent one may be another write's, and another file's are not this
    write's to remove."""
    path = camera_photo(tmp_path / "photo.jpg")
    stale = tmp_path / ".photo.stockup-edit-k1ll3d.jpg"
    recent = tmp_path / ".photo.stockup-edit-w0rk1n.jpg"
    other = tmp_path / ".other.stockup-edit-k1ll3d.jpg"
    for copy in (stale, recent, other):
        copy.write_bytes(path.read_bytes())
    two_hours_ago = time.time() - 7200
    for copy in (stale, other):
        os.utime(copy, (two_hours_ago, two_hours_ago))
    assert write(plan_edit(path, Edit(title="Harbour"))).written
    assert sorted(p.name for p in tmp_path.glob(".*")) == [other.name, recent.name]


def test_kill_9_during_a_write_leaves_the_old_file_or_the_new(tmp_path: Path) -> None:
    """A 100 MB TIFF, killed at several moments of a write: it is always whole."""
    big = tmp_path / "big.tif"
    Image.effect_noise((6000, 5600), 64).convert("RGB").save(big)  # ~100 MB uncompressed
    assert big.stat().st_size > 90_000_000
    expected = pixels(big)
    code = ("import sys; from pathlib import Path; from stockup.editing import Edit, plan_edit, "
            "write; write(plan_edit(Path(sys.argv[1]), Edit(title=sys.argv[2])))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    titles = set()
    for delay in (0.3, 0.8, 1.5, 3.0):
        proc = subprocess.Popen([sys.executable, "-c", code, str(big), f"after {delay}"], env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        facts = read_facts(big)
        assert facts.error is None and (facts.width, facts.height) == (6000, 5600)
        titles.add(facts.metadata.title)
        for leftover in tmp_path.glob(".*stockup-edit*"):
            leftover.unlink()  # the copy being written, never the original
    assert pixels(big) == expected
    assert titles <= {None, "after 0.3", "after 0.8", "after 1.5", "after 3.0"}
    shutil.rmtree(tmp_path, ignore_errors=True)
