"""No request into central's own network on a user's behalf: a real local listener gets nothing."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from central_support import Central, call, make_config

from central.alerts.endpoint_policy import EndpointPolicy, PolicyResolver, is_public
from central.api.common import SERVICES
from central.app import create_app
from central.errors import EndpointRefused
from central.regulation.seed import seed_demo

pytestmark = pytest.mark.asyncio
KEYS = {"p256dh": "B" + "A" * 86, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}


class Listener:
    """An internal HTTP service on 127.0.0.1 that records every request reaching it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if request.path == "/redirect":
            raise web.HTTPFound("/target")
        return web.Response(text="internal secret reply")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture
async def listener() -> AsyncIterator[Listener]:
    server = Listener()
    await server.start()
    yield server
    await server.stop()


async def start_central(aiohttp_client: Any, tmp_path: Path, allow: list[str]) -> Central:
    config = make_config(
        tmp_path, push={"attempts": 1, "backoff_first_s": 0.05, "allow_networks": allow}
    )
    client = await aiohttp_client(create_app(config))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    return Central(client, seed)


def internal_urls(port: int) -> list[str]:
    """Ways to name the listener (or other internal hosts) an attacker would try."""
    return [
        f"http://127.0.0.1:{port}/x",
        f"https://127.0.0.1:{port}/x",
        f"http://localhost:{port}/x",
        f"https://localhost:{port}/x",
        f"http://127.1:{port}/x",
        f"http://2130706433:{port}/x",
        f"http://0x7f000001:{port}/x",
        f"http://[::1]:{port}/x",
        f"http://[::ffff:127.0.0.1]:{port}/x",
        f"http://0.0.0.0:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://192.168.1.1/hook",
        "https://[fd00::1]/hook",
        f"https://user:pw@127.0.0.1:{port}/x",
        "http://93.184.215.14/hook",  # public, but plain http
        "ftp://93.184.215.14/hook",
    ]


async def test_public_means_globally_routable() -> None:
    for text in ("8.8.8.8", "2001:4860:4860::8888"):
        assert is_public(ipaddress.ip_address(text))
    for text in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    ):
        assert not is_public(ipaddress.ip_address(text)), text


async def test_resolver_refuses_a_name_of_the_loopback() -> None:
    resolver = PolicyResolver(EndpointPolicy())
    with pytest.raises(EndpointRefused):
        await resolver.resolve("localhost", 80)
    allowed = PolicyResolver(EndpointPolicy([ipaddress.ip_network("127.0.0.0/8")]))
    assert {r["host"] for r in await allowed.resolve("localhost", 80)} <= {"127.0.0.1", "::1"}


async def test_nobody_registers_an_internal_endpoint(
    aiohttp_client: Any, tmp_path: Path, listener: Listener
) -> None:
    central = await start_central(aiohttp_client, tmp_path, [])
    orgs = central.seed["orgs"]
    for url in internal_urls(listener.port):
        for user in ("staff-canteen-a", "inspector-a", "admin"):
            status, body = await call(
                central,
                user,
                "POST",
                "/api/v1/push/subscriptions",
                json={"endpoint": url, "keys": KEYS},
            )
            assert status == 400, (user, url, body)
        status, body = await call(
            central, "admin", "POST", "/api/v1/webhooks", json={"org_id": orgs["city"], "url": url}
        )
        assert status == 400, (url, body)
    # Webhooks are the admins' alone.
    for user in ("city-monitor", "inspector-a", "staff-canteen-a"):
        status, _ = await call(
            central,
            user,
            "POST",
            "/api/v1/webhooks",
            json={"org_id": orgs["city"], "url": "https://hooks.example.org/x"},
        )
        assert status == 403
        status, _ = await call(central, user, "GET", "/api/v1/webhooks")
        assert status == 403
    await asyncio.sleep(0.2)
    assert listener.paths == []


async def test_delivery_checks_again_and_never_reaches_the_listener(
    aiohttp_client: Any, tmp_path: Path, listener: Listener
) -> None:
    central = await start_central(aiohttp_client, tmp_path, [])
    # Rows as an earlier allow-list (or a name re-pointed since) would have left them.
    now = time.time()
    with central.svc.ldb.transaction() as db:
        db.table("webhooks").insert(
            {
                "org_id": central.seed["orgs"]["city"],
                "org_path": "/",
                "url": f"http://127.0.0.1:{listener.port}/hook",
                "format": "json",
                "secret": "",
                "filters": "{}",
                "enabled": 1,
                "created_at": now,
            }
        )
        db.table("webhooks").insert(
            {
                "org_id": central.seed["orgs"]["city"],
                "org_path": "/",
                "url": f"https://localhost:{listener.port}/hook",
                "format": "json",
                "secret": "",
                "filters": "{}",
                "enabled": 1,
                "created_at": now,
            }
        )
    alert_id = await central.event("demo-canteen-a", "cam1")
    assert central.svc.dispatcher is not None
    await central.svc.dispatcher.idle()
    assert listener.paths == []
    _, admin_view = await call(central, "admin", "GET", f"/api/v1/alerts/{alert_id}/deliveries")
    hooks = [d for d in admin_view["items"] if d["target"] == "webhook"]
    assert len(hooks) == 2 and all(d["status"] == "failed" for d in hooks)
    assert all("public" in d["last_error"] for d in hooks)
    # Others see delivered/failed only: no host, port or reply.
    status, view = await call(
        central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}/deliveries"
    )
    assert status == 200 and view["items"]
    for item in view["items"]:
        assert set(item) == {"target", "status", "updated_at"}
        assert item["status"] in ("delivered", "failed")
    assert str(listener.port) not in str(view)


async def test_allow_listed_receiver_gets_no_redirect_followed(
    aiohttp_client: Any, tmp_path: Path, listener: Listener
) -> None:
    central = await start_central(aiohttp_client, tmp_path, ["127.0.0.1/32"])
    status, body = await call(
        central,
        "admin",
        "POST",
        "/api/v1/webhooks",
        json={
            "org_id": central.seed["orgs"]["city"],
            "url": f"http://127.0.0.1:{listener.port}/redirect",
        },
    )
    assert status == 201, body
    # [::1] is not on the list even though 127.0.0.1 is.
    status, _ = await call(
        central,
        "admin",
        "POST",
        "/api/v1/webhooks",
        json={"org_id": central.seed["orgs"]["city"], "url": f"http://[::1]:{listener.port}/x"},
    )
    assert status == 400
    await central.event("demo-canteen-a", "cam1")
    assert central.svc.dispatcher is not None
    await central.svc.dispatcher.idle()
    assert listener.paths == ["/redirect"]  # the 302 to /target was not followed
