"""`stockup account add|edit|list|show|password|test|remove`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import fields
from typing import Any, TypeVar

from stockup.catalogue import get_agency
from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import (
    passphrase_source,
    plaintext_warning,
    read_credentials,
    read_proxy_password,
    store,
)
from stockup.errors import HostKeyUnknown, UsageError
from stockup.store import AccountChanges, AccountOptions, build_account, edit_account
from stockup.transfer import check_account
from stockup.transports import PROTOCOLS

T = TypeVar("T")

PROXY_HELP = (
    "connect through this proxy: socks5h://[user@]host:port (the proxy resolves the "
    "server's name), socks5://..., http://... (CONNECT), 'env' (ALL_PROXY/HTTPS_PROXY when "
    "stockup runs), or 'direct' (not even the global proxy)"
)
PROXY_LOGIN_HELP = (
    "read the proxy's password from stdin's next line (after the account's with "
    "--password-stdin); asked for when omitted"
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("account", help=summary("account"))
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", parents=[common], help="add an agency account")
    add.add_argument("name", help="a short name for the account, e.g. ss or adobe")
    add.add_argument("--agency", required=True, help="agency id (see `stockup agencies`)")
    add.add_argument("--user", help="login name (asked for when omitted)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    add.add_argument("--host", help="server host (default: the agency's)")
    add.add_argument("--port", type=int, help="server port (default: the protocol's)")
    add.add_argument("--protocol", choices=PROTOCOLS, help="default: the agency's most secure")
    add.add_argument("--remote-dir", help="upload into this folder instead of the agency's")
    add.add_argument("--ca-file", metavar="PEM", help="trust this CA for FTPS (private servers)")
    add.add_argument("--pin-sha256", metavar="HEX", help="accept only this certificate (SHA-256)")
    add.add_argument("--connections", type=int, help="parallel connections for this account")
    add.add_argument(
        "--active", action="store_false", dest="passive", help="FTP active mode (default passive)"
    )
    add.add_argument(
        "--no-rename",
        action="store_false",
        dest="rename",
        help="write in place: for servers that forbid rename",
    )
    add.add_argument("--login", choices=("password", "key", "agent"), default="password")
    add.add_argument("--key-file", help="SSH private key for --login key")
    add.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="allow plain FTP, which sends the password in clear text",
    )
    add.add_argument(
        "--rules",
        metavar="AGENCY",
        help="for --agency custom: check files against this agency's rules (default: "
        "only that they are valid artworks)",
    )
    add.add_argument(
        "--allow-sha1",
        action="store_true",
        help="accept an SFTP server that offers only SHA-1 algorithms (old, weak)",
    )
    add.add_argument("--proxy", metavar="URL", help=PROXY_HELP + " (default: the global proxy)")
    add.add_argument("--proxy-password-stdin", action="store_true", help=PROXY_LOGIN_HELP)
    add.set_defaults(handler=run_add)

    edit = actions.add_parser(
        "edit", parents=[common], help="change an account's settings (server, folder, TLS ...)"
    )
    edit.add_argument("name")
    edit.add_argument("--host", help="server host")
    edit.add_argument("--port", type=int, help="server port")
    edit.add_argument("--protocol", choices=PROTOCOLS, help="the port follows unless given")
    edit.add_argument("--remote-dir", help="upload into this folder ('' for the agency's)")
    edit.add_argument("--ca-file", metavar="PEM", help="trust this CA for FTPS ('' to drop)")
    edit.add_argument(
        "--pin-sha256", metavar="HEX", help="accept only this certificate ('' to drop)"
    )
    edit.add_argument("--connections", type=int, help="parallel connections (0: the agency's)")
    mode = edit.add_mutually_exclusive_group()
    mode.add_argument("--active", action="store_const", const=False, dest="passive")
    mode.add_argument("--passive", action="store_const", const=True, dest="passive")
    renames = edit.add_mutually_exclusive_group()
    renames.add_argument("--rename", action="store_const", const=True, dest="rename")
    renames.add_argument("--no-rename", action="store_const", const=False, dest="rename")
    edit.add_argument("--login", choices=("password", "key", "agent"))
    edit.add_argument("--key-file", help="SSH private key for --login key")
    edit.add_argument("--allow-plaintext", action="store_const", const=True, help="allow plain FTP")
    edit.add_argument("--rules", metavar="AGENCY", help="a custom server's agency rules ('' drops)")
    sha1 = edit.add_mutually_exclusive_group()
    sha1.add_argument(
        "--allow-sha1", action="store_const", const=True, help="accept SHA-1-only SFTP servers"
    )
    sha1.add_argument("--refuse-sha1", action="store_const", const=False, dest="allow_sha1")
    edit.add_argument("--user", help="login name, when the server changes (asked for if omitted)")
    edit.add_argument("--password-stdin", action="store_true")
    edit.add_argument("--proxy", metavar="URL", help=PROXY_HELP + " ('' for the global proxy)")
    edit.add_argument("--proxy-password-stdin", action="store_true", help=PROXY_LOGIN_HELP)
    edit.set_defaults(handler=run_edit)

    list_ = actions.add_parser("list", help="list accounts (no secrets)")
    list_.add_argument("--json", action="store_true", help="print JSON")
    list_.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="show one account (no secrets)")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)

    password = actions.add_parser(
        "password", parents=[common], help="enter an account's login again"
    )
    password.add_argument("name")
    password.add_argument("--user", help="login name (asked for when omitted)")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(handler=run_password)

    test = actions.add_parser(
        "test", parents=[common], help="connect, log in and list the remote folder"
    )
    test.add_argument("name")
    test.add_argument(
        "--trust-host-key",
        action="store_true",
        help="record an SFTP server's host key on first contact (never replaces a changed key)",
    )
    test.set_defaults(handler=run_test)

    remove = actions.add_parser("remove", parents=[common], help="remove an account")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)


def _settings(cls: type[T], args: argparse.Namespace) -> T:
    """``cls`` (AccountOptions, AccountChanges) filled from the options of the same names."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def run_add(args: argparse.Namespace) -> int:
    options = _settings(AccountOptions, args)
    account = build_account(args.name, options)
    agency = get_agency(account.agency)
    if agency.credential == "separate" and sys.stdin.isatty():
        output.info(f"{agency.name}: {agency.credential_hint}")
    plaintext_warning(account)
    credentials = read_credentials(args.user, args.password_stdin)
    proxy_password = read_proxy_password(account.proxy, args.proxy_password_stdin)
    store().add_account(
        account, credentials, passphrase_source(args), proxy_password=proxy_password
    )
    output.info(f"Added account {account.name}: {account.endpoint} ({account.security}).")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    """The password is asked for again only when the server (protocol, host,
    port) changes: the vault binds it to the server it was saved for."""
    target = store()
    changes = _settings(AccountChanges, args)
    if not changes.given() and not (args.user or args.password_stdin or args.proxy_password_stdin):
        raise UsageError("nothing to change: give at least one setting")
    old = target.config().get(args.name)
    new = edit_account(old, changes)
    plaintext_warning(new)
    credentials = None
    if new.endpoint != old.endpoint or args.user or args.password_stdin:
        if new.endpoint != old.endpoint:
            output.info(f"The server changes to {new.endpoint}: enter the login for it.")
        credentials = read_credentials(args.user, args.password_stdin)
    # The proxy's password can change alone: it is then the password of the
    # proxy the account keeps.
    proxy = new.proxy if args.proxy is None and args.proxy_password_stdin else args.proxy
    proxy_password = read_proxy_password(proxy, args.proxy_password_stdin)
    target.edit_account(
        args.name, changes, passphrase_source(args), credentials, proxy_password=proxy_password
    )
    output.info(f"Changed account {new.name}: {new.endpoint} ({new.security}).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    accounts = list(store().config().accounts.values())
    if args.json:
        output.print_json([account.to_json() for account in accounts])
        return 0
    if not accounts:
        output.info("No accounts yet: stockup account add NAME --agency ID")
        return 0
    output.table(
        "Accounts",
        ["name", "agency", "endpoint", "security"],
        [[a.name, a.agency, a.endpoint, a.security] for a in accounts],
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    account = store().config().get(args.name)
    if args.json:
        output.print_json(account.to_json())
        return 0
    for key, value in account.to_json().items():
        if value not in (None, "", {}):
            output.info(f"{key:16} {value}")
    output.info(f"{'password':16} (in the vault)")
    return 0


def run_password(args: argparse.Namespace) -> int:
    target = store()
    account = target.config().get(args.name)
    credentials = read_credentials(args.user, args.password_stdin)
    target.set_credentials(account.name, credentials, passphrase_source(args))
    output.info(f"Saved the new login of {account.name} for {account.endpoint}.")
    return 0


def run_test(args: argparse.Namespace) -> int:
    target = store()
    account, credentials = target.credentials(args.name, passphrase_source(args))
    plaintext_warning(account)
    try:
        result = asyncio.run(
            check_account(
                account, credentials, target.paths, trust_unknown_host_key=args.trust_host_key
            )
        )
    except HostKeyUnknown as exc:
        if not sys.stdin.isatty():
            raise
        output.warning(str(exc))
        if input("Trust this host key? [y/N] ").strip().lower() not in ("y", "yes"):
            raise
        # Record the key the user just saw, not whatever the next connection offers.
        result = asyncio.run(
            check_account(account, credentials, target.paths, trust_fingerprint=exc.fingerprint)
        )
    info = result.info
    output.info(f"{'protocol':14} {account.protocol} ({account.security})")
    output.info(f"{'server':14} {info.host}:{info.port}")
    output.info(f"{'proxy':14} {info.proxy or 'none: connected directly'}")
    if info.tls_version:
        output.info(f"{'TLS':14} {info.tls_version}, {info.cipher}")
    if info.certificate_sha256:
        output.info(
            f"{'certificate':14} {info.certificate_subject}, expires {info.certificate_expires}, "
            f"SHA-256 {info.certificate_sha256}"
        )
    if info.host_key_fingerprint:
        recorded = " (new: recorded in stockup's known hosts)" if info.host_key_recorded else ""
        output.info(f"{'host key':14} {info.host_key_fingerprint}{recorded}")
    output.info(f"{'remote folder':14} {result.remote_dir}: {len(result.entries)} entries")
    output.info("ok")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    store().remove_account(args.name, passphrase_source(args))
    output.info(f"Removed account {args.name} and its secrets.")
    return 0
