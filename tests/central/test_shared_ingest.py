"""Two central nodes read the sites through one MQTT 5 shared subscription (real Mosquitto).

Node a is `central-server run` in its own process, node b runs ingest in the test's
process; both write into one SQLite file. A site publishes a stream of events (each one
twice, as an edge resends what it has no acknowledgement for) on the main and the live
lane; node a is killed with SIGKILL mid-stream and started again later under its node id.
The broker runs the shipped `use_username_as_clientid`: each node logs in with its own
account (central@a, central@b), so each keeps a session of its own.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from central_support import make_config, start_node
from paho.mqtt.enums import CallbackAPIVersion

from central.config import BrokerAdminConfig, CentralConfig
from central.ingest.accounts import (
    central_passwords,
    issue_site_credentials,
    set_passwords,
    write_acl,
)
from central.ingest.pipeline import Ingest, running_ingest
from central.ingest.store import IngestStore
from central.nodes import Leases
from central.storage.db import CentralDatabase
from fsv_contract import EventPayload, encode, topics

REPO = Path(__file__).parents[2]
SITE = "s1"
EVENTS = 300
KILL_AFTER = 100


def node_config(tmp_path: Path, port: int, node: str) -> CentralConfig:
    return make_config(
        tmp_path,
        port,
        mqtt={"client_id": "central", "username": "central"},
        cluster={"nodes": 2, "node_id": node, "lease_s": 2, "renew_s": 0.5},
    )


def shipped_broker(tmp_path: Path, factory: Any) -> tuple[Any, str]:
    """Mosquitto under the shipped `use_username_as_clientid`, with the accounts of nodes a
    and b (as `init-broker --node a --node b` makes them) and the site's login."""
    admin = BrokerAdminConfig(
        password_file=tmp_path / "auth" / "passwd", acl_file=tmp_path / "auth" / "acl"
    )
    set_passwords(admin, central_passwords("central", "test", ["a", "b"]))
    write_acl(admin, "central")
    site_password = issue_site_credentials(admin, SITE, "central").password
    broker = factory(
        allow_anonymous=False,
        password_file=admin.password_file,
        acl_file=admin.acl_file,
        extra_config=["use_username_as_clientid true"],
    )
    return broker, site_password


def own_sessions(broker: Any) -> None:
    """Each node was on its own session: its own login, and no connection taken over."""
    text = broker.log_path.read_text(errors="replace")
    for user in ("central@a", "central@a.live", "central@b", "central@b.live"):
        assert f"u'{user}')" in text, f"{user} never connected"
    assert "already connected, closing old connection" not in text


