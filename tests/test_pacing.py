"""Accounts sharing an uplink finish together (issue 17, row e): the pacer's
rule on a fake clock, then two real accounts that share a rate limit."""

from __future__ import annotations

import json
import time
from pathlib import Path

from stockup.pacing import ACTIVE_SECONDS, Pacer
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_account_ahead_of_a_slower_one_still_sending_waits() -> None:
    clock = Clock()
    pacer = Pacer(["fast", "slow"], clock=clock)
    pacer.plan({"fast": 1000, "slow": 1000})
    pacer.sending("fast", 100)
    pacer.sending("slow", 20)
    assert pacer.ahead("fast") and not pacer.ahead("slow")
    pacer.sending("slow", 60)  # within the margin again
    assert not pacer.ahead("fast")
    pacer.sending("fast", 400)
    assert pacer.ahead("fast")
    clock.now += ACTIVE_SECONDS + 0.1  # slow sends nothing: between files, retrying, stopped
    pacer.sending("fast", 1)
    assert not pacer.ahead("fast")
    pacer.sending("slow", 920)  # slow is done: nobody to wait for
    assert not pacer.ahead("fast")


def test_an_account_alone_never_waits() -> None:
    pacer = Pacer(["only"])
    pacer.plan({"only": 10})
    pacer.sending("only", 9)
    assert not pacer.ahead("only")


def test_accounts_with_more_connections_do_not_finish_first(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    # One rate limit shared by five connections: four of them one account's.
    # Unpaced, that account took four fifths of it and finished in about half
    # the time; paced, both finish together.
    files = make_batch(tmp_path / "batch", [400_000] * 8)
    with start_server("pyftpdlib-ftps") as many, start_server("pyftpdlib-ftps") as one:
        cli.ok("init")
        add_account(cli, many, "--connections", "4", name="many")
        add_account(cli, one, "--connections", "1", name="one")
        started = time.time()
        result = cli("upload", "--skip-checks", "--json", "--limit-rate", "1M",
                     str(tmp_path / "batch"), "--to", "many,one")  # fmt: skip
        assert result.returncode == 0, result.output
        assert json.loads(result.stdout)["summary"]["uploaded"] == 16
        # A file's ctime is when it was renamed into place.
        done = [
            max((server.upload_root / f.name).stat().st_ctime for f in files) - started
            for server in (many, one)
        ]
    assert max(done) - min(done) < 0.15 * max(done), done
