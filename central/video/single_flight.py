"""One question in flight per key: callers asking the same thing meanwhile share its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Runs `make` once for a key while it runs; later callers await that run's result."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """The result (or exception) of `make()`, or of the run already in flight for `key`.

        A later caller waits shielded: its cancellation leaves the run going for the others.
        """
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await make()
            future.set_result(result)
            return result
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # marked retrieved: nobody else may be waiting
            raise
        finally:
            del self._running[key]
