"""asyncio helpers."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it was set.

    Not `asyncio.wait_for`: on Python 3.11, when the waiting task is cancelled in the same
    loop round as the event is set, it returns as if nothing happened. A `while True` loop
    around it then never ends, and a shutdown that cancels the loop's task and waits for it
    waits forever. `asyncio.timeout` keeps the cancellation.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
