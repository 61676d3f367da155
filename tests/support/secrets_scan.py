"""Look for a secret, and its base64 and hex forms, in text and files."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path


def forms(secret: str) -> list[bytes]:
    raw = secret.encode("utf-8")
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        raw.hex().encode(),
        raw.hex().upper().encode(),
    ]


def find_secret(secrets: Iterable[str], blobs: dict[str, bytes]) -> list[str]:
    """Names of the blobs that contain any form of any secret."""
    hits = []
    for name, blob in blobs.items():
        for secret in secrets:
            if any(form in blob for form in forms(secret)):
                hits.append(name)
    return hits


def files_under(root: Path, exclude: Iterable[Path] = ()) -> dict[str, bytes]:
    skip = {p.resolve() for p in exclude}
    return {
        str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.resolve() not in skip
    }
