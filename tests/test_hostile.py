"""Hostile servers: a reply that makes no sense, or never ends, fails that
file or that connection with a clear error, never the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockup.credentials import Credentials
from stockup.errors import ServerError, StockupError, TransportError
from stockup.secret import Secret
from stockup.transfer import send_file
from stockup.transports import open_transport
from stockup.transports.base import Endpoint, Timeouts, TransportOptions
from stockup.transports.ftp import size_from_reply
from tests.servers.fixtures import Running, ServerFactory
from tests.servers.hostile import endless_greeting, hostile_server
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch, make_file, sha


class GarbageSize:
    """Answers SIZE with a 213 reply whose text is not a number."""

    def ftp_SIZE(self, path: str) -> None:
        self.respond("213 not-a-number")  # type: ignore[attr-defined]


class ImpossiblePort:
    """Answers EPSV with a port no socket can have."""

    def ftp_EPSV(self, line: str = "") -> None:
        self.respond("229 Entering Extended Passive Mode (|||70000|)")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "behaviour,error",
    [(GarbageSize, "not-a-number"), (ImpossiblePort, "(|||70000|) (no such port)")],
    ids=["size-not-a-number", "data-port-70000"],
)
def test_a_reply_that_makes_no_sense_fails_that_account_s_files_alone(
    cli: Cli, tmp_path: Path, start_server: ServerFactory, behaviour: type, error: str
) -> None:
    """A SIZE that is no number; an EPSV port that no socket can have (ftplib
    checks only the reply's shape: port 70000 failed in socket code with
    OverflowError, an internal error for each file)."""
    files = make_batch(tmp_path / "batch", [20_000, 30_000])
    with (
        start_server("pyftpdlib-ftps", behaviour=(behaviour,)) as odd,
        start_server("asyncssh-sftp") as good,
    ):
        cli.ok("init")
        add_account(cli, odd, name="odd")
        add_account(cli, good, name="good")
        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "odd,good",
                     "--json", "--retries", "2")  # fmt: skip
        assert result.returncode == 1, result.output
        assert "internal error" not in result.output and "Traceback" not in result.output
        report = json.loads(result.stdout)
        by = {(Path(r["file"]).name, r["account"]): r for r in report["results"]}
        for path in files:
            assert by[(path.name, "good")]["status"] == "uploaded"
            assert sha(good.upload_root / path.name) == sha(path)
            assert by[(path.name, "odd")]["status"] == "failed"
            assert error in by[(path.name, "odd")]["error"]


@pytest.mark.parametrize(
    "reply", ["213 not-a-number", "213 -5", "213 " + "9" * 5000, "226 12", "213 \uff11\uff12"]
)
def test_a_size_reply_that_is_no_size_is_the_server_s_error(reply: str) -> None:
    """A number of 5,000 digits is more than Python reads (ValueError)."""
    with pytest.raises(ServerError, match=r"SIZE x\.jpg: unexpected reply"):
        size_from_reply(reply, "x.jpg")
    assert size_from_reply("213 " + "9" * 19, "x.jpg") == 10**19 - 1


async def _connect(server: Running, timeouts: Timeouts) -> None:
    transport = server.transport(timeouts=timeouts)
    try:
        await transport.connect()
    finally:
        await transport.close()


@pytest.mark.parametrize(
    "pause,reply,expected",
    [(0.0, 30, "without ending"), (0.05, 1.0, "still going after 1 s")],
    ids=["flood", "drip"],
)
def test_an_endless_greeting_is_refused_in_bounded_time_and_memory(
    start_server: ServerFactory, pause: float, reply: float, expected: str
) -> None:
    with start_server("pyftpdlib-ftp") as server, hostile_server(endless_greeting(pause)) as port:
        server.info.port = port  # the account now points at the hostile server
        tracemalloc.start()
        began = time.monotonic()
        try:
            with pytest.raises(TransportError, match=expected) as raised:
                asyncio.run(_connect(server, Timeouts(connect=5, reply=reply, stall=5)))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.monotonic() - began < reply + 5
        assert peak < 20 * 1024 * 1024, f"peak {peak:,} bytes"
        assert raised.value.retryable


def blank_replies(conn: socket.socket, stop: threading.Event) -> None:
    """Greets, then answers every command with an empty line."""
    conn.sendall(b"220 hello\r\n")
    conn.settimeout(5)
    while not stop.is_set() and conn.recv(4096):
        conn.sendall(b"\r\n")


def test_a_reply_without_a_code_is_the_server_s_error(start_server: ServerFactory) -> None:
    """Found by answering at random: an empty reply to USER failed in
    stockup's own code (IndexError), an internal error for each file."""
    with start_server("pyftpdlib-ftp") as server, hostile_server(blank_replies) as port:
        server.info.port = port
        with pytest.raises(TransportError, match="the server's reply is not FTP"):
            asyncio.run(_connect(server, Timeouts(connect=5, reply=5, stall=5)))


