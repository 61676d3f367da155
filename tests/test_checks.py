"""Pre-upload checks: metadata read like exiftool reads it, verdicts per agency,
bad input reported file by file, and agency packaging at upload."""

from __future__ import annotations

import json
import re
import resource
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from stockup.catalogue import get_agency
from stockup.checks import check_files, facts
from stockup.checks.facts import read_facts
from stockup.checks.metadata import Metadata
from stockup.checks.metadata import read_iptc as real_read_iptc
from stockup.packaging import build_zip, safe_name
from tests.servers.fixtures import ServerFactory
from tests.support.artworks import (
    eps,
    exiftool_reads,
    lying_jpeg,
    lying_png,
    photo,
    tag,
    with_creator,
)
from tests.support.cli import Cli

SEVEN = ["sunset", "desert", "dunes", "sand", "travel", "orange", "evening"]


def verdicts(files: list[Path], *agencies: str) -> dict[tuple[str, str], list[str]]:
    """(file name, agency) -> the error and warning messages, prefixed by level."""
    return {
        (v.facts.path.name, v.target): [f"{f.level}: {f.message}" for f in v.findings]
        for v in check_files(files, [(a, get_agency(a)) for a in agencies])
    }


# -- metadata, cross-checked with exiftool ---------------------------------------


@pytest.mark.parametrize(
    "fmt,iptc",
    [("jpg", False), ("jpg", True), ("tif", False), ("tif", True), ("eps", False)],
)
def test_metadata_matches_exiftool(tmp_path: Path, fmt: str, iptc: bool) -> None:
    path = tmp_path / f"art.{fmt}"
    if fmt == "eps":
        eps(path)
    else:
        photo(path, 64, 48)
    keywords = ["Zürich", "lake", "mountains", "blue sky"]
    tag(path, title="Lake Zürich at dawn", description="A calm lake", keywords=keywords, iptc=iptc)
    ours = read_facts(path).metadata
    theirs = exiftool_reads(path)
    if iptc:
        assert ours.title == theirs["ObjectName"]
        assert ours.keywords == theirs["Keywords"]
        assert ours.description == theirs["Caption-Abstract"]
    else:
        assert ours.title == theirs["Title"]
        assert ours.keywords == theirs["Subject"]
        assert ours.description == theirs["Description"]
    assert ours.keywords == keywords


# -- verdicts per agency -----------------------------------------------------------


