"""Round trips per file over FTPS (issue 17): what a far-away server costs.

Counted, not timed: the fault proxy delays every chunk, so bytes the client
sends without waiting arrive together, and each time it sends again after
the server spoke is one round trip it waited for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli
from tests.support.files import make_batch


@pytest.mark.parametrize("kind", ["pyftpdlib-ftps", "vsftpd-ftps"])
def test_ftps_waits_four_round_trips_per_file(
    kind: str, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    # Per file: STOR with the data connection's TLS handshake behind it; the
    # handshake's end, the bytes, close_notify and FIN; SIZE+RNFR after the
    # 226; RNTO with the next file's EPSV. Each of these made it more: waiting
    # for 150 before the handshake, an EPSV of its own, a HelloRetryRequest
    # (vsftpd sets P-256 alone), waiting for the server's close_notify before
    # the FIN (vsftpd sends 226 after the FIN).
    with start_server(kind, proxy=True) as server:
        assert server.proxy is not None
        server.proxy.delay_seconds = 0.02
        cli.ok("init")
        add_account(cli, server)
        turns = []
        for count in (1, 6):
            batch = [
                f.rename(f.with_name(f"b{count}-{f.name}"))
                for f in make_batch(tmp_path / f"batch{count}", [20_000] * count)
            ]
            before = server.proxy.client_turns
            cli.ok("upload", "--skip-checks", str(tmp_path / f"batch{count}"), "--to", "srv",
                   "--connections", "1")  # fmt: skip
            server.proxy.wait_idle()  # its QUIT may still be on the way
            turns.append(server.proxy.client_turns - before)
            assert all((server.upload_root / f.name).exists() for f in batch)
        assert (turns[1] - turns[0]) / 5 <= 4, turns
