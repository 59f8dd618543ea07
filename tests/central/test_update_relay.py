"""Two central nodes on one PostgreSQL database: every node's pages hear every node's changes.

Both nodes are `central-server run` processes. Node a holds the alert feed, so the alerts of
events stored in the database are opened (and announced) by a; the update sockets are opened
on node b, which hears them through LISTEN/NOTIFY and applies each socket's scope itself.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from central_support import node_config, seed_nodes, start_node

from central.alerts import update_relay
from central.alerts.updates import RESYNC_CLOSE_CODE
from central.config import CentralConfig
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.ingest.store import IngestStore
from central.nodes import ALERT_FEED
from central.storage.db import CentralDatabase
from fsv_contract import EventPayload, encode, topics
from testbed.ports import free_port


def relay_node(tmp_path: Path, url: str, node: str, port: int) -> CentralConfig:
    return node_config(tmp_path, node, port, lease_s=2.0, renew_s=0.5, database=url)


def store_event(database: CentralDatabase, site: str) -> str:
    """A live event stored as ingest stores it; the alert feed's holder opens its alert."""
    payload = EventPayload(
        event_id=uuid.uuid4(), site=site, camera="cam1", phase="start", kind="no_chef_hat",
        station="kitchen_prep", rule="hat", start=datetime.now(UTC), score=0.9,
    )  # fmt: skip
    raw = RawMessage(topics.camera_event(site, "cam1"), encode(payload), time.time())
    Ingest(IngestStore(database)).process([raw])
    return str(payload.event_id)


def feed_holder(database: CentralDatabase) -> str | None:
    with database.read() as db:
        row = db.execute(
            "select holder from node_leases where name = ? and expires_at >= ?",
            [ALERT_FEED, time.time()],
        ).fetchone()
    return str(row[0]) if row else None


async def until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def receive(ws: aiohttp.ClientWebSocketResponse, within: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    out: dict[str, Any] = json.loads(msg.data)
    return out


async def nothing_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            msg = await ws.receive()
            raise AssertionError(f"unexpected message {msg}")


class Node:
    """One running node reached over HTTP: sign in, open update sockets."""

    def __init__(self, http: aiohttp.ClientSession, port: int, passwords: dict[str, str]):
        self.http = http
        self.base = f"http://127.0.0.1:{port}"
        self.passwords = passwords

    async def up(self) -> bool:
        try:
            async with self.http.get(f"{self.base}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def socket(self, username: str) -> aiohttp.ClientWebSocketResponse:
        login = {"username": username, "password": self.passwords[username], "kind": "bearer"}
        async with self.http.post(f"{self.base}/api/v1/auth/login", json=login) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["token"]
        ws = await self.http.ws_connect(
            f"{self.base}/api/v1/updates", headers={"Authorization": f"Bearer {token}"}
        )
        assert (await receive(ws))["type"] == "hello"
        return ws


@pytest.mark.asyncio
@pytest.mark.databases("postgres")
async def test_a_page_on_one_node_hears_an_alert_another_node_opened_in_its_scope_only(
    central_db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    database = await asyncio.to_thread(CentralDatabase, central_db_url)
    ports = {"a": free_port(), "b": free_port()}
    config_a = relay_node(tmp_path, central_db_url, "a", ports["a"])
    seed = await asyncio.to_thread(seed_nodes, database, config_a)
    passwords = {u.username: u.password for u in seed["users"]}
    # a starts first and takes the alert feed; b starts once a holds it.
    processes.append(start_node(config_a, tmp_path))

    async def a_feeds() -> bool:
        return await asyncio.to_thread(feed_holder, database) == "a"

    await until(a_feeds, 60, "node a to hold the alert feed")
    processes.append(start_node(relay_node(tmp_path, central_db_url, "b", ports["b"]), tmp_path))
    async with aiohttp.ClientSession() as http:
        a, b = Node(http, ports["a"], passwords), Node(http, ports["b"], passwords)
        await until(b.up, 60, "node b to answer")
        county_a_on_b = await b.socket("inspector-a")
        county_b_on_b = await b.socket("inspector-b")
        city_on_b = await b.socket("city-monitor")
        county_a_on_a = await a.socket("inspector-a")
        await asyncio.sleep(1.0)  # b's listener is up (it starts with the node)

        alert_id = await asyncio.to_thread(store_event, database, "demo-canteen-a")
        started = time.monotonic()
        for ws in (county_a_on_b, city_on_b, county_a_on_a):
            created = await receive(ws)
            assert created["type"] == "alert" and created["op"] == "created", created
            assert created["alert"]["id"] == alert_id
            counter = await receive(ws)
            assert counter == {
                "type": "camera", "site_id": "demo-canteen-a", "camera_id": "cam1",
                "open_alerts": 1,
            }  # fmt: skip
        print(f"alert opened on node a reached node b's pages {time.monotonic() - started:.2f} s "
              "after it was stored")  # fmt: skip
        assert await asyncio.to_thread(feed_holder, database) == "a"  # a opened it, not b
        # County B's inspector on b hears nothing of county A's alert ...
        await nothing_within(county_b_on_b, 1.0)
        # ... and hears county B's own, which county A's inspector does not.
        other = await asyncio.to_thread(store_event, database, "demo-canteen-b")
        assert (await receive(county_b_on_b))["alert"]["id"] == other
        assert (await receive(city_on_b))["alert"]["id"] == other
        await nothing_within(county_a_on_b, 1.0)

        # b's listening connection is cut: b's pages are told to re-sync (they may have
        # missed changes), b listens again and the next alert reaches its new sockets.
        with psycopg.connect(central_db_url, autocommit=True) as conn:
            cut = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = 'fsv-updates-in-b'"
            ).fetchall()
        assert len(cut) == 1
        async with asyncio.timeout(10):
            closing = await county_a_on_b.receive()
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == RESYNC_CLOSE_CODE
        again = await b.socket("inspector-a")
        third = await asyncio.to_thread(store_event, database, "demo-canteen-a")
        assert (await receive(again))["alert"]["id"] == third
        for ws in (again, county_b_on_b, city_on_b, county_a_on_a):
            await ws.close()
    database.close()


def test_a_change_too_big_for_a_notification_is_sent_as_a_resync_of_its_org() -> None:
    small = json.loads(update_relay.encode("a", "/1/2/", {"type": "camera", "state": "online"}))
    assert small == {"n": "a", "o": "/1/2/", "m": {"type": "camera", "state": "online"}}
    big = {"type": "alert", "alert": {"id": "x", "note": "食" * 3000}}  # 9,000 bytes in UTF-8
    assert json.loads(update_relay.encode("a", "/1/2/", big)) == {
        "n": "a", "o": "/1/2/", "resync": True
    }  # fmt: skip
