"""Login throttling per (account, client) and per client, and the trusted-proxy client address."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import time
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from central_support import Central, make_config
from pytest_aiohttp.plugin import AiohttpClient

from central.api.common import SERVICES
from central.app import create_app
from central.config import BrokerAdminConfig
from central.ingest.accounts import set_password
from central.regulation.scope import Scope
from central.regulation.seed import seed_demo
from central.regulation.throttle import LoginThrottle, client_address

PROXY = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]
ATTACKER, OWNER = "203.0.113.5", "198.51.100.7"


def test_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    t = LoginThrottle(pair_free=3, client_free=10, first_delay_s=2, max_delay_s=30, forget_s=60)
    now = 1000.0
    waits = []
    for _ in range(8):
        assert t.retry_after("admin", ATTACKER, now) == 0
        t.failed("admin", ATTACKER, now)
        waits.append(t.retry_after("admin", ATTACKER, now))
        now += waits[-1]
    assert waits == [0, 0, 2, 4, 8, 16, 30, 30]


def test_a_correct_password_from_a_new_client_is_never_held_back() -> None:
    t = LoginThrottle(pair_free=3, client_free=10, first_delay_s=2, max_delay_s=900, forget_s=60)
    for i in range(50):  # an attacker hammering the account from many addresses
        t.failed("admin", f"203.0.113.{i % 5}", 1000.0 + i)
    assert t.retry_after("admin", "203.0.113.4", 1050) > 0
    assert t.retry_after("admin", OWNER, 1050) == 0  # the owner, elsewhere, signs in at once
    assert t.retry_after("Admin", "203.0.113.1", 1050) > 0  # account names fold case


def test_one_client_guessing_many_accounts_is_held_back_per_client() -> None:
    t = LoginThrottle(pair_free=5, client_free=10, first_delay_s=2, max_delay_s=900, forget_s=60)
    for i in range(9):
        t.failed(f"user{i}", ATTACKER, 1000.0)
    assert t.begin("user0", ATTACKER, 1000.0) == 0  # the tenth attempt, counted as it begins
    t.succeeded("user0", ATTACKER)  # one valid login does not unlock the guessing address
    t.failed("user9", ATTACKER, 1000.0)
    assert t.retry_after("somebody-else", ATTACKER, 1000.0) == pytest.approx(2.0)
    assert t.begin("somebody-else", ATTACKER, 1000.0) > 0
    assert t.retry_after("somebody-else", OWNER, 1000.0) == 0


def test_attempts_count_when_they_begin_so_a_burst_cannot_outrun_the_count() -> None:
    t = LoginThrottle(pair_free=3, client_free=10, first_delay_s=2, max_delay_s=900, forget_s=60)
    # Three guesses begun together, none answered yet: the fourth already waits.
    assert [t.begin("admin", ATTACKER, 1000.0) for _ in range(4)] == [0, 0, 0, 2.0]
    assert t.begin("admin", OWNER, 1000.0) == 0  # the owner, elsewhere, is not held back
    t.succeeded("admin", OWNER)
    assert t.retry_after("admin", OWNER, 1000.0) == 0
    for i in range(7):  # a right password takes back its own count, and only that
        assert t.begin(f"user{i}", OWNER, 1000.0) == 0
        t.succeeded(f"user{i}", OWNER)
    assert t.retry_after("anybody", OWNER, 1000.0) == 0


def test_failures_are_forgotten_after_a_quiet_spell() -> None:
    t = LoginThrottle(pair_free=2, client_free=10, first_delay_s=2, max_delay_s=900, forget_s=60)
    for _ in range(3):
        t.failed("bob", ATTACKER, 1000.0)
    assert t.retry_after("bob", ATTACKER, 1003.0) == pytest.approx(1.0)
    assert t.retry_after("bob", ATTACKER, 1004.0) == 0
    t.failed("bob", ATTACKER, 1004.0)  # still remembered: the next delay is longer
    assert t.retry_after("bob", ATTACKER, 1004.0) == pytest.approx(8.0)
    assert t.retry_after("bob", ATTACKER, 1004.0 + 8 + 61) == 0
    t.failed("bob", ATTACKER, 1100.0)  # forgotten: counting starts again
    assert t.retry_after("bob", ATTACKER, 1100.0) == 0


def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("127.0.0.1", f"{ATTACKER}", []) == "127.0.0.1"
    assert client_address("192.0.2.9", f"{ATTACKER}", PROXY) == "192.0.2.9"  # untrusted peer
    assert client_address("10.1.2.3", ATTACKER, PROXY) == ATTACKER
    # The client may send its own header; only the hop the proxy appended counts.
    assert client_address("10.1.2.3", f"1.1.1.1, {OWNER}", PROXY) == OWNER
    assert client_address("10.1.2.3", f"{OWNER}, 10.9.9.9", PROXY) == OWNER  # proxy chain
    assert client_address("10.1.2.3", "not-an-ip", PROXY) == "10.1.2.3"
    assert client_address("10.1.2.3", None, PROXY) == "10.1.2.3"


@pytest_asyncio.fixture
async def behind_proxy(
    aiohttp_client: AiohttpClient, tmp_path: Path, central_db_url: str | None
) -> Central:
    """The app behind a trusted proxy on 127.0.0.1, quick delays, a site's broker login."""
    broker = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_password(broker, "demo-canteen-a", "pw-site")
    files = {"password_file": str(broker.password_file), "acl_file": str(broker.acl_file)}
    web = {"trusted_proxies": ["127.0.0.1/32"], "login_delay_s": 1.0, "login_max_failures": 3}
    client = await aiohttp_client(
        create_app(make_config(tmp_path, database=central_db_url, broker=files, web=web))
    )
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    return Central(client, seed)


