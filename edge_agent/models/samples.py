"""Sample frames for labelling: decode frames of a camera's recordings on central's request.

Handles `sample_frames` on the dispatcher's background thread (decoding takes seconds, and
the commands behind it must not wait for that): picks the instants (central's, or random ones
over the recorded segments), decodes the frame at each from the segment that holds it,
writes it as a clean JPEG and queues its upload; the reply announces each file's hash, which
is what central accepts for it (the same rule as event media).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
from numpy.typing import NDArray

from edge_agent.config import EdgeConfig
from edge_agent.detection.evidence import write_snapshot
from edge_agent.errors import ClipError, ModelError
from edge_agent.recording.index import Segment, SegmentIndex
from fsv_contract.models import VERB_SAMPLE_FRAMES, SampleFrame, SampleFramesArgs

log = logging.getLogger(__name__)
DEFAULT_WINDOW_S = 86400.0
KEEP_S = 7 * 86400.0  # sample files older than this are deleted at the next request


class MediaSink(Protocol):
    """The outbox's media queue, as far as samples are concerned."""

    def queue_media(
        self, event_id: str, name: str, path: Path, sha256: str, content_type: str
    ) -> None:
        """Upload `path` as /api/v1/media/{event_id}/{name}."""


class Registrar(Protocol):
    """The command dispatcher."""

    def register(self, verb: str, handler: Any, background: bool = False) -> None:
        """Handle `verb` with `handler` (`background`: off the command thread)."""


@dataclass(frozen=True)
class Pick:
    """An instant to sample and the segment that holds it."""

    ts: float
    segment: Segment


def pick_random(segments: list[Segment], count: int, rng: random.Random) -> list[Pick]:
    """`count` instants spread over the segments by their duration (sorted by time)."""
    usable = [s for s in segments if s.end - s.start > 0.5]
    if not usable:
        return []
    total = sum(s.end - s.start for s in usable)
    picks = []
    for _ in range(count):
        at = rng.uniform(0, total)
        for seg in usable:
            span = seg.end - seg.start
            if at <= span:
                # Not the very end: the last frame of a segment may not be decodable.
                picks.append(Pick(seg.start + min(at, span - 0.5), seg))
                break
            at -= span
    return sorted(picks, key=lambda p: p.ts)


def frames_at(path: Path, seg_start: float, times: list[float]) -> dict[float, NDArray[np.uint8]]:
    """The decoded frames of a segment file at the UTC instants `times`, in one pass."""
    wanted = sorted(set(times))
    found: dict[float, NDArray[np.uint8]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin: float | None = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if origin is None:
                origin = float(frame.time)
            at = seg_start + float(frame.time) - origin
            if at < wanted[len(found)]:
                continue
            image = np.ascontiguousarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
            while len(found) < len(wanted) and at >= wanted[len(found)]:
                found[wanted[len(found)]] = image  # distinct instants: the count always grows
            if len(found) == len(wanted):
                break
    return found


class SampleTaker:
    """Turns `sample_frames` commands into clean JPEGs queued for upload."""

    def __init__(
        self,
        config: EdgeConfig,
        index: SegmentIndex,
        sink: MediaSink,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self.sink = sink
        self.dir = config.state_dir / "samples"
        self.rng = rng or random.Random()

    def register(self, commands: Registrar) -> None:
        """Handle `sample_frames`."""
        commands.register(VERB_SAMPLE_FRAMES, self.take, background=True)

    def take(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Decode, write and queue the frames; the reply lists them (ModelError if none)."""
        args = SampleFramesArgs.model_validate(raw)
        if args.camera not in {c.id for c in self.config.cameras}:
            raise ModelError(f"no camera {args.camera} on this site")
        self._purge()
        picks = self._picks(args)
        if not picks:
            raise ModelError(f"{args.camera}: nothing recorded in the time asked for")
        batch = str(args.batch)
        folder = self.dir / batch
        frames: list[dict[str, Any]] = []
        for pick, image in self._decode(args.camera, picks[: args.count]):
            name = f"sample-{len(frames) + 1:03d}.jpg"
            try:
                written = write_snapshot(folder / name, image)
            except (OSError, ClipError) as e:
                log.warning("%s: sample %s not written: %s", args.camera, name, e)
                continue
            frame = SampleFrame(
                name=name,
                sha256=written.sha256,
                bytes=written.bytes,
                ts=datetime.fromtimestamp(pick.ts, UTC),
            )
            frames.append(frame.model_dump(mode="json"))
            self.sink.queue_media(batch, name, written.path, written.sha256, "image/jpeg")
        if not frames:
            raise ModelError(f"{args.camera}: no frame could be decoded at the instants asked for")
        log.info("%s: %d sample frames queued (batch %s)", args.camera, len(frames), batch)
        return {"batch": batch, "camera": args.camera, "frames": frames}

    def _decode(self, camera: str, picks: list[Pick]) -> Iterator[tuple[Pick, NDArray[np.uint8]]]:
        """Each pick with its frame, in time order; each segment is decoded once."""
        by_segment: dict[int, list[Pick]] = {}
        for pick in sorted(picks, key=lambda p: p.ts):
            by_segment.setdefault(pick.segment.id, []).append(pick)
        for group in by_segment.values():
            segment = group[0].segment
            path = Path(segment.path)
            path = path if path.is_absolute() else self.config.storage.path / path
            try:
                images = frames_at(path, segment.start, [p.ts for p in group])
            except (av.error.FFmpegError, OSError) as e:
                log.warning("%s: no samples from %s: %s", camera, path, e)
                continue
            for pick in group:
                if pick.ts in images:
                    yield pick, images[pick.ts]

    def _picks(self, args: SampleFramesArgs) -> list[Pick]:
        if args.times:
            picks = []
            for when in args.times:
                ts = when.timestamp()
                held = self.index.segments(args.camera, ts, ts + 0.001)
                if held:
                    picks.append(Pick(ts, held[0]))
            return picks
        until = args.until.timestamp() if args.until else time.time()
        since = args.since.timestamp() if args.since else until - DEFAULT_WINDOW_S
        return pick_random(self.index.segments(args.camera, since, until), args.count, self.rng)

    def _purge(self) -> None:
        if not self.dir.is_dir():
            return
        cutoff = time.time() - KEEP_S
        for folder in self.dir.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    for file in folder.iterdir():
                        file.unlink()
                    folder.rmdir()
            except OSError as e:
                log.warning("old samples %s not deleted: %s", folder, e)


def build_sampler(
    config: EdgeConfig, index: SegmentIndex, sink: MediaSink | None, commands: Registrar | None
) -> SampleTaker | None:
    """The sample taker, registered on the dispatcher; None without MQTT."""
    if sink is None or commands is None:
        return None
    taker = SampleTaker(config, index, sink)
    taker.register(commands)
    return taker
