"""The heartbeat carries the uplink's rate once the uplink service is wired to it."""

from __future__ import annotations

from pathlib import Path

from edge_agent.mqtt.heartbeat import HeartbeatPublisher


class _Link:
    def publish_now(self, topic: str, payload: bytes) -> bool:
        return True


def test_the_heartbeat_reports_the_uplink_rate(tmp_path: Path) -> None:
    beat = HeartbeatPublisher(
        _Link(),
        "site-a",
        tmp_path,
        30.0,
        cameras=list,
        storage=lambda: None,
        pending=lambda: (0, 0),
    )
    assert beat.beat().uplink_bps is None  # an agent without uplink says nothing
    beat.uplink_rate = lambda: 512_000.0
    assert beat.beat().uplink_bps == 512_000.0


def test_the_heartbeat_reports_the_budget_use_per_class_and_streams(tmp_path: Path) -> None:
    from edge_agent.uplink.budget import TrafficClass
    from edge_agent.uplink.scheduler import UplinkScheduler

    beat = HeartbeatPublisher(
        _Link(), "site-a", tmp_path, 30.0, cameras=list, storage=lambda: None,
        pending=lambda: (0, 0),
    )  # fmt: skip
    assert beat.beat().uplink is None
    scheduler = UplinkScheduler(500_000)
    scheduler.stream_rates = lambda: [("cam1", "sub", 400_000.0)]
    scheduler.archive_backlog_segments = lambda: 12
    scheduler.charge(TrafficClass.CONTROL, 1000)
    beat.uplink_stats = scheduler.stats
    with scheduler.watching():
        uplink = beat.beat().uplink
    assert uplink is not None and uplink.budget_bps == 4_000_000
    assert uplink.archive_paused and uplink.watching == 1 and uplink.archive_backlog_segments == 12
    control = next(c for c in uplink.classes if c.name == "control")
    assert control.bps > 0
    assert uplink.streams[0].camera == "cam1" and uplink.streams[0].bps == 400_000
