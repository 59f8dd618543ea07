"""The uplink budget's decisions, pure: a token bucket, strict priorities, use per class.

Everything the edge sends to central shares one budget per site. Classes, highest first:
`live` (live and replay a regulator watches) > `control` (MQTT commands and events) >
`evidence` (alert media, exports) > `archive` > `bulk`. A sender of a class may go only
when no higher class waits and the bucket is not in debt; `archive` also waits while
anything is watched (and `bulk` with it), so a viewer gets the whole line within one chunk's time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from enum import IntEnum


class TrafficClass(IntEnum):
    """Uplink traffic classes; a lower value is a higher priority."""

    LIVE = 0
    CONTROL = 1
    EVIDENCE = 2
    ARCHIVE = 3
    BULK = 4

    @property
    def label(self) -> str:
        """The name on the wire (heartbeat `uplink.classes[].name`)."""
        return self.name.lower()


class TokenBucket:
    """Bytes allowed now at `rate` bytes/s, at most `burst` saved up; may go into debt.

    A grant needs a non-negative balance and then takes the whole chunk, so a chunk larger
    than the burst still goes (the debt delays what follows): no sender starves on size.
    `rate` None means no limit.
    """

    def __init__(self, rate: float | None, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._at = now

    def refill(self, now: float) -> None:
        """Add what the time since the last refill earned."""
        if self.rate is not None and now > self._at:
            self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = max(self._at, now)

    def ready(self, now: float) -> bool:
        """Whether a chunk may start now."""
        self.refill(now)
        return self.rate is None or self.tokens >= 0

    def take(self, nbytes: int, now: float) -> None:
        """Spend `nbytes` (after `ready`, or unconditionally for traffic that never waits)."""
        self.refill(now)
        if self.rate is not None:
            self.tokens -= nbytes

    def wait_s(self, now: float) -> float:
        """Seconds until the balance is back to zero (0 when ready)."""
        self.refill(now)
        if self.rate is None or self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate


def may_send(
    cls: TrafficClass, waiting: Mapping[TrafficClass, int], watching: int, bucket_ready: bool
) -> bool:
    """Whether a sender of `cls` may send its next chunk now (strict priority)."""
    if not bucket_ready:
        return False
    if cls >= TrafficClass.ARCHIVE and archive_paused(watching):
        return False
    return not any(n > 0 for other, n in waiting.items() if other < cls)


def archive_paused(watching: int) -> bool:
    """Archive transfer yields the whole line while anything is watched."""
    return watching > 0


class UsageMeter:
    """Bytes sent per class; `rates` gives bits/s over the time since the previous call."""

    def __init__(self, now: float) -> None:
        self._totals = dict.fromkeys(TrafficClass, 0)
        self._mark = (now, dict(self._totals))
        self.recent: deque[tuple[float, int]] = deque(maxlen=256)

    def add(self, cls: TrafficClass, nbytes: int, now: float) -> None:
        """Count `nbytes` sent by `cls`."""
        self._totals[cls] += nbytes
        self.recent.append((now, nbytes))

    def total(self, cls: TrafficClass) -> int:
        """Bytes sent by `cls` since start."""
        return self._totals[cls]

    def rates(self, now: float) -> dict[TrafficClass, float]:
        """Bits/s per class since the previous call (0 on the first)."""
        at, before = self._mark
        self._mark = (now, dict(self._totals))
        span = now - at
        if span <= 0:
            return dict.fromkeys(TrafficClass, 0.0)
        return {c: 8 * (self._totals[c] - before[c]) / span for c in TrafficClass}
