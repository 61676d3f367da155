"""Entry point: parse arguments, dispatch to a command module, map errors to exit codes.

Only the module of the command being run is imported (see
:mod:`stockup.cli.commands`); ``--version`` and ``--help`` import none, and
the error mapping's imports wait until a command runs.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from stockup import __version__
from stockup.cli.commands import COMMANDS


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: every command is listed, and the command being
    run (the first argument not an option: no top-level option takes a value)
    is declared in full by its module."""
    words = sys.argv[1:] if argv is None else argv
    named = next((word for word in words if not word.startswith("-")), None)
    module = COMMANDS[named].module if named in COMMANDS else None
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
    for name, command in COMMANDS.items():
        if command.module != module:
            commands.add_parser(name, help=command.summary)  # for --help and spelling errors
    if module is not None:
        importlib.import_module(f"stockup.cli.commands.{module}").register(commands, common)
    return parser


def _configure_logging(verbose: bool) -> None:
    import logging

    from stockup.secret import RedactingFilter, RedactingFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(RedactingFormatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("asyncssh").setLevel(logging.INFO if verbose else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: the process's entry point
    (the ``stockup`` script, ``python -m stockup``)."""
    # Loading a command makes some 45,000 objects that live as long as the
    # process (modules, classes, functions). The cyclic collector would walk
    # them again and again while they are made, in every full collection
    # after, and once more when the interpreter exits. So it waits while the
    # command loads, and they are then frozen out of its reach; at the end,
    # everything is, so the exit's collection has nothing to walk. 35 ms of
    # the 0.24 s a one-file upload took (docs/benchmarks.md). Garbage made
    # while the command runs is still collected.
    gc.disable()
    try:
        parser = build_parser(argv)
    finally:
        gc.freeze()
        gc.enable()
    try:
        return _run(parser.parse_args(argv))
    finally:
        gc.freeze()


def _run(args: argparse.Namespace) -> int:
    _configure_logging(args.verbose)
    import logging

    from stockup.cli import output
    from stockup.errors import ExitCode, StockupError
    from stockup.secret import redact

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
