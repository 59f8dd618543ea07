"""Pure timing decisions of the recorder: dts repair, stream-to-UTC mapping, segment cuts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What to do with one packet's timestamps."""

    WRITE = "write"  # timestamps are fine (or were repaired in place)
    JUMP = "jump"  # the stream's clock jumped: finish the segment, start afresh at a keyframe
    DROP = "drop"  # no usable timestamp and nothing to derive one from


@dataclass(slots=True)
class Stamp:
    """A packet's decode and presentation time in stream ticks, after repair."""

    dts: int
    pts: int


class DtsGuard:
    """Keeps one stream's dts strictly increasing, as MP4 requires.

    Cameras send packets without timestamps, repeat a dts, or restart their clock after a
    reboot. Small stumbles are repaired in place (one tick later than the last packet);
    a jump larger than `jump_ticks` either way is reported so that the caller starts a new
    segment instead of writing a timeline that goes backwards or leaps ahead.
    """

    __slots__ = ("jump_ticks", "default_duration", "last", "repaired")

    def __init__(self, jump_ticks: int, default_duration: int) -> None:
        self.jump_ticks = jump_ticks
        self.default_duration = max(1, default_duration)
        self.last: int | None = None
        self.repaired = 0

    def check(
        self, dts: int | None, pts: int | None, duration: int | None
    ) -> tuple[Verdict, Stamp]:
        """Judge one packet; on WRITE the returned stamp is what to mux."""
        last = self.last
        if dts is None:
            dts = pts
        if dts is None:
            if last is None:
                return Verdict.DROP, Stamp(0, 0)
            self.repaired += 1
            dts = last + (duration or self.default_duration)
            self.last = dts
            return Verdict.WRITE, Stamp(dts, dts)
        if pts is None or pts < dts:
            pts = dts
        if last is not None:
            step = dts - last
            if step > self.jump_ticks or step < -self.jump_ticks:
                return Verdict.JUMP, Stamp(dts, pts)
            if step <= 0:
                self.repaired += 1
                dts = last + 1
                pts = max(pts, dts)
        self.last = dts
        return Verdict.WRITE, Stamp(dts, pts)

    def restart(self, stamp: Stamp) -> None:
        """Accept `stamp` as the new origin after a jump (a new segment starts with it)."""
        self.last = stamp.dts


class WallClock:
    """Maps stream seconds to UTC epoch seconds: wall = stream + offset.

    The offset is the least (arrival - stream time) seen: a packet is never received before
    it was captured, so the smallest lag is the best estimate, and a burst of buffered
    packets at connect time cannot push the timeline into the future. Camera clocks drift
    (tens of ppm); `settle()` at each segment cut adopts the latest window's lag when the
    camera runs slow by more than `tolerance_s`.
    """

    def __init__(self, tolerance_s: float = 1.0) -> None:
        self.tolerance_s = tolerance_s
        self.offset: float | None = None
        self._window = math.inf

    def observe(self, stream_s: float, arrival: float) -> None:
        """Note that the packet at `stream_s` arrived at `arrival` (UTC epoch seconds)."""
        lag = arrival - stream_s
        if lag < self._window:
            self._window = lag
            if self.offset is None or lag < self.offset:
                self.offset = lag

    def wall(self, stream_s: float) -> float:
        """UTC epoch seconds of stream time `stream_s` (observe() must have run once)."""
        assert self.offset is not None, "observe() a packet first"
        return stream_s + self.offset

    def settle(self) -> None:
        """Close the observation window (call at segment cuts)."""
        if (
            self.offset is not None
            and self._window != math.inf
            and self._window - self.offset > self.tolerance_s
        ):
            self.offset = self._window
        self._window = math.inf

    def reset(self) -> None:
        """Forget the mapping (the stream's clock jumped)."""
        self.offset = None
        self._window = math.inf


@dataclass(frozen=True)
class SegmentTimes:
    """UTC start and end of a finished segment."""

    start: float
    end: float


def segment_times(
    first_s: float,
    end_s: float,
    clock: WallClock,
    previous_end: float | None,
    contiguous: bool,
) -> SegmentTimes:
    """Place a finished segment covering stream time [first_s, end_s) on the UTC timeline.

    A segment that continues the previous one starts exactly where it ended, so the index
    has no seams; the first segment of a connection starts at the clock's estimate, never
    before the previous segment's end. The end follows the stream's own duration unless, in
    a run of contiguous segments, the clock says the camera drifted more than its tolerance:
    drift is corrected at cuts.
    """
    duration = max(0.0, end_s - first_s)
    if contiguous and previous_end is not None:
        start = previous_end
    else:
        start = clock.wall(first_s)
        if previous_end is not None and start < previous_end:
            start = previous_end
    end = start + duration
    if contiguous:
        estimate = clock.wall(end_s)
        if abs(estimate - end) > clock.tolerance_s:
            end = max(start, estimate)
    return SegmentTimes(start, end)


def cut_tick(first_dts: int, segment_s: float, time_base: float, tolerance_s: float) -> int:
    """The first dts at which a keyframe ends a segment that began at `first_dts`.

    RTP clocks round (10 s may be 899,999 ticks at 90 kHz), so the cut comes `tolerance_s`
    early rather than one whole GOP late.
    """
    return first_dts + max(1, round((segment_s - tolerance_s) / time_base))
