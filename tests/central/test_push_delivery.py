"""Push to a local receiver: Web Push (VAPID, aes128gcm), webhooks, scope, filters, retries."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import http_ece
import pytest
import pytest_asyncio
from aiohttp import web
from central_support import Central, call, make_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from central.api.common import SERVICES
from central.app import create_app
from central.cli import main as cli_main
from central.regulation.scope import Scope
from central.regulation.seed import seed_demo

pytestmark = pytest.mark.asyncio


class Receiver:
    """A push service and webhook endpoint on 127.0.0.1 that records what it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first: dict[str, list[int]] = {}
        self.gate: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if self.gate is not None:
            await self.gate.wait()
        codes = self.fail_first.get(request.path)
        if codes:
            return web.Response(status=codes.pop(0))
        return web.Response(status=201)

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Phone:
    """A browser's push subscription: its own key pair and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = b"0123456789abcdef"
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.json = {"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return dict(json.loads(plain))


@pytest_asyncio.fixture
async def pushing(central_db_url: str | None, aiohttp_client: Any, tmp_path: Path) -> Any:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    key_file = tmp_path / "vapid.pem"
    assert cli_main(["vapid-keys", "--out", str(key_file)]) == 0
    config = make_config(
        tmp_path,
        database=central_db_url,
        push={
            "vapid_private_key_file": str(key_file),
            "vapid_subject": "mailto:ops@example.org",
            "attempts": 3,
            "backoff_first_s": 0.05,
            # The receiver is on the loopback: the admin's allow-list lets push reach it.
            "allow_networks": ["127.0.0.1/32"],
        },
    )
    client = await aiohttp_client(create_app(config))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    yield Central(client, seed), receiver, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_web_push_and_webhooks_reach_only_their_scope(pushing: Any) -> None:
    central, receiver, base = pushing
    phones = {
        u: Phone(f"{base}/push/{u}")
        for u in ("inspector-a", "inspector-b", "staff-canteen-a", "city-monitor")
    }
    for user, phone in phones.items():
        status, _ = await call(central, user, "POST", "/api/v1/push/subscriptions", json=phone.json)
        assert status == 201
    status, _ = await call(
        central, "staff-canteen-a", "PUT", "/api/v1/me/push-filters", json={"kinds": ["rodent"]}
    )
    assert status == 200
    orgs = central.seed["orgs"]
    hooks = [
        (orgs["county_a"], f"{base}/hook/wecom", "wecom", ""),
        (orgs["county_b"], f"{base}/hook/ding", "dingtalk", "SEC"),
        (orgs["city"], f"{base}/hook/json", "json", "k"),
    ]
    for org_id, url, fmt, secret in hooks:
        status, _ = await call(
            central,
            "admin",
            "POST",
            "/api/v1/webhooks",
            json={"org_id": org_id, "url": url, "format": fmt, "secret": secret},
        )
        assert status == 201
    receiver.fail_first["/hook/json"] = [500, 503]

    alert_id = await central.event("demo-canteen-a", "cam1")
    await central.svc.dispatcher.idle()

    got = {r["path"] for r in receiver.requests}
    assert got == {"/push/inspector-a", "/push/city-monitor", "/hook/wecom", "/hook/json"}
    _, server_key = await call(central, "admin", "GET", "/api/v1/push/vapid-public-key")
    for user in ("inspector-a", "city-monitor"):
        (req,) = receiver.to(f"/push/{user}")
        headers = req["headers"]
        assert headers["Content-Encoding"] == "aes128gcm" and int(headers["TTL"]) > 0
        auth = headers["Authorization"]
        assert auth.startswith("vapid t=") and f"k={server_key['public_key']}" in auth
        assert Vapid02.verify(auth)
        claims = json.loads(base64.urlsafe_b64decode(auth.split("t=")[1].split(".")[1] + "=="))
        assert claims["aud"] == base and claims["sub"] == "mailto:ops@example.org"
        assert claims["exp"] > time.time()
        assert alert_id.encode() not in req["body"]  # encrypted on the wire
        message = phones[user].decrypt(req["body"])
        assert (
            message["alert"]["id"] == alert_id
            and message["alert"]["enterprise"] == "中卫市第一小学食堂"
        )
    wecom = json.loads(receiver.to("/hook/wecom")[0]["body"])
    assert wecom["msgtype"] == "markdown" and alert_id in wecom["markdown"]["content"]
    assert len(receiver.to("/hook/json")) == 3  # 500, 503, then delivered
    _, deliveries = await call(central, "admin", "GET", f"/api/v1/alerts/{alert_id}/deliveries")
    by_target = {(d["target"], d["status"], d["attempts"]) for d in deliveries["items"]}
    assert ("webhook", "ok", 3) in by_target and ("webpush", "ok", 1) in by_target
    # inspector-a cannot see deliveries of county B's alerts
    b_alert = await central.event("demo-canteen-b", "cam1", kind="rodent", severity="critical")
    await central.svc.dispatcher.idle()
    assert {r["path"] for r in receiver.requests[-4:]} == {
        "/push/inspector-b",
        "/push/city-monitor",
        "/hook/ding",
        "/hook/json",
    }
    ding = receiver.to("/hook/ding")[0]
    assert ding["query"]["sign"] and json.loads(ding["body"])["msgtype"] == "markdown"
    status, _ = await call(central, "inspector-a", "GET", f"/api/v1/alerts/{b_alert}/deliveries")
    assert status == 404


async def test_gone_subscription_is_dropped_and_push_never_blocks_ingest(pushing: Any) -> None:
    central, receiver, base = pushing
    phone = Phone(f"{base}/push/gone")
    await call(central, "inspector-a", "POST", "/api/v1/push/subscriptions", json=phone.json)
    receiver.fail_first["/push/gone"] = [410]
    receiver.gate = asyncio.Event()
    started = time.monotonic()
    alert_id = await central.event("demo-canteen-a", "cam1")
    # The alert is stored and ingest's hook returned while the receiver still holds the request.
    status, alert = await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}")
    assert status == 200 and alert["state"] == "new"
    deadline = started + 5
    while not receiver.requests and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a test receiver
        await asyncio.sleep(0.02)
    assert len(receiver.requests) == 1 and not receiver.gate.is_set()
    receiver.gate.set()
    await central.svc.dispatcher.idle()
    status, subs = await call(central, "inspector-a", "GET", "/api/v1/push/subscriptions")
    assert subs["items"] == []
    _, deliveries = await call(central, "admin", "GET", f"/api/v1/alerts/{alert_id}/deliveries")
    assert [(d["status"], d["attempts"]) for d in deliveries["items"]] == [("gone", 1)]


async def test_a_password_reset_or_disabled_account_stops_pushes_to_its_old_phones(
    pushing: Any,
) -> None:
    central, receiver, base = pushing
    users = {u.username: u.id for u in central.svc.users.list_users(Scope.everything())}
    for user in ("inspector-a", "city-monitor"):
        phone = Phone(f"{base}/push/{user}")
        status, _ = await call(central, user, "POST", "/api/v1/push/subscriptions", json=phone.json)
        assert status == 201
    await central.event("demo-canteen-a", "cam1")
    await central.svc.dispatcher.idle()
    assert {r["path"] for r in receiver.requests} == {"/push/inspector-a", "/push/city-monitor"}

    # inspector-a's phone is lost: the admin resets the password; city-monitor leaves, is
    # disabled, and comes back enabled later. Neither old phone hears of alerts any more.
    changes = [
        ("inspector-a", {"password": "new-secret-2026"}),
        ("city-monitor", {"disabled": True}),
    ]
    for user, change in changes:
        status, _ = await call(
            central, "admin", "PATCH", f"/api/v1/users/{users[user]}", json=change
        )
        assert status == 200
    status, _ = await call(
        central,
        "admin",
        "PATCH",
        f"/api/v1/users/{users['city-monitor']}",
        json={"disabled": False},
    )
    assert status == 200
    receiver.requests.clear()
    await central.event("demo-canteen-a", "cam1")
    await central.svc.dispatcher.idle()
    assert receiver.requests == []
    central.forget("city-monitor")
    status, subs = await call(central, "city-monitor", "GET", "/api/v1/push/subscriptions")
    assert status == 200 and subs["items"] == []
