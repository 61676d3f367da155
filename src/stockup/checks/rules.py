"""Agency rules (typed catalogue data) applied to a file's facts, and the
same rules said in plain words for `stockup agencies show`.

Every finding belongs to a rule group (upload, images, vectors, video,
metadata). When no public page confirms a group's values, its errors are
downgraded to warnings that say so: stockup never rejects a file on a value
the agency has not published.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from stockup.catalogue import Agency, RuleGroup, Rules
from stockup.checks.facts import RASTER, VECTOR, FileFacts
from stockup.packaging import name_problem

LEVELS = ("ok", "warning", "error")
UNCONFIRMED = " (not confirmed by the agency)"
MEDIA_GROUP: dict[str, RuleGroup] = {"photo": "images", "vector": "vectors", "video": "video"}


@dataclass(frozen=True)
class Finding:
    level: str
    message: str
    group: RuleGroup | None = None

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message, "group": self.group or "file"}


def worst(findings: list[Finding]) -> str:
    return max((f.level for f in findings), key=LEVELS.index, default="ok")


class _Findings:
    """Collects findings; an error in a group the agency has not confirmed
    becomes a warning."""

    def __init__(self, agency: Agency) -> None:
        self.agency = agency
        self.found: list[Finding] = []

    def error(self, group: RuleGroup, message: str) -> None:
        if self.agency.confirmed(group):
            self.found.append(Finding("error", message, group))
        else:
            self.found.append(Finding("warning", message + UNCONFIRMED, group))

    def warn(self, group: RuleGroup, message: str) -> None:
        self.found.append(Finding("warning", message, group))


def evaluate(
    facts: FileFacts,
    agency: Agency | None,
    *,
    has_preview: bool,
    is_preview: bool,
    check_name: bool = True,
) -> list[Finding]:
    """Every finding for one file at one agency; [] means ok. ``agency`` None
    (a custom server without agency rules): only whether the file is a valid,
    readable artwork. ``check_name`` is off when the file will be uploaded
    under a safe name."""
    if check_name and (problem := name_problem(facts.path.name)):
        return [Finding("error", problem)]
    if facts.error:
        return [Finding("error", facts.error)]
    if agency is None:
        return []
    rules = agency.rules
    out = _Findings(agency)
    if is_preview:
        _preview_rules(facts, rules, out)
        return out.found
    group = MEDIA_GROUP.get(facts.media, "images")
    fmt = facts.format or "unknown"
    allowed = list(rules.formats)
    if agency.vector_packaging == "zip":
        allowed += ["eps", "ai"]  # sent inside the ZIP stockup builds
    if allowed and fmt not in allowed:
        out.error(group, f"{agency.name} does not take {fmt.upper()} files "
                         f"(takes {', '.join(f.upper() for f in allowed)})")  # fmt: skip
    _size_rules(facts, rules, fmt, group, out)
    if fmt in RASTER:
        _image_rules(facts, rules, out)
    if fmt in VECTOR:
        _vector_rules(facts, agency, rules, has_preview, out)
    if facts.media == "video":
        _video_rules(facts, agency, rules, out)
    _metadata_rules(facts, rules, out)
    _ai_rules(facts, agency, out)
    pattern = rules.filename_pattern
    if check_name and pattern and not re.match(pattern, facts.path.name):
        rule = rules.filename_rule or "its file-name rule"
        out.error("upload", f"file name {facts.path.name!r} breaks {agency.name}'s rule: "
                            f"{rule}; rename it or upload with safe names")  # fmt: skip
    return out.found


def _size_rules(facts: FileFacts, rules: Rules, fmt: str, group: RuleGroup, out: _Findings) -> None:
    limit = rules.max_file_mb.get("video" if facts.media == "video" else fmt)
    if limit and facts.size > limit * 1_000_000:
        out.error(group, f"file is {facts.size / 1e6:.1f} MB; the limit is {limit:g} MB")


def _image_rules(facts: FileFacts, rules: Rules, out: _Findings) -> None:
    mp = facts.megapixels or 0.0
    if rules.min_megapixels and mp < rules.min_megapixels:
        out.error("images", f"{facts.width} x {facts.height} is {mp:.1f} MP; "
                            f"the minimum is {rules.min_megapixels:g} MP")  # fmt: skip
    if rules.max_megapixels and mp > rules.max_megapixels:
        out.error("images", f"{facts.width} x {facts.height} is {mp:.1f} MP; "
                            f"the maximum is {rules.max_megapixels:g} MP")  # fmt: skip
    short = min(facts.width or 0, facts.height or 0)
    long_ = max(facts.width or 0, facts.height or 0)
    if rules.min_side_px and short < rules.min_side_px:
        out.error(
            "images", f"the shorter side is {short} px; the minimum is {rules.min_side_px} px"
        )
    if rules.max_side_px and long_ > rules.max_side_px:
        out.error("images", f"the longer side is {long_} px; the maximum is {rules.max_side_px} px")
    if facts.mode == "CMYK" and not rules.allow_cmyk:
        out.error("images", "CMYK image: convert it to RGB (sRGB) before uploading")
    profile = facts.icc_profile
    if rules.colour_space == "srgb" and profile and "srgb" not in profile.lower():
        out.warn("images", f"colour profile is {profile!r}; sRGB is expected")
    quality = rules.min_jpeg_quality
    if quality and facts.jpeg_quality is not None and facts.jpeg_quality < quality:
        out.error("images", f"JPEG quality is about {facts.jpeg_quality}; the minimum is {quality}")


def _preview_rules(facts: FileFacts, rules: Rules, out: _Findings) -> None:
    """A vector's JPG preview is judged as a preview, not as a photo."""
    short = min(facts.width or 0, facts.height or 0)
    if rules.preview_min_side_px and short < rules.preview_min_side_px:
        out.error("vectors", f"the preview's shorter side is {short} px; the minimum is "
                             f"{rules.preview_min_side_px} px")  # fmt: skip
    if facts.mode == "CMYK" and not rules.allow_cmyk:
        out.error("vectors", "CMYK preview: save it as RGB (sRGB)")


