"""HLS with fMP4 segments for phones and Safari: a rolling window of whole GOPs.

Each media segment is one GOP (keyframe to keyframe) of the upstream's fragments, so every
segment starts with a keyframe; the init segment is the upstream's. Safari and iOS play it
natively; other browsers use the WebSocket + MSE player and never need this.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

WINDOW = 6  # segments listed in the playlist (about 12 s with a 2 s GOP)
MAX_SEGMENT_S = 12.0  # a camera with a longer GOP still gets segments this long at most


@dataclass
class HlsSegment:
    """One GOP's fragments (fMP4 bytes without the uplink header)."""

    sequence: int
    wall: float  # UTC of its first frame
    duration: float = 0.0
    parts: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        """The segment file."""
        return b"".join(self.parts)


class HlsWindow:
    """The last `window` finished segments of one upstream, plus the one being filled (pure)."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.generation = 0  # bumped with every new init: segment names change with it
        self.init: bytes | None = None
        self.segments: deque[HlsSegment] = deque()
        self._open: HlsSegment | None = None
        self._next = 0

    def new_init(self, init: bytes) -> None:
        """A new init segment: start a new timeline (the old segments cannot follow it)."""
        self.generation += 1
        self.init = init
        self.segments.clear()
        self._open = None

    def fragment(self, payload: bytes, keyframe: bool, duration_s: float, wall: float) -> None:
        """Add one fragment; a keyframe closes the open segment."""
        if self.init is None:
            return
        current = self._open
        if current is not None and (keyframe or current.duration >= MAX_SEGMENT_S):
            self._finish(current)
            current = None
        if current is None:
            if not keyframe:
                return  # a segment must start with a keyframe
            current = self._open = HlsSegment(self._next, wall)
            self._next += 1
        current.parts.append(payload)
        current.duration += duration_s

    def _finish(self, segment: HlsSegment) -> None:
        self.segments.append(segment)
        while len(self.segments) > self.window:
            self.segments.popleft()
        self._open = None

    def segment(self, sequence: int) -> HlsSegment | None:
        """A finished segment still in the window."""
        for seg in self.segments:
            if seg.sequence == sequence:
                return seg
        return None

    def playlist(self, prefix: str) -> str | None:
        """The media playlist (file names start with `prefix`), None while no segment is done."""
        if self.init is None or not self.segments:
            return None
        target = max(1, math.ceil(max(s.duration for s in self.segments)))
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{target}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].sequence}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            f'#EXT-X-MAP:URI="{prefix}-init-{self.generation}.mp4"',
        ]
        for seg in self.segments:
            stamp = datetime.fromtimestamp(seg.wall, UTC).isoformat(timespec="milliseconds")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp.replace('+00:00', 'Z')}")
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(f"{prefix}-{self.generation}-{seg.sequence}.m4s")
        return "\n".join(lines) + "\n"
