"""The agency catalogue: typed, sourced data, and `stockup agencies` shows it
in plain words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stockup.catalogue import (
    RULE_GROUPS,
    CatalogueError,
    get_agency,
    load_catalogue,
    parse_catalogue,
    web_only_agencies,
)
from stockup.errors import UnknownAgency, UsageError
from stockup.store import AccountOptions, build_account
from stockup.transports import PROTOCOLS
from tests.support.cli import Cli

CATALOGUE = Path(__file__).resolve().parent.parent / "src/stockup/catalogue/agencies.toml"
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
    "agefotostock": ("ftp.agefotostock.com", "sftp"),
}


@pytest.mark.parametrize("agency_id,expected", sorted(REFERENCE_AGENCIES.items()))
def test_every_agency_is_complete_and_sourced(agency_id: str, expected: tuple[str, str]) -> None:
    agency = get_agency(agency_id)
    assert (agency.host, agency.protocol) == expected
    assert agency.protocol in PROTOCOLS and agency.credential_hint and agency.rules.formats
    assert "upload" in agency.sources
    for group, source in agency.sources.items():
        assert group in RULE_GROUPS
        assert source.page.startswith(("https://", "http://")), (agency_id, group)
        assert re.fullmatch(r"\d{4}-\d\d", source.checked)
    for media in agency.not_taken:
        assert media not in agency.folders, f"{agency_id} both routes and refuses {media}"


def test_a_misspelt_or_unknown_key_fails_loading() -> None:
    text = CATALOGUE.read_text()
    assert parse_catalogue(text)  # the shipped file loads
    for broken, named in [
        (text.replace("min_megapixels = 4.0", "min_megapixel = 4.0", 1), "min_megapixel"),
        (text.replace('vector_packaging = "pair"', 'vector_packaging = "pairs"', 1), "pairs"),
        (text.replace("max_keywords = 50", 'max_keywords = "fifty"', 1), "max_keywords"),
        (text.replace("[agencies.shutterstock.sources]", "[agencies.shutterstock.sourcez]", 1),
         "sourcez"),
    ]:  # fmt: skip
        with pytest.raises(CatalogueError, match=named):
            parse_catalogue(broken)


def test_facts_as_the_agencies_publish_them() -> None:
    dreamstime = get_agency("dreamstime")
    assert dreamstime.credential == "site-login" and dreamstime.rules.max_megapixels is None
    assert "vector" not in dreamstime.folders and "IMAGEID" in dreamstime.not_taken["vector"]
    pond5 = get_agency("pond5")
    assert pond5.vector_packaging == "zip" and pond5.rules.preview_min_side_px == 2000
    alamy = get_agency("alamy")
    assert alamy.rules.formats == ("jpeg",) and "vector" not in alamy.folders
    assert get_agency("depositphotos").rules.min_megapixels == 3.84
    envato = get_agency("envato")
    assert set(envato.folders) == {"video"} and "Contributor App" in envato.not_taken["vector"]
    adobe = get_agency("adobestock")
    assert "png" in adobe.rules.formats and adobe.rules.min_video_seconds == 5
    shutterstock = get_agency("shutterstock").rules
    assert {"mov", "mp4"} <= set(shutterstock.formats)
    assert (shutterstock.min_video_seconds, shutterstock.max_video_seconds) == (5, 60)
    assert shutterstock.max_file_mb["video"] == 4000
    for agency in load_catalogue().values():  # video routed means video taken, and back
        if "video" in agency.folders:
            assert {"mov", "mp4"} & set(agency.rules.formats), agency.id


def test_freepik_needs_the_host_and_port_from_its_panel() -> None:
    with pytest.raises(UsageError, match="host"):
        build_account("fp", AccountOptions(agency="freepik"))
    with pytest.raises(UsageError, match="port"):
        build_account("fp", AccountOptions(agency="freepik", host="ftp.example.test"))
    account = build_account("fp", AccountOptions(agency="freepik", host="h.test", port=60022))
    assert account.port == 60022


def test_custom_and_rules() -> None:
    assert get_agency("custom").is_custom
    pattern = re.compile(get_agency("shutterstock").rules.filename_pattern or "")
    assert pattern.match("sunset_01.jpg") and not pattern.match("sun-set.jpg")
    with pytest.raises(UnknownAgency, match="known agencies"):
        get_agency("nope")


def test_an_agency_without_an_upload_server_says_where_to_upload() -> None:
    web_only = web_only_agencies()
    assert {"getty", "istock"} <= set(web_only)
    assert not set(web_only) & set(load_catalogue())
    assert all(site.page.startswith("https://") and site.checked for site in web_only.values())
    with pytest.raises(UnknownAgency, match=r"^Getty Images has no upload server .* ESP") as raised:
        get_agency("getty")
    assert "contributors.gettyimages.com" in str(raised.value)
    with pytest.raises(UnknownAgency, match=r"^iStock has no upload server"):
        get_agency("istock")


def test_agencies_command_and_show(cli: Cli) -> None:
    table = cli.ok("agencies").stdout
    assert "plain FTP: password sent in clear" in table and "SFTP (encrypted)" in table
    data = json.loads(cli.ok("agencies", "--json").stdout)
    assert {a["id"] for a in data} == set(load_catalogue())
    shown = cli.ok("agencies", "show", "shutterstock").stdout
    assert "file names may use only letters (a-z, A-Z), digits and underscores" in shown
    assert "images of at least 4 megapixels" in shown and "clips of at least 5 seconds" in shown
    assert "source: https://submit.shutterstock.com/help/en/articles/10594645" in shown
    assert not re.search(r"\^|\$|\\\\", shown), "a rule is shown as a regular expression"
    unconfirmed = cli.ok("agencies", "show", "colourbox").stdout
    assert "not confirmed by the agency: warnings only" in unconfirmed
    missing = cli("agencies", "show")
    assert missing.returncode == 2 and "name the agency" in missing.stderr
