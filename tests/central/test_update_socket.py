"""The pages' update socket: scope decided once per socket, changes fanned out in memory,
slow clients and ended sessions closed with their codes, other sites' pages refused."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from central_support import Central, call
from video_support import add_camera

from central.alerts.updates import SESSION_CLOSE_CODE, SLOW_CLOSE_CODE, Subscriber, text_frame

pytestmark = pytest.mark.asyncio


async def connect(central: Central, user: str, **headers: str) -> ClientWebSocketResponse:
    ws = await central.client.ws_connect(
        "/api/v1/updates", headers={**await central.token(user), **headers}
    )
    hello = await receive(ws)
    assert hello["type"] == "hello"
    return ws


async def receive(ws: ClientWebSocketResponse, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        msg = await ws.receive()
    assert msg.type == WSMsgType.TEXT, msg
    out: dict[str, Any] = json.loads(msg.data)
    return out


async def nothing_within(ws: ClientWebSocketResponse, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            msg = await ws.receive()
            raise AssertionError(f"unexpected message {msg}")


async def test_alerts_reach_only_the_sockets_whose_scope_holds_them(central: Central) -> None:
    add_camera(central, "demo-canteen-a", "cam1")
    county_a = await connect(central, "inspector-a")
    county_b = await connect(central, "inspector-b")
    staff_b = await connect(central, "staff-canteen-b")
    city = await connect(central, "city-monitor")
    admin = await connect(central, "admin")
    alert_id = await central.event("demo-canteen-a", "cam1", severity="critical")
    for ws in (county_a, city, admin):
        created = await receive(ws)
        assert created["type"] == "alert" and created["op"] == "created"
        assert created["alert"]["id"] == alert_id
        assert created["alert"]["severity"] == "critical" and created["alert"]["state"] == "new"
        counter = await receive(ws)
        assert counter == {
            "type": "camera", "site_id": "demo-canteen-a", "camera_id": "cam1", "open_alerts": 1
        }  # fmt: skip
    # The other county's inspector and its enterprise hear nothing of it.
    await nothing_within(county_b, 0.3)
    await nothing_within(staff_b, 0.05)
    # A transition is a change: the counter follows (closing frees the camera's badge).
    status, _ = await call(
        central, "inspector-a", "POST", f"/api/v1/alerts/{alert_id}/transitions",
        json={"action": "close", "note": "复核无误"},
    )  # fmt: skip
    assert status == 201
    changed = await receive(county_a)
    assert changed["op"] == "changed" and changed["alert"]["state"] == "closed"
    assert (await receive(county_a))["open_alerts"] == 0
    # County B's own alert reaches county B and not county A.
    other = await central.event("demo-canteen-b", "cam1")
    assert (await receive(county_b))["alert"]["id"] == other
    assert (await receive(staff_b))["alert"]["id"] == other
    await nothing_within(county_a, 0.3)
    for ws in (county_a, county_b, staff_b, city, admin):
        await ws.close()


async def test_a_client_that_stops_reading_is_dropped_with_its_code(central: Central) -> None:
    ws = await connect(central, "inspector-a")
    hub = central.svc.updates
    # Changes keep coming while the client reads nothing: the kernel's buffers fill, then
    # the socket's write buffer passes its bound and the hub drops it.
    big = text_frame(json.dumps({"type": "alert", "pad": "x" * 65536}))

    def flood() -> None:
        for _ in range(300):  # 19.7 MB
            hub._fan_out("/1/2/3/", big)

    asyncio.get_running_loop().call_soon(flood)
    await asyncio.sleep(0.5)
    received = 0
    async with asyncio.timeout(20):
        while True:
            msg = await ws.receive()
            if msg.type != WSMsgType.TEXT:
                break
            received += 1
    assert msg.type == WSMsgType.CLOSE, msg
    assert msg.data == SLOW_CLOSE_CODE and msg.extra == "too slow"
    assert hub.dropped_slow >= 1 and received < 300
    for _ in range(100):
        if hub.count == 0:
            break
        await asyncio.sleep(0.02)
    assert hub.count == 0


async def test_logout_closes_the_sessions_sockets(central: Central) -> None:
    login = await central.client.post(
        "/api/v1/auth/login",
        json={"username": "inspector-a", "password": central.passwords["inspector-a"]},
    )
    assert login.status == 200, await login.text()
    csrf = (await login.json())["csrf_token"]
    ws = await central.client.ws_connect("/api/v1/updates")  # the session cookie
    assert (await receive(ws))["type"] == "hello"
    out = await central.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status == 200
    async with asyncio.timeout(5):
        msg = await ws.receive()
    # The close frame the server sent (the client's own close_code may read 1006 if the
    # server drops the connection before the client's answering close frame arrives).
    assert msg.type == WSMsgType.CLOSE and msg.data == SESSION_CLOSE_CODE, msg
    # Without a session the socket is refused before the upgrade.
    resp = await central.client.get("/api/v1/updates", headers={"Upgrade": "websocket"})
    assert resp.status == 401


async def test_an_expired_session_is_closed_by_the_check(
    central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await connect(central, "inspector-a")
    other = await connect(central, "inspector-b")
    hub = central.svc.updates
    mine = _user_id(central, "inspector-a")
    [digest] = {s.token_hash for subs in hub._by_root.values() for s in subs if s.user_id == mine}
    with central.svc.ldb.transaction() as db:
        db.execute("update user_sessions set expires_at = 0 where token_hash = ?", [digest])
    ended = await asyncio.to_thread(hub.check_sessions, central.svc.ldb, 3600.0)
    assert ended == [digest]
    for d in ended:
        hub.end_session(d)
    async with asyncio.timeout(5):
        msg = await ws.receive()
    assert msg.type == WSMsgType.CLOSE and msg.data == SESSION_CLOSE_CODE, msg
    await nothing_within(other, 0.1)
    assert not other.closed
    await other.close()


def _user_id(central: Central, username: str) -> int:
    with central.svc.ldb.read() as db:
        return int(db.execute("select id from users where username = ?", [username]).fetchone()[0])


async def test_another_sites_page_may_not_open_it_nor_a_video_socket(central: Central) -> None:
    add_camera(central, "demo-canteen-a", "cam1")
    upgrade = {
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }  # fmt: skip
    headers = {**await central.token("inspector-a"), **upgrade, "Origin": "https://evil.example"}
    for path in ("/api/v1/updates", "/api/v1/video/live/demo-canteen-a/cam1"):
        resp = await central.client.get(path, headers=headers)
        assert resp.status == 403, (path, resp.status)
        assert "central's own pages" in (await resp.json())["error"]["message"]
    # The same page's origin is fine.
    own = f"http://{central.client.host}:{central.client.port}"
    ws = await connect(central, "inspector-a", Origin=own)
    await ws.close()


async def test_many_sockets_cost_one_serialisation_per_change(
    central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts: list[int] = []
    real = Subscriber.offer

    def spy(self: Subscriber, frame: bytes) -> bool:
        texts.append(id(frame))
        return real(self, frame)

    sockets = [await connect(central, "city-monitor") for _ in range(20)]
    monkeypatch.setattr(Subscriber, "offer", spy)
    await central.event("demo-canteen-a", "cam7")
    for ws in sockets:
        assert (await receive(ws))["type"] == "alert"
        assert (await receive(ws))["type"] == "camera"
    # The alert and its counter were each framed once; the same bytes went to all twenty.
    assert len(texts) == 40 and len(set(texts)) == 2
    for ws in sockets:
        await ws.close()
