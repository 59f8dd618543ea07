"""A live stream tap: keeps the last GOP of one camera stream and hands its packets on.

A new uplink subscribes and gets the cached GOP (from the latest keyframe) at once, so the
viewer's first frame does not wait for the camera's next keyframe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from fractions import Fraction

from edge_agent.errors import UplinkError
from edge_agent.recording.events import PacketEvent
from edge_agent.recording.status import RateMeter
from edge_agent.uplink.fmp4 import StreamInfo, probe_stream

PacketCallback = Callable[[PacketEvent], None]

MAX_GOP_BYTES = 16 << 20  # a 10 s GOP at 8 Mbit/s fits; beyond, the cache waits for a keyframe


class GopCache:
    """The packets since the latest keyframe, bounded in bytes (pure, not thread-safe)."""

    def __init__(self, max_bytes: int = MAX_GOP_BYTES) -> None:
        self.max_bytes = max_bytes
        self.packets: list[PacketEvent] = []
        self.bytes = 0

    def add(self, event: PacketEvent) -> None:
        """Start over at a keyframe; drop the GOP if it outgrows the bound."""
        if event.keyframe:
            self.packets = [event]
            self.bytes = len(event.data)
            return
        if not self.packets:
            return  # no keyframe seen (or the GOP was too big): nothing usable to start with
        self.bytes += len(event.data)
        if self.bytes > self.max_bytes:
            self.packets = []
            self.bytes = 0
            return
        self.packets.append(event)


class LiveTap:
    """One camera stream's live packets: a GOP cache plus subscribers (thread-safe).

    `publish()` runs on the reader's thread (recorder or sub-stream reader); callbacks run
    there too, under the tap's lock, so they must only hand the packet on (queue it).
    """

    def __init__(self, camera: str, stream: str, max_gop_bytes: int = MAX_GOP_BYTES) -> None:
        self.camera = camera
        self.stream = stream
        self._lock = threading.Lock()
        self._gop = GopCache(max_gop_bytes)
        self._subscribers: tuple[PacketCallback, ...] = ()
        self._info: StreamInfo | None = None
        self._info_key: tuple[str, bytes | None, Fraction] | None = None
        self.last_packet_at: float | None = None  # monotonic
        self.packets = 0
        self.bytes = 0
        self._meter = RateMeter()

    def publish(self, event: PacketEvent) -> None:
        """A new video packet from the camera."""
        if event.kind != "video":
            return
        with self._lock:
            self._gop.add(event)
            self.last_packet_at = time.monotonic()
            self.packets += 1
            self.bytes += len(event.data)
            if event.keyframe:
                self._meter.sample(self.last_packet_at, self.packets, self.bytes)
            for callback in self._subscribers:
                callback(event)

    def subscribe(self, callback: PacketCallback) -> list[PacketEvent]:
        """Register `callback` and return the cached GOP; no packet is missed or repeated."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)
            return list(self._gop.packets)

    def unsubscribe(self, callback: PacketCallback) -> None:
        """Stop handing packets to `callback`."""
        with self._lock:
            self._subscribers = tuple(c for c in self._subscribers if c is not callback)

    @property
    def subscribers(self) -> int:
        """How many uplinks read this stream now."""
        return len(self._subscribers)

    def bitrate_bps(self) -> float:
        """The stream's recent bit rate (0 while no packets come)."""
        with self._lock:
            _fps, bps = self._meter.sample(time.monotonic(), self.packets, self.bytes)
        return bps if self.online() else 0.0

    def online(self, within_s: float = 5.0) -> bool:
        """True if a packet arrived in the last `within_s` seconds."""
        last = self.last_packet_at
        return last is not None and time.monotonic() - last < within_s

    def stream_info(self, keyframe: PacketEvent) -> StreamInfo:
        """The muxer description of the stream a keyframe belongs to (probed once per setup)."""
        key = (keyframe.codec, keyframe.extradata, keyframe.time_base)
        info = self._info
        if info is None or key != self._info_key:
            info = probe_stream(
                keyframe.codec, keyframe.extradata, keyframe.data, keyframe.time_base
            )
            self._info, self._info_key = info, key
        return info


class TapRegistry:
    """Every live tap of the agent, by (camera, stream)."""

    def __init__(self) -> None:
        self._taps: dict[tuple[str, str], LiveTap] = {}

    def add(self, tap: LiveTap) -> LiveTap:
        """Register a tap."""
        self._taps[(tap.camera, tap.stream)] = tap
        return tap

    def get(self, camera: str, stream: str) -> LiveTap:
        """The tap of a camera stream; UplinkError if the agent does not read it."""
        tap = self._taps.get((camera, stream))
        if tap is None:
            raise UplinkError(f"camera {camera!r} has no live {stream} stream on this agent")
        return tap

    def find(self, camera: str, stream: str) -> LiveTap | None:
        """The tap of a camera stream, or None."""
        return self._taps.get((camera, stream))

    def all(self) -> list[LiveTap]:
        """Every tap."""
        return list(self._taps.values())
