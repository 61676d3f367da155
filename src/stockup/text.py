"""Numbers as people read them, the same in the terminal and on the page."""

from __future__ import annotations

import math
import unicodedata

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value: float) -> str:
    exponent = min(len(BYTE_UNITS) - 1, int(math.log(max(value, 1), 1024)))
    if exponent == 0:
        return f"{value:.0f} B"
    return f"{value / 1024**exponent:.1f} {BYTE_UNITS[exponent]}"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\n``,
    ``\\x1b``): file names and server replies are data, and a raw escape
    sequence in one could rewrite what the terminal shows. ``newlines`` keeps
    line breaks that stockup itself put between lines. A byte of a file name
    that is not UTF-8 (Python holds it as a lone surrogate, which a UTF-8
    terminal or page cannot take) is shown as ``\\xNN`` too."""
    return "".join(
        c if unicodedata.category(c) not in ("Cc", "Cs") or (newlines and c == "\n") else _shown(c)
        for c in text
    )


def _shown(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that did not decode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")  # \\x1b, \\n, \\ud800


def storable(text: str) -> str:
    """``text`` as valid UTF-8, for SQLite and pages: a byte of a file name
    that is not UTF-8 becomes ``\\xNN``, the same text each time."""
    try:
        text.encode("utf-8")
        return text  # nearly always: nothing to do
    except UnicodeEncodeError:
        pass
    return "".join(_shown(c) if unicodedata.category(c) == "Cs" else c for c in text)
