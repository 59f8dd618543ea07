"""The sub stream as a recording lane of its own: when it is recorded (config or the site's
archive policy), the agent's recorder on the sub URL writes segments, index rows and a chain
under `<camera>--sub`, beside the main stream's, and retention and storage figures count it."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from recording_helpers import make_config, wait_for

from edge_agent.app import EdgeAgent
from edge_agent.config import ConfigError, EdgeConfig, parse_config
from edge_agent.credentials import CredentialStore
from edge_agent.mqtt.heartbeat import HeartbeatPublisher
from edge_agent.recording.index import GENESIS, Hold, SegmentIndex
from edge_agent.recording.lanes import (
    learned_policy,
    recording_lanes,
    remember_policy,
    resolve_lanes,
)
from edge_agent.retention.planner import is_held, retention_by_camera
from edge_agent.uplink.wiring import keep_policy
from fsv_contract import topics
from fsv_contract.codec import decode, encode
from fsv_contract.lanes import lane_id, split_lane
from fsv_contract.payloads import HeartbeatPayload
from testbed.ports import free_port
from testbed.rtsp import RtspServer

LANE = "cam1--sub"


def _config(tmp_path: Path, record_sub: bool | None = None, url: str = "rtsp://h/m") -> EdgeConfig:
    sub = {} if record_sub is None else {"record_sub": record_sub}
    return EdgeConfig.model_validate(
        {
            "site_id": "site-1",
            "storage": {"path": str(tmp_path / "storage"), "segment_seconds": 5},
            "recorder": {"backoff_initial_s": 0.5, "backoff_max_s": 2.0},
            "detection": {"enabled": False},
            "cameras": [
                {
                    "id": "cam1",
                    "name": "A",
                    "station": "quarantine",
                    "retention_days": 30,
                    "main_url": url,
                    "sub_url": url.replace("/m", "/s").replace("cam1", "cam1_sub"),
                    **sub,
                },
                {"id": "cam2", "name": "B", "station": "quarantine", "main_url": url},
            ],
        }  # fmt: skip
    )


def test_lane_ids_and_which_cameras_record_their_sub_stream(tmp_path: Path) -> None:
    assert lane_id("cam1", "sub") == LANE and split_lane(LANE) == ("cam1", "sub")
    assert split_lane("cam1") == ("cam1", "main") and split_lane("--sub") == ("--sub", "main")
    unset = _config(tmp_path)
    # Unset: the site's archive policy decides; an explicit value wins over it.
    assert recording_lanes(resolve_lanes(unset, "sub")) == ["cam1", LANE, "cam2"]
    assert recording_lanes(resolve_lanes(unset, "main")) == ["cam1", "cam2"]
    assert recording_lanes(resolve_lanes(unset, None)) == ["cam1", "cam2"]
    assert recording_lanes(resolve_lanes(_config(tmp_path, False), "sub")) == ["cam1", "cam2"]
    assert recording_lanes(resolve_lanes(_config(tmp_path, True), None)) == ["cam1", LANE, "cam2"]
    # The lane keeps its camera's duty; an evidence hold on the camera covers both lanes.
    assert retention_by_camera(resolve_lanes(unset, "sub"))[LANE] == 30
    assert LANE not in retention_by_camera(resolve_lanes(unset, "main"))
    hold = Hold(1, "cam1", 100.0, 200.0, "alert", "a1", 0.0, None)
    seg = _segment(LANE, 150.0)
    assert is_held(seg, [hold]) and not is_held(_segment("cam2", 150.0), [hold])


def test_the_policy_central_answers_is_kept_for_the_next_start(tmp_path: Path) -> None:
    assert learned_policy(tmp_path) is None
    assert remember_policy(tmp_path, "sub") and not remember_policy(tmp_path, "sub")
    assert learned_policy(tmp_path) == "sub"
    # The archive sender's hook keeps what central answers, in the agent's state folder.
    config = _config(tmp_path).model_copy(update={"data_dir": tmp_path / "state"})
    keep_policy(config, "main")
    assert learned_policy(config.state_dir) == "main"
    (tmp_path / "archive_policy.json").write_text("{not json")
    assert learned_policy(tmp_path) is None  # a broken file is no policy, not a crash


def test_a_camera_id_that_looks_like_a_lane_is_refused_naming_the_field() -> None:
    text = """
