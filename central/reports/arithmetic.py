"""Pure report arithmetic: counts, mean times, online rate, recording completeness."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


def count_by(rows: Iterable[dict[str, Any]], key: str) -> dict[str, int]:
    """How many rows have each value of `key`, most frequent first."""
    counts = Counter(str(r[key]) for r in rows)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def mean_delay(rows: Iterable[dict[str, Any]], start_key: str, end_key: str) -> float | None:
    """Mean of `end - start` over the rows that have both; None if none does."""
    delays = [
        float(r[end_key]) - float(r[start_key])
        for r in rows
        if r.get(start_key) is not None and r.get(end_key) is not None
    ]
    return sum(delays) / len(delays) if delays else None


def online_seconds(
    changes: Sequence[tuple[float, str]], start: float, end: float, initial: str | None
) -> float:
    """Seconds a camera was online in [start, end).

    `changes` are (time, state) pairs sorted by time; `initial` is the state at `start`
    (the last change before it, None if unknown: unknown counts as offline, because a
    camera that never reported is not supervising anything).
    """
    total, state, since = 0.0, initial, start
    for ts, new_state in changes:
        if ts >= end:
            break
        if ts > since:
            if state == "online":
                total += ts - since
            since = ts
        state = new_state
    if state == "online" and end > since:
        total += end - since
    return total


def ratio(part: float, whole: float) -> float | None:
    """`part / whole` rounded to 4 places, None when there is no whole."""
    return round(part / whole, 4) if whole > 0 else None


def recorded_seconds(
    samples: Iterable[tuple[float, float, bool]], start: float, end: float
) -> float:
    """Seconds credited as recorded from heartbeat samples (ts, interval_s, recording).

    Each sample vouches for the `interval_s` before it; the part inside [start, end) counts
    when the camera was recording at that heartbeat.
    """
    total = 0.0
    for ts, interval_s, recording in samples:
        if not recording:
            continue
        lo, hi = max(start, ts - interval_s), min(end, ts)
        if hi > lo:
            total += hi - lo
    return total


def expected_seconds(created_at: float, start: float, end: float) -> float:
    """Seconds a camera should have recorded in [start, end) given when it was registered."""
    return max(0.0, end - max(start, created_at))
