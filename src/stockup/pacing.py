"""Accounts that share an uplink finish together.

TCP shares a bottleneck between connections, not between accounts, and not
evenly: far away, an SFTP account (a few long-lived streams) outran an FTPS
one (a new data connection per file), and finished in little more than half
the time (bench row e). Every block a transport sends first passes its
account's :class:`AccountPace`, the hook ``--limit-rate`` uses too; an
account more than :data:`MARGIN` ahead of the slowest account still sending
waits for it. While the uplink is what limits, the bandwidth a leader leaves
goes to the others, so the run ends no later; an account that is slow on its
own (its server, a retry) stops being waited for as soon as it sends nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from stockup.ratelimit import Limiter

MARGIN = 0.03
"""How far an account may run ahead of the slowest, as a share of its bytes."""
ACTIVE_SECONDS = 2.0
"""An account that sent nothing for this long (between files, retrying,
stopped, done) is not waited for."""
STEP = 0.05
MAX_WAIT = 10.0
"""The longest a block waits: far shorter than the minutes servers give an
idle data connection. With 1 s, SFTP's chunks (2 MiB then) still went out at
2 MiB/s per connection, far above a shared uplink's share, and pacing hardly
held."""
UNLIMITED_CHUNK = 1 << 30
"""No bound of its own on a transport's block size."""


class Pacer:
    """The bytes each account has planned and sent, shared by its transports
    (FTP sends from worker threads, SFTP from the event loop)."""

    def __init__(
        self,
        accounts: Iterable[str],
        limiter: Limiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._planned = dict.fromkeys(accounts, 0)
        self._sent = dict.fromkeys(self._planned, 0)
        self._last_sent: dict[str, float] = {}
        self.limiter = limiter
        self._clock = clock
        self._lock = threading.Lock()

    def plan(self, planned: Mapping[str, int]) -> None:
        """Bytes each account is to send in this run."""
        with self._lock:
            self._planned.update(planned)

    def account(self, name: str) -> AccountPace:
        return AccountPace(self, name)

    def ahead(self, name: str) -> bool:
        """Whether ``name`` should wait for a slower account."""
        with self._lock:
            now = self._clock()
            active = [
                self._done(other)
                for other, at in self._last_sent.items()
                if other != name and now - at < ACTIVE_SECONDS
            ]
            still_sending = [done for done in active if done < 1]
            return bool(still_sending) and self._done(name) > min(still_sending) + MARGIN

    def sending(self, name: str, nbytes: int) -> None:
        with self._lock:
            self._sent[name] += nbytes
            self._last_sent[name] = self._clock()

    def _done(self, name: str) -> float:
        planned = self._planned[name]
        return self._sent[name] / planned if planned else 1.0


class AccountPace:
    """One account's view of the :class:`Pacer`, with the run's rate limit:
    what a transport calls before each block (``TransportOptions.limiter``)."""

    def __init__(self, pacer: Pacer, name: str) -> None:
        self._pacer = pacer
        self._name = name

    def wait_sync(self, nbytes: int) -> None:
        if self._pacer.limiter is not None:
            self._pacer.limiter.wait_sync(nbytes)
        waited = 0.0
        while waited < MAX_WAIT and self._pacer.ahead(self._name):
            time.sleep(STEP)
            waited += STEP
        self._pacer.sending(self._name, nbytes)

    async def wait(self, nbytes: int) -> None:
        if self._pacer.limiter is not None:
            await self._pacer.limiter.wait(nbytes)
        waited = 0.0
        while waited < MAX_WAIT and self._pacer.ahead(self._name):
            await asyncio.sleep(STEP)
            waited += STEP
        self._pacer.sending(self._name, nbytes)

    def chunk_size(self) -> int:
        return self._pacer.limiter.chunk_size() if self._pacer.limiter else UNLIMITED_CHUNK
