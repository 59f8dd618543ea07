"""Sample frames for labelling (edge_agent.models.samples) from real recorded segments."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_agent.config import EdgeConfig, parse_config
from edge_agent.errors import ModelError
from edge_agent.models.samples import SampleTaker, pick_random
from edge_agent.recording.index import SegmentIndex
from tests.edge_agent.detection.conftest import VTEST, RecordedClip, index_segments


class Sink:
    """The outbox's media queue as the sampler sees it."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, str, Path, str, str]] = []

    def queue_media(
        self, event_id: str, name: str, path: Path, sha256: str, content_type: str
    ) -> None:
        self.queued.append((event_id, name, path, sha256, content_type))


def _config(root: Path) -> EdgeConfig:
    return parse_config(
        f"""
site_id: site-1
storage: {{path: {root / "rec"}}}
data_dir: {root / "state"}
cameras:
  - {{id: cam-1, name: Cam, station: kitchen_prep, main_url: "rtsp://127.0.0.1:1/x"}}
"""
    )


def _source_frame(seconds: float) -> np.ndarray[Any, Any]:
    cap = cv2.VideoCapture(str(VTEST))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.set(cv2.CAP_PROP_POS_FRAMES, round(seconds * fps))
        ok, image = cap.read()
    finally:
        cap.release()
    assert ok
    return cv2.resize(image, (640, 360))


def test_frames_at_the_asked_instants_are_written_queued_and_announced(
    tmp_path: Path, segment_files: RecordedClip
) -> None:
    config = _config(tmp_path)
    index = SegmentIndex(config.state_dir / "index.db")
    t0 = time.time() - 60
    index_segments(segment_files, config.storage.path, index, "cam-1", t0)
    sink = Sink()
    taker = SampleTaker(config, index, sink, random.Random(1))
    batch = str(uuid.uuid4())
    times = [datetime.fromtimestamp(t0 + s, UTC).isoformat() for s in (3.0, 7.0, 300.0)]
    result = taker.take({"batch": batch, "camera": "cam-1", "count": 3, "mode": "events",
                         "times": times})  # fmt: skip
    # 300 s after the start is not recorded: two frames, in time order, named in sequence.
    frames = result["frames"]
    assert [f["name"] for f in frames] == ["sample-001.jpg", "sample-002.jpg"]
    assert [datetime.fromisoformat(f["ts"]).timestamp() for f in frames] == pytest.approx(
        [t0 + 3.0, t0 + 7.0], abs=0.01
    )
    assert [(q[0], q[1], q[3], q[4]) for q in sink.queued] == [
        (batch, f["name"], f["sha256"], "image/jpeg") for f in frames
    ]
    image = cv2.imread(str(sink.queued[0][2]))
    assert image.shape[:2] == (360, 640)
    # The frame shows the recording at that instant (within a frame or two of the source).
    near = float(np.abs(image.astype(int) - _source_frame(3.0).astype(int)).mean())
    far = float(np.abs(image.astype(int) - _source_frame(7.0).astype(int)).mean())
    assert near < 12 and far > near + 3, (near, far)

    randomly = taker.take({"batch": str(uuid.uuid4()), "camera": "cam-1", "count": 4})
    stamps = [datetime.fromisoformat(f["ts"]).timestamp() for f in randomly["frames"]]
    assert len(stamps) == 4 and stamps == sorted(stamps)
    assert all(t0 <= s <= t0 + 10 for s in stamps)

    with pytest.raises(ModelError, match="no camera cam-9"):
        taker.take({"batch": batch, "camera": "cam-9", "count": 1})
    with pytest.raises(ModelError, match="nothing recorded"):
        taker.take({"batch": batch, "camera": "cam-1", "count": 1,
                    "since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"})  # fmt: skip
    index.close()


def test_random_instants_spread_over_segments_by_duration() -> None:
    from edge_agent.recording.index import Segment

    def seg(start: float, end: float) -> Segment:
        return Segment(
            0, "c", "p", start, end, end - start, 1, "h264", 1, 1, None, "", "", "", 0, 0.0
        )

    picks = pick_random([seg(0, 10), seg(100, 190)], 400, random.Random(3))
    late = sum(1 for p in picks if p.ts >= 100)
    assert 320 <= late <= 390  # ~90 % of the recorded time lies in the second segment
    assert all(0 <= p.ts <= 9.5 or 100 <= p.ts <= 189.5 for p in picks)
    assert pick_random([], 3, random.Random(1)) == []


def test_the_same_instant_twice_is_decoded_once(segment_files: RecordedClip) -> None:
    from edge_agent.models.samples import frames_at

    found = frames_at(segment_files.files[0], 100.0, [101.0, 101.0, 100.5])
    assert sorted(found) == [100.5, 101.0]


def test_other_commands_are_answered_while_samples_are_taken(
    tmp_path: Path, segment_files: RecordedClip
) -> None:
    from edge_agent.models.samples import build_sampler
    from edge_agent.mqtt.commands import CommandDispatcher
    from fsv_contract import CommandPayload, ReplyPayload, encode, topics

    class Replies:
        def __init__(self) -> None:
            self.sent: list[ReplyPayload] = []

        def put_reply(self, payload: ReplyPayload) -> None:
            self.sent.append(payload)

        def wait(self, verb: str) -> ReplyPayload | None:
            for _ in range(300):
                found = [r for r in self.sent if r.verb == verb]
                if found:
                    return found[0]
                time.sleep(0.02)
            return None

    class SlowSink(Sink):
        """Holds the sampler inside its request (after a decode) until released."""

        def __init__(self) -> None:
            super().__init__()
            self.inside = threading.Event()
            self.release = threading.Event()

        def queue_media(self, *args: Any) -> None:
            self.inside.set()
            assert self.release.wait(30)
            super().queue_media(*args)

    config = _config(tmp_path)
    index = SegmentIndex(config.state_dir / "index.db")
    index_segments(segment_files, config.storage.path, index, "cam-1", time.time() - 60)
    replies, sink = Replies(), SlowSink()
    dispatcher = CommandDispatcher(replies)
    assert build_sampler(config, index, sink, dispatcher) is not None
    dispatcher.start()
    try:
        now = datetime.now(UTC)
        args = {"batch": str(uuid.uuid4()), "camera": "cam-1", "count": 3}
        ask = CommandPayload(request_id=uuid.uuid4(), issued_at=now, args=args)
        dispatcher.receive(topics.command("site-1", "sample_frames"), encode(ask))
        assert sink.inside.wait(30), "the sampler never reached its first frame"
        ping = CommandPayload(request_id=uuid.uuid4(), issued_at=now, args={"echo": "x"})
        dispatcher.receive(topics.command("site-1", "ping"), encode(ping))
        pong = replies.wait("ping")  # answered while the sample request is still in hand
        assert pong is not None and pong.ok and not sink.queued
        assert [r.verb for r in replies.sent] == ["ping"]  # the samples' reply waits
        sink.release.set()
        done = replies.wait("sample_frames")
        assert done is not None and done.ok and len(done.result["frames"]) == 3, done
        assert [r.verb for r in replies.sent] == ["ping", "sample_frames"]
    finally:
        sink.release.set()
        dispatcher.stop()
        index.close()
