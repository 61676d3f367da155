"""`stockup init` and `stockup passphrase change`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import passphrase_source, store
from stockup.passphrase import PassphraseSource, weakness


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    init = commands.add_parser("init", parents=[common], help=summary("init"))
    init.add_argument(
        "--keychain",
        action="store_true",
        help="keep the vault key in the OS keychain instead of under a passphrase",
    )
    init.set_defaults(handler=run_init)

    passphrase = commands.add_parser("passphrase", help=summary("passphrase"))
    actions = passphrase.add_subparsers(dest="action", metavar="ACTION", required=True)
    change = actions.add_parser(
        "change", parents=[common], help="re-wrap the vault key under a new passphrase"
    )
    change.add_argument(
        "--new-passphrase-command", metavar="CMD", help="run CMD to get the new passphrase"
    )
    change.add_argument(
        "--new-passphrase-file", metavar="FILE", help="read the new passphrase from FILE"
    )
    change.set_defaults(handler=run_change)


def run_init(args: argparse.Namespace) -> int:
    target = store()
    if args.keychain:
        vault = target.init_vault(None)
        output.info(f"Created vault {vault.path} with its key in the OS keychain.")
    else:
        source = passphrase_source(args, confirm=True)
        if warning := weakness(source.get()):
            output.warning(warning)
        vault = target.init_vault(source)
        output.info(f"Created vault {vault.path} (Argon2id + AES-256-GCM).")
    output.info("Next: stockup account add NAME --agency ID   (see `stockup agencies`)")
    return 0


def run_change(args: argparse.Namespace) -> int:
    new = PassphraseSource(
        command=args.new_passphrase_command,
        file=Path(args.new_passphrase_file) if args.new_passphrase_file else None,
        env_prefix="STOCKUP_NEW_PASSPHRASE",
        prompt="New vault passphrase: ",
        confirm=True,
    )
    store().change_passphrase(passphrase_source(args), new)
    if warning := weakness(new.get()):
        output.warning(warning)
    output.info("Passphrase changed.")
    return 0
