"""Read a segment file's facts back from disk with PyAV: is it playable, what does it hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from edge_agent.recording.segment_writer import VIDEO_TAGS, start_of

DECODE_TRIES = 25  # packets fed to the decoder before the file counts as undecodable


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
        )
