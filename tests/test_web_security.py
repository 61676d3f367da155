"""`stockup ui` keeps other pages, other hosts and forged forms out, and never
sends a password back (real server in a subprocess, raw HTTP)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route

from stockup.paths import Paths
from stockup.store import Store
from stockup.web.app import create_app
from stockup.web.guard import Keys
from tests.conftest import PASSPHRASE
from tests.support.cli import Cli
from tests.support.secrets_scan import files_under, find_secret
from tests.support.ui import UiServer, running_ui

ACCOUNT_PASSWORD = "Upl0ad-only-s3cret!"


@pytest.fixture
def ui(cli: Cli) -> Iterator[UiServer]:
    with running_ui(cli) as server:
        yield server


def post_routes(home: Path) -> list[str]:
    """Every POST address the app has, with placeholders for its parameters."""
    app = create_app(Store(Paths(home, home, home / "state")), Keys(1))
    paths = [
        route.path
        for route in app.routes
        if isinstance(route, Route) and "POST" in (route.methods or ())
    ]
    return [re.sub(r"\{\w+\}", "x", path) for path in paths]


def test_without_the_key_every_request_is_forbidden(ui: UiServer) -> None:
    for path in ("/", "/unlock", "/accounts", "/history.csv", "/static/app.css", "/nowhere"):
        reply = ui.request("GET", path, cookie="")
        assert reply.status == 403, path
        assert "open the address" in reply.body
    assert ui.request("GET", "/accounts", cookie=f"stockup-{ui.port}=guess").status == 403
    assert ui.request("GET", "/?token=guess", cookie="").status == 403
    assert ui.request("POST", "/unlock", body="passphrase=x", cookie="").status == 403


def test_the_key_in_the_address_becomes_an_httponly_cookie(ui: UiServer) -> None:
    reply = ui.request("GET", f"/history?status=failed&token={ui.token}", cookie="")
    assert reply.status == 303
    # The key leaves the URL.
    assert reply.headers["location"] == f"{ui.prefix}/history?status=failed"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"stockup-{ui.port}={ui.token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert f"Path={ui.prefix}" in cookie and len(ui.prefix) > 20  # sent to our pages only
    ui.login()
    page = ui.get("/unlock")
    assert page.status == 200 and "Create your vault" in page.body
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_wrong_host_header_is_refused_even_with_the_key(ui: UiServer) -> None:
    ui.login()
    assert ui.get("/unlock").status == 200
    assert ui.request("GET", "/unlock", host=f"localhost:{ui.port}").status == 200
    for host in (f"attacker.example:{ui.port}", "127.0.0.1", f"127.0.0.1:{ui.port + 1}"):
        reply = ui.request("GET", "/unlock", host=host)
        assert reply.status == 403, host
        assert "own address" in reply.body


def test_every_post_needs_the_csrf_token(ui: UiServer, home: Path) -> None:
    ui.login()
    routes = post_routes(home)
    assert {"/unlock", "/accounts", "/upload", "/runs/x/retry"} <= set(routes)
    for path in routes:
        missing = ui.post(path, {"passphrase": PASSPHRASE, "confirm": PASSPHRASE}, csrf=False)
        assert missing.status == 403, path
        assert "CSRF" in missing.body
        wrong = ui.post(path, {"csrf": "forged", "passphrase": PASSPHRASE}, csrf=False)
        assert wrong.status == 403, path
    assert not Path(home, "vault.json").exists()  # no forged form created the vault
    created = ui.post("/unlock", {"passphrase": PASSPHRASE, "confirm": PASSPHRASE})
    assert created.status == 303  # the same form with the token works
    assert Path(home, "vault.json").exists()


def test_passwords_typed_in_never_come_back(cli: Cli, home: Path) -> None:
    with running_ui(cli) as ui:
        check_no_password_comes_back(ui)
    outputs = {f"output {i}": r.output.encode() for i, r in enumerate(cli.history)}
    blobs = files_under(home, exclude=[home / "vault.json"])
    assert not find_secret([ACCOUNT_PASSWORD, PASSPHRASE], {**outputs, **blobs})


def check_no_password_comes_back(ui: UiServer) -> None:
    ui.login()
    assert ui.post("/unlock", {"passphrase": PASSPHRASE, "confirm": PASSPHRASE}).status == 303
    account = {
        "name": "shop",
        "agency": "custom",
        "username": "artist",
        "password": ACCOUNT_PASSWORD,
        "host": "127.0.0.1",
        "port": "1",
        "protocol": "sftp",
    }
    assert ui.post("/accounts", account).status == 303
    again = ui.post("/accounts", account)  # refused: the form comes back filled in
    assert again.status == 400 and "exists" in again.body and 'value="artist"' in again.body
    bad_port = ui.post("/accounts", {**account, "name": "other", "port": "99999"})
    assert bad_port.status == 400 and "port" in bad_port.body
    tested = ui.post("/accounts/shop/test", {})  # nothing listens on port 1
    assert tested.status == 200 and "connection refused" in tested.body
    ui.post("/lock", {})
    wrong = ui.post("/unlock", {"passphrase": "not it"})
    assert wrong.status == 401 and "wrong passphrase" in wrong.body
    assert ui.post("/unlock", {"passphrase": PASSPHRASE}).status == 303
    for path in ("/", "/accounts", "/upload", "/history", "/history.csv", "/agencies"):
        assert ui.get(path).status in (200, 303), path
    bodies = {f"body {i}": body.encode() for i, body in enumerate(ui.bodies)}
    assert not find_secret([ACCOUNT_PASSWORD, PASSPHRASE], bodies)


def test_ui_port_in_use_is_a_one_line_error(cli: Cli, ui: UiServer) -> None:
    result = cli("ui", "--no-browser", "--port", str(ui.port))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"stockup: error: port {ui.port} is in use; choose another with --port"
    )


def test_a_keychain_vault_unlocks_without_a_passphrase(home: Path, tmp_path: Path) -> None:
    cli = Cli(
        home=home,
        env={
            "PYTHON_KEYRING_BACKEND": "support.keyring_file.FileKeyring",
            "STOCKUP_TEST_KEYRING": str(tmp_path / "keyring.json"),
        },
    )
    cli.ok("init", "--keychain")
    with running_ui(cli) as ui:
        ui.login()
        # Locked until asked.
        assert ui.get("/accounts").headers["location"] == f"{ui.prefix}/unlock"
        page = ui.get("/unlock").body
        assert "Unlock with the keychain" in page and 'name="passphrase"' not in page
        unlocked = ui.post("/unlock", {})
        assert unlocked.status == 303
        assert ui.get("/accounts").status == 200


def test_ui_port_out_of_range_is_a_one_line_error(cli: Cli) -> None:
    result = cli("ui", "--no-browser", "--port", "70000")
    assert result.returncode == 2
    assert result.stderr.strip() == "stockup: error: --port must be between 0 and 65535"


def test_pages_live_under_this_run_s_secret_path(ui: UiServer) -> None:
    ui.login()
    assert ui.get("/unlock").status == 200
    for path in ("/unlock", "/", "/static/app.css", "/" + "x" * 22 + "/unlock"):
        assert ui.request("GET", path, raw=True, cookie=ui.cookie).status == 403, path
    forged = ui.request(
        "POST", "/lock", body=f"csrf={ui.csrf()}", headers={"Origin": "http://127.0.0.1:1"}
    )
    assert forged.status == 403 and "not sent by this page" in forged.body
    own = ui.request(
        "POST", "/lock", body=f"csrf={ui.csrf()}", headers={"Origin": f"http://127.0.0.1:{ui.port}"}
    )
    assert own.status == 303


def test_the_browser_is_opened_on_a_private_file_not_the_key(cli: Cli, tmp_path: Path) -> None:
    """A browser's command line is visible to every local user: the key
    must not be on it."""
    record = tmp_path / "browser-args.txt"
    browser = tmp_path / "browser"
    browser.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {record}\n'
        'for arg; do f="${arg#file://}"; '
        f'stat -c %a "$f" >> {record}; cat "$f" >> {record}; done\n'
    )
    browser.chmod(0o755)
    proc = cli.spawn("ui", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     env={"BROWSER": str(browser)})  # fmt: skip
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline()
        token = address.split("token=")[1].strip()
        deadline = time.monotonic() + 20
        while "600" not in (record.read_text() if record.exists() else ""):
            assert time.monotonic() < deadline, "the browser was not started"
            time.sleep(0.1)
        argv, mode, *page = record.read_text().splitlines()
        assert token not in argv and argv.startswith("file://") and mode == "600"
        assert token in "".join(page)
        opened = Path(argv.removeprefix("file://"))
        assert opened.exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert not opened.exists()  # removed when the server stops
