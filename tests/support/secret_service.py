"""A real OS keychain for tests: GNOME Keyring's Secret Service (Debian's
gnome-keyring) on a D-Bus session bus of its own (dbus-daemon), the
keychain most Linux desktops give `stockup init --keychain`.

The daemon keeps its keyrings under the directory given, unlocked with a
throwaway password; nothing of the machine's own keyring is touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.session_bus import session_bus

GNOME_KEYRING = "/usr/bin/gnome-keyring-daemon"
SECRETS_BUS_NAME = "org.freedesktop.secrets"
READY_TIMEOUT = 10.0


@contextlib.contextmanager
def secret_service(root: Path) -> Iterator[dict[str, str]]:
    """Start the bus and the keyring daemon; yields the environment a client
    needs to reach them (the bus address, and the home the daemon keeps its
    keyrings in)."""
    if not shutil.which(GNOME_KEYRING):
        pytest.skip(f"{GNOME_KEYRING} not installed (apt-get install gnome-keyring)")
    home, runtime = root / "home", root / "run"
    home.mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    with session_bus(root / "bus") as address, _keyring_daemon(home, runtime, address) as env:
        yield env


@contextlib.contextmanager
def _keyring_daemon(home: Path, runtime: Path, address: str) -> Iterator[dict[str, str]]:
    env = {
        "DBUS_SESSION_BUS_ADDRESS": address,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    keyring = subprocess.Popen(
        [GNOME_KEYRING, "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    try:
        assert keyring.stdin is not None
        keyring.stdin.write(b"keyring password\n")  # unlocks (creates) the login keyring
        keyring.stdin.close()
        _wait_for_name(env, SECRETS_BUS_NAME)
        yield env
    finally:
        keyring.terminate()
        keyring.wait(timeout=10)


def _wait_for_name(env: dict[str, str], name: str) -> None:
    """Until ``name`` is owned on the bus: the daemon claims it once it serves."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    bus = DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus")
    deadline = time.monotonic() + READY_TIMEOUT
    with open_dbus_connection(env["DBUS_SESSION_BUS_ADDRESS"]) as connection:
        while time.monotonic() < deadline:
            reply = connection.send_and_get_reply(
                new_method_call(bus, "NameHasOwner", "s", (name,))
            )
            if reply.body[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"{GNOME_KEYRING} did not take {name} on the bus")
