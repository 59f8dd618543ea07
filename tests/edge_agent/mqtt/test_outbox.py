"""The outbox on real SQLite: durable order, acks, bounds and the drop report."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from uuid import uuid4

import pytest

from edge_agent.errors import OutboxError
from edge_agent.mqtt.outbox import Outbox, OutboxLimits
from fsv_contract import CameraStatePayload, EventPayload, decode

Severity = Literal["info", "warning", "critical"]
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def event(camera: str = "cam-1", severity: Severity = "warning", site: str = "s1") -> EventPayload:
    return EventPayload(
        event_id=uuid4(),
        site=site,
        camera=camera,
        phase="start",
        kind="no_chef_hat",
        station="kitchen_prep",
        rule="hat",
        severity=severity,
        start=T0,
        score=0.7,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_events_survive_reopening_in_order_and_ack_removes_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", "s1")
    sent = [event(camera=f"cam-{i % 3}") for i in range(10)]
    for e in sent:
        box.put_event(e)
    box.close()
    box = Outbox(tmp_path / "outbox.db", "s1")
    pending = box.pending(limit=100)
    assert [json.loads(m.payload)["event_id"] for m in pending] == [str(e.event_id) for e in sent]
    first = decode(pending[0].topic, pending[0].payload).payload
    assert first.model_copy(update={"created_at": None}) == sent[0]
    assert pending[0].topic == "fsv/v1/s1/camera/cam-0/event" and pending[0].qos == 1
    created = json.loads(pending[0].payload)["created_at"]
    assert created is not None and created.endswith("Z")
    assert box.ack([m.id for m in pending[:4]]) == 4
    assert box.ack([pending[0].id]) == 0
    assert box.count() == 6
    assert [m.id for m in box.pending(after_id=pending[5].id)] == [m.id for m in pending[6:]]
    box.close()


def test_wrong_site_and_oversized_payloads_are_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", "s1")
    with pytest.raises(OutboxError, match="site"):
        box.put_event(event(site="s2"))
    big = event().model_copy(update={"details": {"x": "y" * 300_000}})
    with pytest.raises(OutboxError, match="limit"):
        box.put_event(big)
    assert box.count() == 0
    box.close()


def test_camera_states_are_retained_and_agent_events_use_the_agent_topic(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", "s1")
    box.put_camera_state(CameraStatePayload(camera="cam-1", state="offline", since=T0))
    box.put_event(event(camera=""))
    state, agent_event = box.pending()
    assert state.retain and state.topic == "fsv/v1/s1/camera/cam-1/state"
    assert not agent_event.retain and agent_event.topic == "fsv/v1/s1/agent/event"
    box.close()


def test_overflow_drops_superseded_states_then_info_then_oldest_and_reports(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.db", "s1", OutboxLimits(max_messages=20))
    for state in ("offline", "online", "offline"):
        box.put_camera_state(CameraStatePayload(camera="cam-1", state=state, since=T0))
    infos = [event(severity="info") for _ in range(3)]
    for e in infos:
        box.put_event(e)
    warnings = [event() for _ in range(15)]
    for e in warnings:
        box.put_event(e)  # the 21st message overflows: drop to 18, then the report
    kinds = [(m.kind, json.loads(m.payload)) for m in box.pending(limit=100)]
    states = [p for k, p in kinds if k == "camera_state"]
    assert [s["state"] for s in states] == ["offline"]  # only the latest state is left
    events = [p for k, p in kinds if k == "event"]
    assert not {str(e.event_id) for e in infos[:1]} & {p["event_id"] for p in events}
    report = events[-1]
    assert report["kind"] == "outbox_overflow" and report["severity"] == "critical"
    assert report["details"]["dropped"] == 3
    assert report["details"]["by_kind"] == {"camera_state": 2, "event": 1}
    assert box.dropped_total() == 3 and box.count() == 19
    box.close()


def test_messages_older_than_max_age_are_dropped(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "o.db", "s1", OutboxLimits(max_age_s=100), clock=clock)
    box.put_event(event())
    clock.now += 50
    box.put_event(event())
    clock.now += 60
    assert box.enforce_limits() == 1
    remaining = [json.loads(m.payload)["kind"] for m in box.pending()]
    assert remaining == ["no_chef_hat", "outbox_overflow"]
    box.close()
