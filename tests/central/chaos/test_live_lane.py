"""The live lane: a live alert is not queued at the broker behind another site's backlog."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from events import make_events
from mqtt_client import TestClient
from mqtt_world import MqttWorld, wait_for

from fsv_contract import encode, topics

BACKLOG = 5000
NOT_AUTHORIZED = 135


def test_a_live_event_overtakes_a_queued_backlog_and_is_stored_once(world: MqttWorld) -> None:
    # Central is down while site-a's outbox flushes: everything queues in central's sessions.
    world.central.kill(signal.SIGKILL)
    a = TestClient(world.broker.port, "site-a", world.passwords["site-a"]).start()
    b = TestClient(world.broker.port, "site-b", world.passwords["site-b"]).start()
    try:
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
        old = [e.model_copy(update={"start": two_hours_ago})
               for e in make_events("site-a", BACKLOG, cameras=2)]  # fmt: skip
        for e in old:
            a.publish(topics.camera_event("site-a", e.camera), encode(e))
        wait_for(lambda: len(a.acks) == BACKLOG, 60, "the backlog at the broker")
        # The live alert comes after the whole backlog, on the lane an edge uses for it.
        live = make_events("site-b", 1)[0]
        mid = b.publish(topics.camera_live_event("site-b", live.camera), encode(live))
        wait_for(lambda: mid in b.acks, 10, "the live event's PUBACK")
        assert not b.acks[mid].is_failure  # the shipped ACL allows a site its live lane
        # ... but not another site's.
        forged = b.publish(topics.camera_live_event("site-a", "cam-0"), encode(live))
        wait_for(lambda: forged in b.acks, 10, "the forged live event's PUBACK")
        assert b.acks[forged].value == NOT_AUTHORIZED
    finally:
        a.stop()
        b.stop()

    world.central.start()
    wait_for(lambda: world.central.event_count() == BACKLOG + 1, 120, "every event stored")
    order = [r[0] for r in world.central.query("select event_id from events order by id")]
    rank = order.index(str(live.event_id))
    # The main session delivers the backlog 1,000 at a time, each batch committed before the
    # next comes; the live session delivers its one message at once.
    assert rank < BACKLOG // 2, f"the live event was stored after {rank} of the backlog"
    wait_for(lambda: world.central.stats().get("kind:event", 0) >= BACKLOG + 2, 30, "the copy")
    stats = world.central.stats()
    assert stats["rejected"] == 0
    assert stats["duplicates"] >= 1  # the main session's copy of the live event, not stored
