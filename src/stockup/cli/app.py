"""Entry point: parse arguments, dispatch to a command module, map errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from stockup import __version__
from stockup.cli import output
from stockup.cli.commands import (
    account,
    agencies,
    check,
    demo,
    meta,
    proxy,
    ui,
    upload,
    vault,
    watch,
)
from stockup.errors import ExitCode, StockupError
from stockup.secret import RedactingFilter, RedactingFormatter, redact

COMMAND_MODULES = (vault, account, proxy, agencies, check, meta, upload, watch, ui, demo)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("vault passphrase (never given as an argument itself)")
    group.add_argument(
        "--passphrase-command",
        metavar="CMD",
        help="run CMD (no shell) and read the passphrase from its output",
    )
    group.add_argument(
        "--passphrase-file", metavar="FILE", help="read the passphrase from FILE's first line"
    )

    parser = argparse.ArgumentParser(
        prog="stockup",
        description="Upload artworks to many microstock agencies at once, safely and fast.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 vault or passphrase "
        "error, 4 connection or server error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"stockup {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands, common)
    return parser


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(RedactingFormatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("asyncssh").setLevel(logging.INFO if verbose else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.handler(args))
    except StockupError as exc:
        setting = getattr(exc, "setting", None)
        option = f" (--{setting.replace('_', '-')})" if setting else ""
        output.error(f"{exc}{option}")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        output.error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except OSError as exc:  # the machine's, not a bug: a full disk, a folder not ours
        where = f"{exc.filename}: " if exc.filename else ""
        output.error(f"{where}{exc.strerror or exc}")
        return int(ExitCode.FAILURE)
    except Exception as exc:  # a bug: say so in one line, keep locals out of sight
        output.error(f"internal error ({type(exc).__name__}): {redact(str(exc))}")
        if args.verbose:
            logging.getLogger("stockup").exception("traceback (locals not shown)")
        return int(ExitCode.FAILURE)
