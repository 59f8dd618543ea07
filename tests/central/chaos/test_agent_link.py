"""A real edge process at central: online, heartbeats, commands answered, last will."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from uuid import uuid4

from mqtt_client import TestClient
from mqtt_world import CENTRAL_PASSWORD, MqttWorld, wait_for

from fsv_contract import CommandPayload, encode, topics


def agent(world: MqttWorld, site: str) -> tuple[str, float | None, str | None]:
    rows = world.central.query(
        "select state, last_heartbeat_at, heartbeat from agent_status where site = ?", (site,)
    )
    return rows[0] if rows else ("", None, None)


def test_state_heartbeat_commands_and_last_will(world: MqttWorld) -> None:
    edge = world.edge("site-a")
    edge.start()
    wait_for(lambda: agent(world, "site-a")[0] == "online", 30, "the agent online")
    wait_for(lambda: agent(world, "site-a")[1], 15, "a heartbeat at central")
    beat = json.loads(agent(world, "site-a")[2] or "{}")
    assert beat["disk_total_bytes"] > 0 and beat["cameras"] == [] and beat["v"] == 1

    central = TestClient(world.broker.port, "central", CENTRAL_PASSWORD).start()
    try:
        mid = central.client.subscribe(f"{topics.ROOT}/site-a/reply/+", qos=1)[1]
        wait_for(lambda: mid in central.subacks, 5, "the subscription")
        command = CommandPayload(request_id=uuid4(), issued_at=datetime.now(UTC), args={"echo": 7})
        central.publish(topics.command("site-a", "ping"), encode(command))
        wait_for(lambda: central.messages, 15, "the reply")
        topic, payload = central.messages[0]
        reply = json.loads(payload)
        assert topic == topics.reply("site-a", str(command.request_id))
        assert reply["ok"] and reply["result"] == {"pong": True, "echo": 7}
    finally:
        central.stop()

    edge.kill(signal.SIGKILL)  # the broker publishes the retained last will
    wait_for(lambda: agent(world, "site-a")[0] == "offline", 30, "the last will at central")
    edge.start()
    wait_for(lambda: agent(world, "site-a")[0] == "online", 30, "the agent online again")
    edge.kill(signal.SIGTERM)  # a clean stop says offline itself
    wait_for(lambda: agent(world, "site-a")[0] == "offline", 30, "offline after SIGTERM")
