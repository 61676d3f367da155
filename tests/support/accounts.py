"""Adding an account for a running test server through the real CLI."""

from __future__ import annotations

from tests.servers.fixtures import Running
from tests.support.cli import Cli


def add_account(
    cli: Cli,
    server: Running,
    *extra: str,
    name: str = "srv",
    password: str | None = None,
    proxy: str | None = None,
    proxy_password: str | None = None,
) -> None:
    """``proxy``: the account's proxy URL; ``proxy_password`` goes on stdin's second line."""
    info = server.info
    account = server.account()
    args = [
        "account", "add", name, "--agency", "custom", "--host", account.host,
        "--port", str(info.port), "--protocol", info.protocol, "--user", info.user,
        "--password-stdin", "--remote-dir", server.remote_dir, *extra,
    ]  # fmt: skip
    if info.protocol == "ftp":
        args.append("--allow-plaintext")
    if info.ca_file:
        args += ["--ca-file", str(info.ca_file)]
    stdin = (password or info.password) + "\n"
    if proxy:
        args += ["--proxy", proxy]
    if proxy_password:
        args.append("--proxy-password-stdin")
        stdin += proxy_password + "\n"
    cli.ok(*args, input=stdin)
