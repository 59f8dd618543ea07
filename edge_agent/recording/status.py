"""A recorder's observable state: counters kept by its thread, a snapshot for heartbeats."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

State = Literal["starting", "online", "offline", "stopped"]


@dataclass(slots=True)
class Counters:
    """Totals since the recorder started; written by its thread only."""

    video_packets: int = 0
    audio_packets: int = 0
    bytes: int = 0
    dropped: int = 0  # received but not written: no usable timestamp, or audio after a jump
    skipped: int = 0  # received before the first keyframe of a connection (not decodable)
    repaired: int = 0  # written with a repaired dts (missing, repeated or going backwards)
    segments: int = 0  # closed segment files
    reconnects: int = 0


@dataclass(frozen=True)
class RecorderStatus:
    """A snapshot of one camera's recorder, for heartbeats and the camera state topic."""

    camera: str
    state: State
    since: float  # UTC epoch seconds of the last state change
    reason: str
    fps: float
    bitrate_bps: float
    last_segment_end: float | None
    video_packets: int
    audio_packets: int
    dropped: int
    skipped: int
    repaired: int
    segments: int
    reconnects: int
    listener_errors: int


class RateMeter:
    """Frames and bits per second between samples at least `min_window_s` apart.

    The recorder samples at keyframes and `status()` samples when asked, so the rates stay
    fresh without per-packet work and fall to zero once packets stop coming.
    """

    def __init__(self, min_window_s: float = 1.0) -> None:
        self.min_window_s = min_window_s
        self._lock = threading.Lock()
        self._at: float | None = None
        self._frames = 0
        self._bytes = 0
        self.fps = 0.0
        self.bps = 0.0

    def sample(self, now: float, frames: int, nbytes: int) -> tuple[float, float]:
        """Update with the running totals at `now` (monotonic); returns (fps, bits/s)."""
        with self._lock:
            if self._at is None:
                self._at, self._frames, self._bytes = now, frames, nbytes
                return self.fps, self.bps
            elapsed = now - self._at
            if elapsed >= self.min_window_s:
                self.fps = (frames - self._frames) / elapsed
                self.bps = 8 * (nbytes - self._bytes) / elapsed
                self._at, self._frames, self._bytes = now, frames, nbytes
            return self.fps, self.bps
