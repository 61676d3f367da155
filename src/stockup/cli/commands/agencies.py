"""`stockup agencies [show ID]`: the catalogue, and one agency's rules in
plain words with the page each comes from."""

from __future__ import annotations

import argparse
from typing import Any

from stockup.catalogue import RULE_GROUPS, get_agency, load_catalogue
from stockup.checks.rules import GROUP_TITLES, plain_rules
from stockup.cli import output
from stockup.cli.commands import summary
from stockup.errors import UsageError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("agencies", help=summary("agencies"))
    parser.add_argument("action", nargs="?", choices=["show"], help="show one agency's rules")
    parser.add_argument("id", nargs="?", help="the agency to show (see the list)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        if not args.id:
            raise UsageError("name the agency to show: stockup agencies show ID")
        return show(args.id, args.json)
    agencies = list(load_catalogue().values())
    if args.json:
        output.print_json([agency.to_json() for agency in agencies])
        return 0
    output.table(
        "Agencies (stockup agencies show ID: the rules and their sources)",
        ["id", "name", "host", "protocol", "security", "credential"],
        [
            [
                a.id,
                a.name,
                (a.host + " (see panel)" if a.host_from_panel else a.host) or "any (--host)",
                f"{a.protocol}:{a.port}" if a.protocol else "any (--protocol)",
                a.security,
                a.credential,
            ]
            for a in agencies
        ],
    )
    return 0


def show(agency_id: str, as_json: bool) -> int:
    agency = get_agency(agency_id)
    if as_json:
        output.print_json({**agency.to_json(), "plain_rules": plain_rules(agency)})
        return 0
    port = "the port shown in its panel" if agency.port_from_panel else str(agency.port)
    host = f"{agency.host} (check the host in its panel)" if agency.host_from_panel else agency.host
    output.info(f"{agency.name} ({agency.id})")
    if agency.is_custom:
        output.info("  Any FTP, FTPS or SFTP server. Files are checked only for being valid")
        output.info("  artworks, unless the account names an agency's rules (--rules AGENCY).")
        return 0
    output.info(f"  server: {host}, {agency.protocol} on {port}: {agency.security}")
    output.info(f"  login: {agency.credential_hint}")
    said = plain_rules(agency)
    for group in RULE_GROUPS:
        source = agency.sources.get(group)
        lines = said.get(group, [])
        if source is None and not lines:
            continue
        output.info(f"  {GROUP_TITLES[group]}:")
        for line in lines:
            output.info(f"    - {line}")
        for media, reason in agency.not_taken.items():
            if (group, media) in (("images", "photo"), ("vectors", "vector"), ("video", "video")):
                output.info(f"    - not sent to this server: {reason}")
        if source is None:
            output.info("    source: none public (warnings only)")
        else:
            confirmed = "" if source.confirmed else "; not confirmed by the agency: warnings only"
            output.info(f"    source: {source.page} (checked {source.checked}{confirmed})")
    return 0
