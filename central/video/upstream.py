"""One upstream: the media one edge pushes for (site, camera, stream, mode), fanned out.

It keeps the current init segment and GOP, so a viewer who joins gets the latest keyframe
and what followed at once (instant start for the second viewer and every later one).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from central.video.hls import HlsWindow
from fsv_contract.video import HEADER_SIZE, FrameHeader, FrameKind, Hello

MAX_GOP_BYTES = 16 << 20
RATE_WINDOW_S = 10.0
State = Literal["starting", "streaming", "ended"]


@dataclass(frozen=True)
class StreamKey:
    """What an upstream carries; replays and exports carry a session id of their own."""

    site: str
    camera: str
    stream: str = "sub"
    mode: str = "live"  # "live", or "replay:<id>" / "export:<id>" (never shared)

    @property
    def shared(self) -> bool:
        """Live upstreams are shared by every viewer; replays belong to one."""
        return self.mode == "live"

    def label(self) -> str:
        """For logs."""
        return f"{self.site}/{self.camera}/{self.stream}/{self.mode.split(':')[0]}"


class Sink(Protocol):
    """A viewer as the upstream sees it."""

    def control(self, text: str) -> None:
        """A JSON control message."""

    def init(self, frame: bytes) -> None:
        """An init frame (uplink header + init segment)."""

    def media(self, frame: bytes, keyframe: bool) -> bool:
        """A fragment frame; False if the viewer dropped it."""

    def finish(self, text: str) -> None:
        """The last control message (why the upstream ended); close after sending it."""


class Uplink(Protocol):
    """The edge's open WebSocket, as the upstream sees it."""

    async def close(self, reason: str) -> None:
        """Tell the edge to stop and close the socket."""


