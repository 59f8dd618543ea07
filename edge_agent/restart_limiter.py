"""Back-off decisions for things that fail and restart, such as a flapping camera."""

from __future__ import annotations

from collections import deque


class RestartLimiter:
    """Exponential back-off, plus a long pause when restarts come too fast.

    `next_delay(now)` is called after each failure and says how long to wait before the
    next try; `reset()` is called once the thing has worked for a while.
    """

    def __init__(self, initial_s: float, max_s: float, limit: int, window_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.limit = limit
        self.window_s = window_s
        self._failures = 0
        self._recent: deque[float] = deque()

    def next_delay(self, now: float, restart: bool = True) -> float:
        """Record a failure at `now` and return the seconds to wait before retrying.

        `restart=False` for a failure to start at all (a camera that refuses connections):
        it backs off but does not count toward the restart limit, which is about flapping.
        """
        if restart:
            self._recent.append(now)
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        # The exponent is capped: a camera down for weeks must not grow an unbounded integer.
        delay = min(self.max_s, self.initial_s * float(1 << min(self._failures, 60)))
        self._failures += 1
        if len(self._recent) > self.limit:
            return self.max_s
        return delay

    def reset(self) -> None:
        """Restart the back-off from its initial delay (the thing worked, if only briefly)."""
        self._failures = 0

    def forget(self) -> None:
        """Forget every failure and restart (the thing ran long enough to count as healthy).

        A healthy run's history says nothing about flapping: a camera that drops out for a
        few seconds now and then must come back as quickly the tenth time as the first.
        """
        self._failures = 0
        self._recent.clear()

    @property
    def too_fast(self) -> bool:
        """Whether the recent restarts exceed the limit."""
        return len(self._recent) > self.limit
