"""`stockup ui` in a subprocess, and a raw HTTP client that can send any Host header."""

from __future__ import annotations

import http.client
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import PASSPHRASE
from tests.servers.fixtures import Running
from tests.support.cli import Cli, Result

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class UiServer:
    url: str
    """The printed address, with this run's key."""
    port: int
    process: subprocess.Popen[str]
    cookie: str = ""
    bodies: list[str] = field(default_factory=list)
    """Every response body seen, for the secrets scan."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)["token"][0]

    @property
    def prefix(self) -> str:
        """This run's secret path, which every page's address starts with."""
        return urllib.parse.urlsplit(self.url).path.rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        body: str | bytes | None = None,
        host: str | None = None,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> Reply:
        """``path`` is a page's (the secret prefix is added) unless ``raw``."""
        if not raw and not path.startswith(self.prefix + "/"):
            path = self.prefix + path
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            sent = {"Host": host or f"127.0.0.1:{self.port}", **(headers or {})}
            if cookie is None:
                cookie = self.cookie
            if cookie:
                sent["Cookie"] = cookie
            if body is not None:
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            reply = Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read().decode("utf-8", "replace"),
            )
        finally:
            connection.close()
        self.bodies.append(reply.body)
        return reply

    def login(self) -> None:
        """Trade the key in the printed address for the session cookie, as a browser does."""
        reply = self.request("GET", f"/?token={self.token}", cookie="")
        assert reply.status == 303, reply
        self.cookie = reply.headers["set-cookie"].split(";")[0]

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str], *, csrf: bool = True) -> Reply:
        if csrf:
            fields = {"csrf": self.csrf(), **fields}
        return self.request("POST", path, body=urllib.parse.urlencode(fields))

    def post_files(self, path: str, files: dict[str, bytes], fields: dict[str, str]) -> Reply:
        """A multipart form as a browser sends picked files: ``files`` maps
        each file name, sent as is, to its content."""
        boundary = "stockup-test-boundary"
        disposition = "Content-Disposition: form-data; name="
        parts = [
            f'--{boundary}\r\n{disposition}"{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in {"csrf": self.csrf(), **fields}.items()
        ]
        for filename, content in files.items():
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
            )
            parts.append(head.encode("utf-8", "surrogateescape") + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    def csrf(self) -> str:
        match = CSRF.search(self.get("/unlock").body)
        assert match, "no CSRF field on the unlock page"
        return match.group(1)


@contextmanager
def running_ui(cli: Cli) -> Iterator[UiServer]:
    process = cli.spawn(
        "ui", "--no-browser", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\S*\?token=\S+", line)
        assert match, f"no address printed: {line!r}"
        yield UiServer(match.group(0), int(match.group(1)), process)
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=20)
        cli.history.append(Result(["ui"], process.returncode, line + stdout, stderr))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def create_vault_and_account(
    ui: UiServer, server: Running, *, unlock: bool = True, **account: str
) -> None:
    """Over HTTP, as the forms would: a new vault, then one account on ``server``."""
    if unlock:
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
