"""Every payload the edge produces passes central's ingest validation unchanged."""

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import decode_batch
from edge_agent.credentials import Credential
from edge_agent.mqtt.camera_states import CameraStateReporter
from edge_agent.mqtt.commands import CommandDispatcher
from edge_agent.mqtt.heartbeat import build_heartbeat
from edge_agent.mqtt.link import MqttLink
from edge_agent.mqtt.outbox import Outbox, OutboxLimits
from edge_agent.mqtt.retention_alerts import retention_alert_sink
from edge_agent.mqtt.settings import MqttConfig
from fsv_contract import (
    CameraStatePayload,
    CommandPayload,
    EventPayload,
    MediaRef,
    encode,
    topics,
)

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_all_edge_payloads_validate_on_central(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", "site-a", OutboxLimits(max_messages=100))
    clip = MediaRef(name="clip.mp4", sha256="b" * 64, bytes=5, content_type="video/mp4")
    for phase, extra in (("start", {}), ("end", {"end": NOW, "clip": clip})):
        box.put_event(
            EventPayload(
                event_id=uuid4(),
                site="site-a",
                camera="cam-1",
                phase=phase,
                kind="no_mask",
                station="kitchen_prep",
                rule="mask",
                start=NOW,
                score=0.9,
                **extra,
            )  # fmt: skip
        )
    status = SimpleNamespace(camera="cam-1", state="offline", since=NOW.timestamp(), reason="x")
    CameraStateReporter(box, lambda: [status]).poll()
    retention = SimpleNamespace(
        kind="retention_at_risk", ts=NOW.timestamp(), camera=None, message="7 days left",
        details={"days_forecast": 7.0},
    )  # fmt: skip
    retention_alert_sink(box, "site-a", {})(retention)
    commands = CommandDispatcher(box)
    command = CommandPayload(request_id=uuid4(), issued_at=NOW, args={"echo": 1})
    commands.handle(topics.command("site-a", "ping"), encode(command))
    commands.handle(topics.command("site-a", "nope"), encode(command.model_copy(
        update={"request_id": uuid4()})))  # fmt: skip
    for i in range(120):  # over the bound: the outbox drops and reports it
        state = "online" if i % 2 else "offline"
        box.put_camera_state(CameraStatePayload(camera=f"cam-{i % 5}", state=state, since=NOW))
    raw = [RawMessage(m.topic, m.payload, 0.0) for m in box.pending(limit=1000)]
    kinds = {json.loads(r.payload).get("kind") for r in raw}
    assert {"no_mask", "retention_at_risk", "outbox_overflow"} <= kinds

    link = MqttLink(MqttConfig(host="127.0.0.1", tls=None), "site-a", Credential("site-a"), "1")
    raw.append(RawMessage(topics.agent_state("site-a"), link._state_payload("offline"), 0.0))
    cam = SimpleNamespace(camera="cam-1", state="starting", fps=25.0, bitrate_bps=4e6,
                          last_segment_end=NOW.timestamp())  # fmt: skip
    storage = SimpleNamespace(days_forecast=95.5, at_risk=False)
    beat = build_heartbeat(NOW.timestamp(), 0.0, (10, 5), storage, [cam], 3.0, 40.0, (1, 2))
    raw.append(RawMessage(topics.heartbeat("site-a"), encode(beat), 0.0))

    accepted, rejected = decode_batch(raw)
    assert rejected == [] and len(accepted) == len(raw) > 50
    box.close()
