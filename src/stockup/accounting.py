"""Progress accounting, apart from the transfers themselves (as rclone keeps
``fs/accounting`` apart from its transfers): the engine emits events, an
:class:`Accounting` turns them into totals, speeds and ETAs once, and every
front end renders :class:`Snapshot` s of it (terminal bars, the web page).

Bytes a run finds already on the server (a resumed partial file) count as
done: a bar ends at the file's size, not at what this run sent.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from stockup.planning import Job, Plan
from stockup.results import FileResult

SPEED_WINDOW_SECONDS = 5.0
Clock = Callable[[], float]


# -- events ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    plan: Plan


@dataclass(frozen=True)
class Notice:
    """Something the user must be told once per run (a plain-FTP account, a
    server refusing a connection)."""

    account: str
    message: str


@dataclass(frozen=True)
class TransferStarted:
    job: Job


@dataclass(frozen=True)
class TransferPosition:
    """The transfer goes on from byte ``offset``: what is below it is on the
    server (a resumed partial file), what is above it will be sent again."""

    id: int
    offset: int


@dataclass(frozen=True)
class TransferProgress:
    id: int
    nbytes: int


@dataclass(frozen=True)
class TransferFinished:
    job: Job | None
    """None for a file decided before sending (skipped, rejected)."""
    result: FileResult


@dataclass(frozen=True)
class AccountStopped:
    account: str
    reason: str


@dataclass(frozen=True)
class RunFinished:
    cancelled: bool = False


Event = (
    RunStarted
    | Notice
    | TransferStarted
    | TransferPosition
    | TransferProgress
    | TransferFinished
    | AccountStopped
    | RunFinished
)
Listener = Callable[[Event], None]


# -- accounting -----------------------------------------------------------------


class Speed:
    """Bytes per second over the last few seconds (since the start, at first)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.total = 0
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def add(self, nbytes: int) -> None:
        self.total += nbytes
        now = self.clock()
        self._samples.append((now, self.total))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_SECONDS:
            self._samples.popleft()

    def per_second(self) -> float:
        (t0, b0), (_, b1) = self._samples[0], self._samples[-1]
        elapsed = self.clock() - t0
        return (b1 - b0) / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class TransferView:
    id: int
    account: str
    name: str
    size: int
    done: int

    @property
    def percent(self) -> int:
        return 100 if self.size == 0 else min(100, self.done * 100 // self.size)


@dataclass(frozen=True)
class Totals:
    """Files and bytes of one account, or of the whole run."""

    name: str
    files: int
    finished: int
    total: int
    done: int
    speed: float
    eta: float | None
    stopped: str | None = None
    settled: bool = False
    """The run is over: an account with nothing to send shows as complete."""

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.settled else 0
        return min(100, self.done * 100 // self.total)


@dataclass(frozen=True)
class Snapshot:
    overall: Totals
    accounts: list[Totals]
    in_flight: list[TransferView]
    running: bool


@dataclass
class _Transfer:
    job: Job
    done: int = 0


@dataclass
class _Account:
    name: str
    files: int = 0
    finished: int = 0
    total: int = 0
    finished_bytes: int = 0
    stopped: str | None = None
    speed: Speed | None = None
    transfers: dict[int, _Transfer] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.finished_bytes + sum(
            min(t.done, t.job.artwork.size) for t in self.transfers.values()
        )


class Accounting:
    """Keeps the run's totals from its events; a :data:`Listener` itself, it
    passes every event on to ``listeners`` after counting it."""

    def __init__(
        self,
        accounts: list[str],
        listeners: list[Listener] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self.listeners = list(listeners or [])
        self._accounts = {name: _Account(name) for name in accounts}
        self._speed = Speed(clock)
        self.running = False
        self.settled = False
        self.run_id: str | None = None
        self.results: list[FileResult] = []

    def __call__(self, event: Event) -> None:
        self._count(event)
        for listener in self.listeners:
            listener(event)

    def _count(self, event: Event) -> None:
        match event:
            case RunStarted(run_id=run_id, plan=plan):
                self.run_id = run_id
                self.running = True
                for job in plan.all_jobs():
                    account = self._account(job.account.name)
                    account.total += job.artwork.size
                    account.files += 1
                # Speeds from now: planning took time that sent nothing.
                self._speed = Speed(self.clock)
                for account in self._accounts.values():
                    account.speed = Speed(self.clock)
            case TransferStarted(job=job):
                self._account(job.account.name).transfers[job.id] = _Transfer(job)
            case TransferPosition(id=transfer_id, offset=offset):
                for account in self._accounts.values():
                    if transfer_id in account.transfers:
                        account.transfers[transfer_id].done = offset
            case TransferProgress(id=transfer_id, nbytes=nbytes):
                self._speed.add(nbytes)
                for account in self._accounts.values():
                    if transfer_id in account.transfers:
                        account.transfers[transfer_id].done += nbytes
                        if account.speed is not None:
                            account.speed.add(nbytes)
            case TransferFinished(job=job, result=result):
                self.results.append(result)
                if job is not None:
                    account = self._account(job.account.name)
                    account.transfers.pop(job.id, None)
                    account.finished += 1
                    account.finished_bytes += job.artwork.size
            case AccountStopped(account=name, reason=reason):
                self._account(name).stopped = reason
            case RunFinished():
                self.running = False
                self.settled = True
                for account in self._accounts.values():
                    account.transfers.clear()
            case Notice():
                pass

    def _account(self, name: str) -> _Account:
        return self._accounts.setdefault(name, _Account(name))

    def snapshot(self) -> Snapshot:
        """Where the run stands now. After the run, speeds are 0 and ETAs
        unknown: nothing is moving any more."""
        accounts = [self._totals(a) for a in self._accounts.values()]
        overall = Totals(
            name="all accounts",
            files=sum(a.files for a in accounts),
            finished=sum(a.finished for a in accounts),
            total=sum(a.total for a in accounts),
            done=sum(a.done for a in accounts),
            speed=self._speed.per_second() if self.running else 0.0,
            eta=None,
            settled=self.settled,
        )
        overall = _with_eta(overall)
        in_flight = [
            TransferView(t.job.id, a.name, t.job.name, t.job.artwork.size, t.done)
            for a in self._accounts.values()
            for t in a.transfers.values()
        ]
        return Snapshot(overall, accounts, in_flight, self.running)

    def _totals(self, account: _Account) -> Totals:
        speed = account.speed.per_second() if self.running and account.speed else 0.0
        return _with_eta(
            Totals(
                name=account.name,
                files=account.files,
                finished=account.finished,
                total=account.total,
                done=account.done,
                speed=speed,
                eta=None,
                stopped=account.stopped,
                settled=self.settled,
            )
        )


def _with_eta(totals: Totals) -> Totals:
    remaining = totals.total - totals.done
    if totals.speed <= 0 or remaining <= 0 or totals.stopped:
        return totals
    return Totals(**{**totals.__dict__, "eta": remaining / totals.speed})
