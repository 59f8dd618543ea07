"""The event keeper: snapshot, evidence holds, clip from real segments, outbox, retention."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.config import EdgeConfig, parse_config
from edge_agent.detection.events import EventKeeper, Sighting
from edge_agent.detection.rules import RuleEvent
from edge_agent.detection.settings import RuleSpec
from edge_agent.detection.store import CLIP_DONE, CLIP_NONE, COMPLETE, ENDED, OPEN
from edge_agent.detection.tracker import TrackedObject
from edge_agent.mqtt.outbox import Outbox
from edge_agent.recording.index import SegmentIndex
from fsv_contract import EventPayload, decode
from tests.edge_agent.detection.conftest import RecordedClip, index_segments

RULE = RuleSpec(id="in-zone", type="forbidden", severity="critical")


def make_config(root: Path, record: bool = True, first_clip_s: float = 10) -> EdgeConfig:
    return parse_config(
        f"""
site_id: site-1
storage: {{path: {root / "rec"}}}
data_dir: {root / "state"}
detection: {{pre_roll_s: 1, post_roll_s: 1, clip_wait_s: 5, first_clip_s: {first_clip_s}}}
cameras:
  - {{id: cam-1, name: Cam, station: quarantine, main_url: "rtsp://127.0.0.1:1/x",
     record: {str(record).lower()}}}
