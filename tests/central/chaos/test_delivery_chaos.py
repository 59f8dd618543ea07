"""Nothing is lost or doubled: broker outage, edge kill -9, central killed during a burst."""

from __future__ import annotations

import os
import signal
import time

import pytest
from events import check_exactly_once_in_order, make_events
from mqtt_world import MqttWorld, wait_for

from edge_agent.mqtt.outbox import Outbox

pytestmark = pytest.mark.slow

# Twenty seconds is ten times the edge's longest reconnect delay (reconnect_max_s 2): the
# outbox holds and resends the same way as in a longer outage (set FSV_CHAOS_OUTAGE_S).
OUTAGE_S = float(os.environ.get("FSV_CHAOS_OUTAGE_S", "20"))


def test_broker_outage_while_the_edge_produces(world: MqttWorld) -> None:
    """1,000 events made while the broker is down for OUTAGE_S arrive once each, in order."""
    edge = world.edge("site-a")
    Outbox(edge.outbox_path, "site-a").close()
    edge.start()
    wait_for(lambda: world.central.query(
        "select state from agent_status where site = 'site-a' and state = 'online'"),
        30, "the edge to come online")  # fmt: skip
    outbox = Outbox(edge.outbox_path, "site-a")
    events = make_events("site-a", 1000)
    world.broker.stop()
    started = time.monotonic()
    for i in range(0, 1000, 10):  # spread over the outage, as a detector would
        outbox.put_events(events[i : i + 10])
        time.sleep(max(0.0, started + OUTAGE_S * (i + 10) / 1000 - time.monotonic()))
    assert outbox.count() == 1000  # nothing left while the broker was away
    world.broker.start()
    wait_for(lambda: world.central.event_count() >= 1000, 60, "1,000 events at central", 0.5)
    wait_for(lambda: outbox.count() == 0, 30, "the outbox to drain")
    time.sleep(1.0)  # a late duplicate would show up now
    check_exactly_once_in_order(world.central, "site-a", 1000)
    assert edge.alive() and world.central.alive()
    outbox.close()


def test_edge_killed_with_unsent_events_loses_nothing(world: MqttWorld) -> None:
    """kill -9 while thousands wait in the outbox; the restarted agent sends the rest."""
    edge = world.edge("site-a")
    outbox = Outbox(edge.outbox_path, "site-a")
    outbox.put_events(make_events("site-a", 6000))
    edge.start()
    wait_for(lambda: world.central.event_count() >= 300, 60, "the first events at central", 0.05)
    edge.kill(signal.SIGKILL)
    unsent = outbox.count()
    assert unsent > 0, "the agent sent everything before it was killed; nothing was tested"
    edge.start()
    wait_for(lambda: world.central.event_count() >= 6000, 90, "6,000 events at central", 0.5)
    wait_for(lambda: outbox.count() == 0, 30, "the outbox to drain")
    check_exactly_once_in_order(world.central, "site-a", 6000)
    outbox.close()


def test_central_killed_during_a_burst_loses_nothing(world: MqttWorld) -> None:
    """central dies (SIGKILL) mid-burst and comes back: its session and dedupe keep all."""
    edge = world.edge("site-a")
    outbox = Outbox(edge.outbox_path, "site-a")
    edge.start()
    events = make_events("site-a", 4000)
    outbox.put_events(events[:2000])
    wait_for(lambda: world.central.event_count() >= 200, 60, "the burst to reach central", 0.05)
    world.central.kill(signal.SIGKILL)
    outbox.put_events(events[2000:])
    wait_for(lambda: outbox.count() == 0, 60, "the edge to hand everything to the broker")
    world.central.start()
    wait_for(lambda: world.central.event_count() >= 4000, 60, "4,000 events at central", 0.5)
    time.sleep(1.0)
    check_exactly_once_in_order(world.central, "site-a", 4000)
    outbox.close()
