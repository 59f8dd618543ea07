"""Heartbeat figures and camera state changes, as pure functions."""

from datetime import UTC, datetime
from types import SimpleNamespace

from edge_agent.mqtt.camera_states import CameraStateReporter, state_changes
from edge_agent.mqtt.heartbeat import build_heartbeat, with_detection
from fsv_contract import (
    MAX_PAYLOAD_BYTES,
    CameraDetectionStatus,
    CameraStatePayload,
    RuleStatus,
    encode,
)

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC).timestamp()


def status(camera: str, state: str, since: float = NOW, reason: str = "") -> SimpleNamespace:
    return SimpleNamespace(camera=camera, state=state, since=since, reason=reason)


def test_heartbeat_carries_disk_retention_cpu_and_cameras() -> None:
    cam = SimpleNamespace(
        camera="cam-1", state="online", fps=25.0, bitrate_bps=4e6, last_segment_end=NOW - 5
    )
    starting = SimpleNamespace(
        camera="cam-2", state="starting", fps=0.0, bitrate_bps=0.0, last_segment_end=None
    )
    storage = SimpleNamespace(days_forecast=87.5, at_risk=True)
    hb = build_heartbeat(NOW, NOW - 60, (1000, 400), storage, [cam, starting], 12.5, 30.0, (3, 1))
    assert hb.uptime_s == 60 and hb.disk_free_bytes == 400 and hb.disk_total_bytes == 1000
    assert hb.retention_days_available == 87.5 and hb.retention_at_risk
    assert hb.cpu_percent == 12.5 and hb.outbox_pending == 3 and hb.media_pending == 1
    assert [c.state for c in hb.cameras] == ["online", "unknown"]
    assert hb.cameras[0].last_segment_end is not None
    assert hb.cameras[0].last_segment_end.timestamp() == NOW - 5
    no_forecast = build_heartbeat(NOW, NOW, (1, 1), None, [], 0.0, None, (0, 0))
    assert no_forecast.retention_days_available is None


def test_only_online_offline_changes_are_reported() -> None:
    reported: dict[str, str] = {}
    first = state_changes(reported, [status("a", "starting"), status("b", "online")])
    assert [(c.camera, c.state) for c in first] == [("b", "online")]
    assert state_changes(reported, [status("a", "starting"), status("b", "online")]) == []
    later = state_changes(reported, [status("a", "online"), status("b", "offline", reason="eof")])
    assert [(c.camera, c.state, c.reason) for c in later] == [
        ("a", "online", ""),
        ("b", "offline", "eof"),
    ]


def test_reporter_says_offline_for_online_cameras_when_stopped() -> None:
    sent: list[CameraStatePayload] = []

    class Sink:
        def put_camera_state(self, payload: CameraStatePayload) -> None:
            sent.append(payload)

    reporter = CameraStateReporter(Sink(), lambda: [status("a", "online"), status("b", "offline")])
    assert reporter.poll() == 2
    reporter.stop()
    assert [(p.camera, p.state) for p in sent] == [
        ("a", "online"),
        ("b", "offline"),
        ("a", "offline"),
    ]
    assert sent[-1].reason == "agent stopped"


def test_states_carry_the_cameras_name_and_station() -> None:
    identities = {"a": ("Quarantine line 1", "quarantine")}
    changes = state_changes({}, [status("a", "online"), status("b", "online")], identities)
    assert [(c.camera, c.name, c.station) for c in changes] == [
        ("a", "Quarantine line 1", "quarantine"),
        ("b", None, None),
    ]


def test_rule_capability_never_makes_the_heartbeat_too_big() -> None:
    hb = build_heartbeat(NOW, NOW, (1, 1), None, [], 0.0, None, (0, 0))
    rule = RuleStatus(rule="no-mask", kind="no_mask", status="blind", reason="x" * 500)
    small = [CameraDetectionStatus(camera="cam-1", model="nanodet-m.onnx", rules=[rule])]
    assert with_detection(hb, small).detection == small
    many = [  # 100 cameras x 20 rules with long reasons: over the 256 KiB message limit
        CameraDetectionStatus(camera=f"cam-{i}", model="m.onnx", rules=[rule] * 20)
        for i in range(100)
    ]
    brief = with_detection(hb, many).detection
    assert brief is not None and len(brief) == 100
    assert all(r.reason == "" and r.status == "blind" for d in brief for r in d.rules)
    assert len(encode(with_detection(hb, many))) <= MAX_PAYLOAD_BYTES
    huge = [d.model_copy(update={"rules": [rule] * 256}) for d in many] * 3
    assert with_detection(hb, huge).detection is None  # left out; the figures still go
