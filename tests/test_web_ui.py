"""The web UI in a real browser: Debian's Chromium driven by Playwright against
`stockup ui` on loopback, uploading to in-process FTPS and SFTP servers."""

from __future__ import annotations

import csv
import http.server
import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from stockup.demo.samples import make_samples
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import Running, ServerFactory
from tests.servers.lab import Lab, ProxyServer
from tests.support.cli import Cli
from tests.support.files import sha
from tests.support.ui import UiServer, running_ui

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet: this machine's network is closed, so no update or sync calls.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "ui-upload.png"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def ui(cli: Cli) -> Iterator[UiServer]:
    with running_ui(cli) as server:
        yield server


def add_account(page: Page, name: str, server: Running, ca_file: Path | None = None) -> None:
    fill_account_form(page, name, server, ca_file)
    page.get_by_role("button", name="Add account").click()
    expect(page.get_by_role("status")).to_contain_text(f"Added account {name}")


def fill_account_form(page: Page, name: str, server: Running, ca_file: Path | None = None) -> None:
    page.get_by_label("Agency").select_option("custom")
    page.get_by_label("Account name").fill(name)
    page.get_by_label("Username").fill(server.info.user)
    page.get_by_label("Password", exact=True).fill(server.info.password)
    page.get_by_text("Server settings").click()
    page.get_by_label("Host").fill(server.info.host)
    page.get_by_label("Port").fill(str(server.info.port))
    page.get_by_label("Protocol").select_option(server.info.protocol)
    page.get_by_label("Remote folder").fill("upload")
    if ca_file:
        page.get_by_label("CA certificate file").fill(str(ca_file))


def test_contributor_uploads_to_two_agencies_from_the_browser(
    browser: Browser, ui: UiServer, start_server: ServerFactory, tmp_path: Path
) -> None:
    photos = [p for p in make_samples(tmp_path / "artworks") if p.suffix == ".jpg"][:3]
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    seen: list[str] = []  # each page's HTML, for the secrets check at the end
    with (
        start_server("pyftpdlib-ftps") as ftps,
        start_server("asyncssh-sftp", trust_host_key=False) as sftp,
    ):
        page.goto(ui.url)
        expect(page.get_by_role("heading", name="Create your vault")).to_be_visible()
        page.get_by_label("New passphrase").fill(PASSPHRASE)
        page.get_by_label("Repeat the passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Create vault").click()
        expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()

        assert ftps.info.ca_file is not None
        add_account(page, "shop-ftps", ftps, ftps.info.ca_file)
        add_account(page, "shop-sftp", sftp)
        rows = page.locator("tbody tr")
        expect(rows.filter(has_text="shop-ftps")).to_contain_text("FTPS (TLS)")
        expect(rows.filter(has_text="shop-sftp")).to_contain_text("SFTP (encrypted)")
        seen.append(page.content())

        # First contact with the SFTP server: its host key is shown, then trusted.
        page.get_by_role("button", name="Test connection of shop-sftp").click()
        assert sftp.info.host_key is not None
        offered = sftp.info.host_key.get_fingerprint("sha256")
        expect(page.locator("#fingerprint")).to_have_text(offered)
        page.get_by_role("button", name="Trust this host key").click()
        expect(page.locator("#test-result")).to_contain_text("now trusted")
        page.get_by_role("button", name="Test connection of shop-ftps").click()
        expect(page.locator("#test-result")).to_contain_text("TLS")
        seen.append(page.content())

        page.get_by_role("link", name="Upload").click()
        page.get_by_label("Files", exact=True).set_input_files(photos)
        page.get_by_label("Speed limit").fill("4M")  # slow enough to watch, and to photograph
        page.get_by_role("button", name="Check files").click()
        expect(page.get_by_role("heading", name="Check before upload")).to_be_visible()
        expect(page.locator("main")).to_contain_text("All files pass")
        page.get_by_role("button", name="Start upload").click()

        page.wait_for_function(
            "() => [...document.querySelectorAll('.account-progress')]"
            ".some(e => +e.dataset.percent >= 20 && +e.dataset.percent <= 80)"
        )
        # Live, per file: a file in flight with its own bar; speed and ETA per account.
        expect(page.locator(".in-flight li").first).to_contain_text(".jpg")
        eta = page.locator(".figures", has_text=re.compile(r"B/s · ETA \d+m"))
        expect(eta.first).to_be_visible()
        page.screenshot(path=tmp_path / "upload.png")
        if os.environ.get("STOCKUP_UPDATE_SCREENSHOT"):
            shutil.copyfile(tmp_path / "upload.png", SCREENSHOT)
        for name in ("shop-ftps", "shop-sftp"):
            bar = page.locator(f'.account-progress[data-account="{name}"]')
            expect(bar).to_have_attribute("data-percent", "100")
        expect(page.locator(".run-state")).to_contain_text("Finished: 6 uploaded")
        expect(page.locator("#cancel-form")).to_be_hidden()
        seen.append(page.content())
        for server in (ftps, sftp):
            for photo in photos:
                assert sha(server.upload_root / photo.name) == sha(photo)

    page.get_by_role("link", name="History").click()
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(6)
    page.get_by_label("Account").select_option("shop-sftp")
    page.get_by_role("button", name="Filter").click()
    expect(history).to_have_count(3)
    expect(history.first).to_contain_text("uploaded")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    records = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(r["file"].rsplit("/", 1)[-1] for r in records) == sorted(p.name for p in photos)
    assert {r["account"] for r in records} == {"shop-sftp"}

    page.get_by_role("link", name="Agencies").click()
    expect(page.get_by_role("heading", name="Shutterstock")).to_be_visible()
    seen.append(page.content())
    page.close()
    assert not any(ftps.info.password in html or PASSPHRASE in html for html in seen)


