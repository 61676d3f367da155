"""AI-generated content: every marker read, each agency's policy applied,
and the marker written the way IPTC recommends."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stockup.catalogue import get_agency
from stockup.checks.facts import read_facts
from stockup.checks.rules import evaluate
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.ai_files import c2pa_signed, stable_diffusion_png, xmp_marked
from tests.support.artworks import need_exiftool
from tests.support.cli import Cli
from tests.support.clips import ffmpeg_clip


def findings(path: Path, agency: str) -> list[str]:
    facts = read_facts(path)
    return [f"{f.level}: {f.message}" for f in evaluate(
        facts, get_agency(agency), has_preview=False, is_preview=False)]  # fmt: skip


@pytest.mark.parametrize(
    "make,where,value",
    [
        (
            lambda p: xmp_marked(p, "trainedAlgorithmicMedia"),
            "XMP DigitalSourceType",
            "trainedAlgorithmicMedia",
        ),
        (
            lambda p: xmp_marked(p, "compositeWithTrainedAlgorithmicMedia"),
            "XMP DigitalSourceType",
            "compositeWithTrainedAlgorithmicMedia",
        ),
        (lambda p: xmp_marked(p, ai_system="Firefly Image 4"), "XMP (IPTC 2025.1)", "AISystemUsed"),
        (lambda p: c2pa_signed(p), "C2PA manifest (c2pa.created)", "trainedAlgorithmicMedia"),
        (
            lambda p: stable_diffusion_png(p),
            "PNG text chunk 'parameters'",
            "written by AUTOMATIC1111",
        ),
        (
            lambda p: stable_diffusion_png(p, "workflow"),
            "PNG text chunk 'workflow'",
            "written by ComfyUI",
        ),
    ],
    ids=["xmp-trained", "xmp-composite", "iptc-2025", "c2pa", "a1111", "comfyui"],
)
def test_every_marker_is_read(tmp_path: Path, make: object, where: str, value: str) -> None:
    suffix = ".png" if "PNG" in where else ".jpg"
    path = make(tmp_path / f"marked{suffix}")  # type: ignore[operator]
    marker = read_facts(path).provenance.ai
    assert marker is not None and (marker.where, marker.value) == (where, value)


def test_a_photograph_marked_as_such_is_not_ai(tmp_path: Path) -> None:
    photo = xmp_marked(tmp_path / "photo.jpg", "digitalCapture")
    provenance = read_facts(photo).provenance
    assert provenance.ai is None and provenance.markers[0].value == "digitalCapture"
    assert not [f for f in findings(photo, "shutterstock") if "AI" in f]


def test_each_agency_s_policy(tmp_path: Path) -> None:
    ai = xmp_marked(tmp_path / "ai.jpg", "trainedAlgorithmicMedia")
    shutterstock = findings(ai, "shutterstock")
    refused = "error: Shutterstock does not take content made with generative AI (XMP "
    assert any(f.startswith(refused + "DigitalSourceType: trainedAlgorithmicMedia)")
               for f in shutterstock)  # fmt: skip
    adobe = findings(ai, "adobestock")
    assert any("warning:" in f and "Created using generative AI tools" in f for f in adobe)
    assert not any(f.startswith("error") for f in adobe)
    freepik = findings(ai, "freepik")
    assert any("add the keyword _ai_generated" in f for f in freepik)
    unknown = findings(ai, "vecteezy")
    assert any("no public page gives Vecteezy / Eezy's policy" in f for f in unknown)
    pond5 = findings(ai, "pond5")  # refuses, but only secondary sources say so
    assert any(f.startswith("warning:") and "not confirmed by the agency" in f for f in pond5)
    assert not any(f.startswith("error") and "AI" in f for f in pond5)


def test_adobe_refuses_generative_ai_in_the_title(cli: Cli, tmp_path: Path) -> None:
    path = xmp_marked(tmp_path / "ai.jpg", "trainedAlgorithmicMedia")
    cli.ok("meta", "set", str(path), "--title", "Lighthouse, generative AI art", "--force")
    assert any("refuses 'generative AI' in the title" in f for f in findings(path, "adobestock"))


def test_meta_set_records_the_source_type_as_iptc_recommends(cli: Cli, tmp_path: Path) -> None:
    made = xmp_marked(tmp_path / "made.jpg")
    shot = xmp_marked(tmp_path / "shot.jpg")
    cli.ok("meta", "set", str(made), "--ai-generated", "--ai-tool", "Firefly Image 4")
    cli.ok("meta", "set", str(shot), "--not-ai")
    out = subprocess.run([need_exiftool(), "-j", "-u", "-XMP:all", str(made), str(shot)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    made_tags, shot_tags = json.loads(out)
    base = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    assert made_tags["DigitalSourceType"] == base + "trainedAlgorithmicMedia"
    assert made_tags["AISystemUsed"] == "Firefly Image 4"
    assert shot_tags["DigitalSourceType"] == base + "digitalCapture"
    checked = json.loads(cli("check", str(made), "--agency", "shutterstock", "--json").stdout)
    assert checked[0]["level"] == "error"
    wrong = cli("meta", "set", str(shot), "--ai-tool", "X")
    assert wrong.returncode == 2 and "--ai-tool goes with --ai-generated" in wrong.stderr


def test_a_clip_gets_the_iptc_2025_fields_even_from_an_older_exiftool(
    cli: Cli, tmp_path: Path
) -> None:
    clip = ffmpeg_clip(tmp_path / "made.mp4", seconds=5)
    cli.ok("meta", "set", str(clip), "--ai-generated", "--ai-tool", "Veo 3")
    marker = read_facts(clip).provenance
    assert {(m.value, m.generated) for m in marker.markers} >= {
        ("trainedAlgorithmicMedia", True), ("AISystemUsed", True)}  # fmt: skip
    assert b"<Iptc4xmpExt:AISystemUsed>Veo 3<" in clip.read_bytes()


def test_a_c2pa_file_is_not_written_without_force(cli: Cli, tmp_path: Path) -> None:
    signed = c2pa_signed(tmp_path / "signed.jpg")
    original = signed.read_bytes()
    refused = cli("meta", "set", str(signed), "--add-keywords", "lighthouse")
    assert refused.returncode == 1 and "C2PA manifest" in refused.stdout
    assert "invalidates the manifest's signature; force writes anyway" in refused.stdout
    assert signed.read_bytes() == original
    cli.ok("meta", "set", str(signed), "--add-keywords", "lighthouse", "--force")
    assert read_facts(signed).metadata.keywords == ["lighthouse"]


def test_upload_says_what_to_label_at_the_agency(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    art = tmp_path / "art"
    art.mkdir()
    xmp_marked(art / "ai.jpg", "trainedAlgorithmicMedia")
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server, "--rules", "adobestock", name="adobe")
        add_account(cli, server, "--rules", "shutterstock", name="ss")
        result = cli("upload", str(art), "--to", "adobe,ss", "--no-progress")
    assert "adobe: ai.jpg: made with generative AI" in result.stderr
    assert "Created using generative AI tools" in result.stderr
    assert "rejected ai.jpg" not in result.stdout  # rejection lines go to stderr
    assert "Shutterstock does not take content made with generative AI" in result.output


def test_the_label_keyword_is_added_to_the_copy_sent(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    art = tmp_path / "art"
    art.mkdir()
    made = xmp_marked(art / "ai.jpg", "trainedAlgorithmicMedia")
    before = made.read_bytes()
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server, "--rules", "freepik", name="freepik")
        add_account(cli, server, "--rules", "adobestock", "--remote-dir", "adobe", name="adobe")
        (server.info.root / "adobe").mkdir()
        result = cli("upload", str(art), "--to", "freepik,adobe", "--no-progress")
        labelled = read_facts(server.upload_root / "ai.jpg").metadata.keywords
        as_is = read_facts(server.info.root / "adobe" / "ai.jpg").metadata.keywords
        again = cli("upload", str(art), "--to", "freepik", "--no-progress", "--verbose")
    assert result.returncode == 0, result.output
    assert labelled == [*(f"k{i}" for i in range(8)), "_ai_generated"]
    assert "_ai_generated" not in as_is  # Adobe labels AI in its portal, not by keyword
    assert made.read_bytes() == before  # the contributor's file is not touched
    assert "freepik: ai.jpg: sent with the keyword _ai_generated" in result.stderr
    assert "add the keyword _ai_generated" not in result.stderr  # stockup did it
    assert "already uploaded with the same content" in again.output  # the same copy again
