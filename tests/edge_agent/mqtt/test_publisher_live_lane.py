"""The outbox publisher's live lane: which messages take it, and the fall-back when refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from uuid import uuid4

from edge_agent.mqtt.outbox import Outbox
from edge_agent.mqtt.publisher import OutboxPublisher, live_topic
from fsv_contract import EventPayload, live, topics


def event(start: datetime, phase: Literal["start", "end"] = "start") -> EventPayload:
    return EventPayload(
        event_id=uuid4(), site="s1", camera="cam-1", phase=phase, kind="rodent",
        station="kitchen_prep", rule="r", start=start, end=start if phase == "end" else None,
        score=0.7,
    )  # fmt: skip


class FakeLink:
    """Records publishes; acks them as the test says."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.connected.set()
        self.on_ack: Callable[[int, bool, str], None] | None = None
        self.sent: list[tuple[int, str]] = []

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        mid = len(self.sent) + 1
        self.sent.append((mid, topic))
        return mid

    def add_connect_listener(self, callback: Callable[[], None]) -> None:
        pass


def test_only_a_fresh_start_phase_of_a_camera_event_takes_the_live_lane(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", "s1")
    now = datetime.now(UTC)
    outbox.put_events([event(now), event(now - timedelta(minutes=5)), event(now, "end")])
    outbox.put_event(event(now).model_copy(update={"camera": ""}))  # about the agent itself
    fresh, old, end, agent = outbox.pending()
    t = now.timestamp()
    assert live_topic(fresh, t) == topics.camera_live_event("s1", "cam-1")
    assert live_topic(fresh, t + live.SEND_WINDOW_S + 1) is None  # sent too late
    assert live_topic(old, t) is None
    assert live_topic(end, t) is None
    assert live_topic(agent, t) is None


def test_a_refused_live_lane_falls_back_to_the_event_topic_at_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", "s1")
    link = FakeLink()
    publisher = OutboxPublisher(outbox, link)
    outbox.put_event(event(datetime.now(UTC)))
    publisher._send_more()
    assert link.sent == [(1, topics.camera_live_event("s1", "cam-1"))]
    assert link.on_ack is not None
    link.on_ack(1, False, "Not authorized")  # a broker whose ACL predates the lane
    publisher._take_acks()
    assert link.sent[1] == (2, topics.camera_event("s1", "cam-1"))  # sent again, not later
    assert not publisher.live_lane
    link.on_ack(2, True, "Success")
    publisher._take_acks()
    assert outbox.count() == 0  # delivered once, nothing left behind
    outbox.put_event(event(datetime.now(UTC)))
    publisher._send_more()
    assert link.sent[2] == (3, topics.camera_event("s1", "cam-1"))  # the lane stays off
