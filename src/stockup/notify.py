"""Desktop notifications where the platform has them (desktop-notifier:
D-Bus on Linux, the notification centre on macOS and Windows); silent where
it has none, and never a reason for anything else to fail."""

from __future__ import annotations

import asyncio
import html
import logging
import os
import sys

log = logging.getLogger(__name__)
SEND_TIMEOUT = 5.0


async def notify(title: str, message: str) -> bool:
    """Show a notification; False when there is no way to (no session bus,
    no notification service)."""
    if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False  # no desktop session: nothing would show it
    from desktop_notifier import DesktopNotifier  # imported here: only `watch` needs it

    # The library logs a traceback of its own when no service answers.
    logging.getLogger("desktop_notifier").setLevel(logging.CRITICAL)
    sent = asyncio.Event()
    notifier = DesktopNotifier(app_name="stockup")
    try:
        # The body may be shown as markup (the freedesktop spec allows <b>,
        # <a> ...): escaped, so text stays text.
        await asyncio.wait_for(
            notifier.send(title=title, message=html.escape(message), on_dispatched=sent.set),
            SEND_TIMEOUT,
        )
        await asyncio.wait_for(sent.wait(), SEND_TIMEOUT)
    except Exception as exc:  # best effort: any failure means "not shown"
        log.debug("no desktop notification: %s", exc)
        return False
    return True
