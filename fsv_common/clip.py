"""Cutting a clip out of recorded segment files (packet copy), for both programs.

The edge cuts exports from its own recordings; central cuts them from the city archive's
copies when the edge is away. A clip starts at the keyframe at or before the asked start, so
it decodes from its first frame; it carries video only, with timestamps that are the
recording's UTC time minus the first packet's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
from av.container import OutputContainer
from av.video.stream import VideoStream

from fsv_common.digest import file_sha256
from fsv_contract.video import ClipFile, ClipManifest, ManifestSegment

VIDEO_TAGS = {"h264": "avc1", "hevc": "hvc1"}  # MP4 sample entries players expect

log = logging.getLogger(__name__)

T = TypeVar("T")


class NoVideoTrack(Exception):
    """A segment file without a video track."""


@dataclass(frozen=True, slots=True)
class TimedPacket:
    """A recorded packet placed on the UTC timeline."""

    data: bytes
    wall: float  # UTC of its decode time
    pts_offset: float  # presentation minus decode time, seconds
    keyframe: bool


def file_packets(path: Path, start: float) -> Iterator[tuple[VideoStream, TimedPacket]]:
    """The video packets of a segment file that began at UTC `start`, with their UTC times.

    NoVideoTrack if the file has none.
    """
    container = av.open(str(path))
    try:
        if not container.streams.video:
            raise NoVideoTrack(f"{path.name} has no video track")
        stream = container.streams.video[0]
        tb = float(stream.time_base or Fraction(1, 90000))
        first: int | None = None
        for packet in container.demux(stream):
            if not packet.size or packet.dts is None:
                continue
            if first is None:
                first = packet.dts
            wall = start + (packet.dts - first) * tb
            offset = ((packet.pts or packet.dts) - packet.dts) * tb
            yield stream, TimedPacket(bytes(packet), wall, offset, packet.is_keyframe)
    except BaseException:  # an error, or the reader stopped early (GeneratorExit)
        container.close()
        raise
    # Read to the end: not closed here. A caller may still hold this file's stream (the last
    # GOP before a start past the file's end comes out after the last packet) and a closed
    # container frees its streams under it. The stream holds the container, which closes
    # when the last reference to either goes.


def from_keyframe(
    packets: Iterator[tuple[VideoStream, TimedPacket]], start: float
) -> Iterator[tuple[VideoStream, TimedPacket]]:
    """Skip to the last keyframe at or before `start` (the first keyframe if none is)."""
    held: list[tuple[VideoStream, TimedPacket]] = []
    for item in packets:
        packet = item[1]
        if packet.wall <= start:
            if packet.keyframe:
                held = [item]
            elif held:
                held.append(item)
            continue
        if not held and not packet.keyframe:
            continue
        yield from held
        held = []
        yield item
        yield from packets
        return
    yield from held


def copy_range(
    files: Iterable[tuple[T, Path, float]], start: float, end: float, out: Path
) -> tuple[ClipWriter | None, list[T]]:
    """Packet-copy [start, end) (UTC) of consecutive segment files into a new MP4 at `out`.

    `files` gives (item, path, UTC start) per segment in time order. The clip begins at the
    last keyframe at or before `start` and ends before `end`, or where the stream's set-up
    changes. Returns the closed writer (None if no packet was in range) and the items whose
    files gave packets. File errors (av.FFmpegError, OSError, NoVideoTrack) propagate.
    """
    writer: ClipWriter | None = None
    used: list[T] = []
    try:
        for item, path, seg_start in files:
            packets = file_packets(path, seg_start)
            for stream, packet in from_keyframe(packets, start) if writer is None else packets:
                if packet.wall >= end:
                    return writer, used
                if writer is None:
                    writer = ClipWriter(out, stream)
                elif (stream.codec_context.name, stream.codec_context.extradata) != writer.setup:
                    log.warning("%s: the stream changed inside the clip; it ends there", path.name)
                    return writer, used
                if not used or used[-1] is not item:
                    used.append(item)
                writer.write(packet)
    finally:
        if writer is not None:
            writer.close()
    return writer, used


class ClipWriter:
    """One MP4 written from timed packets; timestamps are UTC minus the first packet's."""

    def __init__(self, path: Path, template: VideoStream) -> None:
        self.path = path
        self.container: OutputContainer = av.open(
            str(path), "w", format="mp4", options={"movflags": "+faststart"}
        )
        self.stream: VideoStream = self.container.add_stream_from_template(template)
        self.stream.codec_tag = VIDEO_TAGS[template.codec_context.name]
        self.setup = (template.codec_context.name, template.codec_context.extradata)
        self.time_base: Fraction = template.time_base or Fraction(1, 90000)
        self.tb = float(self.time_base)
        self.origin: float | None = None
        self.last_wall: float | None = None
        self.last_dts = -1
        self.packets = 0

    def write(self, packet: TimedPacket) -> None:
        """Mux one packet (its decode time kept strictly increasing)."""
        if self.origin is None:
            self.origin = packet.wall
        dts = max(self.last_dts + 1, round((packet.wall - self.origin) / self.tb))
        out = av.Packet(packet.data)
        out.dts = dts
        out.pts = dts + round(packet.pts_offset / self.tb)
        out.time_base = self.time_base
        out.is_keyframe = packet.keyframe
        out.stream = self.stream
        self.container.mux_one(out)
        self.last_dts = dts
        self.last_wall = packet.wall
        self.packets += 1

    def close(self) -> None:
        """Finish the file."""
        self.container.close()

    def manifest(
        self, site: str, camera: str, start: float, end: float, segments: list[ManifestSegment]
    ) -> ClipManifest:
        """The manifest of the closed clip asked for [start, end): its file's size and SHA-256,
        the span it holds and the chain `segments` it was cut from. ValueError if empty."""
        if self.origin is None or self.last_wall is None:
            raise ValueError(f"{self.path.name}: no packet was written")
        return ClipManifest(
            site=site,
            camera=camera,
            requested_start=start,
            requested_end=end,
            clip_start=self.origin,
            clip_end=self.last_wall,
            codec=self.setup[0],
            file=ClipFile(
                name=self.path.name, bytes=self.path.stat().st_size, sha256=file_sha256(self.path)
            ),
            segments=segments,
            created_at=time.time(),
        )