class Upstream:
    """Fan-out state of one upstream (used on the event loop only)."""

    def __init__(
        self, key: StreamKey, token: str, start: float | None = None, speed: float = 1.0
    ) -> None:
        now = time.monotonic()
        self.key = key
        self.token = token
        self.start = start
        self.speed = speed
        self.state: State = "starting"
        self.request_id: str | None = None
        self.requested_at = now
        self.last_data_at = now
        self.restarts = 0
        self.ended_reason = ""
        self.hello: Hello | None = None
        self.hello_text: str | None = None
        self.init_frame: bytes | None = None
        self.gop: list[bytes] = []
        self.gop_bytes = 0
        self.last_wall: float | None = None  # UTC of the newest fragment
        self.viewers: set[Sink] = set()
        self.org_path: str | None = None  # of the camera, for scoped status listings
        self.opened_by: int | None = None  # the user who started it (uplink quotas)
        self.uplink: Uplink | None = None
        self.idle_since: float | None = now
        self.hls: HlsWindow | None = None
        self.hls_lease_until = 0.0
        self.bytes_in = 0
        self.dropped_at_edge = 0
        self.dropping_at: float | None = None  # when the edge last reported new drops
        self._media: deque[tuple[float, float, int]] = deque()  # (arrival, media s, bytes)

    # --- viewers ---------------------------------------------------------------------------

    def add_viewer(self, sink: Sink) -> None:
        """Attach a viewer and hand it the current media description, init and GOP."""
        self.viewers.add(sink)
        self.idle_since = None
        if self.hello_text is not None:
            sink.control(self.hello_text)
        if self.init_frame is not None:
            sink.init(self.init_frame)
            for frame in self.gop:
                sink.media(frame, frame is self.gop[0])

    def remove_viewer(self, sink: Sink) -> None:
        """Detach a viewer; the upstream becomes idle when nobody is left."""
        self.viewers.discard(sink)
        if not self.viewers and self.idle_since is None:
            self.idle_since = time.monotonic()

    def broadcast(self, text: str) -> None:
        """A control message to every viewer."""
        for sink in self.viewers:
            sink.control(text)

    def finish(self, text: str) -> None:
        """Send every viewer the end message; they close after it."""
        for sink in self.viewers:
            sink.finish(text)

    # --- media from the edge ---------------------------------------------------------------

    def on_hello(self, hello: Hello, text: str) -> None:
        """The edge describes (again) what follows: a new timeline starts."""
        self.hello, self.hello_text = hello, text
        self.state = "streaming"
        self.last_data_at = time.monotonic()
        self.broadcast(text)

    def on_frame(self, header: FrameHeader, frame: bytes, payload: memoryview) -> None:
        """An init or fragment frame from the edge: cache it, fan it out."""
        now = time.monotonic()
        self.last_data_at = now
        self.bytes_in += len(frame)
        if header.kind is FrameKind.INIT:
            self.init_frame = frame
            self.gop, self.gop_bytes = [], 0
            for sink in self.viewers:
                sink.init(frame)
            if self.hls is not None:
                self.hls.new_init(bytes(payload))
            return
        if header.kind is not FrameKind.FRAGMENT or self.init_frame is None:
            return
        self._remember(frame, header.keyframe)
        self._media.append((now, header.duration_us / 1e6, len(frame)))
        if header.wall_ms:
            self.last_wall = header.wall_ms / 1000
        for sink in self.viewers:
            sink.media(frame, header.keyframe)
        if self.hls is not None:
            self.hls.fragment(
                bytes(payload), header.keyframe, header.duration_us / 1e6, header.wall_ms / 1000
            )

    def _remember(self, frame: bytes, keyframe: bool) -> None:
        if keyframe:
            self.gop, self.gop_bytes = [frame], len(frame)
        elif self.gop:
            self.gop_bytes += len(frame)
            if self.gop_bytes > MAX_GOP_BYTES:
                self.gop, self.gop_bytes = [], 0
            else:
                self.gop.append(frame)

    def on_stats(self, dropped: int) -> None:
        """The edge's figures: packets it dropped because its link was too slow."""
        if dropped > self.dropped_at_edge:
            self.dropping_at = time.monotonic()
        self.dropped_at_edge = dropped

    def dropping(self, now: float) -> bool:
        """True if the edge dropped packets within the last window."""
        return self.dropping_at is not None and now - self.dropping_at < RATE_WINDOW_S

    def enable_hls(self) -> HlsWindow:
        """Start collecting HLS segments (from the next keyframe on)."""
        if self.hls is None:
            self.hls = HlsWindow()
            if self.init_frame is not None:
                self.hls.new_init(self.init_frame[HEADER_SIZE:])
        return self.hls

    # --- health ----------------------------------------------------------------------------

    def rates(self, now: float | None = None) -> tuple[float | None, float]:
        """(media seconds received per second, bits per second) over the last window.

        A media rate well under 1.0 means the site's uplink cannot carry this stream; it is
        None until the upstream has streamed a whole window.
        """
        now = time.monotonic() if now is None else now
        while self._media and now - self._media[0][0] > RATE_WINDOW_S:
            self._media.popleft()
        bps = 8 * sum(n for _, _, n in self._media) / RATE_WINDOW_S
        if self.state != "streaming" or now - self.requested_at < RATE_WINDOW_S:
            return None, bps
        return sum(d for _, d, _ in self._media) / RATE_WINDOW_S, bps

    def status(self) -> dict[str, object]:
        """A snapshot for the status API."""
        rate, bps = self.rates()
        return {
            "site": self.key.site,
            "camera": self.key.camera,
            "stream": self.key.stream,
            "mode": self.key.mode.split(":")[0],
            "state": self.state,
            "viewers": len(self.viewers) + (1 if self.hls is not None else 0),
            "bytes_in": self.bytes_in,
            "media_rate": rate,
            "in_bps": bps,
            "restarts": self.restarts,
            "codec": self.hello.codec if self.hello else None,
            "bitrate_bps": self.hello.bitrate_bps if self.hello else None,
            "dropped_at_edge": self.dropped_at_edge,
        }
