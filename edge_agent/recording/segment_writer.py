"""One fragmented-MP4 segment file: packet copy in, sealed (fsync, SHA-256) facts out."""

from __future__ import annotations

import functools
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from edge_agent.recording.index import SegmentInfo, file_sha256
from edge_agent.recording.paths import segment_relpath

log = logging.getLogger(__name__)

# Video codecs a segment may hold, with the MP4 sample entry each needs. HEVC must be
# tagged hvc1 (parameter sets in the sample entry), which browsers and QuickTime require.
VIDEO_TAGS = {"h264": "avc1", "hevc": "hvc1"}

# empty_moov: the header is complete before the first packet, so a file cut short by a
# power failure still plays up to its last fragment. frag_keyframe starts a fragment at
# every keyframe; frag_duration bounds what a crash can lose when a camera's GOP is long;
# flush_packets hands each finished fragment to the OS at once instead of keeping its tail
# in the 32 KiB I/O buffer.
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
FRAGMENT_US = 2_000_000


@functools.lru_cache(maxsize=32)
def mp4_accepts(codec_name: str) -> bool:
    """Whether the MP4 muxer can store this codec (G.711 PCMA/PCMU, for one, it cannot)."""
    with av.open(io.BytesIO(), "w", format="mp4") as probe:
        return codec_name in probe.supported_codecs


def free_relpath(storage: Path, camera: str, start: float) -> str:
    """The segment path for `start`, moved on by whole seconds if that name is taken.

    Names have one-second resolution; two segments can begin in the same second after a
    reconnect or a clock jump, and an existing file must never be overwritten.
    """
    second = 0
    while True:
        rel = segment_relpath(camera, start + second)
        if not (storage / rel).exists():
            return rel
        second += 1


@dataclass(frozen=True)
class ClosedSegment:
    """A segment file whose muxer is closed, not yet synced, hashed or indexed."""

    camera: str
    relpath: str
    path: Path
    start: float
    end: float
    codec: str
    width: int
    height: int
    audio_codec: str | None
    damaged: bool = False  # closed after a write error: the end is read back from the file

    def seal(self) -> SegmentInfo:
        """Flush the file to disk and hash it: the facts the index chains."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        end = self.end
        if self.damaged:
            from edge_agent.recording.probe import probe_segment  # probe imports this module

            end = min(end, self.start + probe_segment(self.path).duration)
        return SegmentInfo(
            camera=self.camera,
            path=self.relpath,
            start=self.start,
            end=end,
            bytes=self.path.stat().st_size,
            codec=self.codec,
            width=self.width,
            height=self.height,
            audio_codec=self.audio_codec,
            sha256=file_sha256(self.path),
        )


class SegmentFile:
    """A segment being written: an fMP4 muxer with a copy of the camera's streams.

    Packets are muxed by setting `packet.stream` to `video_out` or `audio_out` and calling
    `container.mux_one(packet)`; the session does that inline to keep per-packet work small.
    """

    def __init__(
        self,
        storage: Path,
        camera: str,
        start: float,
        video: VideoStream,
        audio: AudioStream | None,
    ) -> None:
        self.camera = camera
        self.start = start
        self.relpath = free_relpath(storage, camera, start)
        self.path = storage / self.relpath
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = video.codec_context.name
        self.width = video.codec_context.width
        self.height = video.codec_context.height
        self.container: OutputContainer = av.open(
            str(self.path),
            "w",
            format="mp4",
            options={"movflags": MOVFLAGS, "frag_duration": str(FRAGMENT_US), "flush_packets": "1"},
        )
        try:
            self.video_out: VideoStream = self.container.add_stream_from_template(video)
            self.video_out.codec_tag = VIDEO_TAGS[self.codec]
            self.audio_out: AudioStream | None = None
            self.audio_codec: str | None = None
            if audio is not None:
                self.audio_out = self.container.add_stream_from_template(audio)
                self.audio_codec = audio.codec_context.name
        except BaseException:
            self.container.close()
            self.path.unlink(missing_ok=True)
            raise

    def close(self, end: float, start: float | None = None) -> ClosedSegment:
        """Write the last fragment and close the file; `start` corrects the provisional one."""
        self.container.close()
        return self._facts(end, start)

    def abandon(self, end: float, start: float | None = None) -> ClosedSegment:
        """Close after a write error: the fragments that reached the disk still make a segment."""
        try:
            self.container.close()
        except (av.FFmpegError, OSError) as e:
            log.warning("%s: closing %s after an error failed too: %s", self.camera,
                        self.relpath, e.strerror or e)  # fmt: skip
        return self._facts(end, start, damaged=True)

    def _facts(self, end: float, start: float | None, damaged: bool = False) -> ClosedSegment:
        return ClosedSegment(
            camera=self.camera,
            relpath=self.relpath,
            path=self.path,
            start=self.start if start is None else start,
            end=end,
            codec=self.codec,
            width=self.width,
            height=self.height,
            audio_codec=self.audio_codec,
            damaged=damaged,
        )
