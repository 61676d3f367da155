"""Serve the web UI on 127.0.0.1 with uvicorn, and open the browser on it."""

from __future__ import annotations

import errno
import html
import logging
import os
import socket
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

import uvicorn

from stockup.errors import UsageError
from stockup.fsutil import atomic_write
from stockup.paths import ensure_private_dir
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


def open_browser_privately(url: str, folder: Path) -> Path:
    """Open the browser on a redirect file readable by the owner only, as
    Jupyter does: a browser's command line is visible to every local user
    (``ps``), and the address holds this run's key. Returns the file, which
    the caller removes when the server stops."""
    page = ensure_private_dir(folder) / f"ui-open-{os.getpid()}.html"
    target = html.escape(url, quote=True)
    atomic_write(
        page,
        (
            '<!doctype html><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0;url={target}">'
            f'<title>stockup</title><p><a href="{target}">Open stockup</a></p>\n'
        ).encode(),
        mode=0o600,
    )
    webbrowser.open(page.as_uri())
    return page


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

    opened: list[Path] = []

    def when_ready() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            announce(keys.url)
            if open_browser:
                opened.append(open_browser_privately(keys.url, store.paths.state_dir))

    threading.Thread(target=when_ready, daemon=True).start()
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    try:
        with sock:
            server.run(sockets=[sock])
    finally:
        for page in opened:
            page.unlink(missing_ok=True)
