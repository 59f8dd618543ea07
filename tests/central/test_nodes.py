"""Two central nodes on one database: singletons under leases, push jobs claimed per job.

The nodes share one SQLite file (WAL, `BEGIN IMMEDIATE`, busy timeout), as two processes
on one host would. One node runs in its own process (`python -m central run`) so that it
can be killed with SIGKILL; the other runs in the test's process.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from central_support import Central, call, make_config, start_node
from test_push_delivery import Receiver

from central import schema
from central.alerts.push_jobs import PushJobs
from central.api.common import SERVICES
from central.app import create_app
from central.config import CentralConfig
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.ingest.store import IngestStore
from central.keys import DATABASE
from central.nodes import ALERT_FEED, ARCHIVE_RETENTION, EXPORT_EXPIRY, INTEGRITY_AUDITS, Leases
from central.regulation.seed import seed_demo
from central.regulation.throttle import SharedLoginThrottle
from central.storage.db import CentralDatabase, apply_migrations
from fsv_contract import EventPayload, encode, topics

REPO = Path(__file__).parents[2]
LEASE_S = 2.0
RENEW_S = 0.5
SINGLETONS = {ALERT_FEED, INTEGRITY_AUDITS, EXPORT_EXPIRY, ARCHIVE_RETENTION}


def node_config(tmp_path: Path, node: str, **sections: Any) -> CentralConfig:
    """Node `node`'s config: the shared data folder, its own MQTT client id."""
    cluster = {"nodes": 2, "node_id": node, "lease_s": LEASE_S, "renew_s": RENEW_S}
    return make_config(tmp_path, cluster=cluster, **sections)


def backlog_events(site: str, n: int) -> list[RawMessage]:
    """`n` events of two hours ago (the alert feed's backlog lane takes them)."""
    start = datetime.now(UTC) - timedelta(hours=2)
    out = []
    for i in range(n):
        payload = EventPayload(
            event_id=uuid.uuid4(), site=site, camera="cam1", phase="start", kind="no_chef_hat",
            station="kitchen_prep", rule="hat", start=start - timedelta(seconds=i), score=0.9,
        )  # fmt: skip
        out.append(RawMessage(topics.camera_event(site, "cam1"), encode(payload), time.time()))
    return out