site_id: s
storage: {path: /tmp/x}
cameras:
  - {id: cam1--sub, name: A, station: quarantine, main_url: rtsp://h/m}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert "cameras[0].id" in str(e.value) and "--sub" in str(e.value)


@pytest.mark.slow
def test_the_agent_records_the_sub_lane_beside_the_main_stream(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, {"cam1": rtsp_server.url("cam1")})
    cam = config.cameras[0].model_copy(update={"sub_url": rtsp_server.url("cam1_sub")})
    config = config.model_copy(update={"cameras": [cam]})
    remember_policy(config.state_dir, "sub")  # central said so before this start
    agent = EdgeAgent(config, CredentialStore(environ={}))
    assert [r.camera.id for r in agent.sub_recorders] == [LANE]
    agent.start()
    try:
        index: SegmentIndex = agent.index
        wait_for(lambda: len(index.segments_by_id(LANE)) >= 1 and index.segments_by_id("cam1"),
                 timeout=40)  # fmt: skip
        agent.cleaner.run_once(time.time())
        forecast = agent.cleaner.status()
    finally:
        agent.stop()
    index = SegmentIndex(config.state_dir / "index.db")
    main, sub = index.segments_by_id("cam1"), index.segments_by_id(LANE)
    index.close()
    # Own files, own chain: each lane's first link follows the genesis, not the other lane.
    assert all(s.path.startswith(f"{LANE}/") for s in sub)
    assert sub[0].prev_chain == GENESIS and main[0].prev_chain == GENESIS
    assert all(b.prev_chain == a.chain for a, b in zip(sub, sub[1:], strict=False))
    assert sub[0].width == 640 and main[0].width == 1920  # the sub stream, not a copy
    # Storage figures count the lane.
    assert forecast is not None
    by_camera = {c.camera: c for c in forecast.cameras}
    counted = by_camera[LANE]  # as of the pass (stopping sealed one more segment since)
    assert counted.segments >= 1 and counted.bytes == sum(s.bytes for s in sub[: counted.segments])
    assert counted.configured and counted.bytes_per_s and counted.bytes_per_s > 0


class _Link:
    def publish_now(self, topic: str, payload: bytes) -> bool:
        return True


def _metrics(port: int | None) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, s.labels.get("camera", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _segment(camera: str, start: float) -> object:
    from edge_agent.recording.index import Segment

    return Segment(1, camera, f"{camera}/x.mp4", start, start + 5, 5.0, 1, "h264", 1, 1, None,
                   "0" * 64, GENESIS, "1" * 64, 0, start)  # fmt: skip


@pytest.mark.slow
def test_a_policy_change_starts_and_stops_the_sub_lane_while_running(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.uplink.wiring as wiring

    # Live view wanted (as with central's commands): the camera gets a sub tap.
    monkeypatch.setattr(wiring, "uplink_enabled", lambda config, commands: True)
    config = make_config(tmp_path, {"cam1": rtsp_server.url("cam1")})
    cam = config.cameras[0].model_copy(update={"sub_url": rtsp_server.url("cam1_sub")})
    config = config.model_copy(update={"cameras": [cam], "metrics_port": free_port()})
    agent = EdgeAgent(config, CredentialStore(environ={}))
    assert agent.sub_recorders == []  # no policy known yet
    heartbeat = HeartbeatPublisher(
        _Link(), "test", tmp_path, 30.0, cameras=lambda: [r.status() for r in agent.recorders],
        storage=lambda: None, pending=lambda: (0, 0),
    )  # fmt: skip
    heartbeat.sub_lanes = agent.sub_lane_statuses  # as the agent wires it with MQTT
    agent.start()
    seen: list[str] = []
    try:
        tap = agent.streams.taps.get("cam1", "sub")
        tap.subscribe(lambda event: seen.append(event.camera))
        (reader,) = agent.streams.readers
        wait_for(lambda: tap.packets > 0, timeout=20)
        agent.policy_told("sub")
        # The lane records; the reader stopped first (one session on the sub stream), and
        # the tap goes on with the lane recorder's packets, named by the camera.
        (lane,) = agent.sub_recorders
        assert lane.camera.id == LANE and lane.running
        assert agent.streams.readers == [] and reader._thread is None
        assert LANE in retention_by_camera(agent.cleaner.config)
        before = lane.status().video_packets
        wait_for(lambda: lane.status().video_packets > before + 10, timeout=20)
        served = tap.packets
        wait_for(lambda: tap.packets > served + 10 and lane.status().fps > 0, timeout=20)
        # The lane's recorder in the heartbeat (under its camera) and in the metrics.
        beat = decode(topics.heartbeat("test"), encode(heartbeat.beat())).payload
        assert isinstance(beat, HeartbeatPayload)
        (figures,) = beat.cameras
        assert figures.camera == "cam1" and figures.sub is not None
        assert figures.sub.state == "online" and (figures.sub.fps or 0) > 0
        assert _metrics(config.metrics_port)[("fsv_edge_camera_online", LANE)] == 1.0
        agent.policy_told("sub")  # the same answer again changes nothing
        assert agent.sub_recorders == [lane]
        agent.policy_told("evidence")
        # Stopped with its open segment sealed and indexed; a new reader fills the tap.
        assert agent.sub_recorders == [] and not lane.running
        sealed = agent.index.segments_by_id(LANE)
        assert sealed and sealed[-1].bytes > 0 and sealed[-1].width == 640
        (again,) = agent.streams.readers
        assert again is not reader and again.tap is tap
        served, stopped_at = tap.packets, lane.status().video_packets
        wait_for(lambda: tap.packets > served + 10, timeout=20)
        assert lane.status().video_packets == stopped_at  # the reader's, not the lane's
        assert heartbeat.beat().cameras[0].sub is None
        assert ("fsv_edge_camera_online", LANE) not in _metrics(config.metrics_port)
        assert LANE not in retention_by_camera(agent.cleaner.config)
    finally:
        agent.stop()
    assert set(seen) == {"cam1"}
    assert learned_policy(config.state_dir) == "evidence"
    # What central said applies at the next start too.
    later = EdgeAgent(config, CredentialStore(environ={}))
    assert later.sub_recorders == []
    later.index.close()


@pytest.mark.slow
def test_an_offline_sub_lane_tells_central_why_in_the_heartbeat(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, {"cam1": rtsp_server.url("cam1")})
    # The camera's sub stream is not served: the lane is offline, the main stream records.
    cam = config.cameras[0].model_copy(
        update={
            "sub_url": rtsp_server.url("cam1").replace("/cam1", "/no_such_stream"),
            "record_sub": True,
        }
    )
    config = config.model_copy(update={"cameras": [cam]})
    agent = EdgeAgent(config, CredentialStore(environ={}))
    heartbeat = HeartbeatPublisher(
        _Link(), "test", tmp_path, 30.0, cameras=lambda: [r.status() for r in agent.recorders],
        storage=lambda: None, pending=lambda: (0, 0),
    )  # fmt: skip
    heartbeat.sub_lanes = agent.sub_lane_statuses
    agent.start()
    try:
        (lane,) = agent.sub_recorders
        wait_for(lambda: lane.status().state == "offline", timeout=30)
        wait_for(lambda: agent.recorders[0].status().state == "online", timeout=30)
        beat = decode(topics.heartbeat("test"), encode(heartbeat.beat())).payload
    finally:
        agent.stop()
    assert isinstance(beat, HeartbeatPayload)
    (figures,) = beat.cameras
    assert figures.state == "online" and figures.sub is not None
    assert (figures.sub.state, figures.sub.reason) == ("offline", "stream not found")
    assert figures.sub.fps == 0.0