async def _login(central: Central, password: str, client: str) -> tuple[int, float]:
    resp = await central.client.post(
        "/api/v1/auth/login",
        json={"username": "admin", "password": password, "kind": "bearer"},
        headers={"X-Forwarded-For": client},
    )
    return resp.status, float(resp.headers.get("Retry-After", 0))


@pytest.mark.asyncio
async def test_lockout_cannot_be_turned_against_the_owner(behind_proxy: Central) -> None:
    central, right = behind_proxy, behind_proxy.passwords["admin"]
    for _ in range(3):
        assert (await _login(central, "guess-123456", ATTACKER))[0] == 401
    status, retry = await _login(central, right, ATTACKER)
    assert status == 429 and 1 <= retry <= 2  # about the first delay, 1 s
    assert (await _login(central, right, OWNER)) == (200, 0)  # the owner, from their desk

    await asyncio.sleep(1.3)  # the attacker waits out the delay and fails again: it doubles
    assert (await _login(central, "guess-123456", ATTACKER))[0] == 401
    status, retry = await _login(central, "guess-123456", ATTACKER)
    assert status == 429 and retry >= 2  # about 2 s now
    log = await asyncio.to_thread(
        lambda: central.svc.audit.query(Scope.everything(), action="login_failed")
    )
    ips = {(e["ip"], e["detail"]["reason"]) for e in log["items"]}
    assert (ATTACKER, "throttled") in ips and (ATTACKER, "bad credentials") in ips
    assert not any(ip == OWNER for ip, _ in ips)


async def _put(central: Central, password: str, client: str) -> int:
    login = base64.b64encode(f"demo-canteen-a:{password}".encode()).decode()
    resp = await central.client.put(
        f"/api/v1/media/{uuid4()}/snapshot.jpg",
        data=b"\xff\xd8\xff",
        headers={
            "Authorization": f"Basic {login}",
            "X-Content-SHA256": "0" * 64,
            "X-Forwarded-For": client,
        },
    )
    return resp.status


