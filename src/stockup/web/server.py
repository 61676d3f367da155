"""Serve the web UI on 127.0.0.1 with uvicorn, and open the browser on it."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import webbrowser
from collections.abc import Callable

import uvicorn

from stockup.errors import UsageError
from stockup.store import Store
from stockup.web.app import create_app
from stockup.web.guard import Keys

SHUTDOWN_GRACE_SECONDS = 3


def bind(port: int) -> socket.socket:
    """A listening socket on loopback only; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} is in use; choose another with --port") from None
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    sock.listen(64)
    return sock


def serve(store: Store, *, port: int, open_browser: bool, announce: Callable[[str], None]) -> None:
    """Run until interrupted. ``announce`` gets the address to open, with this
    run's key in it, once the server accepts connections."""
    sock = bind(port)
    keys = Keys(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(store, keys),
        log_config=None,  # stockup's own logging, with its secret-redacting filter
        access_log=False,  # request lines would carry the key in the first address
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = uvicorn.Server(config)

    def when_ready() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            announce(keys.url)
            if open_browser:
                webbrowser.open(keys.url)

    threading.Thread(target=when_ready, daemon=True).start()
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    with sock:
        server.run(sockets=[sock])
