"""Frame source: decodes a shared stream's packets at a few fps in its own thread, drop-oldest."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.packets import GopQueue, QueuedPacket
from edge_agent.recording.events import PacketEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """A decoded, downscaled frame and when it was captured (UTC epoch seconds)."""

    ts: float
    image: NDArray[np.uint8]  # BGR, HxWx3
    seq: int


class DropOldestQueue:
    """A bounded hand-over between threads: a full queue drops its oldest item, counted."""

    def __init__(self, maxsize: int) -> None:
        self._items: collections.deque[Frame] = collections.deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Frame) -> None:
        """Add an item without ever blocking the producer."""
        with self._cond:
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        """The oldest item, or None after `timeout` seconds without one."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class StreamClock:
    """Maps stream seconds to UTC: offset = the least (arrival - stream time) seen.

    A frame cannot arrive before it was captured, so the smallest lag is the best estimate
    and a burst of buffered frames at connect time cannot push times into the future. A
    stream clock that jumps (camera reboot) by more than `jump_s` resets the mapping.
    """

    def __init__(self, jump_s: float = 5.0) -> None:
        self.jump_s = jump_s
        self.offset: float | None = None

    def wall(self, stream_s: float, arrival: float) -> float:
        """UTC epoch seconds of a frame at `stream_s` that arrived at `arrival`."""
        lag = arrival - stream_s
        if self.offset is None or lag < self.offset or lag - self.offset > self.jump_s:
            self.offset = lag
        return stream_s + self.offset


class FrameSampler:
    """Which decoded frames to keep: at most `fps` a second of stream time (pure)."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self._due: float | None = None

    @property
    def due(self) -> float | None:
        """Stream time of the next frame to keep (None before the first)."""
        return self._due

    def take(self, stream_s: float) -> bool:
        """True if the frame at `stream_s` is due; a jump back of 10 intervals re-arms."""
        due = self._due
        if due is not None and stream_s < due and due - stream_s < 10 * self.interval:
            return False
        self._due = stream_s + self.interval
        return True


class KeyframeGate:
    """Whether the non-key packets need decoding at all (pure).

    Every P-frame depends on the one before, so a frame in the middle of a GOP costs the
    whole GOP up to it. When keyframes alone come often enough for the analysis rate (a
    camera whose sub stream sends one every second, analysed at 1 fps), only they are
    decoded: the sampler takes every k-th keyframe, and that must keep at least
    `min_share` of the rate. The spacing is watched over the last keyframes, so a camera
    that lengthens its GOP is decoded in full again from its next keyframe on.
    """

    def __init__(self, fps: float, min_share: float = 0.95, window: int = 4) -> None:
        self.interval = 1.0 / fps
        self.min_share = min_share
        self.window = window
        self._spacings: collections.deque[float] = collections.deque(maxlen=window)
        self._last_key: float | None = None
        self.keyframes_only = False

    def wants(self, stream_s: float, keyframe: bool) -> bool:
        """Feed each video packet's time (stream seconds); True if it must be decoded."""
        if not keyframe:
            return not self.keyframes_only
        last, self._last_key = self._last_key, stream_s
        spacing = stream_s - last if last is not None else 0.0
        if not 0.0 < spacing <= 10 * self.interval:
            self._spacings.clear()  # the first keyframe, a jump or a reconnect: start over
        else:
            self._spacings.append(spacing)
        self.keyframes_only = self._fits()
        return True

    def _fits(self) -> bool:
        if len(self._spacings) < self.window:
            return False
        shortest, longest = min(self._spacings), max(self._spacings)
        every = math.ceil(self.interval / shortest - 1e-6)  # the sampler takes every k-th
        return every * longest <= self.interval / self.min_share


