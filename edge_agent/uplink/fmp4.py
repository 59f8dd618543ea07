"""Remux a camera's own video packets into fragmented MP4 (init segment, then fragments).

No transcoding: PyAV's mp4 muxer copies the packets into one fragment per frame
(`frag_every_frame`), written to memory and cut into top-level boxes. The muxer emits a
frame's fragment when the next frame arrives, so a fragment trails its frame by one frame
interval (40 ms at 25 fps); in exchange the boxes are FFmpeg's, which browsers accept.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
from av.container import OutputContainer
from av.video.stream import VideoStream

from edge_agent.errors import UplinkError
from edge_agent.recording.segment_writer import VIDEO_TAGS
from fsv_contract.video import FrameFlags, FrameHeader, FrameKind

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+frag_every_frame"
JUMP_S = 5.0  # a timestamp step larger than this is a clock jump: the media time stays smooth
_PARAMETER_SETS = {"h264": {7, 8}, "hevc": {32, 33, 34}}


@dataclass(frozen=True)
class StreamInfo:
    """What a muxer needs to know of a live stream: codec, parameter sets and clock."""

    codec: str
    extradata: bytes
    time_base: Fraction
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """One uplink frame: header and fMP4 bytes (an init segment or a fragment)."""

    header: FrameHeader
    payload: bytes

    def frame(self) -> bytes:
        """The binary WebSocket frame."""
        return self.header.pack(self.payload)


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """A compressed video frame with its timestamps in the stream's time base."""

    data: bytes
    dts: int
    pts: int
    duration: int
    keyframe: bool
    wall: float  # UTC epoch seconds of capture, 0.0 if unknown


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed)."""
    units: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        unit = data[start:end]
        if nxt >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of a 4-byte start code
        if unit:
            units.append(unit)
        i = nxt
    return units


def nal_type(codec: str, unit: bytes) -> int:
    """The NAL unit type of an H.264 or H.265 unit."""
    return (unit[0] & 0x1F) if codec == "h264" else (unit[0] >> 1) & 0x3F


def parameter_sets(codec: str, data: bytes) -> bytes:
    """The SPS/PPS (and VPS) units found in an Annex B access unit, as Annex B."""
    wanted = _PARAMETER_SETS.get(codec, set())
    found = [u for u in nal_units(data) if u and nal_type(codec, u) in wanted]
    return b"".join(b"\x00\x00\x00\x01" + u for u in found)


def probe_stream(
    codec: str, extradata: bytes | None, keyframe: bytes, time_base: Fraction
) -> StreamInfo:
    """Describe a live stream from its parameter sets and one keyframe (picture size parsed).

    Raises UplinkError for a codec MP4 cannot carry or a keyframe FFmpeg cannot parse.
    """
    if codec not in VIDEO_TAGS:
        raise UplinkError(f"cannot relay {codec} video (only {', '.join(VIDEO_TAGS)})")
    sets = extradata if extradata and not extradata.startswith(b"\x01") else b""
    sets = sets or parameter_sets(codec, keyframe)
    if not sets:
        raise UplinkError(f"{codec} stream without parameter sets (SPS/PPS)")
    try:
        with av.open(io.BytesIO(sets + keyframe), format=codec) as raw:
            ctx = raw.streams.video[0].codec_context
            width, height = ctx.width, ctx.height
    except (av.FFmpegError, IndexError) as e:
        raise UplinkError(f"cannot parse the {codec} keyframe: {e}") from e
    if not width or not height:
        raise UplinkError(f"{codec} keyframe without a picture size")
    return StreamInfo(codec, sets, time_base, width, height)


class _Sink(io.RawIOBase):
    """Collects what the muxer writes."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def take_boxes(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Remove the complete top-level boxes from `buffer`; (type, whole box bytes) each."""
    boxes: list[tuple[bytes, bytes]] = []
    offset = 0
    while len(buffer) - offset >= 8:
        size = int.from_bytes(buffer[offset : offset + 4], "big")
        kind = bytes(buffer[offset + 4 : offset + 8])
        if size == 1:
            if len(buffer) - offset < 16:
                break
            size = int.from_bytes(buffer[offset + 8 : offset + 16], "big")
        if size < 8:
            raise UplinkError(f"muxer wrote a malformed {kind!r} box")
        if len(buffer) - offset < size:
            break
        boxes.append((kind, bytes(buffer[offset : offset + size])))
        offset += size
    del buffer[:offset]
    return boxes


def trun_samples(moof: bytes) -> int:
    """Samples a moof announces (sum over its track runs)."""
    total = 0
    pos = moof.find(b"trun")
    while pos >= 4:
        total += int.from_bytes(moof[pos + 8 : pos + 12], "big")
        pos = moof.find(b"trun", pos + 4)
    return total


def codec_string(init: bytes) -> str:
    """The RFC 6381 codec of an init segment (avc1.PPCCLL or hvc1.…), for MSE and HLS."""
    pos = init.find(b"avcC")
    if pos >= 0:
        return "avc1." + init[pos + 5 : pos + 8].hex()
    pos = init.find(b"hvcC")
    if pos >= 0:
        return _hevc_codec_string(init[pos + 4 : pos + 4 + 13])
    raise UplinkError("init segment has neither avcC nor hvcC")


def _hevc_codec_string(cfg: bytes) -> str:
    """hvc1.<space><profile>.<compat, bit-reversed hex>.<tier><level>[.<constraints>]."""
    space = "" if cfg[1] >> 6 == 0 else "ABC"[(cfg[1] >> 6) - 1]
    tier = "H" if cfg[1] & 0x20 else "L"
    profile = cfg[1] & 0x1F
    compat = int(f"{int.from_bytes(cfg[2:6], 'big'):032b}"[::-1], 2)
    constraints = cfg[6:12].rstrip(b"\x00")
    parts = [f"hvc1.{space}{profile}", f"{compat:X}", f"{tier}{cfg[12]}"]
    parts += [f"{b:X}" for b in constraints]
    return ".".join(parts)


