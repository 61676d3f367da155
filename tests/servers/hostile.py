"""A server that says whatever a test scripts, for replies no real server
sends: endless greetings, replies that are not FTP."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

Script = Callable[[socket.socket, threading.Event], None]
"""Talks to one client until it leaves or the event is set."""


@contextlib.contextmanager
def hostile_server(script: Script) -> Iterator[int]:
    """Listens on 127.0.0.1; yields the port. Every connection runs ``script``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                script(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def endless_greeting(pause: float) -> Script:
    """``220-`` lines forever, ``pause`` seconds apart (0: as fast as it can)."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        line = b"220-" + b"x" * 70 + b"\r\n"
        while not stop.is_set():
            conn.sendall(line * (1 if pause else 100))
            if pause:
                stop.wait(pause)

    return script
