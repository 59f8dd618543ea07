"""The uplink scheduler: one bandwidth budget per site, shared by every sender to central.

Senders run on several threads (the uplink's event loop, the media uploader, the archive
sender, paho's MQTT thread); each asks for its chunk before writing it. Blocking callers
use `acquire`, the event loop `acquire_async` (which sleeps on the loop, never holding a
worker thread), and traffic that must never wait (MQTT, whose client
writes from its own thread) is `charge`d: it takes budget from everyone below it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

from edge_agent.uplink.budget import TokenBucket, TrafficClass, UsageMeter, archive_paused, may_send
from fsv_contract.payloads import StreamRate, UplinkClass, UplinkClassUse, UplinkStats
from fsv_contract.video import Stream

MIN_BURST = 16 * 1024
MAX_WAIT_STEP_S = 0.1  # waiters look again at least this often (the clock, a cancelled stop)
ASYNC_LOOK_S = 0.01  # an event-loop sender held back by a higher class looks again this often


class UplinkPaused(OSError):
    """A sender gave up waiting for budget; an OSError, so HTTP senders retry it later."""


class UplinkScheduler:
    """Strict-priority token bucket over the site's uplink (`rate` bytes/s, None: unlimited)."""

    def __init__(
        self,
        rate: float | None,
        burst_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self._clock = clock
        burst = max(MIN_BURST, (rate or 0) * burst_s)
        now = clock()
        self._bucket = TokenBucket(rate, burst, now)
        self._meter = UsageMeter(now)
        self._cond = threading.Condition()
        self._waiting: Counter[TrafficClass] = Counter()
        self._watching = 0
        self.backlog: dict[TrafficClass, Callable[[], int]] = {}
        self.archive_backlog_segments: Callable[[], int] = lambda: 0
        self.stream_rates: Callable[[], list[tuple[str, str, float]]] = list
        self.paused_since: float | None = None
        self.pause_log: list[tuple[float, float | None]] = []  # (paused at, resumed at)

    # --- senders -------------------------------------------------------------------------------

    def try_acquire(self, cls: TrafficClass, nbytes: int) -> bool:
        """Take budget for `nbytes` if the chunk may go now; never waits."""
        with self._cond:
            return self._grant_locked(cls, nbytes)

    def acquire(
        self,
        cls: TrafficClass,
        nbytes: int,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Wait until the chunk may go, then take its budget.

        UplinkPaused when `timeout` passes first or `stop` is set.
        """
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            if self._grant_locked(cls, nbytes):
                return
            self._waiting[cls] += 1
            try:
                while True:
                    if stop is not None and stop.is_set():
                        raise UplinkPaused("stopped")
                    now = self._clock()
                    if deadline is not None and now >= deadline:
                        raise UplinkPaused(f"{cls.label} waited {timeout:.1f} s for the uplink")
                    self._waiting[cls] -= 1
                    granted = self._grant_locked(cls, nbytes)
                    self._waiting[cls] += 1
                    if granted:
                        return
                    step = max(0.001, min(MAX_WAIT_STEP_S, self._bucket.wait_s(now) or 1.0))
                    if deadline is not None:
                        step = min(step, max(0.001, deadline - now))
                    self._cond.wait(step)
            finally:
                self._waiting[cls] -= 1
                self._cond.notify_all()

    async def acquire_async(self, cls: TrafficClass, nbytes: int) -> None:
        """`acquire` for the event loop: waits with asyncio.sleep, never on a thread."""
        if self.try_acquire(cls, nbytes):
            return
        with self._cond:
            self._waiting[cls] += 1
        try:
            while True:
                with self._cond:
                    self._waiting[cls] -= 1
                    granted = self._grant_locked(cls, nbytes)
                    self._waiting[cls] += 1
                    wait = self._bucket.wait_s(self._clock())
                if granted:
                    return
                await asyncio.sleep(max(0.001, min(MAX_WAIT_STEP_S, wait or ASYNC_LOOK_S)))
        finally:
            with self._cond:
                self._waiting[cls] -= 1
                self._cond.notify_all()

    def charge(self, cls: TrafficClass, nbytes: int) -> None:
        """Count traffic that was sent without waiting (it still uses the budget)."""
        with self._cond:
            now = self._clock()
            self._bucket.take(nbytes, now)
            self._meter.add(cls, nbytes, now)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """While inside, someone watches live or replay: archive and bulk wait."""
        with self._cond:
            self._watching += 1
            if self._watching == 1:
                self.paused_since = self._clock()
                self.pause_log.append((self.paused_since, None))
                del self.pause_log[:-64]
        try:
            yield
        finally:
            with self._cond:
                self._watching -= 1
                if self._watching == 0:
                    self.paused_since = None
                    if self.pause_log:
                        self.pause_log[-1] = (self.pause_log[-1][0], self._clock())
                self._cond.notify_all()

    # --- figures -------------------------------------------------------------------------------

    @property
    def watchers(self) -> int:
        """Live/replay uplinks open now."""
        return self._watching

    def sent(self, cls: TrafficClass) -> int:
        """Bytes `cls` sent since start."""
        with self._cond:
            return self._meter.total(cls)

    def stats(self) -> UplinkStats:
        """The heartbeat's `uplink`: budget, use per class since the last call, backlog."""
        with self._cond:
            rates = self._meter.rates(self._clock())
            waiting = dict(self._waiting)
            watching = self._watching
        classes = [
            UplinkClassUse(
                name=cast(UplinkClass, cls.label),
                bps=max(0.0, rates[cls]),
                waiting=max(0, waiting.get(cls, 0)),
                backlog_bytes=max(0, self.backlog[cls]()) if cls in self.backlog else 0,
            )
            for cls in TrafficClass
        ]
        return UplinkStats(
            budget_bps=None if self.rate is None else 8.0 * self.rate,
            classes=classes,
            watching=watching,
            archive_paused=archive_paused(watching),
            archive_backlog_segments=max(0, self.archive_backlog_segments()),
            streams=[
                StreamRate(camera=c, stream=cast(Stream, s), bps=max(0.0, b))
                for c, s, b in self.stream_rates()
            ],
        )

    # --- internals -----------------------------------------------------------------------------

    def _grant_locked(self, cls: TrafficClass, nbytes: int) -> bool:
        now = self._clock()
        if not may_send(cls, self._waiting, self._watching, self._bucket.ready(now)):
            return False
        self._bucket.take(nbytes, now)
        self._meter.add(cls, nbytes, now)
        return True


class BudgetedReader:
    """An HTTP body that takes the uplink budget for each block before handing it over.

    UplinkPaused (an OSError: the request fails and is retried later) once one block waited
    `give_up_s`, or at once when `stop` is set.
    """

    def __init__(
        self,
        f: BinaryIO,
        scheduler: UplinkScheduler,
        cls: TrafficClass,
        give_up_s: float | None = None,
        stop: threading.Event | None = None,
        block: int = 16 * 1024,
    ) -> None:
        self._f = f
        self._scheduler = scheduler
        self._cls = cls
        self._give_up_s = give_up_s
        self._stop = stop
        self._block = block
        self.sent = 0

    def read(self, n: int = -1, /) -> bytes:
        """The next block (at most `block` bytes), once the budget allows it."""
        size = self._block if n is None or n < 0 else min(n, self._block)
        data = self._f.read(size)
        if data:
            self._scheduler.acquire(self._cls, len(data), self._give_up_s, self._stop)
            self.sent += len(data)
        return data
