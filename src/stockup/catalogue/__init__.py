"""The agency catalogue: facts about each agency, loaded from agencies.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from stockup.errors import UnknownAgency
from stockup.transports import PROTOCOLS


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    protocol: str
    port: int
    credential: str
    credential_hint: str
    vector_packaging: str
    source: str
    source_date: str
    host: str = ""
    host_from_panel: bool = False
    connections: int = 4
    folders: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def is_custom(self) -> bool:
        return self.id == "custom"

    @property
    def security(self) -> str:
        protocol = PROTOCOLS.get(self.protocol)
        return protocol.security if protocol else "chosen per account"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "host": self.host,
            "host_from_panel": self.host_from_panel,
            "protocol": self.protocol,
            "port": self.port,
            "security": self.security,
            "credential": self.credential,
            "credential_hint": self.credential_hint,
            "connections": self.connections,
            "vector_packaging": self.vector_packaging,
            "folders": self.folders,
            "rules": self.rules,
            "source": self.source,
            "source_date": self.source_date,
        }


@cache
def load_catalogue() -> dict[str, Agency]:
    text = resources.files(__package__).joinpath("agencies.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {key: Agency(id=key, **value) for key, value in data["agencies"].items()}


def get_agency(agency_id: str) -> Agency:
    catalogue = load_catalogue()
    try:
        return catalogue[agency_id]
    except KeyError:
        known = ", ".join(sorted(catalogue))
        raise UnknownAgency(f"unknown agency {agency_id!r}; known agencies: {known}") from None