class Fmp4Remuxer:
    """Turns one stream's packets into uplink chunks: the init segment, then fragments.

    Timestamps are rebased so the first packet is at media time 0 (the muxer does the same
    to its fragments) and kept strictly rising. With `smooth_jumps` (live) a clock jump is
    smoothed over; without (replay: media time = UTC - origin) a hole stays a hole.
    A fragment's `wall` is its first frame's capture time.
    """

    def __init__(self, template: VideoStream | StreamInfo, smooth_jumps: bool = True) -> None:
        self._sink = _Sink()
        self._container: OutputContainer = av.open(
            self._sink, "w", format="mp4", options={"movflags": MOVFLAGS}
        )
        try:
            self.stream, self.codec = self._add_stream(template)
        except BaseException:
            self._container.close()
            raise
        self.width: int = self.stream.codec_context.width
        self.height: int = self.stream.codec_context.height
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.init: bytes | None = None
        self._pending: deque[MediaPacket] = deque()
        self._offset: int | None = None
        self._last_dts: int | None = None
        self._last_duration = 0
        self._jump_ticks = round(JUMP_S / self.time_base)
        self._smooth = smooth_jumps
        self._closed = False

    def _add_stream(self, template: VideoStream | StreamInfo) -> tuple[VideoStream, str]:
        """The output stream and the codec's decoder name (the stream's own is the encoder's)."""
        if isinstance(template, StreamInfo):
            with av.open(io.BytesIO(template.extradata), format=template.codec) as raw:
                out: VideoStream = self._container.add_stream_from_template(raw.streams.video[0])
            out.time_base = template.time_base
            out.codec_context.extradata = template.extradata
            out.codec_context.width = template.width
            out.codec_context.height = template.height
            codec = template.codec
        else:
            out = self._container.add_stream_from_template(template)
            codec = template.codec_context.name
        if codec not in VIDEO_TAGS:
            raise UplinkError(f"cannot relay {codec} video")
        out.codec_tag = VIDEO_TAGS[codec]
        return out, codec

    @property
    def mime(self) -> str:
        """The MSE/HLS type of the output; valid once the init segment exists."""
        if self.init is None:
            raise UplinkError("no init segment yet")
        return f'video/mp4; codecs="{codec_string(self.init)}"'

    def add(self, packet: MediaPacket) -> list[Chunk]:
        """Mux one packet; returns the chunks it completed (usually the previous frame's)."""
        if self._closed:
            return []
        dts, pts = self._rebase(packet)
        av_packet = av.Packet(packet.data)
        av_packet.dts = dts
        av_packet.pts = pts
        av_packet.duration = packet.duration
        av_packet.time_base = self.time_base
        av_packet.is_keyframe = packet.keyframe
        av_packet.stream = self.stream
        self._pending.append(
            MediaPacket(b"", dts, pts, packet.duration, packet.keyframe, packet.wall)
        )
        try:
            self._container.mux_one(av_packet)
        except (av.FFmpegError, ValueError) as e:
            self._pending.pop()
            raise UplinkError(f"muxing failed: {e}") from e
        return self._drain()

    def close(self) -> list[Chunk]:
        """Flush the last fragment and release the muxer."""
        if self._closed:
            return []
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError) as e:
            log.debug("closing the muxer: %s", e)
            return []
        return self._drain()

    def _rebase(self, packet: MediaPacket) -> tuple[int, int]:
        if self._offset is None:
            self._offset = -packet.dts
        dts = packet.dts + self._offset
        last = self._last_dts
        if last is not None:
            expected = last + (self._last_duration or 1)
            if self._smooth and abs(dts - expected) > self._jump_ticks:
                self._offset += expected - dts  # clock jump: continue where we were
                dts = expected
            elif dts <= last:
                dts = last + 1
            if not packet.duration:
                self._last_duration = dts - last
        if packet.duration:
            self._last_duration = packet.duration
        pts = max(dts, packet.pts + self._offset)
        self._last_dts = dts
        return dts, pts

    def _drain(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        moof: bytes | None = None
        for kind, box in take_boxes(self._sink.buffer):
            if kind == b"moof":
                moof = box
            elif kind == b"mdat" and moof is not None:
                chunks.append(self._fragment(moof, box))
                moof = None
            elif kind in (b"ftyp", b"moov"):
                self.init = (self.init or b"") + box
                if kind == b"moov":
                    chunks.append(Chunk(FrameHeader(FrameKind.INIT), self.init))
        if moof is not None:
            self._sink.buffer[:0] = moof  # its mdat has not been written yet
        return chunks

    def _fragment(self, moof: bytes, mdat: bytes) -> Chunk:
        count = max(1, trun_samples(moof))
        samples = [self._pending.popleft() for _ in range(min(count, len(self._pending)))]
        if not samples:
            raise UplinkError("the muxer wrote a fragment for no packet")
        tb = self.time_base
        first = samples[0]
        if self._pending:
            duration = self._pending[0].dts - first.dts
        else:
            duration = samples[-1].dts - first.dts + (self._last_duration or 1)
        header = FrameHeader(
            FrameKind.FRAGMENT,
            FrameFlags.KEYFRAME if first.keyframe else FrameFlags.NONE,
            media_us=round(first.dts * tb * 1_000_000),
            duration_us=max(0, round(duration * tb * 1_000_000)),
            wall_ms=round(first.wall * 1000),
        )
        return Chunk(header, moof + mdat)
