"""The event keeper: stores violation events with evidence, holds and cuts their clips,
hands them to the outbox and expires them with the recordings' retention."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from edge_agent.config import CameraConfig, EdgeConfig
from edge_agent.detection.evidence import annotate, cut_clip, write_snapshot
from edge_agent.detection.payload import event_payload
from edge_agent.detection.rules import RuleEvent
from edge_agent.detection.store import (
    CLIP_DONE,
    CLIP_FAILED,
    CLIP_NONE,
    CLIP_PENDING,
    COMPLETE,
    ENDED,
    OPEN,
    EventStore,
    MediaInfo,
    StoredEvent,
)
from edge_agent.detection.tracker import TrackedObject
from edge_agent.errors import ClipError
from edge_agent.mqtt.sink import EventSink
from edge_agent.recording.index import Segment, SegmentIndex

log = logging.getLogger(__name__)

POLL_S = 2.0  # pending clips are checked this often, and whenever a segment is indexed
PURGE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Sighting:
    """A frame worth keeping as evidence: the image, the objects in it, when, how sure."""

    image: NDArray[np.uint8]
    objects: tuple[TrackedObject, ...]
    ts: float
    score: float


def boxes_of(objects: tuple[TrackedObject, ...]) -> list[dict[str, object]]:
    """Objects as payload boxes: relative x, y, w, h, label, score, track id."""
    return [
        {
            "x": round(o.box[0], 5),
            "y": round(o.box[1], 5),
            "w": round(o.box[2] - o.box[0], 5),
            "h": round(o.box[3] - o.box[1], 5),
            "label": o.label,
            "score": round(o.score, 4),
            "track_id": o.track_id,
        }
        for o in objects
    ]


class EventKeeper:
    """One per agent. Camera pipelines call `open_event` and `end_event`; its thread cuts
    clips once the recorder has the footage, hands phases to the sink, expires old events.
    """

    name = "events"

    def __init__(
        self,
        config: EdgeConfig,
        index: SegmentIndex,
        sink: EventSink | None = None,
        store: EventStore | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self.sink = sink
        self.store = store or EventStore(config.state_dir / "events")
        self.settings = config.detection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self.clips_cut = 0
        self.clips_failed = 0

    # --- component -------------------------------------------------------------------------

    def start(self) -> None:
        """Close events a crash left open, then start the clip thread."""
        for event in self.store.events(state=OPEN):
            log.warning("event %s was open when the agent stopped; ending it", event.id)
            self._end_stored(event, event.updated_at, None, "agent restarted")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="event-clips", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clip thread; pending clips resume at the next start (their holds stay)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30.0)
        self.store.close()

    def segment_indexed(self, _segment: Segment) -> None:
        """Recorder listener: a new segment may complete a pending clip, so look now."""
        self._wake.set()

    # --- called by the camera pipelines ------------------------------------------------------

    def open_event(
        self, camera: CameraConfig, event: RuleEvent, sighting: Sighting, model: str | None = None
    ) -> str:
        """Record a violation that just started (raised by `model`, name@version); write its
        snapshot and the clean frame under it; hold its footage."""
        event_id = str(uuid.uuid4())
        folder, rel = self.store.folder(camera.id, event_id, event.start)
        snapshot = self._snapshot(folder, rel, "snapshot.jpg", event, sighting)
        frame = self._frame(folder, rel, sighting) if snapshot is not None else None
        now = time.time()
        stored = StoredEvent(
            id=event_id,
            camera=camera.id,
            station=camera.station,
            rule=event.rule.id,
            kind=event.rule.event_kind,
            severity=event.rule.severity,
            state=OPEN,
            start=event.start,
            end=None,
            score=event.score,
            boxes=boxes_of(sighting.objects),
            details=dict(event.details),
            snapshot=snapshot,
            clip=None,
            clip_state=CLIP_PENDING if camera.record else CLIP_NONE,
            clip_start=None,
            clip_end=None,
            clip_error=None,
            retention_days=self.settings.retention_days or camera.retention_days,
            sent="",
            created_at=now,
            updated_at=now,
            frame=frame,
            model=model,
        )
        self.store.open_event(stored)
        if camera.record:
            # While open the end is unknown: hold as far as the event may last.
            self.index.add_hold(
                camera.id,
                event.start - self.settings.pre_roll_s,
                event.start + event.rule.max_event_s + self.settings.post_roll_s + 60.0,
                "violation event open",
                ref=event_id,
            )
        self._send(stored)
        return event_id

    def end_event(self, event_id: str, event: RuleEvent, best: Sighting | None) -> None:
        """The violation ended: keep the best snapshot; the clip thread does the rest."""
        stored = self.store.get(event_id)
        if stored is None:
            log.error("event %s ended but is not in the store", event_id)
            return
        assert event.end is not None
        self._end_stored(stored, event.end, best, str(event.details.get("ended_by", "")), event)

    def _end_stored(
        self,
        stored: StoredEvent,
        end: float,
        best: Sighting | None,
        reason: str,
        event: RuleEvent | None = None,
    ) -> None:
        stored.end = max(end, stored.start)
        stored.state = ENDED
        stored.details = {**stored.details, **(event.details if event else {}), "ended_by": reason}
        if event is not None:
            stored.score = max(stored.score, event.score)
        if best is not None and event is not None and stored.snapshot is None:
            # The snapshot the start announced is final at central (write-once evidence).
            folder, rel = self.store.folder(stored.camera, stored.id, stored.start)
            stored.snapshot = self._snapshot(folder, rel, "best.jpg", event, best)
            stored.boxes = boxes_of(best.objects)
            if stored.snapshot is not None and stored.frame is None:
                stored.frame = self._frame(folder, rel, best)
        if stored.clip_state == CLIP_PENDING:
            self.index.release_holds_by_ref(stored.id)
            self.index.add_hold(
                stored.camera,
                stored.start - self.settings.pre_roll_s,
                stored.end + self.settings.post_roll_s + 1.0,
                "violation clip pending",
                ref=stored.id,
            )
        else:
            stored.state = COMPLETE
        self.store.save(stored)
        if stored.state == COMPLETE:
            self._send(stored)

    def _snapshot(
        self, folder: Path, rel: str, name: str, event: RuleEvent, sighting: Sighting
    ) -> MediaInfo | None:
        title = f"{event.rule.event_kind} ({event.rule.id})"
        image = annotate(sighting.image, sighting.objects, event.rule.zone, title, sighting.ts)
        try:
            written = write_snapshot(folder / name, image)
        except (ClipError, OSError) as e:
            log.error("event snapshot %s/%s not written: %s", rel, name, e)
            return None
        return MediaInfo(name, f"{rel}/{name}", written.sha256, written.bytes, "image/jpeg")

    def _frame(self, folder: Path, rel: str, sighting: Sighting) -> MediaInfo | None:
        """The snapshot's frame as decoded, without boxes or stamps: what labels are drawn on."""
        try:
            written = write_snapshot(folder / "frame.jpg", sighting.image)
        except (ClipError, OSError) as e:
            log.error("event frame %s/frame.jpg not written: %s", rel, e)
            return None
        return MediaInfo(
            "frame.jpg", f"{rel}/frame.jpg", written.sha256, written.bytes, "image/jpeg"
        )

    # --- the clip thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            now = time.time()
            for stored in self.store.events(state=ENDED):
                if self._stop.is_set():
                    return
                if self._clip_ready(stored, now):
                    self._finish(stored)
            for stored in self.store.events(state=OPEN):
                if self._first_clip_ready(stored):
                    self._cut_first_clip(stored)
            for stored in self.store.unsent():
                self._send(stored)
            if now - self._last_purge >= PURGE_EVERY_S:
                self._last_purge = now
                self.purge(now)

    def _clip_ready(self, stored: StoredEvent, now: float) -> bool:
        assert stored.end is not None
        clip_end = stored.end + self.settings.post_roll_s
        if now < clip_end:
            return False
        last = self.index.last_segment(stored.camera)
        if last is not None and last.end >= clip_end:
            return True
        # The recorder may be down or its segment long: after the wait, cut what exists.
        return now >= clip_end + self.settings.clip_wait_s

    def _first_clip_ready(self, stored: StoredEvent) -> bool:
        """An open event without its first clip whose first seconds are recorded."""
        wanted = self.settings.first_clip_s
        if wanted <= 0 or stored.clip_state != CLIP_PENDING or stored.first_clip is not None:
            return False
        if "first_clip_error" in stored.details:
            return False
        last = self.index.last_segment(stored.camera)
        return last is not None and last.end >= stored.start + wanted

    def _cut_first_clip(self, stored: StoredEvent) -> None:
        """Cut pre-roll plus the first seconds, so inspectors need not wait for the end."""
        start = stored.start - self.settings.pre_roll_s
        end = stored.start + self.settings.first_clip_s
        try:
            info = self._cut(stored, start, end, "first.mp4")
        except (ClipError, av.FFmpegError, OSError) as e:
            log.warning("event %s: no first clip: %s", stored.id, e)
            stored.details = {**stored.details, "first_clip_error": str(e)[:200]}
            self.store.save(stored)
            return
        fresh = self.store.get(stored.id)  # the pipeline may have ended it meanwhile
        if fresh is None or fresh.state != OPEN:
            return
        fresh.first_clip = info
        self.store.save(fresh)
        self._send(fresh)

    def _cut(self, stored: StoredEvent, start: float, end: float, name: str) -> MediaInfo:
        """Cut [start, end) of the event's camera into `name` in its folder; what was kept.

        ClipError, av.FFmpegError or OSError when no clip can be cut.
        """
        folder, rel = self.store.folder(stored.camera, stored.id, stored.start)
        segments = self.index.segments(stored.camera, start, end)
        clip = cut_clip(self.config.storage.path, segments, start, end, folder / name)
        return MediaInfo(
            name, f"{rel}/{name}", clip.sha256, clip.bytes, "video/mp4", clip.start, clip.end
        )

    def _finish(self, stored: StoredEvent) -> None:
        """Cut the clip (or note why not), complete the event and hand it on."""
        assert stored.end is not None
        start = stored.start - self.settings.pre_roll_s
        end = stored.end + self.settings.post_roll_s
        try:
            clip = self._cut(stored, start, end, "clip.mp4")
        except (ClipError, av.FFmpegError, OSError) as e:
            log.warning("event %s: no clip: %s", stored.id, e)
            stored.clip_state, stored.clip_error = CLIP_FAILED, str(e)[:500]
            self.clips_failed += 1
        else:
            stored.clip = clip
            stored.clip_state, stored.clip_start, stored.clip_end = CLIP_DONE, clip.start, clip.end
            self.clips_cut += 1
        stored.state = COMPLETE
        self.store.save(stored)
        self.index.release_holds_by_ref(stored.id)
        self._send(stored)

    def _send(self, stored: StoredEvent) -> None:
        """Hand the phases not yet handed over to the sink; a failure is retried later."""
        if self.sink is None:
            return
        phases = ["start"]
        if stored.first_clip is not None and stored.state != COMPLETE:
            phases.append("first")  # the full clip supersedes it once the event is complete
        if stored.state == COMPLETE:
            phases.append("end")
        sent = [p for p in stored.sent.split(",") if p]
        with self._lock:
            for phase in phases:
                if phase in sent:
                    continue
                try:
                    self._hand_over(stored, phase)
                except Exception:  # noqa: BLE001 - the outbox failing must not lose the event
                    log.exception(
                        "event %s: outbox refused the %s phase; will retry", stored.id, phase
                    )
                    return
                sent.append(phase)
                stored.sent = ",".join(sent)
                self.store.save(stored)

    def _hand_over(self, stored: StoredEvent, phase: str) -> None:
        assert self.sink is not None
        payload = event_payload(self.config.site_id, stored, "start" if phase == "first" else phase)
        if phase != "first" and "first" not in stored.sent:
            payload = payload.model_copy(update={"first_clip": None})  # never uploaded
        media = {"start": [stored.snapshot, stored.frame], "first": [stored.first_clip]}.get(
            phase, [stored.snapshot, stored.frame, stored.clip]
        )
        for item in media:
            if item is not None:
                path = self.store.files / item.relpath
                self.sink.queue_media(stored.id, item.name, path, item.sha256, item.content_type)
        self.sink.put_event(payload)

    # --- retention -------------------------------------------------------------------------

    def purge(self, now: float) -> int:
        """Delete complete events older than their retention, files first; returns how many."""
        count = 0
        for stored in self.store.expired(now):
            folder, _ = self.store.folder(stored.camera, stored.id, stored.start)
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():
                log.error("event %s: cannot delete %s; kept", stored.id, folder)
                continue
            self.store.delete(stored.id)
            count += 1
        if count:
            log.info("retention deleted %d old events", count)
        return count
