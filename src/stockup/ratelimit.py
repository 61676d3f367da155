"""One byte-rate limit shared by every transfer (``--limit-rate``), usable
from the event loop (SFTP) and from FTP worker threads alike."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Protocol

from stockup.errors import UsageError

# Up to this much sending may run ahead of the average rate, so short
# scheduling hiccups do not lose bandwidth.
BURST_SECONDS = 0.25
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_rate(text: str) -> float:
    """curl's syntax: bytes per second, with an optional K, M or G suffix (1024-based)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"invalid rate {text!r}: use bytes per second like 500K, 20M or 1G")
    return float(match.group(1)) * UNITS[match.group(2).upper()]


class Limiter(Protocol):
    """What a transport calls before each block it sends (``TransportOptions.limiter``)."""

    def wait_sync(self, nbytes: int) -> None: ...

    async def wait(self, nbytes: int) -> None: ...

    def chunk_size(self) -> int: ...


class RateLimiter:
    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._next_free = time.monotonic()

    def _reserve(self, nbytes: int) -> float:
        """Book ``nbytes`` of the budget; returns how long to wait before sending."""
        with self._lock:
            now = time.monotonic()
            start = max(self._next_free, now - BURST_SECONDS)
            self._next_free = start + nbytes / self.rate
            return max(0.0, self._next_free - now - BURST_SECONDS)

    def wait_sync(self, nbytes: int) -> None:
        delay = self._reserve(nbytes)
        if delay:
            time.sleep(delay)

    async def wait(self, nbytes: int) -> None:
        delay = self._reserve(nbytes)
        if delay:
            await asyncio.sleep(delay)

    def chunk_size(self) -> int:
        """A chunk small enough that limiting stays smooth (a tenth of a second)."""
        return max(16 * 1024, int(self.rate / 10))