class RandomFtpServer:
    """A control connection that answers each command with the right reply
    or, half the time, a wrong one (any code, a port no socket has, a size
    of 25 digits, bytes that are not text, an empty line, a hang-up), and a
    data connection that takes, sends junk or closes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.data_port = 0

    def control(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        greetings = [b"220 hi"] * 6 + [b"220-a\r\n220 b", b"421 busy", b""]
        conn.sendall(self.rng.choice(greetings) + b"\r\n")
        pending = b""
        while not stop.is_set() and (received := conn.recv(4096)):
            pending += received
            while b"\r\n" in pending:
                line, pending = pending.split(b"\r\n", 1)
                if self.rng.random() < 0.02:
                    return  # hang up
                conn.sendall(self.answer(line.split(b" ")[0].upper()) + b"\r\n")

    def answer(self, command: bytes) -> bytes:
        rng, port = self.rng, self.data_port
        right = {
            b"USER": b"331 ok", b"PASS": b"230 ok", b"SIZE": b"213 5000", b"STOR": b"150 go",
            b"EPSV": b"229 Entering (|||%d|)" % port, b"RNFR": b"350 ok", b"RNTO": b"250 ok",
            b"PASV": b"227 Entering (127,0,0,1,%d,%d)" % (port >> 8, port & 255),
            b"MKD": b"257 made", b"QUIT": b"221 bye", b"NLST": b"150 go",
        }.get(command, b"200 ok")  # fmt: skip
        if rng.random() < 0.5:
            return right
        return rng.choice([
            b"%d %s" % (rng.randrange(100, 700), right[4:]),
            right[:4] + rng.randbytes(rng.randrange(40)),
            b"229 (|||%d|)" % rng.choice([0, 65536, 70000, 10**30]),
            b"227 (" + b",".join(b"%d" % rng.randrange(1000) for _ in range(6)) + b")",
            b"213 " + rng.choice([b"-1", b"%d" % 10**25, b"\xff\xfe"]),
            right[:3] + b"-more\r\nlines\r\n" + right[:3] + b" end",
            b"", right[:3], b"\xe9\xff", b"226 done", b"425 no",
        ])  # fmt: skip

    def data(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(0.5)
        kind = self.rng.randrange(3)
        if kind == 0:
            while conn.recv(65536):
                pass
        elif kind == 1:
            conn.sendall(self.rng.randbytes(self.rng.randrange(300)) + b"name\r\n" * 9)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_server_answering_at_random_fails_only_as_a_server(seed: int) -> None:
    """Whatever the replies, an upload and a listing succeed or end in one of
    stockup's own errors, never another exception: that would be an
    'internal error' for every file of the account."""
    server = RandomFtpServer(seed)
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / "x.jpg"
        local.write_bytes(b"x" * 5000)
        with (
            hostile_server(server.data) as server.data_port,
            hostile_server(server.control) as port,
        ):
            endpoint = Endpoint(account="random", protocol="ftp", host="127.0.0.1", port=port)
            options = TransportOptions(timeouts=Timeouts(connect=2, reply=0.5, stall=0.5))
            transport = open_transport(endpoint, Credentials("user", Secret("pw")), options)

            async def upload_and_list() -> None:
                try:
                    await transport.connect()
                    await send_file(transport, local, "/in", "x.jpg", resume=seed % 2 == 0)
                    await transport.list_dir("/in")
                finally:
                    await transport.close()

            with contextlib.suppress(StockupError):
                asyncio.run(asyncio.wait_for(upload_and_list(), 15))


class _Endless:
    """An asynchat producer of names that never runs out."""

    def more(self) -> bytes:
        return b"a-name-among-very-many.jpg\r\n" * 4096


class EndlessListing:
    """Answers NLST with names that never end."""

    def ftp_NLST(self, path: str) -> None:
        self.push_dtp_data(_Endless(), isproducer=True, cmd="NLST")  # type: ignore[attr-defined]


def test_an_endless_listing_is_refused_in_bounded_memory(start_server: ServerFactory) -> None:
    with start_server("pyftpdlib-ftps", behaviour=(EndlessListing,)) as server:

        async def list_names() -> None:
            transport = server.transport(timeouts=Timeouts(connect=5, reply=10, stall=10))
            try:
                await transport.connect()
                await transport.list_dir(server.remote_dir)
            finally:
                await transport.close()

        tracemalloc.start()
        try:
            with pytest.raises(TransportError, match="listing ran past 16 MiB"):
                asyncio.run(list_names())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"peak {peak:,} bytes"


class Latin1Server:
    """An older server that speaks Latin-1, not UTF-8: its greeting, and its
    refusal of one file."""

    encoding = "latin-1"

    def handle(self) -> None:
        self.banner = "Bienvenue à bord"
        super().handle()  # type: ignore[misc]

    def ftp_STOR(self, file: str, mode: str = "w") -> None:
        if "refused" in file:
            self.respond("553 Accès refusé")  # type: ignore[attr-defined]
        else:
            super().ftp_STOR(file, mode)  # type: ignore[misc]


def test_a_server_speaking_latin1_is_used_and_its_replies_shown(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    """Replies are UTF-8 by RFC 2640, but an older server's Latin-1 greeting
    made every connection fail (UnicodeDecodeError) and stopped the account."""
    (tmp_path / "batch").mkdir()
    good = make_file(tmp_path / "batch" / "good.jpg", 20_000)
    make_file(tmp_path / "batch" / "refused.jpg", 20_000)
    with start_server("pyftpdlib-ftps", behaviour=(Latin1Server,)) as server:
        cli.ok("init")
        add_account(cli, server)
        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--json")
        assert sha(server.upload_root / good.name) == sha(good)
    assert "Traceback" not in result.output and "internal error" not in result.output
    by_name = {Path(r["file"]).name: r for r in json.loads(result.stdout)["results"]}
    assert by_name["good.jpg"]["status"] == "uploaded"
    assert by_name["refused.jpg"]["status"] == "failed"
    assert "553 Acc\ufffds refus\ufffd" in by_name["refused.jpg"]["error"]


class MarkupReply:
    """Refuses uploads with a reply full of rich markup and an escape sequence."""

    def ftp_STOR(self, file: str, mode: str = "w") -> None:
        self.respond("553 [/] [link=https://example.invalid]click[/link] \x1b[2J")  # type: ignore[attr-defined]


def test_names_and_replies_print_as_text_never_markup_or_escapes(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    (tmp_path / "batch").mkdir()
    odd = make_file(tmp_path / "batch" / "a[bold]b[link=x]\x1b[31mred.jpg", 1000)
    os.mkfifo(tmp_path / "batch" / "[bold]pipe.jpg")
    plain = make_file(tmp_path / "batch" / "plain.jpg", 1000)
    with (
        start_server("asyncssh-sftp") as good,
        start_server("pyftpdlib-ftps", behaviour=(MarkupReply,)) as odd_server,
    ):
        cli.ok("init")
        add_account(cli, good, name="good")
        add_account(cli, odd_server, name="odd")
        sent = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "good,odd",
                   "--no-progress")  # fmt: skip
        assert sent.returncode == 1, sent.output
        assert not (good.upload_root / odd.name).exists()  # a control character: rejected
        assert sha(good.upload_root / plain.name) == sha(plain)
    history = cli.ok("history")
    checked = cli("check", str(tmp_path / "batch"), "--agency", "adobestock")
    for result in (sent, history, checked):
        assert "\x1b" not in result.output and "Traceback" not in result.output
        assert "internal error" not in result.output
    assert "a[bold]b[link=x]\\x1b[31mred.jpg" in sent.stdout + sent.stderr
    assert "[bold]pipe.jpg" in sent.stderr  # the warning about the pipe, as text
    assert "[/]" in history.stdout and "[link=" in history.stdout  # shown, not applied
    assert "[link=https://example.invalid]click[/link]" in cli.ok("history", "--csv").stdout
    errors = [r["error"] or "" for r in json.loads(cli.ok("history", "--json").stdout)]
    assert any("[/] [link" in e for e in errors)
