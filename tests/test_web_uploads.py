"""Uploads through `stockup ui` over raw HTTP: check verdicts, cancel, retry,
failures with their reasons (the browser test covers the live page)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
from pathlib import Path

import pytest
from PIL import Image

from stockup.checks.facts import read_facts
from stockup.demo.samples import make_samples
from stockup.text import human_bytes, human_duration
from stockup.web.uploads import Staging, relative_upload_path
from tests.servers.fixtures import ServerFactory
from tests.support.artworks import photo
from tests.support.cli import Cli
from tests.support.files import make_file, sha
from tests.support.ui import create_vault_and_account, running_ui, start_upload, wait_for


def percent(page: str) -> int:
    return int(re.search(r'data-percent="(\d+)"', page).group(1))  # type: ignore[union-attr]


def test_cancel_stops_the_upload_and_retry_finishes_it(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    samples = make_samples(tmp_path / "artworks")
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp)
        _, run = start_upload(ui, tmp_path / "artworks", "shop", limit_rate="1M")
        wait_for(lambda: percent(ui.get(run).body) > 0, "some progress")
        assert ui.post(f"{run}/cancel", {}).status == 303
        wait_for(lambda: "cancelled" in ui.get(run).body, "the cancel")
        page = ui.get(run).body
        assert "Cancel upload" in page and "hidden" in page.split('id="cancel-form"')[1][:40]
        arrived = {p.name for p in (sftp.upload_root).iterdir() if not p.name.startswith(".")}
        assert len(arrived) < len(samples)

        retried = ui.post(f"{run}/retry", {})
        assert retried.status == 303
        again = retried.headers["location"]
        assert again != run
        wait_for(lambda: "Finished:" in ui.get(again).body, "the retry to finish")
        assert "0 failed" in ui.get(again).body
    for sample in samples:
        assert sha(sftp.upload_root / sample.name) == sha(sample)


def test_rejections_and_failures_are_shown_with_their_reasons(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    make_samples(tmp_path / "artworks")
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        # Adobe Stock's rules, a local server, and a wrong password.
        create_vault_and_account(
            ui, sftp, name="adobe", agency="adobestock", password="wrong", protocol=""
        )
        checks, run = start_upload(ui, tmp_path / "artworks", "adobe")
        assert "would be rejected" in checks
        assert re.search(r"sunset_over_dunes\.jpg</th>\s*<td class=\"level-error\">", checks)
        assert "3.8 MP" in checks or "megapixel" in checks.lower()
        wait_for(lambda: "Finished:" in ui.get(run).body, "the run to end")
        page = ui.get(run).body
        assert "Stopped:" in page
        assert "Retry what did not arrive" in page
        failures = page.split("Not sent")[1]
        assert "rejected" in failures and "failed" in failures
        assert "authentication failed" in failures.lower() or "login" in failures.lower()
        history = ui.get("/history?status=rejected").body
        assert "sunset_over_dunes.jpg" in history and "harbour_boats.jpg" not in history


@pytest.mark.parametrize(
    "sent,kept",
    [
        ("photo.jpg", "photo.jpg"),
        ("batch/vectors/icon.eps", "batch/vectors/icon.eps"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/olute.jpg", "abs/olute.jpg"),
        ("C:\\Users\\me\\pic.jpg", "C:/Users/me/pic.jpg"),
        ("a/./b/../c.jpg", "a/b/c.jpg"),
        ("../..", None),
        ("", None),
    ],
)
def test_browser_file_names_stay_inside_the_staging_folder(
    tmp_path: Path, sent: str, kept: str | None
) -> None:
    relative = relative_upload_path(sent)
    assert (relative.as_posix() if relative else None) == kept
    saved = Staging.save(tmp_path, sent, io.BytesIO(b"x"))
    assert saved is None if kept is None else saved == tmp_path / kept


@pytest.mark.parametrize(
    "value,shown",
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (7_400_000, "7.1 MiB"), (5 << 30, "5.0 GiB")],
)
def test_progress_sizes_read_like_a_file_manager(value: int, shown: str) -> None:
    assert human_bytes(value) == shown


def test_eta_reads_in_minutes_and_hours() -> None:
    assert [human_duration(s) for s in (None, 59.6, 3725)] == ["--", "1m 00s", "1h 02m"]


def test_ctrl_c_stops_the_server_and_the_cli_resumes_its_upload(
    cli: Cli, home: Path, start_server: ServerFactory, tmp_path: Path
) -> None:
    samples = make_samples(tmp_path / "artworks")
    with start_server("asyncssh-sftp") as sftp:
        with running_ui(cli) as ui:
            create_vault_and_account(ui, sftp)
            _, run = start_upload(ui, tmp_path / "artworks", "shop", limit_rate="1M")
            wait_for(lambda: 0 < percent(ui.get(run).body) < 100, "the upload to be under way")
            ui.process.send_signal(signal.SIGINT)
            assert ui.process.wait(timeout=20) == 0
        assert cli.history[-1].stdout.rstrip().endswith("Stopped.")
        assert not any((home / "state" / "ui-uploads").iterdir())  # staging removed
        result = cli.ok("upload", str(tmp_path / "artworks"), "--to", "shop", "--json")
        assert json.loads(result.stdout)["summary"]["failed"] == 0
    for sample in samples:
        assert sha(sftp.upload_root / sample.name) == sha(sample)


def test_a_cancelled_sftp_upload_resumes_on_retry(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    """Cancel in the page, then Retry: the partial file is continued, not sent
    again from zero, and history says where it resumed."""
    (tmp_path / "clips").mkdir()
    big = make_file(tmp_path / "clips" / "big.jpg", 24_000_000)
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp)
        chosen = ui.post("/upload", {"local_paths": str(tmp_path / "clips"), "account": "shop",
                                     "limit_rate": "6M"})  # fmt: skip
        started = ui.post(chosen.headers["location"] + "/start", {"skip_checks": "on"})
        run = started.headers["location"]
        wait_for(lambda: percent(ui.get(run).body) >= 60, "most of the file to be sent")
        assert ui.post(f"{run}/cancel", {}).status == 303
        wait_for(lambda: "Cancelled" in ui.get(run).body, "the cancel", timeout=20)
        page = ui.get(run).body
        not_sent = page.split("Not sent")[1]
        assert "big.jpg" in not_sent and "cancelled" in not_sent
        assert "0 B/s" in page and "ETA --" in page  # nothing moves any more
        again = ui.post(f"{run}/retry", {}).headers["location"]
        wait_for(lambda: "Finished:" in ui.get(again).body, "the retry to finish")
        history = ui.get("/history?status=uploaded").body
    assert sha(sftp.upload_root / "big.jpg") == sha(big)
    resumed = re.search(r'<td class="num">([\d,]+)</td><td class="num">24,000,000</td>'
                        r'<td class="num">([\d,]+)</td>', history)  # fmt: skip
    assert resumed is not None, history
    sent, offset = (int(g.replace(",", "")) for g in resumed.groups())
    assert offset >= 8 * 1024 * 1024 and sent == 24_000_000 - offset


def test_the_upload_form_keeps_what_was_typed_and_names_every_bad_path(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp)
        create_vault_and_account(ui, sftp, name="other", unlock=False)
        typed = f"{tmp_path}/nope-one\n{tmp_path}/nope-two"
        page = ui.post("/upload", {"local_paths": typed, "account": "shop", "attempts": "2"})
        assert page.status == 400
        assert "nope-one" in page.body.split("alert-error")[1].split("</div>")[0]
        assert "nope-two" in page.body.split("alert-error")[1].split("</div>")[0]
        assert f"{tmp_path}/nope-two</textarea>" in page.body
        assert re.search(r'id="account-shop"[^>]*checked', page.body)
        assert not re.search(r'id="account-other"[^>]*checked', page.body)
        assert 'name="attempts" value="2"' in page.body


def test_an_account_is_edited_in_its_form(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp)
        form = ui.get("/accounts/shop/edit")
        assert form.status == 200 and 'name="remote_dir" value="upload"' in form.body
        fields = {
            "host": sftp.info.host, "port": str(sftp.info.port), "protocol": "sftp",
            "remote_dir": "elsewhere", "connections": "2", "rules": "adobestock",
        }  # fmt: skip
        assert ui.post("/accounts/shop/edit", fields).status == 303
        moved = ui.post("/accounts/shop/edit", {**fields, "port": "2222"})
        assert moved.status == 400 and "give the username and the password" in moved.body
        assert "--" not in moved.body.split("alert-error")[1].split("</div>")[0]
    shown = json.loads(cli.ok("account", "show", "shop", "--json").stdout)
    assert shown["remote_dir"] == "elsewhere" and shown["connections"] == 2
    assert shown["port"] == sftp.info.port and shown["rules"] == "adobestock"


@pytest.mark.parametrize(
    "filename,reason",
    [("bad\x00name.jpg", "control character"), ("é" * 130 + ".jpg", "longer than 255 bytes")],
    ids=["nul", "too-long"],
)
def test_odd_browser_file_names_get_a_400_with_the_reason(
    cli: Cli, home: Path, start_server: ServerFactory, filename: str, reason: str
) -> None:
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp)
        reply = ui.post_files("/upload", {filename: b"\xff\xd8x", "fine.jpg": b"ok"},
                              {"account": "shop"})  # fmt: skip
        assert reply.status == 400 and reason in reply.body
    # Every folder the UI made on its first run is private.
    for folder in (home, home / "state", home / "state" / "ui-uploads"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_the_run_page_says_what_to_label_at_the_agency(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    from tests.support.ai_files import xmp_marked

    (tmp_path / "art").mkdir()
    xmp_marked(tmp_path / "art" / "made.jpg", "trainedAlgorithmicMedia")
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp, name="adobe", rules="adobestock")
        checks, run = start_upload(ui, tmp_path / "art", "adobe")
        assert "Created using generative AI tools" in checks  # in the check matrix
        wait_for(lambda: "Finished:" in ui.get(run).body, "the run to end")
        page = ui.get(run).body
    assert "To do at the agencies" in page and "Created using generative AI tools" in page


def test_the_form_s_limit_on_versions_of_a_motif_is_checked(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    from PIL import Image, ImageDraw, ImageOps

    (tmp_path / "art").mkdir()
    picture = Image.linear_gradient("L").resize((3000, 2000)).convert("RGB")
    ImageDraw.Draw(picture).ellipse((1800, 300, 2400, 800), fill=(250, 200, 60))
    picture.save(tmp_path / "art" / "a.jpg", quality=90)
    ImageOps.mirror(picture).save(tmp_path / "art" / "b.jpg", quality=90)
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp, name="adobe", rules="adobestock")
        chosen = ui.post("/upload", {"local_paths": str(tmp_path / "art"), "account": "adobe",
                                     "max_similar": "adobe=1"})  # fmt: skip
        assert chosen.status == 303, chosen.body
        checks = ui.get(chosen.headers["location"]).body
        wrong = ui.post("/upload", {"local_paths": str(tmp_path / "art"), "account": "adobe",
                                    "max_similar": "none=1"})  # fmt: skip
    assert "similar to a.jpg in this batch" in checks
    assert "more versions of one motif than the 1 allowed for adobe" in checks
    assert wrong.status == 400 and "no account or agency of this run" in wrong.body
    assert 'value="none=1"' in wrong.body  # what was typed is kept


def test_a_name_that_is_not_utf8_shows_on_the_page(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    """A file named on a system with another encoding, in a folder typed into
    the form: the check page shows it (its byte as ``\\xe9``) with the reason,
    where it could not be written as UTF-8 at all."""
    (tmp_path / "art").mkdir()
    photo(tmp_path / "art" / "cafe.jpg", 40, 30).rename(
        tmp_path / "art" / os.fsdecode(b"caf\xe9.jpg")
    )
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp, name="adobe", rules="adobestock")
        chosen = ui.post("/upload", {"local_paths": str(tmp_path / "art"), "account": "adobe"})
        assert chosen.status == 303, chosen.body
        checks = ui.get(chosen.headers["location"])
        file_page = chosen.headers["location"] + "/files/0"
        editor = ui.get(file_page)
        saved = ui.post(file_page, {"title": "Café", "description": "", "keywords": "cafe"})
        assert saved.status == 303, saved.body
        notice = ui.get(saved.headers["location"])
    assert checks.status == 200, checks.body
    assert "caf\\xe9.jpg" in checks.body and "the file name is not UTF-8" in checks.body
    assert editor.status == 200 and "caf\\xe9.jpg" in editor.body
    assert "Saved: caf\\xe9.jpg" in notice.body
    assert read_facts(tmp_path / "art" / os.fsdecode(b"caf\xe9.jpg")).metadata.title == "Café"


def test_a_damaged_image_has_no_preview_and_the_others_do(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    """The file page's preview of a PNG broken past its first data chunk is a
    404 "no preview", not a server error; a good photo's is a small JPEG."""
    (tmp_path / "art").mkdir()
    photo(tmp_path / "art" / "good.jpg", 1200, 800)
    Image.effect_noise((1200, 900), 64).convert("RGB").save(tmp_path / "art" / "noise.png")
    data = bytearray((tmp_path / "art" / "noise.png").read_bytes())
    second = data.index(b"IDAT", data.index(b"IDAT") + 4)
    data[second : second + 4] = b"\x00\x00IE"
    (tmp_path / "art" / "noise.png").write_bytes(data)
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        create_vault_and_account(ui, sftp, name="adobe", rules="adobestock")
        chosen = ui.post("/upload", {"local_paths": str(tmp_path / "art"), "account": "adobe"})
        base = chosen.headers["location"]
        previews = {i: ui.get(f"{base}/files/{i}/thumb") for i in (0, 1)}
    good, damaged = previews[0], previews[1]  # the selection lists files by name
    assert good.status == 200 and good.headers["content-type"] == "image/jpeg"
    assert damaged.status == 404 and "No preview for this file." in damaged.body
