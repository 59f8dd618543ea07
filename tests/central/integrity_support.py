"""Helpers of the integrity tests: a real edge (index, segment files, outbox, MQTT) and waits."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.config import EdgeConfig
from edge_agent.credentials import CredentialStore
from edge_agent.integrity.anchor import AnchorSender
from edge_agent.integrity.wiring import build_integrity
from edge_agent.mqtt.wiring import MqttParts, build_mqtt
from edge_agent.recording.index import Segment, SegmentIndex
from tests.edge_agent.recording_helpers import copy_clip

SITE = "demo-canteen-a"


def edge_config(tmp_path: Path, broker_port: int, anchor_s: float = 0.3) -> EdgeConfig:
    """An edge of the demo site on the test broker (plain TCP on the loopback)."""
    return EdgeConfig.model_validate(
        {
            "site_id": SITE,
            "storage": {"path": str(tmp_path / "storage"), "segment_seconds": 5},
            "data_dir": str(tmp_path / "state"),
            "detection": {"enabled": False},
            "mqtt": {
                "host": "127.0.0.1", "port": broker_port, "tls": None, "keepalive_s": 10,
                "reconnect_min_s": 0.2, "reconnect_max_s": 1, "anchor_interval_s": anchor_s,
                "heartbeat_interval_s": 60, "outbox": {"resend_after_s": 2},
            },
            "cameras": [
                {"id": "cam1", "name": "后厨", "station": "kitchen_prep",
                 "main_url": "rtsp://127.0.0.1:1/none", "record": False},
            ],
        }
    )  # fmt: skip


def credentials() -> CredentialStore:
    """The site's broker login (the test broker lets anyone in)."""
    return CredentialStore(
        None, {"EDGE_CRED_MQTT_USER": SITE, "EDGE_CRED_MQTT_PASSWORD": "not-checked"}
    )


def record_segments(
    index: SegmentIndex, storage: Path, clip: Path, start: float, count: int, camera: str = "cam1"
) -> list[Segment]:
    """`count` real 2-second segment files from `clip`, sealed and indexed one after another."""
    segments = []
    for i in range(count):
        closed = copy_clip(clip, storage, camera, start + i * 2.0, 2.0, audio=False)
        segments.append(index.add_segment(closed.seal()))
    return segments


class Edge:
    """The edge's MQTT side and anchor sender, started and stopped like the agent does."""

    def __init__(self, config: EdgeConfig, index: SegmentIndex) -> None:
        self.config = config
        self.index = index
        parts = build_mqtt(config, credentials(), [], None, index)
        assert parts is not None
        self.mqtt: MqttParts = parts
        anchor = build_integrity(config, index, parts.outbox, parts.commands)
        assert anchor is not None
        self.anchor: AnchorSender = anchor
        self.components: list[Any] = [*parts.components, anchor]

    def start(self) -> None:
        """Start every component in order."""
        for c in self.components:
            c.start()

    def stop(self) -> None:
        """Stop in reverse order and close the outbox."""
        for c in reversed(self.components):
            c.stop()
        self.mqtt.close()


def wait_for(check: Callable[[], Any], within: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def report_figures(**figures: Any) -> None:
    """Merge figures into the JSON file named by $FSV_INTEGRITY_REPORT (bench/integrity.py)."""
    target = os.environ.get("FSV_INTEGRITY_REPORT")
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(figures)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
