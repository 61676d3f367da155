"""A real D-Bus session bus (Debian's dbus-daemon) with a notification
service on it that records what it is asked to show: the freedesktop
Notifications interface, as a desktop's notification daemon serves it."""

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from tests.support.session_bus import session_bus


def _dbus(signature: dict[str, str], function: Any) -> Any:
    """``function`` as a D-Bus method: dbus-fast reads the D-Bus signature
    from the annotations, which are D-Bus type strings, not Python types."""
    function.__annotations__ = signature
    return method()(function)


def GetCapabilities(self: Any) -> Any:
    return ["body"]


def GetServerInformation(self: Any) -> Any:
    return ["test", "stockup", "1", "1.2"]


def Notify(
    self: Any, app_name: Any, replaces_id: Any, app_icon: Any, summary: Any,
    body: Any, actions: Any, hints: Any, expire_timeout: Any,
) -> Any:  # fmt: skip
    self.shown.append((summary, body))
    return len(self.shown)


class _Notifications(ServiceInterface):
    GetCapabilities = _dbus({"return": "as"}, GetCapabilities)
    GetServerInformation = _dbus({"return": "ssss"}, GetServerInformation)
    Notify = _dbus(
        {
            "app_name": "s", "replaces_id": "u", "app_icon": "s", "summary": "s", "body": "s",
            "actions": "as", "hints": "a{sv}", "expire_timeout": "i", "return": "u",
        },
        Notify,
    )  # fmt: skip

    def __init__(self, shown: list[tuple[str, str]]) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.shown = shown


@dataclass
class NotificationServer:
    address: str
    shown: list[tuple[str, str]] = field(default_factory=list)


@contextlib.contextmanager
def notification_server() -> Iterator[NotificationServer]:
    with session_bus() as address, _serving(NotificationServer(address)) as server:
        yield server


@contextlib.contextmanager
def _serving(server: NotificationServer) -> Iterator[NotificationServer]:
    loop = asyncio.new_event_loop()

    async def serve() -> MessageBus:
        bus = await MessageBus(bus_address=server.address).connect()
        bus.export("/org/freedesktop/Notifications", _Notifications(server.shown))
        await bus.request_name("org.freedesktop.Notifications")
        return bus

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bus = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    try:
        yield server
    finally:
        bus.disconnect()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
