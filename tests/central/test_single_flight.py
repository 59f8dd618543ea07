"""One question in flight per key: concurrent callers share one run, its result or error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from central.video.single_flight import SingleFlight

pytestmark = pytest.mark.asyncio


async def test_callers_of_one_key_share_a_run_and_other_keys_run_apart() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()
    runs: list[str] = []

    def make(key: str, value: int) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            runs.append(key)
            await release.wait()
            return value

        return run

    callers = [
        asyncio.create_task(flight.run("a", make("a", 1))),
        asyncio.create_task(flight.run("a", make("a", 2))),
        asyncio.create_task(flight.run("b", make("b", 3))),
    ]
    await asyncio.sleep(0.01)
    assert runs == ["a", "b"]
    release.set()
    assert await asyncio.gather(*callers) == [1, 1, 3]
    # Done runs are forgotten: the next caller runs again.
    assert await flight.run("a", make("a", 4)) == 4 and runs == ["a", "b", "a"]


async def test_an_error_reaches_every_waiting_caller_once_and_is_not_kept() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise LookupError("nothing there")

    async def fine() -> int:
        return 7

    first = asyncio.create_task(flight.run("k", failing))
    second = asyncio.create_task(flight.run("k", fine))
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError, LookupError]
    assert await flight.run("k", fine) == 7


async def test_a_waiter_that_gives_up_leaves_the_run_to_the_others() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def slow() -> int:
        await release.wait()
        return 5

    first = asyncio.create_task(flight.run("k", slow))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(flight.run("k", slow))
    await asyncio.sleep(0.01)
    impatient.cancel()
    await asyncio.gather(impatient, return_exceptions=True)
    release.set()
    assert await first == 5
