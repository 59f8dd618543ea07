"""Evidence files: the annotated JPEG snapshot and the MP4 clip cut from recorded segments."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.tracker import TrackedObject
from edge_agent.detection.zones import Point
from edge_agent.errors import ClipError
from edge_agent.recording.index import Segment
from fsv_common.files import put_in_place, write_whole

log = logging.getLogger(__name__)

VIDEO_TAGS = {"h264": "avc1", "hevc": "hvc1"}  # hvc1: what browsers and players require
AUDIO_IN_CLIP = {"aac", "mp3", "opus"}  # others (G.711) cannot go into MP4 as is
BOX_COLOUR = (0, 0, 255)  # BGR red
ZONE_COLOUR = (0, 215, 255)  # BGR amber


@dataclass(frozen=True)
class EvidenceFile:
    """A written evidence file and its digest."""

    path: Path
    sha256: str
    bytes: int
    start: float | None = None  # clips: UTC epoch seconds covered
    end: float | None = None


def annotate(
    image: NDArray[np.uint8],
    objects: Sequence[TrackedObject],
    zone: Sequence[Point] | None,
    title: str,
    ts: float,
) -> NDArray[np.uint8]:
    """A copy of the frame with the zone, the boxes (label, score, track) and a UTC stamp."""
    out = image.copy()
    height, width = out.shape[:2]
    thick = max(1, round(width / 400))
    if zone:
        pts = np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in zone])
        cv2.polylines(out, [pts.astype(np.int32)], True, ZONE_COLOUR, thick)
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        p1 = (round(x1 * (width - 1)), round(y1 * (height - 1)))
        p2 = (round(x2 * (width - 1)), round(y2 * (height - 1)))
        cv2.rectangle(out, p1, p2, BOX_COLOUR, thick)
        _text(out, f"{obj.label} {obj.score:.2f} #{obj.track_id}", (p1[0], max(12, p1[1] - 4)))
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    _text(out, f"{title}  {stamp}", (6, height - 8))
    return out


def _text(image: NDArray[np.uint8], text: str, origin: tuple[int, int]) -> None:
    scale = max(0.4, image.shape[1] / 1400)
    (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    origin = (max(0, min(origin[0], image.shape[1] - width - 2)), origin[1])  # keep it inside
    # Dark outline under light text stays readable on any background.
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )


def write_snapshot(path: Path, image: NDArray[np.uint8], quality: int = 90) -> EvidenceFile:
    """Encode a JPEG and write it atomically."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ClipError(f"snapshot {path}: JPEG encoding failed")
    blob = data.tobytes()
    write_whole(path, blob, mode=0o644)
    return EvidenceFile(path, hashlib.sha256(blob).hexdigest(), len(blob))


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


class _Cutter:
    """Copies the packets of [start, end) from consecutive segments into one MP4."""

    def __init__(self, out: Any, start: float, end: float) -> None:
        self.out = out
        self.start, self.end = start, end
        self.video_out: Any = None
        self.audio_out: Any = None
        self.origin: float | None = None  # UTC time of the clip's first (key) frame
        self.last_t: float | None = None
        # GOP before `start`: packet, is video, pts, dts. Held packets may outlive the segment
        # they came from, whose container (and so `packet.stream`) is closed by then: their
        # kind is kept beside them and their stream never read again.
        self.pending: list[tuple[Any, bool, float, float]] = []
        self.last_dts: dict[int, int] = {}
        self.done = False

    def add_segment(self, path: Path, seg_start: float) -> None:
        with av.open(str(path)) as inp:
            video = inp.streams.video[0]
            audio = next(
                (a for a in inp.streams.audio if a.codec_context.name in AUDIO_IN_CLIP), None
            )
            if self.video_out is None:
                self._open_streams(video, audio)
            streams = [s for s in (video, audio if self.audio_out else None) if s is not None]
            origin_s: float | None = None
            for packet in inp.demux(streams):
                if packet.dts is None or packet.pts is None or packet.time_base is None:
                    continue
                pts_s = float(packet.pts * packet.time_base)
                is_video = packet.stream.type == "video"  # read while `inp` is open
                if origin_s is None:
                    if not is_video:
                        continue  # audio before the segment's first video packet
                    origin_s = pts_s
                shift = seg_start - origin_s
                t_dts = float(packet.dts * packet.time_base) + shift
                self._feed(packet, is_video, pts_s + shift, t_dts)
                if self.done:
                    return

    def _open_streams(self, video: Any, audio: Any) -> None:
        self.video_out = self.out.add_stream_from_template(video)
        tag = VIDEO_TAGS.get(video.codec_context.name)
        if tag:
            self.video_out.codec_tag = tag
        if audio is not None:
            self.audio_out = self.out.add_stream_from_template(audio)

    def _feed(self, packet: Any, is_video: bool, t: float, t_dts: float) -> None:
        if self.origin is None:
            if is_video and packet.is_keyframe and t <= self.start:
                self.pending = [(packet, is_video, t, t_dts)]
                return
            if self.pending and t < self.start:
                self.pending.append((packet, is_video, t, t_dts))
                return
            if not is_video or (not self.pending and not packet.is_keyframe):
                return  # no keyframe at or before `start` yet: begin at the next one
            if not self.pending:
                self.pending = [(packet, is_video, t, t_dts)]
            else:
                self.pending.append((packet, is_video, t, t_dts))
            self.origin = self.pending[0][2]
            for held, held_video, held_t, held_dts in self.pending:
                self._write(held, held_video, held_t, held_dts)
            self.pending = []
            return
        if t >= self.end:
            if is_video:
                self.done = True
            return
        self._write(packet, is_video, t, t_dts)

    def _write(self, packet: Any, is_video: bool, t: float, t_dts: float) -> None:
        assert self.origin is not None
        out_stream = self.video_out if is_video else self.audio_out
        tb = packet.time_base
        pts = round((t - self.origin) / tb)
        dts = round((t_dts - self.origin) / tb)
        key = id(out_stream)
        if key in self.last_dts and dts <= self.last_dts[key]:
            dts = self.last_dts[key] + 1  # segment seams: MP4 needs strictly rising dts
        pts = max(pts, dts)
        self.last_dts[key] = dts
        packet.stream = out_stream
        packet.pts, packet.dts = pts, dts
        self.out.mux(packet)
        if out_stream is self.video_out:
            self.last_t = t


def cut_clip(
    storage: Path, segments: Sequence[Segment], start: float, end: float, out: Path
) -> EvidenceFile:
    """Packet-copy [start, end) (UTC) out of `segments` into a playable MP4 at `out`.

    The clip begins at the last keyframe at or before `start`, so it plays from its first
    frame. ClipError if no segment holds video of the range.
    """
    usable = [s for s in segments if s.end > start and s.start < end]
    if not usable:
        raise ClipError(f"clip {out.name}: no recorded segment covers the range")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with _output(tmp) as container:
            cutter = _Cutter(container, start, end)
            for seg in usable:
                try:
                    cutter.add_segment(storage / seg.path, seg.start)
                except (av.FFmpegError, OSError) as e:
                    log.warning("clip %s: segment %s unreadable: %s", out.name, seg.path, e)
                if cutter.done:
                    break
            if cutter.origin is None or cutter.last_t is None:
                raise ClipError(f"clip {out.name}: the segments hold no video of the range")
        put_in_place(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    digest, size = file_digest(out)
    return EvidenceFile(out, digest, size, cutter.origin, cutter.last_t)


@contextlib.contextmanager
def _output(path: Path) -> Iterator[Any]:
    # faststart: the index goes first, so a browser plays the clip while it downloads.
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        yield container
    finally:
        container.close()
