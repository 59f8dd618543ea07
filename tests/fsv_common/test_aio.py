"""asyncio helpers: a loop around a wait must still end when its task is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from fsv_common.aio import wait_event

pytestmark = pytest.mark.asyncio


async def test_set_or_timed_out() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 5) is True


async def test_a_cancel_in_the_round_the_event_is_set_still_ends_the_loop() -> None:
    event = asyncio.Event()
    rounds = 0

    async def worker() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            await wait_event(event, 30)
            event.clear()

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)  # the worker now waits for the event
    assert rounds == 1
    # The event is set (a wake-up) and the task cancelled (a shutdown) in the same round.
    event.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done == {task}, "the cancellation was lost: the loop went on waiting"
    with pytest.raises(asyncio.CancelledError):
        task.result()
