"""Checks a contributor can trust, over a corpus made by tests/support/corpus.py:
previews never travel alone, video metadata and facts read from the
container, keywords counted once, video rules both ways, custom servers
without agency rules, system files ignored, reports a person reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stockup.checks.facts import read_facts
from stockup.config import Account
from stockup.journal import Journal
from stockup.planning import plan_upload
from stockup.store import AccountOptions, build_account
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.artworks import EXIFTOOL, exiftool_reads, need_exiftool, photo, tag
from tests.support.cli import Cli
from tests.support.clips import FFPROBE, ffmpeg_clip, ffprobe_facts
from tests.support.corpus import KEYWORDS, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    make_corpus(folder)
    return folder


def account(agency: str, **options: object) -> Account:
    return build_account(agency, AccountOptions(agency=agency, allow_plaintext=True, **options))  # type: ignore[arg-type]


def outcomes(
    folder: Path, *accounts: Account, tmp_path: Path
) -> dict[tuple[str, str], tuple[str, str]]:
    """(file, account) -> (status, reason) as the planner decides, without sending."""
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        plan = plan_upload([folder], list(accounts), journal)
    finally:
        journal.close()
    plan.close()
    decided = {(Path(r.file).name, r.account): (str(r.status), r.error or "") for r in plan.decided}
    for job in plan.all_jobs():
        decided[(Path(job.artwork.label).name, job.account.name)] = ("send", job.remote_path)
    return decided


def test_a_preview_never_travels_without_its_vector(corpus: Path, tmp_path: Path) -> None:
    ss, dt, rf = account("shutterstock"), account("dreamstime"), account("123rf")
    got = outcomes(corpus, ss, dt, rf, tmp_path=tmp_path)
    # Shutterstock takes Illustrator 8/10 EPS: old_wave.eps (17) is rejected, and so its preview.
    assert got[("old_wave.eps", "shutterstock")][0] == "rejected"
    assert got[("old_wave.jpg", "shutterstock")] == (
        "rejected",
        "its vector old_wave.eps was rejected",
    )
    assert (
        got[("wave.eps", "shutterstock")][0] == "send"
        and got[("wave.jpg", "shutterstock")][0] == "send"
    )
    # A preview is judged as a preview: 2000 x 2000 is under Shutterstock's 4 MP, and passes.
    assert "MP" not in got[("wave.jpg", "shutterstock")][1]
    # Dreamstime takes no vector on its upload server: the preview stays home too.
    assert got[("wave.eps", "dreamstime")][0] == "skipped"
    status, reason = got[("wave.jpg", "dreamstime")]
    assert status == "rejected" and reason.startswith("its vector wave.eps is not sent: Dreamstime")
    # 123RF wants a preview of at least 1600 px: the pair goes together or not at all.
    assert got[("tiny_preview.jpg", "123rf")][0] == "rejected"
    assert "1600 px" in got[("tiny_preview.jpg", "123rf")][1]
    assert got[("tiny_preview.eps", "123rf")] == (
        "rejected",
        "its preview tiny_preview.jpg was rejected",
    )


def test_video_facts_and_metadata_come_from_the_container(corpus: Path) -> None:
    ok = read_facts(corpus / "clip_ok.mp4")
    assert (ok.duration, ok.width, ok.height) == (12.5, 1920, 1080)
    assert ok.metadata.title == "Waves at dusk" and ok.metadata.keywords == KEYWORDS
    assert ok.metadata.description == "Slow waves on a beach at dusk"
    short = read_facts(corpus / "clip_short.mov")  # QuickTime keys, not XMP
    assert short.metadata.title == "Short clip" and len(short.metadata.keywords) == 8
    udta = read_facts(corpus / "clip_long.mp4")  # XMP in moov/udta/XMP_
    assert udta.metadata.keywords == KEYWORDS and udta.duration == 75
    broken = read_facts(corpus / "clip_broken.mp4")
    assert not broken.metadata.readable and "could not read" in (broken.duration_note or "")


def test_real_clips_agree_with_ffprobe_and_exiftool(tmp_path: Path) -> None:
    clip = ffmpeg_clip(tmp_path / "real clip.mp4", seconds=6)
    need_exiftool()
    tag(clip, title="Réal clip", keywords=["plage", "mer", "été"], description="Vagues")
    facts = read_facts(clip)
    assert FFPROBE is not None
    duration, width, height = ffprobe_facts(clip)
    assert (facts.width, facts.height) == (width, height)
    assert facts.duration == pytest.approx(duration, abs=0.1)
    independent = exiftool_reads(clip)
    assert facts.metadata.title == independent["Title"] == "Réal clip"
    assert facts.metadata.keywords == independent["Subject"] == ["plage", "mer", "été"]


def test_video_rules_both_ways(corpus: Path, tmp_path: Path) -> None:
    cli_free = outcomes(corpus, account("shutterstock"), account("adobestock"), account("123rf"),
                        tmp_path=tmp_path)  # fmt: skip
    for agency in ("shutterstock", "adobestock"):
        assert cli_free[("clip_ok.mp4", agency)][0] == "send", agency  # video is taken there
        assert "at least 5 s" in cli_free[("clip_short.mov", agency)][1]
        assert "at most 60 s" in cli_free[("clip_long.mp4", agency)][1]
    assert "720 lines" in cli_free[("clip_small.mp4", "adobestock")][1]
    assert cli_free[("clip_small.mp4", "shutterstock")][0] == "send"
    status, reason = cli_free[("clip_ok.mp4", "123rf")]
    assert status == "skipped" and "video.ftp.123rf.com" in reason


def test_keywords_count_once(corpus: Path, tmp_path: Path) -> None:
    if EXIFTOOL is None:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    facts = read_facts(corpus / "dupes.jpg")
    assert len(facts.metadata.keywords) == 10 and facts.metadata.distinct_keywords == [
        "sun",
        "sea",
        "sky",
    ]
    got = outcomes(corpus, account("shutterstock"), tmp_path=tmp_path)
    status, reason = got[("dupes.jpg", "shutterstock")]
    assert status == "rejected" and "3 different keywords (10 with repeats); at least 7" in reason


def test_custom_accounts_check_valid_files_only_unless_they_opt_in(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    art = tmp_path / "art"
    art.mkdir()
    photo(art / "cmyk.jpg", 800, 600, mode="CMYK")
    (art / "empty.jpg").write_bytes(b"")
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server, name="mine")
        plain = cli("check", str(art), "--to", "mine", "--json")
        levels = {Path(v["file"]).name: v["level"] for v in json.loads(plain.stdout)}
        assert levels == {"cmyk.jpg": "ok", "empty.jpg": "error"}  # valid files only
        cli.ok("account", "edit", "mine", "--rules", "adobestock")
        ruled = json.loads(cli("check", str(art), "--to", "mine", "--json").stdout)
        cmyk = next(v for v in ruled if v["file"].endswith("cmyk.jpg"))
        assert cmyk["level"] == "error" and any("CMYK" in f["message"] for f in cmyk["findings"])
        wrong = cli("account", "add", "x", "--agency", "shutterstock", "--rules", "pond5",
                    "--user", "u", "--password-stdin", input="pw\n")  # fmt: skip
        assert wrong.returncode == 2 and "custom server only" in wrong.stderr


def test_reports_a_person_reads(cli: Cli, corpus: Path) -> None:
    result = cli("check", str(corpus), "--agency", "shutterstock,adobestock")
    out = result.stdout
    assert result.returncode == 1
    assert "ignored 6 system or sidecar file(s)" in result.stderr
    assert "Thumbs.db" not in out and ".DS_Store" not in out  # not reported per agency
    assert (
        out.count("Shutterstock: 14 file(s):") == 1 and out.count("Adobe Stock: 14 file(s):") == 1
    )
    summary = next(line for line in out.splitlines() if line.startswith("Shutterstock:"))
    assert "ok," in summary and "rejected" in summary
    assert "  good_photo.jpg:" not in out or EXIFTOOL is None  # ok files are not listed
    assert "^" not in out and "[A-Za-z" not in out  # rules in words, not expressions
    every = cli("check", str(corpus), "--agency", "shutterstock", "--all").stdout
    assert "  good_photo.jpg: ok" in every or EXIFTOOL is None
    long_name = corpus / (
        "a_very_long_file_name_that_would_not_fit_in_eighty_columns_" * 2 + ".jpg"
    )
    photo(long_name, 10, 10)
    try:
        wide = cli("check", str(long_name), "--agency", "shutterstock").stdout
        assert f"  {long_name.name}: error" in wide  # whole, not cut at 80 columns
    finally:
        long_name.unlink()


def test_upload_counts_skipped_files_and_lists_them_on_request(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    art = tmp_path / "art"
    art.mkdir()
    for i in range(4):
        photo(art / f"p{i}.jpg", 50, 50)
    (art / "clip.mp4").write_bytes(b"\x00\x00\x00\x14ftypisom\x00\x00\x00\x00isom")
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server, name="shop")
        cli.ok("upload", "--skip-checks", str(art), "--to", "shop", "--no-progress")
        again = cli.ok("upload", "--skip-checks", str(art), "--to", "shop", "--no-progress")
        assert "shop: 5 skipped (5 already uploaded; --verbose lists them)" in again.stderr
        assert "already uploaded with the same content" not in again.stderr
        verbose = cli.ok("upload", "--skip-checks", str(art), "--to", "shop", "--verbose")
        assert verbose.stderr.count("already uploaded with the same content") == 5


def test_the_web_check_matrix_has_a_summary_row(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    from tests.support.ui import create_vault_and_account, running_ui

    art = tmp_path / "art"
    art.mkdir()
    photo(art / "small.jpg", 100, 100)
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp, name="adobe", agency="adobestock", protocol="")
        chosen = ui.post("/upload", {"local_paths": str(art), "account": "adobe"})
        page = ui.get(chosen.headers["location"]).body
    assert '<tr class="summary">' in page and "0 ok · 0 with warnings · 1 rejected" in page


def test_corpus_script_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.corpus", str(tmp_path / "c")],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "14 files" in out.stdout