def _vector_rules(
    facts: FileFacts, agency: Agency, rules: Rules, has_preview: bool, out: _Findings
) -> None:
    if agency.vector_packaging in ("pair", "zip") and not has_preview:
        out.error("vectors", f"{agency.name} needs a same-name JPG preview beside "
                             f"{facts.path.name}")  # fmt: skip
    versions = rules.eps_illustrator_versions
    if versions and facts.format == "eps":
        takes = f"{agency.name} takes Illustrator {' or '.join(map(str, versions))} EPS"
        if facts.illustrator_version is None:
            out.warn("vectors", f"EPS version not recognised from its header; {takes}")
        elif facts.illustrator_version not in versions:
            out.error("vectors", f"EPS saved by Illustrator {facts.illustrator_version}; {takes}")
    wanted_svg = rules.svg_version
    if wanted_svg and facts.format == "svg" and facts.svg_version != wanted_svg:
        out.warn("vectors", f"SVG version {facts.svg_version or 'unknown'}; "
                            f"{agency.name} expects {wanted_svg}")  # fmt: skip


def _video_rules(facts: FileFacts, agency: Agency, rules: Rules, out: _Findings) -> None:
    if facts.duration_note:
        out.warn("video", facts.duration_note)
    seconds = facts.duration
    if seconds is not None:
        if rules.min_video_seconds and seconds < rules.min_video_seconds:
            out.error("video", f"clip is {seconds:.1f} s long; {agency.name} takes at least "
                               f"{rules.min_video_seconds:g} s")  # fmt: skip
        if rules.max_video_seconds and seconds > rules.max_video_seconds:
            out.error("video", f"clip is {seconds:.1f} s long; {agency.name} takes at most "
                               f"{rules.max_video_seconds:g} s")  # fmt: skip
    height = min(facts.width or 0, facts.height or 0) if facts.width else None
    if rules.min_video_height and height is not None and height < rules.min_video_height:
        out.error("video", f"clip is {facts.width} x {facts.height}; {agency.name} takes at "
                           f"least {rules.min_video_height} lines (e.g. 1280 x 720)")  # fmt: skip


def _ai_rules(facts: FileFacts, agency: Agency, out: _Findings) -> None:
    """An AI-marked file against the agency's AI policy; an agency whose
    policy no public page gives gets a warning, never a silent pass."""
    marker = facts.provenance.ai
    if facts.provenance.note:
        out.warn("ai", facts.provenance.note)
    if marker is None:
        return
    policy = agency.ai
    if policy is None:
        out.warn("ai", f"made with generative AI ({marker}); no public page gives "
                       f"{agency.name}'s policy on AI content: check before sending")  # fmt: skip
        return
    if policy.policy == "refuses":
        out.error("ai", f"{agency.name} does not take content made with generative AI "
                        f"({marker})")  # fmt: skip
    elif policy.policy == "labelled":
        title = (facts.metadata.title or "").casefold()
        for words in policy.title_must_not:
            if words.casefold() in title:
                out.error("ai", f"{agency.name} refuses {words!r} in the title of AI content")
        keywords = {k.casefold() for k in facts.metadata.keywords}
        if policy.keyword and policy.keyword.casefold() not in keywords:
            out.warn("ai", f"add the keyword {policy.keyword} that labels AI content for "
                           f"{agency.name} (stockup upload adds it to the copy it sends there; "
                           f"to the file: stockup meta set FILE --add-keywords "
                           f"{policy.keyword})")  # fmt: skip
        out.warn("ai", f"made with generative AI ({marker}): {agency.name} takes it only "
                       f"labelled: {policy.how}")  # fmt: skip
    elif not agency.confirmed("ai"):
        out.warn("ai", f"made with generative AI ({marker}); {agency.name} takes it, "
                       "but no public page confirms it")  # fmt: skip


