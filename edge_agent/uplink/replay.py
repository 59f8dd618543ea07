"""Replay: recorded segments from a start time (keyframe at or before it), paced x speed.

The main stream's recording, or (stream `sub`) the camera's sub lane `<camera>--sub` where
its sub stream is recorded; the hellos name the camera and the stream.

A reader thread demuxes the segment files (packet copy, no decoding) and remuxes them into
fMP4 chunks whose media time is the recording's UTC time minus the origin (the first
keyframe sent), so the viewer can map any media time back to the clock. Holes in the
recording stay holes in the media timeline; pacing skips them instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import av
from av.video.stream import VideoStream

from edge_agent.errors import UplinkError
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.uplink.fmp4 import Chunk, Fmp4Remuxer, MediaPacket
from edge_agent.uplink.link import UplinkLink
from edge_agent.uplink.recordings import segments_after
from fsv_common.clip import NoVideoTrack, TimedPacket, file_packets, from_keyframe
from fsv_contract.lanes import lane_id
from fsv_contract.video import FrameKind, Hello, Stream

log = logging.getLogger(__name__)

LEAD_S = 1.0  # how far ahead of the viewer's clock chunks may go (absorbs network jitter)
GAP_S = 1.0  # a jump in media time larger than this is a hole in the recording: not waited for
QUEUE_CHUNKS = 200


def segment_packets(path: Path, segment: Segment) -> Iterator[tuple[VideoStream, TimedPacket]]:
    """The video packets of one segment file with their UTC decode times."""
    try:
        yield from file_packets(path, segment.start)
    except NoVideoTrack as e:
        raise UplinkError(f"{segment.path} has no video track") from e


class ReplayProducer:
    """Reads segments from `start` on thread `replay-<camera>` into an asyncio queue of items.

    Items are Hello (a new media description), Chunk, or a str: why the replay ended.
    `stream` picks the recording: the camera's own segments (main) or its sub lane's.
    """

    def __init__(
        self,
        index: SegmentIndex,
        storage: Path,
        camera: str,
        start: float,
        loop: asyncio.AbstractEventLoop,
        mode: str = "replay",
        stream: Stream = "main",
    ) -> None:
        self.index = index
        self.storage = storage
        self.camera = camera
        self.stream: Stream = stream
        self.lane = lane_id(camera, stream)  # whose segments the index holds
        self.start = start
        self.mode = mode
        self.queue: asyncio.Queue[Hello | Chunk | str] = asyncio.Queue(QUEUE_CHUNKS)
        self.origin: float | None = None
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replay-{camera}", daemon=True)

    def begin(self) -> None:
        """Start reading."""
        self._thread.start()

    def cancel(self) -> None:
        """Stop reading (the thread notices at its next item)."""
        self._stop.set()

    def _put(self, item: Hello | Chunk | str) -> None:
        while not self._stop.is_set():
            future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self._loop)
            try:
                future.result(timeout=1.0)
                return
            except TimeoutError:
                future.cancel()
        raise _Stopped

    def _run(self) -> None:
        try:
            reason = self._read()
        except _Stopped:
            return
        except (UplinkError, av.FFmpegError, OSError) as e:
            log.warning("%s: replay failed: %s", self.camera, e)
            reason = f"error: {e}"
        try:
            self._put(reason)
        except (_Stopped, RuntimeError):
            pass

    def _segments(self) -> Iterator[Segment]:
        after = self.start
        while not self._stop.is_set():
            batch = segments_after(self.index, self.lane, after)
            if not batch:
                return
            yield from batch
            after = batch[-1].end

    def _read(self) -> str:
        remuxer: Fmp4Remuxer | None = None
        setup: tuple[str, bytes | None, int, int] | None = None
        sent = False
        try:
            for segment in self._segments():
                path = self.storage / segment.path
                if not path.is_file():
                    log.warning("%s: %s is missing; skipped", self.camera, segment.path)
                    continue
                packets = segment_packets(path, segment)
                for stream, packet in from_keyframe(packets, self.start) if not sent else packets:
                    ctx = stream.codec_context
                    key = (ctx.name, ctx.extradata, ctx.width, ctx.height)
                    if remuxer is None or (key != setup and packet.keyframe):
                        if remuxer is not None:
                            self._chunks(remuxer, remuxer.close())
                        remuxer, setup = Fmp4Remuxer(stream, smooth_jumps=False), key
                        self.origin = packet.wall  # each init starts its own media timeline
                    self._chunks(remuxer, remuxer.add(self._media(remuxer, packet)))
                    sent = True
        finally:
            if remuxer is not None:
                closing = remuxer.close()
                if not self._stop.is_set():
                    self._chunks(remuxer, closing)
        if sent:
            return "done: end of the recording"
        if self.stream == "sub":
            return "no sub-stream recording at or after that time"
        return "no recording at or after that time"

    def _media(self, remuxer: Fmp4Remuxer, packet: TimedPacket) -> MediaPacket:
        assert self.origin is not None
        tb = remuxer.time_base
        dts = round((packet.wall - self.origin) / tb)
        pts = dts + round(packet.pts_offset / tb)
        return MediaPacket(packet.data, dts, pts, 0, packet.keyframe, packet.wall)

    def _chunks(self, remuxer: Fmp4Remuxer, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            if chunk.header.kind is FrameKind.INIT:
                self._put(
                    Hello(
                        camera=self.camera,
                        stream=self.stream,
                        mode="replay" if self.mode == "replay" else "export",
                        codec=remuxer.codec,
                        mime=remuxer.mime,
                        width=remuxer.width,
                        height=remuxer.height,
                        origin_wall=self.origin,
                    )
                )
            self._put(chunk)


class _Stopped(Exception):
    """The consumer went away."""


class Pacer:
    """When each chunk is due: recorded time / speed after the start, holes skipped (pure)."""

    def __init__(self, speed: float, start: float, lead_s: float = LEAD_S) -> None:
        self.speed = speed
        self.lead_s = lead_s
        self._base = start  # chunks before this (the lead-in from the keyframe) go at once
        self._last_end: float | None = None
        self._skipped = 0.0

    def due(self, wall: float, duration_s: float, started_at: float) -> float:
        """The loop time at which the chunk recorded at UTC `wall` should be sent."""
        if self._last_end is not None and wall - self._last_end > GAP_S:
            self._skipped += wall - self._last_end
        self._last_end = wall + duration_s
        ahead = max(0.0, wall - self._base - self._skipped)
        return started_at + ahead / self.speed - self.lead_s


async def run_replay(
    link: UplinkLink,
    index: SegmentIndex,
    storage: Path,
    camera: str,
    start: float,
    speed: float,
    stream: Stream = "main",
) -> str:
    """Push a camera's recording (of its main stream, or of its sub lane) from `start` at
    `speed` until it ends or central stops."""
    loop = asyncio.get_running_loop()
    producer = ReplayProducer(index, storage, camera, start, loop, stream=stream)
    stopped = asyncio.Event()
    link.on_stop(stopped.set)
    producer.begin()
    pacer = Pacer(speed, start)
    started = loop.time()
    try:
        while not stopped.is_set():
            item = await producer.queue.get()
            if isinstance(item, str):
                return item
            if isinstance(item, Hello):
                await link.hello(item)
                continue
            if item.header.kind is FrameKind.FRAGMENT:
                head = item.header
                wait = pacer.due(head.wall_ms / 1e3, head.duration_us / 1e6, started) - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            await link.chunk(item)
        return "stopped by central"
    finally:
        producer.cancel()
