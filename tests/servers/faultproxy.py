"""A TCP proxy between stockup and a real server that injects faults.

It listens on ``listen_host`` on the server's control port and on every port
of its passive range, forwarding each to the same port on ``target_host``:
FTP clients connect data channels to the control connection's peer (EPSV), so
control and data connections both pass through it. Faults: cut a connection
(reset towards the client) once it has carried N bytes upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import threading
import time
from collections.abc import Iterable


class FaultProxy:
    def __init__(self, listen_host: str, target_host: str, ports: Iterable[int]) -> None:
        self.listen_host = listen_host
        self.target_host = target_host
        self.ports = list(ports)
        self.cut_after_bytes: int | None = None
        self.cuts_left = 0
        self.cut_ports: set[int] | None = None
        self.cuts_done = 0
        self.delay_seconds = 0.0
        """Added to every chunk each way: latency emulation (a round trip gains twice this)."""
        self.client_turns = 0
        """How often the client sent again after the server had sent something,
        over all connections: the round trips it waited for (with a delay set,
        bytes a client sends without waiting cannot be split by a reply)."""
        self._server_spoke = True
        self._open = 0
        """Connections carried now: not yet ended both ways."""
        self.stall_after_bytes: int | None = None
        self.stall_seconds = 0.0
        self.stalls_left = 0
        self.stall_ports: set[int] | None = None
        self.captured: bytearray | None = None
        """When set (to an empty bytearray), every byte sent upstream is added to
        it: what a proxy behind this one is given to see."""
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def cut_next(
        self, after_bytes: int, *, times: int = 1, ports: Iterable[int] | None = None
    ) -> None:
        """Reset the next ``times`` connections (on ``ports``) after ``after_bytes`` upstream."""
        self.cut_after_bytes = after_bytes
        self.cuts_left = times
        self.cut_ports = set(ports) if ports is not None else None

    def stall_next(
        self,
        after_bytes: int,
        seconds: float,
        *,
        times: int = 1,
        ports: Iterable[int] | None = None,
    ) -> None:
        """Stop forwarding upstream for ``seconds`` once a connection carried
        ``after_bytes``, on the next ``times`` connections that get that far."""
        self.stall_after_bytes = after_bytes
        self.stall_seconds = seconds
        self.stalls_left = times
        self.stall_ports = set(ports) if ports is not None else None

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every connection has ended both ways. With a delay set,
        what a client wrote just before it exited (QUIT) is still on its way
        when the client is gone: a counter read sooner misses it, and the next
        run's count gets it."""
        deadline = time.monotonic() + timeout
        while self._open:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self._open} proxied connection(s) still open")
            time.sleep(0.01)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        for port in self.ports:
            server = await asyncio.start_server(
                functools.partial(self._handle, port=port), self.listen_host, port
            )
            self._servers.append(server)

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        # Wait for the cancelled connections to end: a task left pending is logged
        # with a traceback when collected, and on Python 3.11.7 that logging can
        # land inside another ast.parse (pytest's) and break it with a SystemError.
        tasks = [t for t in asyncio.all_tasks(self._loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _cut_limit(self, port: int) -> int | None:
        """The byte count after which this connection is cut, while cuts are left
        (one is used up only when a connection really reaches it)."""
        if self.cuts_left <= 0 or self.cut_after_bytes is None:
            return None
        if self.cut_ports is not None and port not in self.cut_ports:
            return None
        return self.cut_after_bytes

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        self._open += 1
        try:
            await self._carry(reader, writer, port)
        finally:
            self._open -= 1

    async def _carry(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, port)
        except OSError:
            writer.close()
            return
        cut = self._cut_limit(port)
        stall_at = self.stall_after_bytes
        if self.stall_ports is not None and port not in self.stall_ports:
            stall_at = None

        async def pump(
            src: asyncio.StreamReader,
            dst: asyncio.StreamWriter,
            limit: int | None,
            stall: int | None = None,
            upstream: bool = False,
        ) -> None:
            if self.delay_seconds:
                src = self._delayed(src)
            carried = 0
            try:
                while data := await src.read(65536):
                    if stall is not None and carried + len(data) > stall and self.stalls_left:
                        self.stalls_left -= 1
                        stall = None
                        await asyncio.sleep(self.stall_seconds)
                    if limit is not None and carried + len(data) > limit and self.cuts_left > 0:
                        self.cuts_left -= 1
                        dst.write(data[: limit - carried])
                        await dst.drain()
                        self._reset(writer)
                        up_writer.close()
                        self.cuts_done += 1
                        return
                    carried += len(data)
                    if upstream and self._server_spoke:
                        self.client_turns += 1
                    self._server_spoke = not upstream
                    if upstream and self.captured is not None:
                        self.captured += data
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
            except (OSError, asyncio.CancelledError):
                pass

        # Cancelled: the proxy is stopping. asyncio (3.11) logs a connection
        # handler that ends cancelled with a traceback, and that logging can
        # break pytest's next ast.parse (see _stop): it ends normally instead.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(
                pump(reader, up_writer, cut, stall_at, upstream=True),
                pump(up_reader, writer, None),
                return_exceptions=True,
            )
        for w in (writer, up_writer):
            w.close()

    def _delayed(self, src: asyncio.StreamReader) -> asyncio.StreamReader:
        """A reader that yields ``src``'s data ``delay_seconds`` after it arrived,
        without slowing the stream's throughput (the data is queued, not held)."""
        out = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | ConnectionError]] = asyncio.Queue()

        async def receive() -> None:
            try:
                while data := await src.read(65536):
                    queue.put_nowait((loop.time() + self.delay_seconds, data))
            except ConnectionError as exc:  # a reset, passed on as one, as late
                queue.put_nowait((loop.time() + self.delay_seconds, exc))
            else:
                queue.put_nowait((loop.time() + self.delay_seconds, b""))

        async def release() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if isinstance(data, ConnectionError):
                    out.set_exception(data)
                    return
                if not data:
                    out.feed_eof()
                    return
                out.feed_data(data)

        self._tasks.update({loop.create_task(receive()), loop.create_task(release())})
        return out

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