def _metadata_rules(facts: FileFacts, rules: Rules, out: _Findings) -> None:
    meta = facts.metadata
    if not meta.readable:
        out.warn("metadata", "could not read the embedded title and keywords: check them "
                             "at the agency after uploading")  # fmt: skip
        return
    distinct = meta.distinct_keywords
    count = len(distinct)
    low, high = rules.min_keywords, rules.max_keywords
    if count == 0:
        (out.error if low else out.warn)("metadata", "no embedded keywords")
    elif low and count < low:
        repeated = f" ({len(meta.keywords)} with repeats)" if len(meta.keywords) > count else ""
        out.error("metadata", f"{count} different keywords{repeated}; at least {low} are needed")
    if high and count > high:
        out.error("metadata", f"{count} keywords; at most {high} are accepted")
    counts = Counter(k.strip().casefold() for k in meta.keywords)
    duplicates = sorted(k for k, n in counts.items() if n > 1 and k)
    if duplicates:
        out.warn("metadata", f"keywords repeated: {', '.join(duplicates)} (each counts once)")
    if not meta.title:
        out.warn("metadata", "no embedded title")
    elif rules.max_title_chars and len(meta.title) > rules.max_title_chars:
        out.error("metadata", f"title is {len(meta.title)} characters; "
                              f"at most {rules.max_title_chars}")  # fmt: skip


# -- the rules in plain words ---------------------------------------------------


GROUP_TITLES: dict[RuleGroup, str] = {
    "upload": "Upload server",
    "images": "Images",
    "vectors": "Vectors",
    "video": "Video",
    "metadata": "Titles and keywords",
    "ai": "Content made with generative AI",
}
AI_WORDS = {
    "refuses": "does not take content made with generative AI",
    "labelled": "takes content made with generative AI when it is labelled",
    "accepts": "takes content made with generative AI",
}
PACKAGING_WORDS = {
    "pair": "a vector travels with its same-name JPG preview",
    "zip": "a vector and its same-name JPG preview go in one ZIP",
    "vector-only": "vectors go without a preview",
    "no-preview": "vectors go alone: the agency makes the preview",
}


def plain_rules(agency: Agency) -> dict[RuleGroup, list[str]]:
    """The agency's rules in plain words, by rule group (never a regular
    expression: ``filename_pattern`` is said by its ``filename_rule``)."""
    r = agency.rules
    said: dict[RuleGroup, list[str]] = {}

    def say(group: RuleGroup, text: str) -> None:
        said.setdefault(group, []).append(text)

    if r.formats:
        say("upload", "takes " + ", ".join(f.upper() for f in r.formats))
    for kind, limit in r.max_file_mb.items():
        say("upload", f"{kind.upper() if kind != 'video' else 'video'} files up to {limit:g} MB")
    if r.filename_rule:
        say("upload", r.filename_rule)
    if r.min_megapixels:
        say("images", f"images of at least {r.min_megapixels:g} megapixels")
    if r.max_megapixels:
        say("images", f"images of at most {r.max_megapixels:g} megapixels")
    if r.min_side_px:
        say("images", f"the shorter side at least {r.min_side_px} pixels")
    if r.max_side_px:
        say("images", f"the longer side at most {r.max_side_px} pixels")
    if "images" in agency.sources:
        say("images", "CMYK accepted" if r.allow_cmyk else "RGB only, no CMYK")
    if r.colour_space:
        say("images", "an sRGB colour profile is expected")
    if r.min_jpeg_quality:
        say("images", f"JPEG quality at least {r.min_jpeg_quality}")
    if "vectors" in agency.sources and "vector" in agency.folders:
        say("vectors", PACKAGING_WORDS[agency.vector_packaging])
    if r.eps_illustrator_versions:
        versions = " or ".join(map(str, r.eps_illustrator_versions))
        say("vectors", f"EPS saved as Illustrator {versions}")
    if r.svg_version:
        say("vectors", f"SVG version {r.svg_version}")
    if r.preview_min_side_px:
        say("vectors", f"a vector's JPG preview at least {r.preview_min_side_px} pixels on its "
                       "shorter side")  # fmt: skip
    if r.min_video_seconds:
        say("video", f"clips of at least {r.min_video_seconds:g} seconds")
    if r.max_video_seconds:
        say("video", f"clips of at most {r.max_video_seconds:g} seconds")
    if r.min_video_height:
        say("video", f"clips of at least {r.min_video_height} lines (e.g. 1280 x 720)")
    if r.min_keywords:
        say("metadata", f"at least {r.min_keywords} different keywords")
    if r.max_keywords:
        say("metadata", f"at most {r.max_keywords} keywords")
    if r.max_title_chars:
        say("metadata", f"titles of at most {r.max_title_chars} characters")
    if agency.ai is not None:
        say("ai", AI_WORDS[agency.ai.policy] + (f": {agency.ai.how}" if agency.ai.how else ""))
        if agency.ai.keyword:
            say("ai", f"the keyword {agency.ai.keyword} labels it")
        for words in agency.ai.title_must_not:
            say("ai", f"no {words!r} in the title")
    elif not agency.is_custom:
        say("ai", "no public page gives its policy: AI files get a warning")
    return said
