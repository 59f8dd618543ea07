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
