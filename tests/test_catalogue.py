"""The agency catalogue is complete data, and `stockup agencies` shows it."""

from __future__ import annotations

import json
import re

import pytest

from stockup.catalogue import get_agency, load_catalogue
from stockup.errors import UnknownAgency
from stockup.transports import PROTOCOLS
from tests.support.cli import Cli

REFERENCE_AGENCIES = {
    "shutterstock": ("ftps.shutterstock.com", "ftps"),
    "adobestock": ("sftp.contributor.adobestock.com", "sftp"),
    "dreamstime": ("upload.dreamstime.com", "ftp"),
    "123rf": ("ftp.123rf.com", "ftp"),
    "depositphotos": ("ftp.depositphotos.com", "ftp"),
    "pond5": ("ftp.pond5.com", "ftp"),
    "alamy": ("upload.alamy.com", "ftp"),
    "freepik": ("contributor-ftp.freepik.com", "sftp"),
    "vecteezy": ("content-ftp.eezy.com", "sftp"),
    "colourbox": ("ftp.skyfish.com", "ftp"),
    "envato": ("ftp.marketplace.envato.com", "ftps"),
}


@pytest.mark.parametrize("agency_id,expected", sorted(REFERENCE_AGENCIES.items()))
def test_reference_agencies_present(agency_id: str, expected: tuple[str, str]) -> None:
    agency = get_agency(agency_id)
    assert (agency.host, agency.protocol) == expected
    assert agency.protocol in PROTOCOLS
    assert agency.credential in ("site-login", "separate")
    assert agency.credential_hint and agency.source and agency.source_date
    assert agency.vector_packaging in ("pair", "zip", "vector-only", "no-preview")
    assert isinstance(agency.rules.get("formats"), list) and agency.rules["formats"]


def test_custom_and_rules() -> None:
    assert get_agency("custom").is_custom
    assert get_agency("alamy").folders == {"photo": "Stock", "vector": "Vector"}
    assert get_agency("depositphotos").vector_packaging == "zip"
    pattern = re.compile(get_agency("shutterstock").rules["filename_pattern"])
    assert pattern.match("sunset_01.jpg") and not pattern.match("sun-set.jpg")
    with pytest.raises(UnknownAgency, match="known agencies"):
        get_agency("istock")


def test_agencies_command(cli: Cli) -> None:
    table = cli.ok("agencies").stdout
    assert "plain FTP: password sent in clear" in table and "SFTP (encrypted)" in table
    data = json.loads(cli.ok("agencies", "--json").stdout)
    assert {a["id"] for a in data} == set(load_catalogue())
    assert all("security" in a for a in data)
