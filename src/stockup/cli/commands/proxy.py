"""`stockup proxy set|show|clear`: the proxy of every account without one of its own."""

from __future__ import annotations

import argparse
from typing import Any

from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import passphrase_source, read_proxy_password, store


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("proxy", help=summary("proxy"))
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = actions.add_parser("set", parents=[common], help="connect through a proxy")
    set_.add_argument(
        "url",
        metavar="URL",
        help="socks5h://[user@]host:port (the proxy resolves the agency's name), socks5://..., "
        "http://... (CONNECT), or 'env' (ALL_PROXY/HTTPS_PROXY when stockup runs); the "
        "password is asked for, never given here",
    )
    set_.add_argument(
        "--proxy-password-stdin",
        action="store_true",
        help="read the proxy's password from stdin's first line",
    )
    set_.set_defaults(handler=run_set)
    show = actions.add_parser("show", help="show the global proxy (no password)")
    show.set_defaults(handler=run_show)
    clear = actions.add_parser("clear", parents=[common], help="connect directly again")
    clear.set_defaults(handler=run_clear)


def run_set(args: argparse.Namespace) -> int:
    password = read_proxy_password(args.url, args.proxy_password_stdin)
    target = store()
    target.set_proxy(args.url, passphrase_source(args), password)
    output.info(
        f"Accounts without a proxy of their own now connect through {target.config().proxy}."
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    config = store().config()
    output.info(config.proxy or "none: accounts connect directly")
    for account in config.accounts.values():
        if account.proxy is not None:
            output.info(f"{account.name}: {account.proxy} (its own)")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    store().set_proxy(None, passphrase_source(args), None)
    output.info("Accounts without a proxy of their own connect directly.")
    return 0
