"""A D-Bus session bus of a test's own (Debian's dbus-daemon), for the
services tests put on it: a notification daemon, the Secret Service."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DBUS_DAEMON = "/usr/bin/dbus-daemon"


@contextlib.contextmanager
def session_bus(socket: Path | None = None) -> Iterator[str]:
    """Start the bus (listening on ``socket``, else where the session
    configuration says) and yield its address; stop it at the end."""
    if not shutil.which(DBUS_DAEMON):
        pytest.skip(f"{DBUS_DAEMON} not installed (apt-get install dbus-daemon)")
    listen = [f"--address=unix:path={socket}"] if socket is not None else []
    daemon = subprocess.Popen(
        [DBUS_DAEMON, "--session", "--nofork", "--print-address", *listen],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        yield daemon.stdout.readline().strip()
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