def axe_violations(page: Page) -> list[str]:
    """axe-core's findings on the page as it is now, one line each."""
    response = Axe().run(page).response
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(node["target"][0] for node in v["nodes"])
        for v in response["violations"]
    ]


def test_every_page_is_accessible_and_works_from_the_keyboard(
    browser: Browser, ui: UiServer, start_server: ServerFactory, tmp_path: Path
) -> None:
    """axe-core finds nothing on any page, the forms work with the keyboard
    alone, a folder can be picked, and plain FTP is flagged wherever it is used."""
    folder = tmp_path / "batch"
    make_samples(folder / "vectors")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    violations: list[str] = []
    with start_server("pyftpdlib-ftp") as ftp:
        page.goto(ui.url)
        violations += axe_violations(page)  # the create-vault page
        expect(page.get_by_label("New passphrase")).to_be_focused()
        page.keyboard.type(PASSPHRASE)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSPHRASE)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
        violations += axe_violations(page)

        page.get_by_label("Agency").select_option("dreamstime")
        expect(page.locator("#agency-hint")).to_contain_text("numeric Dreamstime account ID")
        fill_account_form(page, "plain", ftp)
        page.get_by_role("button", name="Add account").click()  # refused: no opt-in yet
        expect(page.get_by_role("alert")).to_contain_text("clear text")
        expect(page.get_by_label("Password", exact=True)).to_have_value("")
        page.get_by_label("Password", exact=True).fill(ftp.info.password)
        page.get_by_label("Allow plain FTP").check()
        page.get_by_role("button", name="Add account").click()
        expect(page.get_by_role("status")).to_contain_text("Warning: account plain uses plain FTP")
        expect(page.locator("tbody tr").filter(has_text="plain")).to_contain_text("⚠ plain FTP")
        page.get_by_role("button", name="Test connection of plain").click()
        expect(page.locator("#test-result")).to_contain_text("Connected")
        violations += axe_violations(page)

        page.get_by_role("link", name="Upload").click()
        violations += axe_violations(page)
        page.get_by_label("A whole folder").set_input_files(folder)
        page.get_by_role("button", name="Check files").click()
        expect(page.get_by_role("alert")).to_contain_text("plain FTP")
        expect(page.locator("table.verdicts tbody tr")).to_have_count(6)  # the whole tree
        violations += axe_violations(page)
        page.get_by_role("button", name="Start upload").click()
        expect(page.locator(".run-state")).to_contain_text("Finished: 6 uploaded")
        expect(page.get_by_role("alert")).to_contain_text("plain FTP")
        violations += axe_violations(page)
        landed = sorted(p.name for p in ftp.upload_root.iterdir())  # agencies take no folders
        assert landed == sorted(p.name for p in (folder / "vectors").iterdir())

    for name in ("History", "Agencies"):
        page.get_by_role("link", name=name).click()
        violations += axe_violations(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.get_by_role("button", name="Lock vault").click()
    expect(page.get_by_role("heading", name="Unlock your vault")).to_be_visible()
    violations += axe_violations(page)
    page.close()
    assert not violations, "\n".join(violations)


def test_a_page_on_another_local_port_cannot_use_the_ui(browser: Browser, ui: UiServer) -> None:
    """Cookies do not keep ports apart: a browser sends 127.0.0.1's cookies to
    any program on 127.0.0.1. The UI's cookie is scoped to its secret path,
    so another local program never receives it, and without the path it can
    reach nothing."""
    received: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.headers.get("Cookie") or "")
            body = b"<!doctype html><title>another program</title><p>hello</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(ui.url)
        expect(page.get_by_role("heading", name="Create your vault")).to_be_visible()
        assert any(c["name"] == f"stockup-{ui.port}" for c in context.cookies())
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/{ui.prefix.strip('/')[:3]}")
        context.close()
    finally:
        other.shutdown()
    assert received and not any(f"stockup-{ui.port}" in cookie for cookie in received)
    # And what such a program could try with what it got is refused.
    for cookie in received:
        assert ui.request("GET", "/unlock", raw=True, cookie=cookie).status == 403


