"""A type for secrets that cannot be printed by accident, and a log filter.

Python cannot wipe memory: a :class:`Secret` only keeps the value out of
reprs, f-strings, logs and pickles. Call :meth:`Secret.reveal` at the one
place the real value is needed (a KDF, a login command).
"""

from __future__ import annotations

import hmac
import logging
from typing import NoReturn

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


def redact(text: str) -> str:
    """Replace every known secret value in ``text`` with ``***``."""
    for value in sorted(_known_values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with every known secret redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
