"""Read a segment file's facts back from disk with PyAV: is it playable, what does it hold."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av

from edge_agent.recording.segment_writer import VIDEO_TAGS, start_of

DECODE_TRIES = 25  # packets fed to the decoder before the file counts as undecodable
NTP_TO_UNIX_S = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
VIDEO_TRACK_ID = 1  # the recorder adds the video track first


@dataclass(frozen=True)
class ProbeResult:
    """What a segment file holds; `problem` says why it is not playable (None if it is)."""

    problem: str | None
    codec: str = ""
    width: int = 0
    height: int = 0
    audio_codec: str | None = None
    duration: float = 0.0  # seconds from the first video packet to the end of the last
    frames: int = 0
    truncated: bool = False  # the last fragment was cut short (a crash while writing)
    start: float | None = None  # UTC start the recorder wrote into the header, if any
    start_estimated: bool = False  # that start was an estimate (a connection's first segment)
    written_start: float | None = None  # the start by when its fragments were written

    @property
    def playable(self) -> bool:
        """Whether the file opens and its first keyframe decodes."""
        return self.problem is None


def probe_segment(path: Path) -> ProbeResult:
    """Open `path`, decode its first keyframe and walk its video packets (no full decode)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        return ProbeResult(problem=f"does not open: {e.strerror or type(e).__name__}")
    with container:
        if not container.streams.video:
            return ProbeResult(problem="no video track")
        video = container.streams.video[0]
        ctx = video.codec_context
        if ctx.name not in VIDEO_TAGS:
            return ProbeResult(problem=f"unsupported video codec {ctx.name}")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        tb = float(video.time_base or 0)
        first: int | None = None
        end = 0
        frames = 0
        decoded = False
        truncated = False
        try:
            for packet in container.demux(video):
                if packet.pts is None or not packet.size:
                    continue
                if first is None:
                    first = packet.pts
                if not decoded and frames < DECODE_TRIES:
                    decoded = bool(packet.decode())
                end = max(end, packet.pts + (packet.duration or 0))
                frames += 1
        except (av.FFmpegError, OSError):
            truncated = True  # what came before the damaged fragment is still usable
        if first is None:
            return ProbeResult(problem="no video packets")
        if not decoded:
            return ProbeResult(problem="first video packet does not decode")
        start, estimated = start_of(container.metadata.get("comment"))
        try:
            written = written_start(path, 1 / tb) if tb else None
        except OSError:
            written = None
        return ProbeResult(
            problem=None,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            audio_codec=audio,
            duration=(end - first) * tb,
            frames=frames,
            truncated=truncated,
            start=start,
            start_estimated=estimated,
            written_start=written,
        )


def written_start(path: Path, timescale: float) -> float | None:
    """Where a segment starts by the wall clock of its fragments' writing (`prft` boxes).

    A fragment is written when the packet after it arrives: that packet's media time, from
    the first fragment's, set against the fragment's write time, places the file's first
    frame no earlier than it arrived. The earliest over all fragments is the best estimate:
    a recorder that fell behind for a while (a busy machine) is late only for some. None
    without two such boxes (the file was written before they were kept).
    """
    marks: list[tuple[float, int]] = []  # (wall clock written, media time of its first sample)
    with path.open("rb") as f:
        while (head := f.read(8)) and len(head) == 8:
            size, kind = struct.unpack(">I4s", head)
            body = size - 8
            if size == 1:
                body = struct.unpack(">Q", f.read(8))[0] - 16
            if size == 0 or body < 0:
                break  # to the end of the file, or damaged: nothing further to read
            if kind != b"prft":
                f.seek(body, 1)
                continue
            data = f.read(body)
            wide = data[:1] == b"\x01"
            if len(data) < (24 if wide else 20):
                break
            track, ntp = struct.unpack(">IQ", data[4:16])
            media = struct.unpack(">Q" if wide else ">I", data[16 : 24 if wide else 20])[0]
            if track == VIDEO_TRACK_ID:
                marks.append(((ntp >> 32) - NTP_TO_UNIX_S + (ntp & 0xFFFFFFFF) / 2**32, media))
    if len(marks) < 2:
        return None
    first = marks[0][1]
    return min(
        written - (media - first) / timescale
        for (written, _), (_, media) in zip(marks, marks[1:], strict=False)
    )
