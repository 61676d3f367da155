"""A type for secrets that cannot be printed by accident, and a log filter.

Python cannot wipe memory: a :class:`Secret` only keeps the value out of
reprs, f-strings, logs and pickles. Call :meth:`Secret.reveal` at the one
place the real value is needed (a KDF, a login command).
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
from typing import Any, NoReturn

REDACTED = "***"

# Every secret value seen by this process, so the log filter can redact it even
# when it reaches a message as a plain string (a server echoing it, say).
_known_values: set[str] = set()


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            _known_values.add(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


@functools.cache
def _pattern(values: frozenset[str]) -> re.Pattern[str]:
    # Longest first, so a secret that contains another is masked whole.
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def redact(text: str) -> str:
    """Replace each known secret value that stands as a word of its own in
    ``text`` with ``***``.

    Applied only where a secret can arrive as text: server replies (every
    :class:`~stockup.errors.TransportError` message), log records and
    tracebacks, and errors of unknown origin. Not to file names or stockup's
    own words: with the passphrase ``short``, ``short_4k_clip.mp4`` stays
    whole, which also does not tell where a short secret occurs."""
    if not _known_values:
        return text
    return _pattern(frozenset(_known_values)).sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with every known secret redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Also redacts tracebacks (``-v``): the filter sees only the message, and
    an exception's text can carry a server's reply."""

    def formatException(self, ei: Any) -> str:  # logging's name
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # logging's name
        return redact(super().formatStack(stack_info))