class GopTail:
    """Whether the rest of a GOP still leads to a sampled frame (pure).

    A P-frame is only worth decoding if a frame due for analysis comes after it and before
    the next keyframe, which starts afresh. With a 2 s GOP analysed at 1 fps, the frame at
    1 s is the last one due before the next keyframe: the second half of every GOP is
    left out, halving the decoding. The next keyframe is expected after the shortest of
    the last GOPs; if it comes later, the frames due in between are not seen and the
    keyframe is taken instead (the sampler catches up). Streams that reorder frames
    (B-frames: a packet's pts differs from its dts) are decoded in full.
    """

    def __init__(self, window: int = 4, jump_s: float = 10.0) -> None:
        self.jump_s = jump_s
        self._spacings: collections.deque[float] = collections.deque(maxlen=window)
        self._last_key: float | None = None
        self._cut = False  # left out since this GOP's last due frame; until the next keyframe
        self.reordered = False

    def wants(self, stream_s: float, keyframe: bool, reordered: bool, due: float | None) -> bool:
        """Feed each packet in decode order (stream seconds, whether it is a keyframe,
        whether its pts differs from its dts, the sampler's next due time); True if it
        must be decoded."""
        self.reordered = self.reordered or reordered
        if keyframe:
            last, self._last_key = self._last_key, stream_s
            spacing = stream_s - last if last is not None else 0.0
            if 0.0 < spacing <= self.jump_s:
                self._spacings.append(spacing)
            else:
                self._spacings.clear()  # the first keyframe, a jump or a reconnect
            self._cut = False
            return True
        if self._cut:
            return False
        if self.reordered or due is None or self._last_key is None or not self._spacings:
            return True
        next_key = self._last_key + min(self._spacings)
        if stream_s < self._last_key or stream_s >= next_key:
            return True  # out of the expected GOP (a jump, or a GOP longer than before)
        self._cut = due >= next_key - 1e-3
        return not self._cut


def to_image(frame: av.VideoFrame, width: int) -> NDArray[np.uint8]:
    """The frame scaled to `width` (even height, aspect kept), BGR."""
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    return np.asarray(frame.to_ndarray(width=width, height=height, format="bgr24"), np.uint8)


def sample_frames(
    container: Any, fps: float, width: int, clock: Callable[[float], float]
) -> Iterator[Frame]:
    """Decode the first video stream of a file; yield at most `fps` frames a second.

    Every frame must be decoded (inter prediction), but only the sampled ones are scaled
    and converted, which is where most of the per-frame cost lies.
    """
    stream = container.streams.video[0]
    stream.thread_count = 1  # leave the other cores to the recorder and the detector
    sampler = FrameSampler(fps)
    seq = 0
    for frame in container.decode(stream):
        if frame.pts is None or frame.time_base is None:
            continue
        stream_s = float(frame.pts * frame.time_base)
        if sampler.take(stream_s):
            seq += 1
            yield Frame(clock(stream_s), to_image(frame, width), seq)


class PacketFeed(Protocol):
    """A camera stream read once for everybody (edge_agent.uplink.tap.LiveTap)."""

    stream: str

    def subscribe(self, callback: Callable[[PacketEvent], None]) -> list[PacketEvent]:
        """Hand every new packet to `callback`; returns the cached GOP."""

    def unsubscribe(self, callback: Callable[[PacketEvent], None]) -> None:
        """Stop handing packets to `callback`."""

    def online(self, within_s: float = 5.0) -> bool:
        """True while packets come."""


class PacketDecoder:
    """A single-threaded decoder for one stream's packets, rebuilt when the codec changes."""

    def __init__(self, jump_s: float = 5.0) -> None:
        self.jump_s = jump_s
        self._ctx: av.VideoCodecContext | None = None
        self._key: tuple[str, bytes | None] | None = None
        self._last_dts: int | None = None

    def decode(self, event: PacketEvent) -> list[av.VideoFrame]:
        """The frames this packet completes (av.FFmpegError on broken data)."""
        key = (event.codec, event.extradata)
        last, self._last_dts = self._last_dts, event.dts
        if last is not None and not 0 < event.dts - last <= self.jump_s / event.time_base:
            # Dts only rises within a session: the reader reconnected, and the packets
            # before the next keyframe refer to pictures this decoder never saw.
            self._ctx = None
        if self._ctx is None or key != self._key:
            if not event.keyframe:
                return []  # a new decoder starts at a keyframe
            ctx = av.CodecContext.create(event.codec, "r")
            assert isinstance(ctx, av.VideoCodecContext)
            ctx.thread_count = 1  # one core is plenty at sub-stream size; leave the rest
            if event.extradata:
                ctx.extradata = event.extradata
            self._ctx, self._key = ctx, key
        packet = av.Packet(event.data)
        packet.pts, packet.dts, packet.time_base = event.pts, event.dts, event.time_base
        return list(self._ctx.decode(packet))

    def reset(self) -> None:
        """Forget the decoder (after an error: the next keyframe starts a new one)."""
        self._ctx = self._key = None
        self._last_dts = None


