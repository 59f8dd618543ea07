"""systemd readiness and watchdog for the central server's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from fsv_common.sdnotify import notify, watchdog_interval

__all__ = ["notify", "watchdog_ctx", "watchdog_interval"]


async def watchdog_ctx(_app: web.Application) -> AsyncIterator[None]:
    """Tell systemd we are ready, then ping from the event loop while it is responsive.

    The pings come from the loop itself, so a blocked loop stops them and systemd restarts
    the service: that is the point of the watchdog.
    """
    notify("READY=1\nSTATUS=serving")
    interval = watchdog_interval()
    task = None
    if interval is not None:

        async def ping() -> None:
            while True:
                notify("WATCHDOG=1")
                await asyncio.sleep(interval)

        task = asyncio.create_task(ping(), name="sd-watchdog")
    try:
        yield
    finally:
        notify("STOPPING=1")
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