def events(n: int) -> list[tuple[str, bytes, str]]:
    """(topic, payload, event id): every 5th on the live lane, the others old (backlog)."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        live = i % 5 == 0
        start = now if live else now - timedelta(hours=2, seconds=i)
        payload = EventPayload(
            event_id=uuid.uuid4(), site=SITE, camera="cam1", phase="start", kind="no_chef_hat",
            station="kitchen_prep", rule="hat", start=start, score=0.9,
        )  # fmt: skip
        lane = topics.camera_live_event if live else topics.camera_event
        topic = lane(SITE, "cam1")
        out.append((topic, encode(payload), str(payload.event_id)))
    return out


def stored(database: CentralDatabase) -> list[str]:
    with database.read() as db:
        return [str(r[0]) for r in db.execute("select event_id from events")]


async def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110 - test polling
        await asyncio.sleep(0.05)
    return bool(predicate())


def log_has(tmp_path: Path, node: str, text: str, count: int = 1) -> bool:
    path = tmp_path / f"{node}.log"
    return path.exists() and path.read_text(errors="replace").count(text) >= count


@pytest.mark.asyncio
async def test_each_event_is_stored_once_and_a_killed_node_loses_none(
    tmp_path: Path, mosquitto_broker_factory: Any
) -> None:
    broker, site_password = shipped_broker(tmp_path, mosquitto_broker_factory)
    config_a = node_config(tmp_path, broker.port, "a")
    config_b = node_config(tmp_path, broker.port, "b")
    node_a = start_node(config_a, tmp_path)
    database = await asyncio.to_thread(CentralDatabase, config_b.database_path)
    ingest = Ingest(IngestStore(database))
    site = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SITE, protocol=mqtt.MQTTv5)
    site.username_pw_set(SITE, site_password)
    site.max_inflight_messages_set(20)
    try:
        async with running_ingest(config_b, ingest, "test"):
            # Both nodes connected on both lanes: the group has its two members.
            assert await wait_for(lambda: log_has(tmp_path, "a", "connection to 127.0.0.1"), 30)
            assert await wait_for(lambda: log_has(tmp_path, "a", "session kept", 2), 30)
            await asyncio.sleep(0.5)
            site.connect("127.0.0.1", broker.port)
            site.loop_start()
            stream = events(EVENTS)
            resends = 0
            for i, (topic, payload, _) in enumerate(stream):
                site.publish(topic, payload, qos=1)
                if i % 3 == 0 and i >= 3:  # an edge's resend of an earlier event
                    site.publish(*stream[i - 3][:2], qos=1)
                    resends += 1
                if i == KILL_AFTER:
                    node_a.send_signal(signal.SIGKILL)
                    node_a.wait(10)
                await asyncio.sleep(0.005)
            want = {eid for _, _, eid in stream}
            # b stores its share; a's share waits in a's broker session while a is down.
            await asyncio.sleep(3.0)
            while_down = set(stored(database))
            assert while_down < want, "the broker gave b what it had handed to a"
            node_a = start_node(config_a, tmp_path)
            restarted = time.monotonic()
            assert await wait_for(lambda: set(stored(database)) == want, 60), (
                f"{len(want - set(stored(database)))} events lost"
            )
            caught_up_s = time.monotonic() - restarted
            rows = stored(database)
            assert len(rows) == len(want)  # stored once each, repeats refused by event id
            assert ingest.store.stats()["duplicates"] >= resends
            own_sessions(broker)
            print(
                f"stored while a was down: {len(while_down)}/{len(want)}; "
                f"all stored {caught_up_s:.1f} s after a restarted"
            )
    finally:
        site.loop_stop()
        site.disconnect()
        if node_a.poll() is None:
            node_a.terminate()
            try:
                node_a.wait(20)
            except subprocess.TimeoutExpired:  # its stop is not what this test checks
                node_a.kill()
                node_a.wait(10)
        await asyncio.to_thread(database.close)


def node_lease(database: CentralDatabase, node: str) -> bool:
    with database.read() as db:
        row = db.execute("select 1 from node_leases where name = ?", [f"node:{node}"])
        return row.fetchone() is not None


async def publish(
    site: mqtt.Client, stream: list[tuple[str, bytes, str]], at: int = -1, then: Any = None
) -> None:
    """Publish the stream at QoS 1 (calling `then()` after the `at`-th message)."""
    for i, (topic, payload, _) in enumerate(stream):
        site.publish(topic, payload, qos=1)
        if i == at:
            then()
        await asyncio.sleep(0.005)


@pytest.mark.asyncio
async def test_the_sessions_of_a_node_that_stays_down_are_adopted_by_another(
    tmp_path: Path, mosquitto_broker_factory: Any
) -> None:
    broker, site_password = shipped_broker(tmp_path, mosquitto_broker_factory)
    config_a = node_config(tmp_path, broker.port, "a")
    config_b = node_config(tmp_path, broker.port, "b")
    node_a = start_node(config_a, tmp_path)
    database = await asyncio.to_thread(CentralDatabase, config_b.database_path)
    ingest = Ingest(IngestStore(database))
    site = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SITE, protocol=mqtt.MQTTv5)
    site.username_pw_set(SITE, site_password)
    site.max_inflight_messages_set(20)
    try:
        assert await wait_for(lambda: log_has(tmp_path, "a", "session kept", 2), 30)
        leases = Leases(database, "b", config_b.cluster.lease_s)
        async with running_ingest(config_b, ingest, "test", leases):
            await asyncio.sleep(1.0)
            site.connect("127.0.0.1", broker.port)
            site.loop_start()
            stream = events(EVENTS)
            killed = [0.0]

            def kill() -> None:
                node_a.send_signal(signal.SIGKILL)
                node_a.wait(10)
                killed[0] = time.monotonic()

            await publish(site, stream, KILL_AFTER, kill)
            want = {eid for _, _, eid in stream}
            # a stays down: b adopts its sessions once a's lease ran out (2 s) and stores
            # what the broker had handed to a, in flight and queued.
            assert await wait_for(lambda: set(stored(database)) == want, 30), (
                f"{len(want - set(stored(database)))} events not stored"
            )
            all_stored_s = time.monotonic() - killed[0]
            # b ends a's sessions (nothing came for a while) and forgets a.
            assert await wait_for(lambda: not node_lease(database, "a"), 15)
            # a's sessions are ended: everything published now goes to b alone, at once.
            more = events(60)
            await publish(site, more)
            want |= {eid for _, _, eid in more}
            assert await wait_for(lambda: set(stored(database)) == want, 10)
            assert len(stored(database)) == len(want)
            own_sessions(broker)
            print(f"all of a's share stored by b {all_stored_s:.1f} s after a was killed")
    finally:
        site.loop_stop()
        site.disconnect()
        if node_a.poll() is None:
            node_a.kill()
            node_a.wait(10)
        await asyncio.to_thread(database.close)
