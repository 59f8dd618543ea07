"""End to end through a real Mosquitto: an edge event becomes an alert in the inbox, the edge
is asked to hold the evidence while the alert is open and to release it when it closes."""

from __future__ import annotations

import asyncio
import json
import queue
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import pytest_asyncio
from central_support import Central, call, make_config

from central.api.common import SERVICES
from central.app import create_app
from central.regulation.seed import seed_demo
from fsv_contract import CommandPayload, EventPayload, encode, topics
from fsv_contract.commands import HoldArgs, ReleaseArgs

pytestmark = pytest.mark.asyncio


class Edge:
    """A paho client acting as the edge of site demo-canteen-a: publishes, records commands."""

    def __init__(self, port: int) -> None:
        self.commands: queue.Queue[tuple[str, CommandPayload]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"edge-test-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topics.command_filter("demo-canteen-a"), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        verb = msg.topic.rsplit("/", 1)[1]
        self.commands.put((verb, CommandPayload.model_validate_json(msg.payload)))

    def next_command(self, timeout: float = 10.0) -> tuple[str, CommandPayload]:
        return self.commands.get(timeout=timeout)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest_asyncio.fixture
async def wired(
    aiohttp_client: Any, tmp_path: Path, mosquitto_broker: Any, central_db_url: str | None
) -> Any:
    port = mosquitto_broker.port
    client = await aiohttp_client(create_app(make_config(tmp_path, port, database=central_db_url)))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    edge = Edge(port)
    yield Central(client, seed), edge
    edge.stop()


async def test_event_over_mqtt_opens_alert_holds_and_releases(wired: Any) -> None:
    central, edge = wired
    event_id = uuid.uuid4()
    start = datetime.now(UTC)
    event = EventPayload(
        event_id=event_id,
        site="demo-canteen-a",
        camera="cam1",
        phase="start",
        kind="smoking",
        station="kitchen_cooking",
        rule="smoking",
        start=start,
        score=0.8,
    )
    # Keep publishing until central's subscription is in place (it connects in the background).
    deadline = time.monotonic() + 15
    alert: dict[str, Any] | None = None
    while alert is None and time.monotonic() < deadline:
        edge.client.publish(topics.camera_event("demo-canteen-a", "cam1"), encode(event), qos=1)
        await asyncio.sleep(0.3)
        status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts")
        alert = page["items"][0] if page["total"] else None
    assert alert is not None and alert["id"] == str(event_id) and alert["kind"] == "smoking"
    assert page["total"] == 1  # repeated deliveries of one event are one alert

    verb, cmd = await asyncio.to_thread(edge.next_command)
    assert verb == "hold"
    hold = HoldArgs.model_validate(cmd.args)
    assert hold.ref == f"alert:{event_id}" and hold.camera == "cam1"
    assert hold.start < start < hold.end
    # A hold must survive an edge that is offline for days, not the interactive 5 minutes.
    assert cmd.expires_at is not None
    assert (cmd.expires_at - cmd.issued_at).total_seconds() >= 7 * 86400

    status, _ = await call(
        central,
        "inspector-a",
        "POST",
        f"/api/v1/alerts/{event_id}/transitions",
        json={"action": "close", "note": "false alarm"},
    )
    assert status == 201
    while True:
        verb, cmd = await asyncio.to_thread(edge.next_command)
        if verb == "release":
            break
    assert ReleaseArgs.model_validate(cmd.args).ref == f"alert:{event_id}"
    with central.svc.ldb.lock:
        logged = list(
            central.svc.ldb.db.query("select verb, args from commands order by issued_at")
        )
    assert [r["verb"] for r in logged][-1] == "release"
    assert json.loads(logged[-1]["args"])["ref"] == f"alert:{event_id}"