def test_verdict_matrix(tmp_path: Path) -> None:
    good = tag(photo(tmp_path / "good_photo.jpg", 2400, 1800), title="Orange", keywords=SEVEN)
    small = tag(photo(tmp_path / "small.jpg", 1000, 800), title="Small", keywords=SEVEN)
    large = lying_jpeg(tmp_path / "large.jpg", 9000, 9000)
    cmyk = photo(tmp_path / "cmyk.jpg", 2400, 1800, mode="CMYK")
    bare = photo(tmp_path / "no_keywords.jpg", 2400, 1800)
    many = tag(photo(tmp_path / "many.jpg", 2400, 1800), title="Many",
               keywords=[f"word{i}" for i in range(60)])  # fmt: skip
    bad_name = tag(photo(tmp_path / "bad-name.jpg", 2400, 1800), title="Bad", keywords=SEVEN)
    lonely = eps(tmp_path / "lonely.eps", illustrator=10)
    paired = eps(tmp_path / "paired.eps", illustrator=17)
    preview = photo(tmp_path / "paired.jpg", 800, 800)
    files = [good, small, large, cmyk, bare, many, bad_name, lonely, paired, preview]
    v = verdicts(files, "shutterstock", "adobestock", "depositphotos", "pond5", "dreamstime")

    def errors(name: str, agency: str) -> list[str]:
        return [m for m in v[(name, agency)] if m.startswith("error")]

    assert errors("good_photo.jpg", "shutterstock") == []
    assert errors("good_photo.jpg", "adobestock") == []
    assert any("minimum is 4 MP" in m for m in errors("small.jpg", "shutterstock"))
    assert any("minimum is 3.84 MP" in m for m in errors("small.jpg", "depositphotos"))
    assert not any("MP" in m for m in errors("large.jpg", "dreamstime"))  # no maximum now
    assert not any("MP" in m for m in errors("large.jpg", "adobestock"))  # 100 MP allowed
    assert any("CMYK" in m for m in errors("cmyk.jpg", "adobestock"))
    assert any("no embedded keywords" in m for m in errors("no_keywords.jpg", "shutterstock"))
    assert "warning: no embedded keywords" in v[("no_keywords.jpg", "dreamstime")]
    assert any("60 keywords; at most 50" in m for m in errors("many.jpg", "shutterstock"))
    assert any("60 keywords; at most 49" in m for m in errors("many.jpg", "adobestock"))
    assert any(
        "file names may use only letters" in m for m in errors("bad-name.jpg", "shutterstock")
    )
    assert any("no accents, dashes or underscores" in m for m in errors("good_photo.jpg", "pond5"))
    assert any("same-name JPG preview" in m for m in errors("lonely.eps", "shutterstock"))
    assert any("same-name JPG preview" in m for m in errors("lonely.eps", "depositphotos"))
    assert not any("preview" in m for m in errors("lonely.eps", "adobestock"))
    assert any("Illustrator 17" in m for m in errors("paired.eps", "shutterstock"))
    assert not any("preview" in m for m in errors("paired.eps", "depositphotos"))
    assert errors("paired.jpg", "shutterstock") == []  # a preview: no size or keyword rules


def test_duplicate_keywords_and_long_title_warn_or_fail(tmp_path: Path) -> None:
    path = tag(photo(tmp_path / "dupes.jpg", 2400, 1800), title="T" * 80,
               keywords=[*SEVEN, "Sunset"])  # fmt: skip
    v = verdicts([path], "adobestock")[("dupes.jpg", "adobestock")]
    assert "warning: keywords repeated: sunset (each counts once)" in v
    assert "error: title is 80 characters; at most 70" in v


