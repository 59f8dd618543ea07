"""SSRF, MQTT topic/ACL abuse and uplink tokens against the running central and broker."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from security_tally import Tally
from security_targets import Targets
from security_world import CAMERA, SITE_A, SITE_B, SecurityWorld, wait_until

from fsv_contract import EventPayload, encode, topics
from fsv_contract.video import TOKEN_HEADER, UPLINK_PATH


class Listener:
    """An internal HTTP service on the loopback that counts every request reaching it."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"internal secret reply")

            do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as server:
        yield server


def internal_urls(port: int) -> list[str]:
    """Spellings of the listener and of other internal hosts an attacker would try."""
    return [
        f"http://127.0.0.1:{port}/x",
        f"https://127.0.0.1:{port}/x",
        f"http://localhost:{port}/x",
        f"http://127.1:{port}/x",
        f"http://2130706433:{port}/x",
        f"http://0x7f000001:{port}/x",
        f"http://[::1]:{port}/x",
        f"http://[::ffff:127.0.0.1]:{port}/x",
        f"http://0.0.0.0:{port}/x",
        f"https://user:pw@127.0.0.1:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://192.168.1.1/hook",
        "https://[fd00::1]/hook",
        "http://93.184.215.14/hook",
        "gopher://127.0.0.1:25/x",
    ]


def test_ssrf_to_a_local_listener(
    world: SecurityWorld, targets: Targets, tally: Tally, listener: Listener
) -> None:
    count = tally["ssrf"]
    # The listener answers a request that does reach it (so silence below means something).
    with urllib.request.urlopen(f"http://127.0.0.1:{listener.port}/ping", timeout=10) as r:
        assert r.status == 200
    assert listener.hits == ["GET /ping"]
    listener.hits.clear()
    keys = {"p256dh": "B" + "A" * 86, "auth": "A" * 22}
    for url in internal_urls(listener.port):
        for user in ("staff-canteen-a", "inspector-a", "city-monitor", "admin"):
            reply = world.call(
                "POST", "/api/v1/push/subscriptions", user, {"endpoint": url, "keys": keys}
            )
            count.record(400 <= reply.status < 500, f"{user} subscribed {url}: {reply.status}")
            reply = world.call(
                "POST", "/api/v1/webhooks", user, {"org_id": world.orgs["city"], "url": url}
            )
            count.record(400 <= reply.status < 500, f"{user} webhook {url}: {reply.status}")
    # An alert goes out to every receiver there is; none of them is the listener.
    alert_id = world.raise_alert(SITE_A)
    time.sleep(3.0)
    count.record(not listener.hits, f"the listener was reached: {listener.hits[:3]}")
    for user in ("inspector-a", "staff-canteen-a"):
        reply = world.request("GET", f"/api/v1/alerts/{alert_id}/deliveries", user=user)
        shown = reply.json() or {}
        hidden = all(
            set(item) <= {"target", "status", "updated_at"} for item in shown.get("items", [])
        )
        count.record(
            reply.status == 200 and hidden and str(listener.port) not in reply.text,
            f"{user} sees delivery details: {reply.text[:200]}",
        )
    assert count.leaked == 0, count.leaks


# --- MQTT ----------------------------------------------------------------------------------