async def wait_for(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110 - test polling
        await asyncio.sleep(0.05)
    assert predicate()


def holders(database: CentralDatabase) -> dict[str, str]:
    """The singletons' leases held now, by name (none before a node created the table)."""
    try:
        with database.read() as db:
            rows = db.execute(
                "select name, holder from node_leases where expires_at >= ?", [time.time()]
            ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {str(name): str(holder) for name, holder in rows if name in SINGLETONS}


@contextmanager
def two_processes(target: str | Path) -> Iterator[tuple[CentralDatabase, CentralDatabase]]:
    """Two processes' connections to one migrated database, closed after the block."""
    one = CentralDatabase(target)
    two = CentralDatabase(target)
    try:
        with one.lock:
            apply_migrations(schema.migrations, one.db)
        yield one, two
    finally:
        one.close()
        two.close()


@pytest.fixture
def target(central_db_url: str | None, tmp_path: Path) -> str | Path:
    """The database both nodes open: a fresh PostgreSQL database or a SQLite file."""
    return central_db_url or tmp_path / "central.db"


@pytest.mark.databases("sqlite", "postgres")
def test_a_lease_has_one_holder_and_moves_when_the_holder_stops_renewing(
    target: str | Path,
) -> None:
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731
    with two_processes(target) as (one, two):
        a = Leases(one, "a", lease_s=15.0, clock=clock)
        b = Leases(two, "b", lease_s=15.0, clock=clock)
        assert a.hold("feed") and not b.hold("feed")
        now[0] += 10.0
        assert a.hold("feed") and not b.hold("feed")  # renewed: 15 s from now again
        now[0] += 14.9
        assert not b.hold("feed") and a.holder("feed") == "a"
        now[0] += 0.2  # a stopped renewing (killed): its hold has ended
        assert b.holder("feed") is None
        assert b.hold("feed") and not a.hold("feed")
        assert a.holder("feed") == "b"
        b.release("feed")  # an orderly stop hands over at once
        assert a.hold("feed")
        a.release("other")  # nothing held: nothing happens
        assert b.holder("feed") == "a"


@pytest.mark.databases("sqlite", "postgres")
def test_push_jobs_are_claimed_by_one_node_and_taken_again_when_a_claim_lapses(
    target: str | Path,
) -> None:
    with two_processes(target) as (one, two):
        now = time.time()
        with one.transaction() as db:
            for i in range(20):
                db.execute(
                    "insert into deliveries (alert_id, target, target_id, status, attempts, "
                    "last_error, created_at, updated_at, next_at, expires_at, urgent) "
                    "values (?, 'webhook', 1, 'pending', 0, '', ?, ?, ?, ?, 0)",
                    [f"alert-{i}", now, now, now - 1, now + 3600],
                )
        a = PushJobs(one, node_id="a", claim_s=30.0)
        b = PushJobs(two, node_id="b", claim_s=30.0)
        got_a = {j.id for j in a.due(now, 15)}
        got_b = {j.id for j in b.due(now, 15)}
        assert len(got_a) == 15 and len(got_b) == 5 and not got_a & got_b
        assert b.due(now, 15, exclude=got_b) == [] and a.due(now, 15, exclude=got_a) == []
        # Nothing is due until the claims lapse (no busy loop over claimed jobs).
        assert b.next_due() == pytest.approx(now + 30.0)
        done = [j for j in a.due(now, 15, exclude=set()) if j.id in got_a][:5]
        for job in done:
            a.settle(job, "ok", 1, "")
        # a died: its other claims lapse and b takes those jobs; settled ones stay settled.
        later = now + 31.0
        taken = {j.id for j in b.due(later, 20)}
        assert taken == got_a - {j.id for j in done} | got_b


async def receiver_app(receiver: Receiver) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def delivered_ids(receiver: Receiver) -> list[str]:
    return [json.loads(r["body"])["alert"]["id"] for r in receiver.to("/hook")]


@pytest.mark.asyncio
async def test_two_nodes_do_each_job_once_and_the_survivor_takes_over_the_singletons(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    receiver = Receiver()
    runner, base = await receiver_app(receiver)
    push = {"attempts": 3, "backoff_first_s": 0.05, "allow_networks": ["127.0.0.1/32"]}
    config_a = node_config(tmp_path, "a", push=push)
    # Node a starts first, in its own process, and takes every singleton's lease.
    seeded = await asyncio.to_thread(CentralDatabase, config_a.database_path)
    node_a = start_node(config_a, tmp_path)
    try:
        await wait_for(lambda: holders(seeded) == dict.fromkeys(SINGLETONS, "a"), 60.0)
        seeded.close()
        config_b = node_config(tmp_path, "b", push=push)
        client = await aiohttp_client(create_app(config_b))
        central = Central(client, await asyncio.to_thread(seed_demo, client.app[SERVICES]))
        status, body = await call(
            central, "admin", "POST", "/api/v1/webhooks",
            json={"org_id": central.seed["orgs"]["city"], "url": f"{base}/hook", "format": "json"},
        )  # fmt: skip
        assert status == 201, body
        database = client.app[DATABASE]
        store = IngestStore(database)
        first = backlog_events("demo-canteen-a", 40)
        await asyncio.to_thread(Ingest(store).process, first)
        # a's alert feed opens the alerts; both nodes' dispatchers take the push jobs.
        await wait_for(lambda: len(receiver.to("/hook")) >= 40)
        await asyncio.sleep(1.0)  # a second delivery of any job would show up by now
        ids = delivered_ids(receiver)
        assert len(ids) == 40 and len(set(ids)) == 40
        assert holders(database)[ALERT_FEED] == "a"

        node_a.send_signal(signal.SIGKILL)  # no release: b waits for the leases to end
        node_a.wait(10)
        killed = time.monotonic()
        await wait_for(lambda: holders(database) == dict.fromkeys(SINGLETONS, "b"), 10.0)
        took_over_s = time.monotonic() - killed
        assert took_over_s <= LEASE_S + RENEW_S + 0.5, took_over_s

        second = backlog_events("demo-canteen-a", 10)
        await asyncio.to_thread(Ingest(store).process, second)
        await wait_for(lambda: len(receiver.to("/hook")) >= 50)
        await asyncio.sleep(1.0)
        ids = delivered_ids(receiver)
        assert len(ids) == 50 and len(set(ids)) == 50
        with database.read() as db:
            rows = db.execute("select status, attempts, count(*) from deliveries group by 1, 2")
            assert [tuple(r) for r in rows] == [("ok", 1, 50)]
        ok_b = central.svc.dispatcher.outcomes.get("ok", 0) if central.svc.dispatcher else 0
        assert ok_b >= 10  # b did the jobs after a's death (and maybe some before)
    finally:
        if node_a.poll() is None:
            node_a.kill()
            node_a.wait(10)
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_session_opened_on_one_node_is_honoured_and_ended_on_the_other(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    a = await aiohttp_client(create_app(node_config(tmp_path, "a")))
    seed = await asyncio.to_thread(seed_demo, a.app[SERVICES])
    b = await aiohttp_client(create_app(node_config(tmp_path, "b")))
    user = next(u for u in seed["users"] if u.username == "admin")
    resp = await a.post(
        "/api/v1/auth/login",
        json={"username": user.username, "password": user.password, "kind": "cookie"},
    )
    assert resp.status == 200, await resp.text()
    csrf = (await resp.json())["csrf_token"]
    cookie = {"Cookie": f"fsv_session={resp.cookies['fsv_session'].value}"}
    me = await b.get("/api/v1/auth/me", headers=cookie)
    assert me.status == 200 and (await me.json())["csrf_token"] == csrf
    # A write on b with the CSRF token a issued is accepted; without it, refused.
    refused = await b.post("/api/v1/auth/logout", headers=cookie)
    assert refused.status == 403
    out = await b.post("/api/v1/auth/logout", headers={**cookie, "X-CSRF-Token": csrf})
    assert out.status in (200, 204)
    assert (await a.get("/api/v1/auth/me", headers=cookie)).status == 401


@pytest.mark.databases("sqlite", "postgres")
def test_login_failures_on_every_node_meet_one_throttle(target: str | Path) -> None:
    with two_processes(target) as (one, two):
        limits = {"pair_free": 3, "client_free": 100, "first_delay_s": 2.0, "forget_s": 60.0}
        a = SharedLoginThrottle(one, "users", **limits)
        b = SharedLoginThrottle(two, "users", **limits)
        sites = SharedLoginThrottle(two, "sites", **limits)
        now = 1000.0
        for throttle in (a, b, a):
            assert throttle.retry_after("admin", "203.0.113.5", now) == 0.0
            throttle.failed("admin", "203.0.113.5", now)
        assert b.retry_after("admin", "203.0.113.5", now) == pytest.approx(2.0)
        assert a.retry_after("Admin", "203.0.113.5", now + 1) == pytest.approx(1.0)
        assert a.retry_after("admin", "198.51.100.7", now) == 0.0  # the owner elsewhere
        assert sites.retry_after("admin", "203.0.113.5", now) == 0.0  # kept apart by name
        b.failed("admin", "203.0.113.5", now + 2)
        assert a.retry_after("admin", "203.0.113.5", now + 2) == pytest.approx(4.0)
        b.succeeded("admin", "203.0.113.5")
        assert a.retry_after("admin", "203.0.113.5", now + 2) == 0.0


@pytest.mark.databases("sqlite", "postgres")
def test_guesses_begun_at_once_on_two_nodes_are_counted_before_they_are_answered(
    target: str | Path,
) -> None:
    with two_processes(target) as (one, two):
        limits = {"pair_free": 3, "client_free": 100, "first_delay_s": 2.0, "forget_s": 60.0}
        nodes = [SharedLoginThrottle(db, "users", **limits) for db in (one, two)]
        now = 1000.0
        with ThreadPoolExecutor(8) as pool:
            waits = list(
                pool.map(lambda i: nodes[i % 2].begin("admin", "203.0.113.5", now), range(8))
            )
        assert sorted(waits) == [0.0] * 3 + [2.0] * 5  # three free guesses, whatever the node
        assert nodes[1].begin("admin", "198.51.100.7", now) == 0.0  # the owner elsewhere
        nodes[0].succeeded("admin", "198.51.100.7")  # right: its count is taken back
        for i in range(99):
            assert nodes[i % 2].begin(f"user{i}", "198.51.100.7", now) == 0.0
            nodes[i % 2].succeeded(f"user{i}", "198.51.100.7")
        assert nodes[0].retry_after("anybody", "198.51.100.7", now) == 0.0


@pytest.mark.asyncio
async def test_a_guesser_meets_one_throttle_whichever_node_answers(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    web_limits = {"login_max_failures": 3, "login_delay_s": 5}
    a = await aiohttp_client(create_app(node_config(tmp_path, "a", web=web_limits)))
    await asyncio.to_thread(seed_demo, a.app[SERVICES])
    b = await aiohttp_client(create_app(node_config(tmp_path, "b", web=web_limits)))
    guess = {"username": "admin", "password": "not-the-password", "kind": "bearer"}
    for node in (a, b, a):
        resp = await node.post("/api/v1/auth/login", json=guess)
        assert resp.status == 401
    for node in (b, a):
        resp = await node.post("/api/v1/auth/login", json=guess)
        assert resp.status == 429, await resp.text()