def test_titles_and_keywords_are_fixed_from_the_check_page(
    browser: Browser, ui: UiServer, start_server: ServerFactory, tmp_path: Path
) -> None:
    from stockup.checks.facts import read_facts
    from tests.support.artworks import photo
    from tests.support.ui import create_vault_and_account

    art = tmp_path / "art"
    art.mkdir()
    first, second = photo(art / "dunes.jpg", 2400, 1800), photo(art / "coast.jpg", 2400, 1800)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    with start_server("asyncssh-sftp") as sftp:
        create_vault_and_account(ui, sftp, name="ss", agency="custom", rules="shutterstock")
        page.goto(ui.url)  # trades the key for this browser's cookie
        page.goto(f"{ui.base}{ui.prefix}/upload")
        page.get_by_label("Or paths on this computer").fill(str(art))
        page.get_by_role("button", name="Check files").click()
        expect(page.locator("table.verdicts")).to_contain_text("no embedded keywords")
        page.get_by_label("Edit the title and keywords of dunes.jpg").click()
        expect(page.locator("img.thumb")).to_be_visible()
        page.get_by_label("Title").fill("Dunes at sunset")
        page.get_by_label("Keywords, most important first").fill("sand, dune, desert")
        expect(page.locator("#keyword-count")).to_have_text("3 different keywords")
        expect(page.locator("#limits")).to_contain_text("4 keywords short")
        page.get_by_label("Keywords, most important first").fill(
            "sand, dune, desert, Sand, sunset, travel, nature, orange"
        )
        expect(page.locator("#keyword-count")).to_have_text("7 different keywords")
        expect(page.locator("#limits")).to_contain_text("— ok")
        assert axe_violations(page) == []
        if os.environ.get("STOCKUP_UPDATE_SCREENSHOT"):
            page.screenshot(path=str(SCREENSHOT.with_name("ui-meta.png")))
        page.get_by_role("button", name="Save and check again").click()
        expect(page.get_by_role("status")).to_contain_text("Saved: dunes.jpg")
        meta = read_facts(first).metadata
        assert meta.title == "Dunes at sunset" and len(meta.keywords) == 7
        page.get_by_label("Tick dunes.jpg").check()
        page.get_by_label("Tick coast.jpg").check()
        page.get_by_label("Add keywords").fill("golden hour, Sand")
        page.get_by_role("button", name="Change the ticked files").click()
        expect(page.get_by_role("status")).to_contain_text("Keywords changed in 2 file(s)")
    assert read_facts(first).metadata.keywords[-1] == "golden hour"
    assert read_facts(second).metadata.keywords == ["golden hour", "Sand"]


def test_an_account_behind_a_proxy_from_the_browser(
    browser: Browser,
    ui: UiServer,
    cli: Cli,
    start_server: ServerFactory,
    lab_net: Lab,
    proxies: dict[str, ProxyServer],
) -> None:
    """The account form's proxy fields: the URL goes to config.toml, the
    proxy's password to the vault, and the test connection goes through it."""
    proxy = proxies["socks5h-login"]
    assert proxy.password is not None
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    with start_server("vsftpd-ftps", lab=lab_net) as server:
        page.goto(ui.url)
        page.get_by_label("New passphrase").fill(PASSPHRASE)
        page.get_by_label("Repeat the passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Create vault").click()
        fill_account_form(page, "behind-proxy", server, server.info.ca_file)
        page.get_by_label("Host").fill(server.host)
        page.get_by_label("Remote folder").fill(server.remote_dir)
        page.get_by_label("Proxy (empty: the global one)").fill(proxy.url)
        page.get_by_label("Proxy password").fill("wrong")
        page.get_by_role("button", name="Add account").click()
        expect(page.get_by_role("status")).to_contain_text("Added account behind-proxy")
        page.get_by_role("button", name="Test connection of behind-proxy").click()
        expect(page.locator("main")).to_contain_text("proxy authentication failed")
        # The right password, through the edit form.
        page.get_by_role("link", name="Edit behind-proxy").click()
        expect(page.get_by_label("Proxy (empty: the global one)")).to_have_value(proxy.url)
        page.get_by_label("Proxy password").fill(proxy.password)
        page.get_by_role("button", name="Save").click()
        before = proxy.connections()
        page.get_by_role("button", name="Test connection of behind-proxy").click()
        expect(page.locator("#test-result")).to_contain_text(proxy.url)
        expect(page.locator("#test-result")).to_contain_text("TLS")
        assert proxy.connections() > before
        html = page.content()
    page.close()
    config = (cli.home / "config.toml").read_text()
    assert f'proxy = "{proxy.url}"' in config and proxy.password not in config
    assert proxy.password not in html
