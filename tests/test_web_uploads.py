"""Uploads through `stockup ui` over raw HTTP: check verdicts, cancel, retry,
failures with their reasons (the browser test covers the live page)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from stockup.demo.samples import make_samples
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import Running, ServerFactory
from tests.support.cli import Cli
from tests.support.files import sha
from tests.support.ui import UiServer, running_ui


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def set_up(ui: UiServer, server: Running, **account: str) -> None:
    ui.login()
    assert ui.post("/unlock", {"passphrase": PASSPHRASE, "confirm": PASSPHRASE}).status == 303
    fields = {
        "name": "shop",
        "agency": "custom",
        "username": server.info.user,
        "password": server.info.password,
        "host": server.info.host,
        "port": str(server.info.port),
        "protocol": server.info.protocol,
        "remote_dir": "upload",
        **account,
    }
    added = ui.post("/accounts", fields)
    assert added.status == 303, added.body


def start_upload(ui: UiServer, folder: Path, account: str, **options: str) -> tuple[str, str]:
    """Choose a folder on this computer; returns the check page and the run's address."""
    chosen = ui.post("/upload", {"local_paths": str(folder), "account": account, **options})
    assert chosen.status == 303, chosen.body
    checks = ui.get(chosen.headers["location"])
    started = ui.post(chosen.headers["location"] + "/start", {})
    assert started.status == 303, started.body
    return checks.body, started.headers["location"]


def percent(page: str) -> int:
    return int(re.search(r'data-percent="(\d+)"', page).group(1))  # type: ignore[union-attr]


def test_cancel_stops_the_upload_and_retry_finishes_it(
    cli: Cli, start_server: ServerFactory, tmp_path: Path
) -> None:
    samples = make_samples(tmp_path / "artworks")
    with start_server("asyncssh-sftp") as sftp, running_ui(cli) as ui:
        set_up(ui, sftp)
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
        set_up(ui, sftp, name="adobe", agency="adobestock", password="wrong", protocol="")
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
