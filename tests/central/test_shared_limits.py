"""With several nodes the public view's rate limit, the webhook test limit and the hourly
token audit are kept in the database (`shared_limits`): a client meets one limit whichever
node answers. On both engines; a single node keeps them in memory as before."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from central_support import make_config

from central import schema
from central.api.common import SERVICES
from central.app import create_app
from central.regulation.public import RateLimiter
from central.regulation.scope import Scope
from central.regulation.seed import seed_demo
from central.regulation.sessions import TokenUses
from central.regulation.shared_limits import SharedRateLimiter, SharedTokenUses
from central.storage.db import CentralDatabase, apply_migrations

IP = "203.0.113.5"


@pytest.fixture
def target(central_db_url: str | None, tmp_path: Path) -> str | Path:
    """The database both nodes open: a fresh PostgreSQL database or a SQLite file."""
    return central_db_url or tmp_path / "central.db"


def two_nodes(target: str | Path) -> tuple[CentralDatabase, CentralDatabase]:
    one = CentralDatabase(target)
    with one.lock:
        apply_migrations(schema.migrations, one.db)
    return one, CentralDatabase(target)  # a second process's connections


@pytest.mark.databases("sqlite", "postgres")
def test_hits_on_every_node_meet_one_sliding_window(target: str | Path) -> None:
    one, two = two_nodes(target)
    try:
        a = SharedRateLimiter(one, "public", limit=3, window_s=60.0)
        b = SharedRateLimiter(two, "public", limit=3, window_s=60.0)
        tests = SharedRateLimiter(two, "webhook-tests", limit=3, window_s=60.0)
        assert [n.allow(IP, t) for n, t in ((a, 100.0), (b, 110.0), (a, 120.0))] == [True] * 3
        assert not b.allow(IP, 130.0) and not a.allow(IP, 159.0)  # refusals are not counted
        assert a.allow("198.51.100.7", 130.0)  # another address
        assert tests.allow(IP, 130.0)  # another limit, kept apart by name
        assert b.allow(IP, 160.5)  # the first hit left the window
        assert not a.allow(IP, 161.0)
        assert a.allow(IP, 180.5) and b.allow(IP, 180.6)  # 110 and 120 left it too
        assert not a.allow(IP, 180.7)
        # the same rules as the in-memory limiter
        memory = RateLimiter(3, 60.0)
        times = [100.0, 110.0, 120.0, 130.0, 159.0, 160.5, 161.0, 180.5, 180.6, 180.7]
        assert [memory.allow(IP, t) for t in times] == [
            True, True, True, False, False, True, False, True, True, False,
        ]  # fmt: skip
    finally:
        one.close()
        two.close()


@pytest.mark.databases("sqlite", "postgres")
def test_two_nodes_counting_one_key_at_once_never_pass_the_limit(target: str | Path) -> None:
    one, two = two_nodes(target)
    try:
        limiters = [SharedRateLimiter(db, "public", limit=10, window_s=60.0) for db in (one, two)]
        start = threading.Barrier(2)
        allowed = [0, 0]

        def hammer(i: int) -> None:
            start.wait()
            for k in range(25):
                allowed[i] += limiters[i].allow(IP, 1000.0 + k * 0.01)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(allowed) == 10, allowed
    finally:
        one.close()
        two.close()


@pytest.mark.databases("sqlite", "postgres")
def test_a_tokens_use_is_audited_once_an_hour_whichever_node_sees_it(target: str | Path) -> None:
    one, two = two_nodes(target)
    try:
        a, b = SharedTokenUses(one), SharedTokenUses(two)
        assert a.due("t1", 1000.0) and not b.due("t1", 1000.0) and not a.due("t1", 4599.0)
        assert b.due("t2", 1000.0)  # another token
        assert b.due("t1", 4600.0) and not a.due("t1", 4601.0)
        memory = TokenUses()
        assert memory.due("t1", 0.0) and not memory.due("t1", 3599.0) and memory.due("t1", 3601.0)
    finally:
        one.close()
        two.close()


@pytest.mark.databases("sqlite", "postgres")
@pytest.mark.asyncio
async def test_public_views_webhook_tests_and_token_audits_hold_across_two_nodes(
    aiohttp_client: Any, tmp_path: Path, central_db_url: str | None
) -> None:
    def config(node: str) -> Any:
        return make_config(
            tmp_path, database=central_db_url, web={"public_rate_per_min": 3},
            push={"allow_networks": ["127.0.0.1/32"], "attempts": 1},
            cluster={"nodes": 2, "node_id": node},
        )  # fmt: skip

    a = await aiohttp_client(create_app(config("a")))
    seed = await asyncio.to_thread(seed_demo, a.app[SERVICES])
    b = await aiohttp_client(create_app(config("b")))
    for node in (a, b):
        svc = node.app[SERVICES]
        assert isinstance(svc.public_rate, SharedRateLimiter)
        assert isinstance(svc.webhook_tests, SharedRateLimiter)
        assert isinstance(svc.token_uses, SharedTokenUses)
    # The public view: 3 a minute per address, whichever node answers.
    codes = [(await n.get("/api/v1/public/unknown")).status for n in (a, b, a, b, a)]
    assert codes == [404, 404, 404, 429, 429]
    # An API token used on both nodes: its use is audited once in the hour.
    admin = next(u for u in seed["users"] if u.username == "admin")
    login = await a.post("/api/v1/auth/login", json={
        "username": admin.username, "password": admin.password, "kind": "bearer"})  # fmt: skip
    bearer = {"Authorization": f"Bearer {(await login.json())['token']}"}
    made = await b.post(
        "/api/v1/auth/tokens", headers=bearer,
        json={"name": "nightly export", "password": admin.password},
    )  # fmt: skip
    assert made.status in (200, 201), await made.text()
    api = {"Authorization": f"Bearer {(await made.json())['token']}"}
    for node in (a, b, a, b):
        assert (await node.get("/api/v1/alerts", headers=api)).status == 200
    log = a.app[SERVICES].audit.query(Scope.everything(), action="token_used")
    assert len(log["items"]) == 1, log["items"]
    # Webhook test messages: 6 a minute per admin over both nodes.
    hook = await a.post("/api/v1/webhooks", headers=bearer, json={
        "org_id": seed["orgs"]["county_a"], "url": "http://127.0.0.1:9/hook",
        "format": "json"})  # fmt: skip
    assert hook.status == 201, await hook.text()
    url = f"/api/v1/webhooks/{(await hook.json())['id']}/test"
    codes = [(await n.post(url, headers=bearer)).status for n in (a, b) * 4]
    assert codes == [200] * 6 + [429] * 2


@pytest.mark.asyncio
async def test_a_single_node_keeps_its_limits_in_memory(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path)))
    svc = client.app[SERVICES]
    assert type(svc.public_rate) is RateLimiter and type(svc.webhook_tests) is RateLimiter
    assert type(svc.token_uses) is TokenUses
    with svc.ldb.read() as db:
        assert db.execute("select count(*) from shared_limits").fetchone()[0] == 0
