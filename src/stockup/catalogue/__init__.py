"""The agency catalogue: facts about each agency, loaded from agencies.toml
into a typed schema (msgspec), so that a misspelt or unknown key fails
loading instead of silently switching a rule off.

Every rule group (upload, images, vectors, video, metadata) names the public
page it comes from and when it was checked. A group that no public page
confirms is marked ``confirmed = false``: its findings are warnings ("not
confirmed by the agency"), never errors.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any, Literal

import msgspec

from stockup.errors import UnknownAgency
from stockup.transports import PROTOCOLS

RuleGroup = Literal["upload", "images", "vectors", "video", "metadata", "ai"]
RULE_GROUPS: tuple[RuleGroup, ...] = ("upload", "images", "vectors", "video", "metadata", "ai")
Packaging = Literal["pair", "zip", "vector-only", "no-preview"]


class CatalogueError(Exception):
    """agencies.toml does not match the schema: a bug in the package."""


class Source(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    page: str
    """The public page (an address) the facts come from."""
    checked: str
    """When they were checked against it (YYYY-MM)."""
    confirmed: bool = True
    """False: no public page confirms these values; findings are warnings."""


class AiPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an agency does with content made by generative AI."""

    policy: Literal["refuses", "labelled", "accepts"]
    how: str = ""
    """What the contributor must do for the label (in the agency's portal)."""
    keyword: str | None = None
    """A keyword that labels it (Freepik's ``_ai_generated``)."""
    title_must_not: tuple[str, ...] = ()
    """Words the agency refuses in an AI file's title."""


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    formats: tuple[str, ...] = ()
    """What the upload server takes, by content (jpeg, png, tiff, eps, ai, svg, zip, mov, mp4)."""
    min_megapixels: float | None = None
    max_megapixels: float | None = None
    min_side_px: int | None = None
    max_side_px: int | None = None
    max_file_mb: dict[str, float] = {}
    """By format, or ``video`` for every video format."""
    allow_cmyk: bool = False
    colour_space: Literal["srgb"] | None = None
    min_jpeg_quality: int | None = None
    eps_illustrator_versions: tuple[int, ...] = ()
    svg_version: str | None = None
    preview_min_side_px: int | None = None
    """A vector's JPG preview: its shorter side at least this."""
    min_video_seconds: float | None = None
    max_video_seconds: float | None = None
    min_video_height: int | None = None
    min_keywords: int | None = None
    max_keywords: int | None = None
    max_title_chars: int | None = None
    filename_pattern: str | None = None
    filename_rule: str | None = None
    """The filename pattern in plain words, as reports say it."""


class Agency(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: str = ""
    name: str
    protocol: str
    port: int
    credential: Literal["site-login", "separate"]
    credential_hint: str
    vector_packaging: Packaging
    sources: dict[RuleGroup, Source]
    host: str = ""
    host_from_panel: bool = False
    port_from_panel: bool = False
    connections: int = 4
    folders: dict[str, str] = {}
    not_taken: dict[str, str] = {}
    """Why a media type is not sent to this server (where to send it instead)."""
    rules: Rules = Rules()
    ai: AiPolicy | None = None
    """None: no public page says; an AI file then gets a warning, never a pass."""

    @property
    def is_custom(self) -> bool:
        return self.id == "custom"

    @property
    def security(self) -> str:
        protocol = PROTOCOLS.get(self.protocol)
        return protocol.security if protocol else "chosen per account"

    def confirmed(self, group: RuleGroup) -> bool:
        source = self.sources.get(group)
        return source is not None and source.confirmed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["security"] = self.security
        return data


class WebOnly(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An agency that takes contributors' files on its website only: no
    server to send to, so no account can be made for it."""

    name: str
    how: str
    """Where its contributors upload instead."""
    page: str
    checked: str


def _catalogue_text() -> str:
    return resources.files(__package__).joinpath("agencies.toml").read_text(encoding="utf-8")


def web_only_agencies() -> dict[str, WebOnly]:
    """Read only when an agency is not in the catalogue: an error path."""
    try:
        data = tomllib.loads(_catalogue_text()).get("web_only", {})
        return msgspec.convert(data, dict[str, WebOnly])
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise CatalogueError(f"agencies.toml: {exc}") from None


@cache
def load_catalogue() -> dict[str, Agency]:
    return parse_catalogue(_catalogue_text())


def parse_catalogue(text: str) -> dict[str, Agency]:
    """Agencies from TOML text; any key or value off the schema is an error."""
    try:
        data = tomllib.loads(text)
        agencies = msgspec.convert(data["agencies"], dict[str, Agency])
    except (tomllib.TOMLDecodeError, KeyError, msgspec.ValidationError) as exc:
        raise CatalogueError(f"agencies.toml: {exc}") from None
    catalogue = {key: msgspec.structs.replace(agency, id=key) for key, agency in agencies.items()}
    for agency in catalogue.values():
        if agency.protocol and agency.protocol not in PROTOCOLS:
            raise CatalogueError(f"agencies.toml: {agency.id}: unknown protocol {agency.protocol}")
        if not agency.is_custom and "upload" not in agency.sources:
            raise CatalogueError(f"agencies.toml: {agency.id}: no source for its upload server")
    return catalogue


def get_agency(agency_id: str) -> Agency:
    catalogue = load_catalogue()
    try:
        return catalogue[agency_id]
    except KeyError:
        if (site := web_only_agencies().get(agency_id)) is not None:
            raise UnknownAgency(
                f"{site.name} has no upload server to send to: its contributors upload "
                f"through {site.how} ({site.page})"
            ) from None
        known = ", ".join(sorted(catalogue))
        raise UnknownAgency(f"unknown agency {agency_id!r}; known agencies: {known}") from None
