"""`stockup agencies`: the catalogue."""

from __future__ import annotations

import argparse
from typing import Any

from stockup.catalogue import load_catalogue
from stockup.cli import output


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("agencies", help="list the agencies stockup knows")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    agencies = list(load_catalogue().values())
    if args.json:
        output.print_json([agency.to_json() for agency in agencies])
        return 0
    output.table(
        "Agencies",
        ["id", "name", "host", "protocol", "security", "credential"],
        [
            [
                a.id,
                a.name,
                (a.host + " (see panel)" if a.host_from_panel else a.host) or "--host",
                f"{a.protocol}:{a.port}" if a.protocol else "--protocol",
                a.security,
                a.credential,
            ]
            for a in agencies
        ],
    )
    return 0
