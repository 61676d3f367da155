"""`stockup ui`: the local web UI."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.commands._shared import store
from stockup.errors import UsageError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("ui", help=summary("ui"))
    parser.add_argument(
        "--port", type=int, default=0, metavar="N", help="listen on this port (default: a free one)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the address, do not open a browser"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    from stockup.web.server import serve  # the web stack loads only for this command

    def announce(url: str) -> None:
        output.info(f"stockup UI at {url}")
        output.info("The address carries this session's key; keep it to yourself. Ctrl-C stops.")

    # uvicorn stops cleanly on Ctrl-C, then passes the interrupt on: not an error here.
    with contextlib.suppress(KeyboardInterrupt):
        serve(store(), port=args.port, open_browser=not args.no_browser, announce=announce)
    output.info("Stopped.")
    return 0