def test_bad_input_each_reported_others_still_checked(tmp_path: Path, cli: Cli) -> None:
    good = tag(photo(tmp_path / "good.jpg", 2400, 1800), title="Good", keywords=SEVEN)
    (tmp_path / "zero.jpg").write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:-600])
    (tmp_path / "text.jpg").write_text("this is not a picture\n")
    (tmp_path / "png_named.jpg").write_bytes(photo(tmp_path / "x.png", 10, 10).read_bytes())
    (tmp_path / "x.png").unlink()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lying_png(tmp_path / "huge.png", 100000, 100000)
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + b"\x13" * 200 + b"\xff\xd9")
    v = verdicts(sorted(tmp_path.iterdir()), "adobestock")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, "a lying header must not be decoded"

    expected = {
        "zero.jpg": "empty file (0 bytes)",
        "truncated.jpg": "truncated JPEG",
        "text.jpg": "content is TEXT, but the file is named .jpg",
        "png_named.jpg": "content is PNG, but the file is named .jpg",
        "huge.png": "image header claims 10,000 MP; refused without decoding",
        "broken.jpg": "broken symbolic link",
        "corrupt.jpg": "not a readable JPEG",
    }
    for name, message in expected.items():
        found = v[(name, "adobestock")]
        assert len(found) == 1 and message in found[0], (name, found)
    assert [m for m in v[("good.jpg", "adobestock")] if m.startswith("error")] == []

    result = cli("check", str(tmp_path), "--agency", "adobestock", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    levels = {Path(r["file"]).name: r["level"] for r in report}
    assert levels["good.jpg"] == "ok" and levels["zero.jpg"] == "error"


def test_a_file_that_trips_a_parser_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsers answer some damaged files with KeyError, IndexError, struct.error
    ...: that file fails with what went wrong, and the others are checked."""
    good = tag(photo(tmp_path / "good.jpg", 2400, 1800), title="Good", keywords=SEVEN)
    # Quantization tables numbered 2 and 1, not 0 and 1: Pillow reads the
    # file, with no table 0 to estimate the quality from.
    data = bytearray(good.read_bytes())
    table = data.index(b"\xff\xdb") + 4  # marker, length, then precision and number
    assert data[table] == 0
    data[table] = 2
    renumbered = tmp_path / "renumbered.jpg"
    renumbered.write_bytes(data)
    tripping = tmp_path / "tripping.jpg"
    tripping.write_bytes(good.read_bytes())

    def read_iptc(image: Any) -> Metadata:
        if Path(image.filename).name == tripping.name:
            raise struct.error("unpack requires a buffer of 4 bytes")
        return real_read_iptc(image)

    monkeypatch.setattr(facts, "read_iptc", read_iptc)
    v = verdicts([good, renumbered, tripping], "adobestock")
    assert v[("tripping.jpg", "adobestock")] == [
        "error: not a readable JPEG (struct.error: unpack requires a buffer of 4 bytes)"
    ]
    assert v[("renumbered.jpg", "adobestock")] == v[("good.jpg", "adobestock")]
    assert read_facts(renumbered).jpeg_quality is None
    assert read_facts(good).jpeg_quality is not None


def test_video_duration_needs_ffprobe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00" + b"\x00" * 100)
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffprobe on it
    v = verdicts([clip], "adobestock")[("clip.mov", "adobestock")]
    assert (
        "warning: duration not checked: not in the file's header, and ffprobe is not installed" in v
    )
    assert read_facts(clip).format == "mov"


def test_check_command_errors(cli: Cli, tmp_path: Path) -> None:
    photo(tmp_path / "a.jpg", 10, 10)
    no_accounts = cli("check", str(tmp_path))
    assert no_accounts.returncode == 2 and "no accounts yet" in no_accounts.stderr
    unknown = cli("check", str(tmp_path), "--agency", "nope")
    assert unknown.returncode == 2 and "unknown agency" in unknown.stderr
    table = cli("check", str(tmp_path), "--agency", "shutterstock")
    assert table.returncode == 1 and "minimum is 4 MP" in table.stdout


# -- packaging ---------------------------------------------------------------------


def test_zip_named_after_full_stem_and_reproducible(tmp_path: Path) -> None:
    vector = eps(tmp_path / "logo.v2.final.eps")
    preview = photo(tmp_path / "logo.v2.final.jpg", 100, 100)
    work = tmp_path / "work"
    work.mkdir()
    first = build_zip(vector, preview, work)
    second = build_zip(vector, preview, work)
    assert first.name == second.name == "logo.v2.final.zip"
    assert first.read_bytes() == second.read_bytes()
    assert zipfile.ZipFile(first).namelist() == ["logo.v2.final.eps", "logo.v2.final.jpg"]


def test_safe_names() -> None:
    ss = get_agency("shutterstock").rules.filename_pattern
    pond5 = get_agency("pond5").rules.filename_pattern
    assert safe_name("Café au lait-01.JPG", ss) == "Cafe_au_lait_01.jpg"
    assert safe_name("Café au lait-01.jpg", pond5) == "Cafe au lait 01.jpg"
    assert safe_name("fine_name.jpg", ss) == "fine_name.jpg"


def test_upload_routes_and_packs_per_agency(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    art = tmp_path / "art"
    art.mkdir()
    good = tag(photo(art / "good_photo.jpg", 2400, 1800), title="Orange", keywords=SEVEN)
    photo(art / "tiny.jpg", 600, 400)
    vector = with_creator(tag(eps(art / "logo.eps"), title="Logo", keywords=SEVEN), 10)
    preview = photo(art / "logo.jpg", 1600, 1600)
    (art / "zero.jpg").write_bytes(b"")
    accented = tag(photo(art / "Café-02.jpg", 2400, 1800), title="Cafe", keywords=SEVEN)
    with start_server("pyftpdlib-ftps") as ss_server, start_server("asyncssh-sftp") as dp_server:
        cli.ok("init")
        ca = str(ss_server.info.ca_file)
        cli.ok(
            "account",
            "add",
            "ss",
            "--agency",
            "shutterstock",
            "--host",
            "127.0.0.1",
            "--port",
            str(ss_server.info.port),
            "--ca-file",
            ca,
            "--user",
            ss_server.info.user,
            "--password-stdin",
            input=ss_server.info.password + "\n",
        )
        cli.ok(
            "account",
            "add",
            "dp",
            "--agency",
            "depositphotos",
            "--host",
            "127.0.0.1",
            "--port",
            str(dp_server.info.port),
            "--protocol",
            "sftp",
            "--user",
            dp_server.info.user,
            "--password-stdin",
            input=dp_server.info.password + "\n",
        )
        cli.ok("account", "test", "dp", "--trust-host-key")  # fmt: skip
        plan = cli.ok("upload", str(art), "--to", "ss", "--dry-run").stdout
        assert "3 to send" in plan  # good_photo.jpg, then logo.eps followed by its preview
        assert re.search(r"^rejected \S*/tiny\.jpg -> ss: .*minimum is 4 MP", plan, re.M)
        result = cli("upload", str(art), "--to", "ss,dp", "--json", "--safe-names")
        report = json.loads(result.stdout)
        assert result.returncode == 1, result.output  # tiny.jpg and zero.jpg were rejected
        by = {(Path(r["file"]).name, r["account"]): r for r in report["results"]}
        assert by[("zero.jpg", "ss")]["status"] == "rejected"
        assert by[("zero.jpg", "ss")]["error"] == "empty file (0 bytes)"
        assert by[("Café-02.jpg", "ss")]["remote_path"] == "Cafe_02.jpg"
        assert by[("Café-02.jpg", "dp")]["remote_path"] == "Café-02.jpg"  # no rule there
        assert by[("tiny.jpg", "ss")]["status"] == "rejected"
        assert "minimum is 4 MP" in by[("tiny.jpg", "ss")]["error"]
        assert by[("tiny.jpg", "dp")]["status"] == "rejected"
        assert by[("logo.jpg", "dp")]["status"] == "skipped"

        ss_files = sorted(p.name for p in ss_server.info.root.iterdir() if p.is_file())
        assert ss_files == ["Cafe_02.jpg", "good_photo.jpg", "logo.eps", "logo.jpg"]
        dp_files = sorted(p.name for p in dp_server.info.root.iterdir() if p.is_file())
        assert dp_files == ["Café-02.jpg", "good_photo.jpg", "logo.zip"]
        assert (ss_server.info.root / "Cafe_02.jpg").read_bytes() == accented.read_bytes()
        sent = [h["remote_path"] for h in json.loads(cli.ok("history", "--json", "--account",
                                                             "ss").stdout)]  # fmt: skip
        # Newest first: the preview was sent after its vector.
        assert sent.index("logo.jpg") < sent.index("logo.eps"), "vector before its preview"
        with zipfile.ZipFile(dp_server.info.root / "logo.zip") as archive:
            assert archive.read("logo.eps") == vector.read_bytes()
            assert archive.read("logo.jpg") == preview.read_bytes()
        assert (ss_server.info.root / "good_photo.jpg").read_bytes() == good.read_bytes()

        rejected_report = cli.ok("upload", str(art / "tiny.jpg"), "--to", "ss", "--skip-checks",
                                 "--json")  # fmt: skip
        assert json.loads(rejected_report.stdout)["summary"]["uploaded"] == 1
