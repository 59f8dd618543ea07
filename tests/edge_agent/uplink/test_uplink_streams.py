"""One session per camera stream: which taps and readers the agent builds, and a reader that
cannot reach its camera retries with back-off without dying."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

from edge_agent.config import EdgeConfig, parse_config
from edge_agent.credentials import CredentialStore
from edge_agent.recording.events import PacketEvent
from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.lanes import resolve_lanes, sub_lane
from edge_agent.recording.recorder import CameraRecorder
from edge_agent.uplink.streams import build_streams
from edge_agent.uplink.sub_reader import SubStreamReader
from edge_agent.uplink.tap import LiveTap
from testbed.ports import free_port


def _config(root: Path, port: int) -> EdgeConfig:
    url = f"rtsp://127.0.0.1:{port}"
    return parse_config(
        f"""
site_id: site-1
storage: {{path: {root / "rec"}}}
data_dir: {root / "state"}
recorder: {{open_timeout_s: 1, read_timeout_s: 1, backoff_initial_s: 0.05, backoff_max_s: 0.1}}
cameras:
  - {{id: both, name: A, station: quarantine, main_url: {url}/m1, sub_url: {url}/s1}}
  - {{id: main-only, name: B, station: quarantine, main_url: {url}/m2}}
  - {{id: unrecorded, name: C, station: quarantine, main_url: {url}/m3, record: false}}
"""
    )


def _streams(tmp_path: Path, live: bool, detect: set[str]) -> dict[str, str]:
    config = _config(tmp_path, 9)
    index = SegmentIndex(tmp_path / "index.db")
    creds = CredentialStore(environ={})
    recorders = [CameraRecorder(c, config, index, creds) for c in config.cameras if c.record]
    streams = build_streams(config, creds, recorders, live=live, detect=detect)
    index.close()
    taps = {f"{t.camera}/{t.stream}": "reader" for t in (r.tap for r in streams.readers)}
    for tap in streams.taps.all():
        taps.setdefault(f"{tap.camera}/{tap.stream}", "recorder")
    feeds = {c.id: f.stream for c in config.cameras if (f := streams.feed(c.id)) is not None}
    return {**taps, **{f"feed {cam}": stream for cam, stream in feeds.items()}}


def test_live_and_detection_share_the_readers_and_the_recorders(tmp_path: Path) -> None:
    assert _streams(tmp_path, live=True, detect={"both", "main-only", "unrecorded"}) == {
        "both/sub": "reader",  # one reader for live view and detection
        "both/main": "recorder",
        "main-only/main": "recorder",  # detection taps the recorder: no second session
        "unrecorded/main": "reader",  # nothing else reads it: detection's own reader
        "feed both": "sub",
        "feed main-only": "main",
        "feed unrecorded": "main",
    }


def test_only_what_is_used_is_read(tmp_path: Path) -> None:
    assert _streams(tmp_path, live=False, detect={"both"}) == {
        "both/sub": "reader",
        "feed both": "sub",
    }
    assert _streams(tmp_path, live=True, detect=set()) == {
        "both/sub": "reader",
        "both/main": "recorder",
        "main-only/main": "recorder",
        "feed both": "sub",
        "feed main-only": "main",
    }


def test_a_recorder_feeds_the_main_tap(tmp_path: Path) -> None:
    config = _config(tmp_path, 9)
    index = SegmentIndex(tmp_path / "index.db")
    creds = CredentialStore(environ={})
    recorder = CameraRecorder(config.cameras[1], config, index, creds)
    streams = build_streams(config, creds, [recorder], live=False, detect={"main-only"})
    tap = streams.feed("main-only")
    assert tap is not None and tap.stream == "main"
    event = PacketEvent(
        "main-only", "video", "h264", b"\0\0\1\x65", 0, 0, Fraction(1, 90000), 1.0, True, None
    )
    recorder.packet_listeners.notify(event)
    assert tap.packets == 1 and tap.subscribe(lambda e: None) == [event]
    index.close()


def test_a_recorded_sub_lane_feeds_the_sub_tap_instead_of_a_reader(tmp_path: Path) -> None:
    config = resolve_lanes(_config(tmp_path, 9), "sub")
    index = SegmentIndex(tmp_path / "index.db")
    creds = CredentialStore(environ={})
    lane = CameraRecorder(sub_lane(config.cameras[0]), config, index, creds)
    assert lane.camera.id == "both--sub" and lane.camera.main_url.endswith("/s1")
    streams = build_streams(config, creds, [lane], live=False, detect={"both"})
    assert streams.readers == []  # one session on the sub stream: the lane's recorder
    tap = streams.feed("both")
    assert tap is not None and tap.stream == "sub"
    event = PacketEvent(
        "both--sub", "video", "h264", b"\0\0\1\x65", 0, 0, Fraction(1, 90000), 1.0, True, None
    )
    lane.packet_listeners.notify(event)
    assert [e.camera for e in tap.subscribe(lambda e: None)] == ["both"]  # named by the camera
    index.close()


def test_an_unreachable_camera_is_retried_with_back_off(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port())  # nothing listens there
    tap = LiveTap("both", "sub")
    reader = SubStreamReader(config.cameras[0], config.recorder, CredentialStore(environ={}), tap)
    reader.start()
    deadline = time.monotonic() + 15
    while reader.reconnects < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    reader.stop()
    assert reader.reconnects >= 2 and reader.reason not in ("starting", "reading")
    assert tap.packets == 0 and not tap.online()
