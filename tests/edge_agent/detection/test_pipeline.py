"""End to end on real footage: vtest.avi over RTSP (testbed), the recorder, the default model,
a rule, an event with a real snapshot and a playable clip; one RTSP session per camera
stream with live view and detection both on; a broken model leaves recording and live alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import psutil
import pytest

from edge_agent.config import EdgeConfig, parse_config
from edge_agent.credentials import CredentialStore
from edge_agent.detection.events import EventKeeper
from edge_agent.detection.pipeline import CameraDetection, build_detection
from edge_agent.detection.store import CLIP_DONE, COMPLETE
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.streams import build_streams
from testbed.rtsp import RtspServer
from tests.conftest import RtspServerFactory

pytestmark = pytest.mark.slow


def make_config(root: Path, server: RtspServer, bad_model: Path) -> EdgeConfig:
    rule = (
        "{id: people, type: forbidden, classes: [person], min_seconds: 1, end_after_s: 1,"
        " max_event_s: 4, cooldown_s: 3600,"
        " zone: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]}"
    )
    return parse_config(
        f"""
site_id: site-1
storage: {{path: {root / "rec"}, segment_seconds: 5}}
data_dir: {root / "state"}
detection: {{fps: 2, threads: 1, pre_roll_s: 2, post_roll_s: 2, clip_wait_s: 30}}
cameras:
  - id: good
    name: Quarantine point
    station: quarantine
    main_url: {server.url("cam1")}
    sub_url: {server.url("cam1_sub")}
    detection: {{use_preset: false, rules: [{rule}]}}
  - id: broken
    name: Another camera, bad model
    station: quarantine
    main_url: {server.url("cam2")}
    sub_url: {server.url("cam2_sub")}
    detection: {{model: {bad_model}}}
"""
    )


def wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def rtsp_sessions(server: RtspServer) -> int:
    """This process's established TCP connections to the server: one per RTSP session."""
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == server.port
    )


def test_people_over_rtsp_make_an_event_with_snapshot_and_clip(
    tmp_path: Path, rtsp_server_factory: RtspServerFactory
) -> None:
    from edge_agent.recording.recorder import CameraRecorder

    server = rtsp_server_factory()  # its own: the sessions counted are this test's alone
    bad = tmp_path / "broken-model.onnx"
    bad.write_bytes(b"this is not a model" * 100)
    config = make_config(tmp_path, server, bad)
    index = SegmentIndex(config.state_dir / "index.db")
    credentials = CredentialStore(environ={})
    recorders = [CameraRecorder(c, config, index, credentials) for c in config.cameras]
    streams = build_streams(config, credentials, recorders, live=True, detect={"good", "broken"})
    feeds = {c.id: f for c in config.cameras if (f := streams.feed(c.id)) is not None}
    assert {cam: f.stream for cam, f in feeds.items()} == {"good": "sub", "broken": "sub"}
    parts = build_detection(config, index, feeds)
    keeper = parts[0]
    assert isinstance(keeper, EventKeeper)
    good, broken = (p for p in parts if isinstance(p, CameraDetection))
    for recorder in recorders:
        recorder.add_segment_listener(keeper.segment_indexed)
    started = [*recorders, *streams.readers, *parts]
    sessions: list[int] = []
    try:
        for part in started[:-2]:
            part.start()
        # Detection starts on the reader's warm GOP at once; give the recording the event's
        # pre-roll first, so the clip can reach back that far.
        wait_for(lambda: recorders[0].status().video_packets >= 100, 30)
        for part in started[-2:]:
            part.start()
        wait_for(lambda: good.source is not None and good.source.frames > 0, 60)
        sessions.append(rtsp_sessions(server))  # detection and live both read cam1_sub now
        wait_for(lambda: any(e.state == COMPLETE for e in keeper.store.events("good")), 90)
        wait_for(lambda: len(index.segments("broken")) >= 1, 30)
        sessions.append(rtsp_sessions(server))
        live = [streams.taps.get(cam, "sub").online() for cam in ("good", "broken")]
    finally:
        for part in reversed(started):
            part.stop()
    # Two cameras, a main and a sub stream each: four sessions, whoever reads the packets.
    assert sessions == [4, 4]
    assert live == [True, True]  # live view has the sub streams, bad model or not
    assert broken.error is not None and str(bad) in broken.error  # named, and still recorded
    assert good.detector_runs > 0 and good.source is not None and good.source.frames > 0
    assert good.status()["stream"] == "sub" and good.status()["decode_errors"] == 0

    keeper = EventKeeper(config, index)
    event = next(e for e in keeper.store.events("good") if e.state == COMPLETE)
    assert event.kind == "person_in_zone" and event.boxes and event.score > 0.35
    assert {b["label"] for b in event.boxes} == {"person"}
    assert event.end is not None and event.end - event.start == pytest.approx(4.0, abs=1.0)
    snapshot = keeper.store.files / event.snapshot.relpath  # type: ignore[union-attr]
    image = cv2.imread(str(snapshot))
    assert image is not None and image.shape[:2] == (360, 640)
    # The event names the model that raised it; the clean frame lies beside the snapshot.
    assert event.model == f"{Path(good.detector.path).stem.lower()}@local"  # type: ignore[union-attr]
    assert event.frame is not None and (keeper.store.files / event.frame.relpath).is_file()

    assert event.clip_state == CLIP_DONE and event.clip is not None
    assert event.clip_start is not None and event.clip_end is not None
    # The clip starts at the keyframe (2 s GOP) at or before start - pre-roll and runs to
    # end + post-roll, within the recorder's clock mapping.
    assert event.start - 2 - 2.2 <= event.clip_start <= event.start - 2 + 0.5
    assert event.clip_end == pytest.approx(event.end + 2, abs=1.0)
    with av.open(str(keeper.store.files / event.clip.relpath)) as container:
        frames = list(container.decode(video=0))
    assert (frames[0].width, frames[0].height) == (1920, 1080)  # the recorded main stream
    seconds = len(frames) / 25
    assert seconds == pytest.approx(event.clip_end - event.clip_start, abs=0.5)
    sample = [f.to_ndarray(format="gray") for f in frames[::25]]
    assert float(np.mean([g.std() for g in sample])) > 10  # real pictures, not a grey screen
    assert index.active_holds("good") == []
    keeper.store.close()
    index.close()
