"""A live uplink: the tap's cached GOP at once, then every new packet, remuxed to fMP4."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from edge_agent.errors import UplinkError
from edge_agent.recording.events import PacketEvent
from edge_agent.uplink.fmp4 import Chunk, Fmp4Remuxer, MediaPacket
from edge_agent.uplink.link import UplinkLink
from edge_agent.uplink.tap import LiveTap
from fsv_contract.video import FrameKind, Hello, Stream

log = logging.getLogger(__name__)

FIRST_KEYFRAME_S = 10.0  # a camera that sends no keyframe this long after the start is "down"
MAX_QUEUED = 250  # packets waiting for a slow link (10 s at 25 fps) before it skips ahead
STATS_EVERY_S = 5.0


class PacketQueue:
    """Packets from a reader thread for the uplink's event loop; bounded, skips to keyframes.

    When the link falls `max_items` packets behind, the backlog is dropped and packets are
    skipped until the next keyframe, where decoding can resume cleanly: a slow uplink shows
    a jump, never a growing delay or unbounded memory.
    """

    def __init__(self, max_items: int = MAX_QUEUED) -> None:
        self.max_items = max_items
        self.dropped = 0
        self._items: deque[PacketEvent] = deque()
        self._skipping = False
        self._closed = False
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that consumes; `put_threadsafe` hands packets to it."""
        self._loop = loop

    def put_threadsafe(self, event: PacketEvent) -> None:
        """Called on the reader's thread: schedule `put` on the loop, never block."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self.put, event)
        except RuntimeError:
            pass  # the loop is closing: the uplink is going away

    def put(self, event: PacketEvent) -> None:
        """Queue a packet (on the loop), or drop it while skipping to a keyframe."""
        if self._skipping:
            if not event.keyframe:
                self.dropped += 1
                return
            self._skipping = False
        if len(self._items) >= self.max_items:
            self.dropped += len(self._items)
            self._items.clear()
            if not event.keyframe:
                self._skipping = True
                self.dropped += 1
                return
        self._items.append(event)
        self._ready.set()

    def close(self) -> None:
        """Wake the consumer for good (the link is gone)."""
        self._closed = True
        self._ready.set()

    async def get_all(self) -> list[PacketEvent]:
        """Every queued packet, waiting for one; [] once closed."""
        while not self._items and not self._closed:
            self._ready.clear()
            await self._ready.wait()
        if self._closed:
            return []
        items = list(self._items)
        self._items.clear()
        return items


def media_packet(event: PacketEvent) -> MediaPacket:
    """The remuxer's view of a recorder/reader packet."""
    return MediaPacket(event.data, event.dts, event.pts, 0, event.keyframe, event.wall)


class LiveSender:
    """Remuxes a tap's packets and sends them; a new parameter set starts a new init."""

    def __init__(
        self, link: UplinkLink, tap: LiveTap, stream: Stream, bitrate_bps: float | None
    ) -> None:
        self.link = link
        self.tap = tap
        self.stream = stream
        self.bitrate_bps = bitrate_bps
        self.remuxer: Fmp4Remuxer | None = None
        self._setup: bytes | None = None

    async def send(self, events: list[PacketEvent]) -> None:
        """Remux and send packets in order."""
        for event in events:
            if self.remuxer is None or (event.keyframe and event.extradata != self._setup):
                if not event.keyframe:
                    continue  # a decoder can only start at a keyframe
                await self._restart(event)
            assert self.remuxer is not None
            await self._send_chunks(self.remuxer.add(media_packet(event)))

    async def _restart(self, keyframe: PacketEvent) -> None:
        if self.remuxer is not None:
            await self._send_chunks(self.remuxer.close())
        info = self.tap.stream_info(keyframe)
        self.remuxer = Fmp4Remuxer(info)
        self._setup = keyframe.extradata
        self._origin = keyframe.wall

    async def _send_chunks(self, chunks: list[Chunk]) -> None:
        remuxer = self.remuxer
        assert remuxer is not None
        for chunk in chunks:
            if chunk.header.kind is FrameKind.INIT:
                await self.link.hello(
                    Hello(
                        camera=self.tap.camera,
                        stream=self.stream,
                        mode="live",
                        codec=remuxer.codec,
                        mime=remuxer.mime,
                        width=remuxer.width,
                        height=remuxer.height,
                        origin_wall=self._origin,
                        bitrate_bps=self.bitrate_bps,
                    )
                )
            await self.link.chunk(chunk)

    def close(self) -> None:
        """Release the muxer."""
        if self.remuxer is not None:
            self.remuxer.close()
            self.remuxer = None


async def run_live(
    link: UplinkLink,
    tap: LiveTap,
    stream: Stream,
    first_keyframe_s: float = FIRST_KEYFRAME_S,
    bitrate_bps: float | None = None,
) -> str:
    """Push a tap's live packets until central stops the uplink; returns why it ended."""
    queue = PacketQueue()
    queue.bind(asyncio.get_running_loop())
    link.on_stop(queue.close)
    sender = LiveSender(link, tap, stream, bitrate_bps)
    callback = queue.put_threadsafe  # one bound method object: unsubscribe compares identity
    gop = tap.subscribe(callback)
    loop = asyncio.get_running_loop()
    next_stats = loop.time() + STATS_EVERY_S
    try:
        if not gop:
            gop = await _first_keyframe(queue, first_keyframe_s)
        await sender.send(gop)
        while True:
            events = await queue.get_all()
            if not events:
                return "stopped by central"
            await sender.send(events)
            if loop.time() >= next_stats:
                next_stats = loop.time() + STATS_EVERY_S
                await link.stats(queue.dropped)
    finally:
        tap.unsubscribe(callback)
        sender.close()


async def _first_keyframe(queue: PacketQueue, timeout_s: float) -> list[PacketEvent]:
    """Wait for the camera's next keyframe (the tap had none cached)."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                events = await queue.get_all()
                if not events:
                    raise UplinkError("stopped before the camera sent a keyframe")
                for i, event in enumerate(events):
                    if event.keyframe:
                        return events[i:]
    except TimeoutError:
        raise UplinkError(f"no video from the camera in {timeout_s:.0f} s") from None