"""
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[EdgeConfig, SegmentIndex, Outbox]]:
    config = make_config(tmp_path)
    index = SegmentIndex(tmp_path / "state" / "index.db")
    outbox = Outbox(tmp_path / "state" / "outbox.db", "site-1")
    yield config, index, outbox
    outbox.close()
    index.close()


def wait_for(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def payloads(outbox: Outbox) -> list[EventPayload]:
    found = []
    for message in outbox.pending():
        payload = decode(message.topic, message.payload).payload
        assert isinstance(payload, EventPayload)
        found.append(payload)
    return found


def sighting(frame: NDArray[np.uint8], ts: float) -> Sighting:
    person = TrackedObject(3, "person", 0.9, (0.4, 0.2, 0.5, 0.7), ts, ts)
    return Sighting(frame, (person,), ts, 0.9)


def test_event_gets_snapshot_hold_clip_and_both_phases_in_the_outbox(
    site: tuple[EdgeConfig, SegmentIndex, Outbox],
    segment_files: RecordedClip,
    vtest_frame: NDArray[np.uint8],
) -> None:
    config, index, outbox = site
    t0 = time.time() - 30  # ten seconds of footage, recorded a while ago
    index_segments(segment_files, config.storage.path, index, "cam-1", t0)
    keeper = EventKeeper(config, index, outbox)
    see = sighting(vtest_frame, t0 + 3)
    event_id = keeper.open_event(
        config.cameras[0],
        RuleEvent("start", RULE, t0 + 3, None, 0.9, see.objects),
        see,
        "person@7",
    )
    stored = keeper.store.get(event_id)
    assert stored is not None and stored.state == OPEN and stored.snapshot is not None
    assert (keeper.store.files / stored.snapshot.relpath).read_bytes()[:2] == b"\xff\xd8"
    # The clean frame beside the snapshot: the decoded image without boxes or stamps.
    assert stored.frame is not None and stored.frame.name == "frame.jpg"
    clean = cv2.imdecode(
        np.frombuffer((keeper.store.files / stored.frame.relpath).read_bytes(), np.uint8), 1
    )
    drawn = cv2.imdecode(
        np.frombuffer((keeper.store.files / stored.snapshot.relpath).read_bytes(), np.uint8), 1
    )
    assert float(np.abs(clean.astype(int) - vtest_frame.astype(int)).mean()) < 3.0
    assert float(np.abs(drawn.astype(int) - vtest_frame.astype(int)).mean()) > 3.0
    [hold] = index.active_holds("cam-1")
    assert hold.ref == event_id and hold.start == pytest.approx(t0 + 2)
    [start] = payloads(outbox)
    assert (start.phase, start.kind, start.rule, start.severity) == (
        "start",
        "person_in_zone",
        "in-zone",
        "critical",
    )
    assert start.boxes[0].track_id == 3 and start.snapshot is not None
    assert start.model == "person@7" and start.frame is not None
    assert start.frame.sha256 == stored.frame.sha256
    queued = {m.name for m in outbox.media.due(limit=50) if m.event_id == event_id}
    assert {"snapshot.jpg", "frame.jpg"} <= queued

    keeper.end_event(event_id, RuleEvent("end", RULE, t0 + 3, t0 + 6, 0.9, ()), None)
    assert keeper.store.get(event_id).state == ENDED  # type: ignore[union-attr]
    [hold] = index.active_holds("cam-1")
    assert (hold.start, hold.end) == pytest.approx((t0 + 2, t0 + 8))

    keeper.start()
    try:
        wait_for(lambda: keeper.store.get(event_id).state == COMPLETE)  # type: ignore[union-attr]
    finally:
        keeper.stop()
    keeper = EventKeeper(config, index, outbox)  # reopen the store to read it
    done = keeper.store.get(event_id)
    assert done is not None and done.clip_state == CLIP_DONE and done.clip is not None
    assert index.active_holds("cam-1") == []
    clip_path = keeper.store.files / done.clip.relpath
    with av.open(str(clip_path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == pytest.approx(5 * 25, abs=3)  # keyframe at t0 + 2 .. t0 + 7 (post-roll)
    assert done.clip_start == pytest.approx(t0 + 2, abs=0.05) and done.clip_end == pytest.approx(
        t0 + 7, abs=0.1
    )
    start, end = payloads(outbox)
    assert end.phase == "end" and end.event_id == start.event_id
    assert end.clip is not None and end.clip.sha256 == done.clip.sha256
    assert end.end is not None and end.end.timestamp() == pytest.approx(t0 + 6)
    media = {m.name for m in outbox.media.due(10)}
    assert media == {"snapshot.jpg", "frame.jpg", "clip.mp4"}
    assert keeper.purge(time.time() + 91 * 86400) == 1
    assert keeper.store.get(event_id) is None and not clip_path.exists()
    keeper.store.close()


def test_unrecorded_camera_completes_without_clip_and_a_crash_left_event_is_ended(
    tmp_path: Path, vtest_frame: NDArray[np.uint8]
) -> None:
    config = make_config(tmp_path, record=False)
    index = SegmentIndex(tmp_path / "index.db")
    keeper = EventKeeper(config, index)  # no sink: stored locally only
    now = time.time()
    see = sighting(vtest_frame, now)
    first = keeper.open_event(config.cameras[0], RuleEvent("start", RULE, now, None, 0.9, ()), see)
    keeper.end_event(first, RuleEvent("end", RULE, now, now + 1, 0.9, ()), see)
    done = keeper.store.get(first)
    assert done is not None and done.state == COMPLETE and done.clip_state == CLIP_NONE
    # The snapshot the start announced stays the event's snapshot (write-once at central).
    assert done.snapshot is not None and done.snapshot.name == "snapshot.jpg"
    orphan = keeper.open_event(config.cameras[0], RuleEvent("start", RULE, now, None, 0.9, ()), see)
    keeper.store.close()  # the agent dies with the event open

    keeper = EventKeeper(config, index)
    keeper.start()
    keeper.stop()
    keeper = EventKeeper(config, index)
    restarted = keeper.store.get(orphan)
    assert restarted is not None and restarted.state == COMPLETE
    assert restarted.details["ended_by"] == "agent restarted"
    keeper.store.close()
    index.close()


def test_an_open_event_gets_its_first_clip_before_the_full_one(
    tmp_path: Path, segment_files: RecordedClip, vtest_frame: NDArray[np.uint8]
) -> None:
    config = make_config(tmp_path, first_clip_s=3)
    index = SegmentIndex(tmp_path / "state" / "index.db")
    outbox = Outbox(tmp_path / "state" / "outbox.db", "site-1")
    t0 = time.time() - 30
    index_segments(segment_files, config.storage.path, index, "cam-1", t0)
    keeper = EventKeeper(config, index, outbox)
    keeper.start()
    see = sighting(vtest_frame, t0 + 2)
    event_id = keeper.open_event(
        config.cameras[0], RuleEvent("start", RULE, t0 + 2, None, 0.9, see.objects), see
    )
    try:
        wait_for(lambda: len(payloads(outbox)) == 2)  # the event still runs
        keeper.end_event(event_id, RuleEvent("end", RULE, t0 + 2, t0 + 6, 0.9, ()), None)
        wait_for(lambda: len(payloads(outbox)) == 3)
    finally:
        keeper.stop()
    start, first, end = payloads(outbox)
    assert (start.phase, first.phase, end.phase) == ("start", "start", "end")
    assert start.first_clip is None and first.first_clip is not None
    assert first.snapshot == start.snapshot  # nothing announced before changes
    assert first.first_clip.start is not None and first.first_clip.end is not None
    assert first.first_clip.start.timestamp() == pytest.approx(t0 + 1, abs=1.05)  # pre-roll
    assert first.first_clip.end.timestamp() <= t0 + 5.1
    assert end.clip is not None and end.first_clip == first.first_clip
    assert end.clip.sha256 != first.first_clip.sha256
    assert {m.name for m in outbox.media.due(10)} == {
        "snapshot.jpg",
        "frame.jpg",
        "first.mp4",
        "clip.mp4",
    }
    outbox.close()
    index.close()
