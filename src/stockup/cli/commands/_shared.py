"""Helpers the command modules share: passphrase sources, the store, secrets input."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from stockup.cli import output
from stockup.config import Account
from stockup.credentials import Credentials
from stockup.errors import UsageError
from stockup.passphrase import PassphraseSource
from stockup.proxy import DIRECT, FROM_ENVIRONMENT, Proxy
from stockup.secret import Secret
from stockup.store import Store


def passphrase_source(args: argparse.Namespace, *, confirm: bool = False) -> PassphraseSource:
    return PassphraseSource(
        command=args.passphrase_command,
        file=Path(args.passphrase_file) if args.passphrase_file else None,
        confirm=confirm,
    )


def plaintext_warning(account: Account) -> None:
    if account.cleartext_warning:
        output.warning(account.cleartext_warning)


def store() -> Store:
    return Store()


def read_credentials(user: str | None, password_stdin: bool) -> Credentials:
    """Username from ``--user`` or a prompt; password from stdin or getpass, never argv."""
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if user is None:
        if not interactive:
            raise UsageError("give the username with --user (no terminal to ask on)")
        user = input("Username: ").strip()
    if not user:
        raise UsageError("the username must not be empty")
    password = _read_secret(password_stdin, f"Password for {user}: ", "password")
    if password is None:
        raise UsageError("no terminal to ask for the password: pipe it with --password-stdin")
    return Credentials(username=user, password=password)


def _read_secret(from_stdin: bool, prompt: str, what: str) -> Secret | None:
    """stdin's next line, or a hidden prompt on a terminal (never argv);
    None: neither was possible."""
    if from_stdin:
        value = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    elif sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(prompt)
    else:
        return None
    if not value:
        raise UsageError(f"the {what} must not be empty")
    return Secret(value)


def read_proxy_password(setting: str | None, password_stdin: bool) -> Secret | None:
    """The password of a proxy URL that names a user: stdin's next line
    (after the account's password, if that came first) or a prompt, never
    argv. None when there is none to give, or no terminal to ask on and the
    vault may hold it already."""
    if not setting or setting.strip() in (DIRECT, FROM_ENVIRONMENT):
        if password_stdin:
            raise UsageError("--proxy-password-stdin goes with a proxy URL that names a user")
        return None
    proxy = Proxy.parse(setting)
    if proxy.username is None:
        if password_stdin:
            raise UsageError("the proxy URL names no user: write it as scheme://user@host:port")
        return None
    return _read_secret(password_stdin, f"Password for proxy {proxy.url}: ", "proxy password")
