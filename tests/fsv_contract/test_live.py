"""One definition of "live" for both programs: the peek and the two windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import uuid4

from fsv_contract import EventPayload, MediaRef, encode, live


def encoded(start: datetime, phase: Literal["start", "end"] = "start") -> bytes:
    clip = MediaRef(
        name="clip.mp4", sha256="0" * 64, bytes=1, content_type="video/mp4",
        start=start - timedelta(days=3), end=start,
    )  # fmt: skip
    return encode(EventPayload(
        event_id=uuid4(), site="s1", camera="c1", phase=phase, kind="no_mask", station="k",
        rule='r","start":"2001-01-01T00:00:00Z', start=start, score=0.5,
        end=start if phase == "end" else None, clip=clip if phase == "end" else None,
    ))  # fmt: skip


def test_the_peek_reads_the_top_level_start_and_phase() -> None:
    start = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    # neither the quoted text in `rule` nor the clip's own start is taken for it
    assert live.peek_start(encoded(start, "end")) == start.timestamp()
    assert live.peek_phase(encoded(start, "end")) == "end"
    assert live.peek_phase(encoded(start)) == "start"
    assert live.peek_start(b'{"start":"2026-05-01T08:30:00"}') is None  # no zone
    assert live.peek_start(b'{"start":"not a time at all"}') is None
    assert live.peek_start(b"garbage") is None
    assert live.peek_phase(b"garbage") is None


def test_central_allows_for_the_edge_clock_running_behind() -> None:
    assert live.CENTRAL_WINDOW_S == live.SEND_WINDOW_S + live.CLOCK_SKEW_S
    now = datetime.now(UTC)
    t = now.timestamp()
    sent = encoded(now - timedelta(seconds=live.SEND_WINDOW_S - 1))
    assert live.send_live(sent, t)
    # the same message, read at central whose clock is CLOCK_SKEW_S ahead of the edge's
    assert live.arrived_live(sent, t + live.CLOCK_SKEW_S)
    assert not live.arrived_live(sent, t + live.CLOCK_SKEW_S + 2)
    assert not live.send_live(sent, t + 2)  # left the edge too late
    assert not live.send_live(encoded(now, "end"), t)  # only the start phase takes the lane
    assert live.arrived_live(encoded(now, "end"), t)  # central: either phase
    assert live.live_since(t) == t - live.CENTRAL_WINDOW_S
