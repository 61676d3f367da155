"""Uploads through `stockup ui` over raw HTTP: check verdicts, cancel, retry,
failures with their reasons (the browser test covers the live page)."""

from __future__ import annotations

import io
import json
import re
import signal
from pathlib import Path

import pytest

from stockup.demo.samples import make_samples
from stockup.text import human_bytes, human_duration
from stockup.web.uploads import Staging, relative_upload_path
from tests.servers.fixtures import ServerFactory
from tests.support.cli import Cli
from tests.support.files import sha
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