class PacketFrameSource:
    """Decodes a shared stream's packets on its own thread into a DropOldestQueue.

    The reader's thread only stamps and queues each packet (GopQueue: bounded, never
    blocks, drops whole GOPs when decoding falls behind); this thread decodes every packet
    (inter prediction needs them all) and scales the sampled frames. Frame times come from
    a StreamClock fed with each packet's arrival. When keyframes alone are frequent enough
    for `fps` (KeyframeGate), the other packets are not even queued. Counters: frames,
    decode_errors, not_decoded (packets the keyframe gate left out) and the packet queue's
    dropped, gops_dropped, skipped.
    """

    def __init__(
        self, name: str, feed: PacketFeed, queue: DropOldestQueue, fps: float, width: int
    ) -> None:
        self.name = name
        self.feed = feed
        self.queue = queue
        self.fps = fps
        self.width = width
        self.packets = GopQueue()
        self.frames = 0
        self.decode_errors = 0
        self.not_decoded = 0
        self.tail_skipped = 0
        self.last_error: str | None = None
        self.keyframes = KeyframeGate(fps)
        self._clock = StreamClock()
        self._callback = self.on_packet  # one object: feeds unsubscribe by identity
        # Keeps the cached GOP ahead of the first live packets (held for microseconds).
        self._feed_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe to the feed (its cached GOP first) and start decoding."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        with self._feed_lock:
            for event in self.feed.subscribe(self._callback):
                self._queue(event, event.wall)  # cached: arrived at about its stamped time

    def stop(self, timeout: float = 10.0) -> None:
        """Unsubscribe and stop decoding."""
        self.feed.unsubscribe(self._callback)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def on_packet(self, event: PacketEvent) -> None:
        """The reader's callback: stamp and queue, nothing more (runs on its thread)."""
        with self._feed_lock:
            self._queue(event, time.time())

    def _queue(self, event: PacketEvent, arrival: float) -> None:
        if event.kind != "video":
            return
        stream_s = event.dts * float(event.time_base)
        wall = self._clock.wall(stream_s, arrival)
        if not self.keyframes.wants(stream_s, event.keyframe):
            self.not_decoded += 1
            return
        self.packets.put(QueuedPacket(event, wall))

    def _run(self) -> None:
        decoder = PacketDecoder()
        sampler = FrameSampler(self.fps)
        tail = GopTail()
        while not self._stop.is_set():
            item = self.packets.get(timeout=0.5)
            if item is None:
                continue
            event = item.event
            stream_s = event.dts * float(event.time_base)
            if not tail.wants(stream_s, event.keyframe, event.pts != event.dts, sampler.due):
                self.tail_skipped += 1
                continue
            try:
                frames = decoder.decode(event)
            except (av.FFmpegError, ValueError) as e:
                self.decode_errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
                if self.decode_errors % 100 == 1:  # the first, then a reminder now and then
                    log.warning("%s: decoding: %s (%d so far)", self.name, e, self.decode_errors)
                decoder.reset()
                continue
            # Packet time to UTC: the offset of the packet just fed (a frame whose pts
            # differs from this dts is a reordered frame of the same moment).
            offset = item.wall - event.dts * float(event.time_base)
            for frame in frames:
                self._sample(frame, sampler, offset, event.time_base)

    def _sample(
        self, frame: av.VideoFrame, sampler: FrameSampler, offset: float, tb: Fraction
    ) -> None:
        if frame.pts is None:
            return
        stream_s = frame.pts * float(frame.time_base or tb)
        if not sampler.take(stream_s):
            return
        self.frames += 1
        self.queue.put(Frame(stream_s + offset, to_image(frame, self.width), self.frames))