class Mqtt:
    """A paho client with a site's (or any) login, recording what it receives."""

    def __init__(
        self, world: SecurityWorld, username: str | None, password: str | None, client_id: str
    ) -> None:
        assert world.broker is not None
        self.received: list[str] = []
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self.refused: str | None = None
        self.granted: list[int] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", world.broker.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            self.connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, codes: Any, _p: Any) -> None:
        self.granted += [int(getattr(c, "value", c)) for c in codes]

    def wait_connected(self, timeout: float = 10) -> bool:
        """True once the broker accepted the login."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.refused is not None:
                return False
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Disconnect and stop the loop."""
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_topic_and_acl_abuse(world: SecurityWorld, targets: Targets, tally: Tally) -> None:
    count = tally["mqtt_acl"]
    a_pw, b_pw = world.site_passwords[SITE_A], world.site_passwords[SITE_B]
    # No login, a wrong password, another site's name with our password: refused.
    for user, pw in ((None, None), (SITE_B, a_pw), (SITE_A, "wrong"), ("central", a_pw)):
        client = Mqtt(world, user, pw, f"probe-{uuid.uuid4().hex[:6]}")
        count.record(not client.wait_connected(5), f"broker accepted {user}/{pw and '***'}")
        client.close()
    victim = Mqtt(world, SITE_B, b_pw, SITE_B)
    assert victim.wait_connected(), victim.refused
    spy = Mqtt(world, SITE_A, a_pw, SITE_B)  # takes B's client id: must not kick B's session
    assert spy.wait_connected(), spy.refused
    for pattern in (
        f"fsv/v1/{SITE_B}/#",
        "fsv/v1/+/cmd/+",
        "#",
        "fsv/v1/+/camera/+/event",
        "$SYS/#",
    ):
        spy.client.subscribe(pattern, qos=1)
    time.sleep(1.5)
    count.record(not victim.disconnected.is_set(), "site B's session was taken over")
    victim.close()  # B's edge publishes below with its own login and client id
    # B's traffic: B's own event and state, and commands central sends B (a hold for the
    # alert, a stream_start for a regulator's live view); one command to A as the control.
    b_alert = world.raise_alert(SITE_B)
    asyncio.run(_watch_live(world, "inspector-b", SITE_B))
    asyncio.run(_watch_live(world, "inspector-a", SITE_A))
    time.sleep(2.0)
    own = f"fsv/v1/{SITE_A}/cmd/stream_start"
    assert own in spy.received, f"the probe saw none of A's own commands: {spy.received[:5]}"
    stolen = [t for t in spy.received if SITE_B in t or t.startswith("$SYS")]
    for pattern in (f"fsv/v1/{SITE_B}/", "$SYS/"):
        seen = [t for t in stolen if t.startswith(pattern)]
        count.record(not seen, f"{SITE_A} read {pattern}#: {seen[:3]}")
    other_cmds = [t for t in spy.received if "/cmd/" in t and not t.startswith(f"fsv/v1/{SITE_A}/")]
    count.record(not other_cmds, f"{SITE_A} read other sites' commands: {other_cmds[:3]}")
    # Forged events: on B's topics, and on A's topics claiming to be B.
    forged = []
    for topic, site in (
        (topics.camera_event(SITE_B, CAMERA), SITE_B),
        (topics.camera_event(SITE_A, CAMERA), SITE_B),
        (f"fsv/v1/{SITE_B}/agent/event", SITE_B),
        (topics.command(SITE_A, "hold"), SITE_A),
    ):
        event = EventPayload(
            event_id=uuid.uuid4(), site=site, camera=CAMERA, phase="start", kind="no_chef_hat",
            station="kitchen_prep", rule="hat", start=datetime.now(UTC), score=0.9,
        )  # fmt: skip
        spy.client.publish(topic, encode(event), qos=1)
        forged.append((topic, str(event.event_id)))
    time.sleep(3.0)
    for topic, event_id in forged:
        reply = world.request("GET", f"/api/v1/alerts/{event_id}", user="admin")
        count.record(reply.status == 404, f"forged event on {topic} became alert: {reply.status}")
    assert world.request("GET", f"/api/v1/alerts/{b_alert}", user="admin").status == 200
    spy.close()
    assert count.leaked == 0, count.leaks


async def _watch_live(world: SecurityWorld, user: str, site: str) -> None:
    """A regulator opens a camera's live view for a moment (central sends stream_start)."""
    headers = {"Authorization": f"Bearer {world.token(user)}"}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{world.url}/api/v1/video/live/{site}/{CAMERA}", headers=headers
        ) as ws:
            await asyncio.sleep(1.0)
            await ws.close()


async def _uplink(world: SecurityWorld, token: str | None) -> int:
    headers = {TOKEN_HEADER: token} if token is not None else {}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(world.url + UPLINK_PATH, headers=headers) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as e:
            return e.status


def _own_command_token(world: SecurityWorld) -> str:
    """A stream_start token sent to site A, read with A's login (as A's edge would)."""
    box = Mqtt(world, SITE_A, world.site_passwords[SITE_A], SITE_A)
    got: list[dict[str, Any]] = []
    box.client.on_message = lambda _c, _u, msg: got.append(json.loads(msg.payload))
    assert box.wait_connected()
    box.client.subscribe(topics.command(SITE_A, "stream_start"), qos=1)
    time.sleep(0.5)

    async def watch() -> None:
        headers = {"Authorization": f"Bearer {world.token('inspector-a')}"}
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"{world.url}/api/v1/video/live/{SITE_A}/{CAMERA}", headers=headers
            ) as ws:
                # Polling the paho thread's list: it has no event loop to signal.
                for _ in range(200):
                    if got:
                        break
                    await asyncio.sleep(0.1)
                await ws.close()

    asyncio.run(watch())
    box.close()
    assert got, "central sent no stream_start to site A"
    token: str = got[0]["args"]["token"]
    return token


def test_uplink_tokens(world: SecurityWorld, targets: Targets, tally: Tally) -> None:
    count = tally["uplink_tokens"]
    guesses: list[str | None] = [None, "", "x", "../" * 12, "A" * 65, "' OR 1=1 --" * 4]
    guesses += [secrets.token_urlsafe(32) for _ in range(20)]
    for token in guesses:
        status = asyncio.run(_uplink(world, token))
        count.record(status == 403, f"uplink with {token!r:.30} -> {status}")
    token = _own_command_token(world)
    # The stream was given up (its viewer left): the token no longer opens anything.
    wait_until(lambda: asyncio.run(_uplink(world, token)) == 403, 30, "the token to lapse")
    for _ in range(3):
        status = asyncio.run(_uplink(world, token))
        count.record(status == 403, f"a used or lapsed token opened the uplink: {status}")
    assert count.leaked == 0, count.leaks
