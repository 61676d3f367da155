"""Agency rules (from the catalogue data) applied to a file's facts."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from stockup.catalogue import Agency
from stockup.checks.facts import RASTER, VECTOR, FileFacts
from stockup.packaging import NAME_WITH_CONTROLS, has_control_characters

LEVELS = ("ok", "warning", "error")


@dataclass(frozen=True)
class Finding:
    level: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


def worst(findings: list[Finding]) -> str:
    return max((f.level for f in findings), key=LEVELS.index, default="ok")


def evaluate(
    facts: FileFacts,
    agency: Agency,
    *,
    has_preview: bool,
    is_preview: bool,
    check_name: bool = True,
) -> list[Finding]:
    """Every finding for one file at one agency; [] means ok. ``check_name``
    is off when the file will be uploaded under a safe name."""
    if check_name and has_control_characters(facts.path.name):
        return [Finding("error", NAME_WITH_CONTROLS)]
    if facts.error:
        return [Finding("error", facts.error)]
    rules: dict[str, Any] = agency.rules
    found: list[Finding] = []

    def error(message: str) -> None:
        found.append(Finding("error", message))

    def warn(message: str) -> None:
        found.append(Finding("warning", message))

    fmt = facts.format or "unknown"
    allowed = list(rules.get("formats", []))
    if agency.vector_packaging == "zip":
        allowed += ["eps", "ai"]  # sent inside the ZIP stockup builds
    if allowed and fmt not in allowed and not is_preview:
        error(f"{agency.name} does not take {fmt.upper()} files (takes {', '.join(allowed)})")

    _size_rules(facts, rules, fmt, error)
    if fmt in RASTER:
        _image_rules(facts, rules, error, warn, skip_minimum=is_preview)
    if fmt in VECTOR:
        _vector_rules(facts, agency, rules, has_preview, error, warn)
    if facts.duration_note:
        warn(facts.duration_note)
    max_seconds = rules.get("max_video_seconds")
    if facts.duration is not None and max_seconds and facts.duration > max_seconds:
        error(f"video is {facts.duration:.1f} s long; {agency.name} takes at most {max_seconds} s")
    if not is_preview:
        _metadata_rules(facts, rules, error, warn)
    pattern = rules.get("filename_pattern")
    if check_name and pattern and not re.match(pattern, facts.path.name):
        error(f"file name {facts.path.name!r} breaks {agency.name}'s naming rule "
              f"({pattern}); rename it or upload with --safe-names")  # fmt: skip
    return found


def _size_rules(facts: FileFacts, rules: dict[str, Any], fmt: str, error: Any) -> None:
    limits = rules.get("max_file_mb", {})
    key = "video" if facts.media == "video" else fmt
    limit = limits.get(key)
    if limit and facts.size > limit * 1_000_000:
        error(f"file is {facts.size / 1e6:.1f} MB; the limit is {limit} MB")


def _image_rules(
    facts: FileFacts, rules: dict[str, Any], error: Any, warn: Any, *, skip_minimum: bool
) -> None:
    mp = facts.megapixels or 0.0
    low, high = rules.get("min_megapixels"), rules.get("max_megapixels")
    if low and mp < low and not skip_minimum:
        error(f"{facts.width} x {facts.height} is {mp:.1f} MP; the minimum is {low} MP")
    if high and mp > high:
        error(f"{facts.width} x {facts.height} is {mp:.1f} MP; the maximum is {high} MP")
    short, long_ = (
        min(facts.width or 0, facts.height or 0),
        max(facts.width or 0, facts.height or 0),
    )
    if rules.get("min_side_px") and short < rules["min_side_px"] and not skip_minimum:
        error(f"the shorter side is {short} px; the minimum is {rules['min_side_px']} px")
    if rules.get("max_side_px") and long_ > rules["max_side_px"]:
        error(f"the longer side is {long_} px; the maximum is {rules['max_side_px']} px")
    if facts.mode == "CMYK" and not rules.get("allow_cmyk"):
        error("CMYK image: convert it to RGB (sRGB) before uploading")
    profile = facts.icc_profile
    if rules.get("colour_space") == "srgb" and profile and "srgb" not in profile.lower():
        warn(f"colour profile is {profile!r}; sRGB is expected")
    quality = rules.get("min_jpeg_quality")
    if quality and facts.jpeg_quality is not None and facts.jpeg_quality < quality:
        error(f"JPEG quality is about {facts.jpeg_quality}; the minimum is {quality}")


def _vector_rules(
    facts: FileFacts, agency: Agency, rules: dict[str, Any], has_preview: bool, error: Any,
    warn: Any,
) -> None:  # fmt: skip
    if agency.vector_packaging in ("pair", "zip") and not has_preview:
        error(f"{agency.name} needs a same-name JPG preview beside {facts.path.name}")
    versions = rules.get("eps_illustrator_versions")
    if versions and facts.format == "eps":
        if facts.illustrator_version is None:
            warn(f"EPS version not recognised from its header; {agency.name} takes "
                 f"Illustrator {' or '.join(map(str, versions))} EPS")  # fmt: skip
        elif facts.illustrator_version not in versions:
            error(f"EPS saved by Illustrator {facts.illustrator_version}; {agency.name} takes "
                  f"Illustrator {' or '.join(map(str, versions))} EPS")  # fmt: skip
    wanted_svg = rules.get("svg_version")
    if wanted_svg and facts.format == "svg" and facts.svg_version != wanted_svg:
        warn(f"SVG version {facts.svg_version or 'unknown'}; {agency.name} expects {wanted_svg}")


def _metadata_rules(facts: FileFacts, rules: dict[str, Any], error: Any, warn: Any) -> None:
    meta = facts.metadata
    count = len(meta.keywords)
    low, high = rules.get("min_keywords"), rules.get("max_keywords")
    if count == 0:
        (error if low else warn)("no embedded keywords")
    elif low and count < low:
        error(f"{count} keywords; at least {low} are needed")
    if high and count > high:
        error(f"{count} keywords; at most {high} are accepted")
    duplicates = sorted(k for k, n in Counter(k.lower() for k in meta.keywords).items() if n > 1)
    if duplicates:
        warn(f"duplicate keywords: {', '.join(duplicates)}")
    if not meta.title:
        warn("no embedded title")
    elif rules.get("max_title_chars") and len(meta.title) > rules["max_title_chars"]:
        error(f"title is {len(meta.title)} characters; at most {rules['max_title_chars']}")