@pytest.mark.asyncio
async def test_site_media_uploads_are_throttled_by_site_login_failures(
    behind_proxy: Central,
) -> None:
    for _ in range(3):
        assert await _put(behind_proxy, "wrong-password", ATTACKER) == 401
    assert await _put(behind_proxy, "pw-site", ATTACKER) == 429
    assert await _put(behind_proxy, "pw-site", OWNER) == 404  # signed in; no such event
    started = time.monotonic()
    while await _put(behind_proxy, "pw-site", ATTACKER) == 429:
        assert time.monotonic() - started < 10
        await asyncio.sleep(0.2)
    assert await _put(behind_proxy, "pw-site", ATTACKER) == 404


async def _burst(central: Central, usernames: list[str], client: str) -> list[int]:
    async def one(username: str) -> int:
        resp = await central.client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": "guess-123456", "kind": "bearer"},
            headers={"X-Forwarded-For": client},
        )
        return resp.status

    return list(await asyncio.gather(*(one(u) for u in usernames)))


@pytest.mark.asyncio
async def test_a_burst_of_guesses_at_once_meets_the_throttle(behind_proxy: Central) -> None:
    central = behind_proxy
    statuses = await _burst(central, ["admin"] * 12, ATTACKER)  # sent together, not in turn
    assert statuses.count(401) == 3 and statuses.count(429) == 9  # 3 free failures, then waits
    # Guesses at many accounts at once meet the client's own limit (20 free) the same way.
    statuses = await _burst(central, [f"user{i}" for i in range(30)], "203.0.113.6")
    assert statuses.count(401) == 20 and statuses.count(429) == 10
    assert (await _login(central, central.passwords["admin"], OWNER)) == (200, 0)
    log = await asyncio.to_thread(
        lambda: central.svc.audit.query(Scope.everything(), action="login_failed", limit=100)
    )
    reasons = [e["detail"]["reason"] for e in log["items"]]
    assert reasons.count("bad credentials") == 23 and reasons.count("throttled") == 19


@pytest.mark.asyncio
async def test_a_burst_of_site_logins_at_once_meets_the_throttle(behind_proxy: Central) -> None:
    statuses = await asyncio.gather(
        *(_put(behind_proxy, "wrong-password", ATTACKER) for _ in range(10))
    )
    assert statuses.count(401) == 3 and statuses.count(429) == 7
    assert await _put(behind_proxy, "pw-site", OWNER) == 404  # signed in; no such event


@pytest.mark.asyncio
async def test_guesses_from_many_addresses_of_one_ipv6_network_meet_one_throttle(
    behind_proxy: Central,
) -> None:
    # One IPv6 subscriber holds a whole /64: each guess from another of its addresses.
    guesses = [await _login(behind_proxy, "guess-123456", f"2001:db8:5:7::{i:x}") for i in range(6)]
    assert [status for status, _ in guesses] == [401, 401, 401, 429, 429, 429]
    owner = behind_proxy.passwords["admin"]
    assert (await _login(behind_proxy, owner, "2001:db8:5:8::1"))[0] == 200  # the next /64


def test_an_ipv6_client_is_throttled_by_its_64_network() -> None:
    t = LoginThrottle(pair_free=2, client_free=10, first_delay_s=2, max_delay_s=900, forget_s=60)
    t.failed("admin", "2001:db8::1", 1000.0)
    t.failed("admin", "2001:db8::ffff:1", 1000.0)
    assert t.retry_after("admin", "2001:db8:0:0:abcd::9", 1000.0) == pytest.approx(2.0)
    assert t.retry_after("admin", "2001:db8:0:1::1", 1000.0) == 0
    t.failed("admin", "203.0.113.8", 1000.0)
    t.failed("admin", "203.0.113.8", 1000.0)
    assert t.retry_after("admin", "203.0.113.9", 1000.0) == 0  # IPv4: the address itself
