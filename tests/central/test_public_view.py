"""Public kitchen links (QR, read-only, rate-limited, revocable) and the clip export audit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from central_support import Central, call, make_config
from pytest_aiohttp.plugin import AiohttpClient

from central.app import create_app
from central.keys import VIDEO
from central.regulation.public import RateLimiter
from central.regulation.scope import Scope

pytestmark = pytest.mark.asyncio


async def test_canteen_publishes_cameras_then_revokes(central: Central) -> None:
    orgs = central.seed["orgs"]
    await central.event("demo-canteen-a", "cam1")
    central.svc.orgs.upsert_camera("demo-canteen-a", "cam2", name="洗消间", station="dish_washing")
    status, err = await call(
        central,
        "staff-slaughter-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["slaughter_a"], "cameras": ["demo-slaughter-a/x"]},
    )
    assert status == 400 and "canteen" in err["error"]["message"]
    status, err = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["canteen_a"], "cameras": ["demo-canteen-b/cam1"]},
    )
    assert status == 400
    status, link = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["canteen_a"], "cameras": ["demo-canteen-a/cam2"], "label": "door"},
    )
    assert status == 201 and link["url"].endswith(f"/p/{link['token']}")

    qr = f"/api/v1/public-links/{link['id']}/qr.svg?token={link['token']}"
    status, svg = await call(central, "staff-canteen-a", "GET", qr)
    assert status == 200 and svg.startswith(b"<?xml") and b"<svg" in svg

    resp = await central.client.get(f"/api/v1/public/{link['token']}")  # no login
    view = await resp.json()
    assert resp.status == 200
    assert view["canteen"]["name"] == "中卫市第一小学食堂"
    assert [c["ref"] for c in view["cameras"]] == ["demo-canteen-a/cam2"]
    # Nothing else: no alerts, no users, no link id or organisation path.
    assert set(view) == {"canteen", "cameras", "inspection", "expires_at"}
    assert view["inspection"] is None and view["expires_at"] is None
    resp = await central.client.get(f"/p/{link['token']}")
    page = await resp.text()
    assert resp.status == 200 and "洗消间" in page and "cam1" not in page

    status, _ = await call(
        central, "staff-canteen-a", "DELETE", f"/api/v1/public-links/{link['id']}"
    )
    assert status == 200
    assert (await central.client.get(f"/api/v1/public/{link['token']}")).status == 404
    assert (await central.client.get(f"/p/{link['token']}")).status == 404


async def test_public_view_is_rate_limited(central: Central) -> None:
    central.svc.public_rate = RateLimiter(limit=3, window_s=60)
    codes = [(await central.client.get("/api/v1/public/unknown")).status for _ in range(5)]
    assert codes == [404, 404, 404, 429, 429]


async def test_public_view_counts_an_ipv6_client_as_its_64_network(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    # Behind a trusted proxy on 127.0.0.1, which names the client in X-Forwarded-For.
    web = {"trusted_proxies": ["127.0.0.1/32"], "public_rate_per_min": 3}
    client = await aiohttp_client(create_app(make_config(tmp_path, web=web)))

    async def view(address: str) -> int:
        headers = {"X-Forwarded-For": address}
        return (await client.get("/api/v1/public/unknown", headers=headers)).status

    # One IPv6 subscriber holds a whole /64: each request from another of its addresses.
    codes = [await view(f"2001:db8:5:7::{i:x}") for i in range(5)]
    assert codes == [404, 404, 404, 429, 429]
    assert await view("2001:db8:5:8::1") == 404  # the next /64 has its own count
    # An IPv4-mapped address counts as the IPv4 address it carries.
    assert [await view(a) for a in ("203.0.113.9", "::ffff:203.0.113.9", "203.0.113.9")] == [
        404, 404, 404,
    ]  # fmt: skip
    assert await view("::ffff:203.0.113.9") == 429


async def test_clip_download_is_an_audited_export(central: Central, tmp_path: Path) -> None:
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(1000)
    sha = hashlib.sha256(data).hexdigest()
    clip = {"name": "clip.mp4", "sha256": sha, "bytes": len(data), "content_type": "video/mp4"}
    alert_id = await central.event("demo-canteen-a", "cam1", clip=clip)
    stored = tmp_path / "clip.mp4"
    stored.write_bytes(data)
    with central.svc.ldb.transaction() as db:  # as ingest's media upload stores it
        db.table("media").insert(
            {
                "event_id": alert_id,
                "name": "clip.mp4",
                "site": "demo-canteen-a",
                "sha256": sha,
                "bytes": len(data),
                "content_type": "video/mp4",
                "path": str(stored),
                "stored_at": 1.0,
            }
        )
    status, body = await call(
        central, "inspector-b", "GET", f"/api/v1/alerts/{alert_id}/media/clip.mp4"
    )
    assert status == 404
    status, body = await call(
        central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}/media/clip.mp4"
    )
    assert status == 200 and body == data
    status, _ = await call(
        central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}/media/snap.jpg"
    )
    assert status == 404
    log: dict[str, Any] = central.svc.audit.query(Scope.everything(), action="clip_export")
    assert len(log["items"]) == 1 and log["items"][0]["username"] == "inspector-a"
    assert log["items"][0]["detail"]["sha256"] == sha


async def _publish(central: Central, **extra: Any) -> dict[str, Any]:
    central.svc.orgs.upsert_camera("demo-canteen-a", "cam1", name="后厨", station="kitchen_prep")
    central.svc.orgs.upsert_camera("demo-canteen-a", "cam2", name="仓库", station="storage")
    status, link = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": central.seed["orgs"]["canteen_a"], "cameras": ["demo-canteen-a/cam1"],
              **extra},
    )  # fmt: skip
    assert status == 201, link
    return link


async def _watch(central: Central, token: str, ref: str = "demo-canteen-a/cam1") -> Any:
    return await central.client.ws_connect(f"/api/v1/public/{token}/live/{ref}")


async def _text(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next text message of a viewer socket, then waits for its close."""
    async with asyncio.timeout(10):
        msg = await ws.receive()
        assert msg.type == WSMsgType.TEXT, msg
        while not ws.closed:
            await ws.receive()
    body: dict[str, Any] = json.loads(msg.data)
    return body


async def _taken(ws: ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):  # nothing arrives while the upstream starts: no refusal
        async with asyncio.timeout(0.5):
            await ws.receive()
    assert not ws.closed


async def test_inspection_result_and_rating_shown_publicly(central: Central) -> None:
    link = await _publish(central)
    org = central.seed["orgs"]["canteen_a"]
    body = {"result": "compliant", "rating": "excellent", "note": "后厨卫生良好 inspector note"}
    status, made = await call(
        central, "staff-canteen-a", "POST", f"/api/v1/orgs/{org}/inspections", json=body
    )
    assert status == 403  # the canteen does not grade itself
    status, made = await call(
        central, "inspector-b", "POST", f"/api/v1/orgs/{org}/inspections", json=body
    )
    assert status == 404  # another county's canteen
    bad = {**body, "rating": "A+"}
    status, err = await call(
        central, "inspector-a", "POST", f"/api/v1/orgs/{org}/inspections", json=bad
    )
    assert status == 400 and "rating" in err["error"]["message"]
    status, made = await call(
        central, "inspector-a", "POST", f"/api/v1/orgs/{org}/inspections",
        json={**body, "inspected_at": time.time() - 86400},
    )  # fmt: skip
    assert status == 201, made
    status, _ = await call(
        central, "inspector-a", "POST", f"/api/v1/orgs/{org}/inspections",
        json={"result": "basically_compliant", "rating": "good", "inspected_at": time.time() - 9e5},
    )  # fmt: skip
    assert status == 201
    status, listed = await call(
        central, "staff-canteen-a", "GET", f"/api/v1/orgs/{org}/inspections"
    )
    assert status == 200 and [i["rating"] for i in listed["items"]] == ["excellent", "good"]
    status, _ = await call(central, "inspector-b", "GET", f"/api/v1/orgs/{org}/inspections")
    assert status == 404  # another county's canteen, not an empty list
    view = await (await central.client.get(f"/api/v1/public/{link['token']}")).json()
    assert view["inspection"]["result"] == "compliant"  # the latest visit, not the latest row
    assert view["inspection"]["rating"] == "excellent"
    page = await (await central.client.get(f"/p/{link['token']}")).text()
    assert "符合" in page and "优秀" in page and "JY36405020000001" in page
    assert "inspector note" not in page and "inspector note" not in json.dumps(view)
    english = await central.client.get(f"/p/{link['token']}", cookies={"fsv_lang": "en"})
    assert "Excellent" in await english.text()


async def test_public_video_cap_and_revocation_mid_stream(central: Central) -> None:
    link = await _publish(central, max_viewers=2)
    assert link["max_viewers"] == 2
    token = link["token"]
    # Only the published camera, only its sub stream, only over a live link.
    for path in (
        f"/api/v1/public/{token}/live/demo-canteen-a/cam2",
        f"/api/v1/public/{token}/live/demo-canteen-b/cam1",
        f"/api/v1/public/{token}x/live/demo-canteen-a/cam1",
        f"/api/v1/public/{token}/live/demo-canteen-a/cam1?stream=main",
    ):
        resp = await central.client.get(path, headers={"Upgrade": "websocket"})
        assert resp.status in (400, 404), (path, resp.status)
    first = await _watch(central, token)
    second = await _watch(central, token)
    await _taken(first)
    await _taken(second)
    video = central.client.app[VIDEO]
    assert video.public.count(link["id"]) == 2
    refused = await _watch(central, token)
    body = await _text(refused)
    assert body["status"] == 429 and "观看人数已满" in body["message"]
    assert "at most 2 viewers" in body["message"]
    log: dict[str, Any] = central.svc.audit.query(Scope.everything(), action="public_view")
    assert len(log["items"]) == 2 and log["items"][0]["target"] == "demo-canteen-a/cam1"
    ups = video.hub.upstreams()
    assert [(u.key.stream, u.key.mode) for u in ups] == [("sub", "live")]  # one, shared
    await second.close()
    for _ in range(100):
        if video.public.count(link["id"]) == 1:
            break
        await asyncio.sleep(0.05)
    assert video.public.count(link["id"]) == 1  # a seat is free again
    status, _ = await call(
        central, "staff-canteen-a", "DELETE", f"/api/v1/public-links/{link['id']}"
    )
    assert status == 200
    end = await _text(first)  # the revocation reaches the viewer mid-stream
    assert end == {"type": "end", "reason": "public_link_ended"}
    resp = await central.client.get(
        f"/api/v1/public/{token}/live/demo-canteen-a/cam1", headers={"Upgrade": "websocket"}
    )
    assert resp.status == 404


async def test_an_expired_link_ends_its_viewers(central: Central) -> None:
    link = await _publish(central, expires_at=time.time() + 3600)
    viewer = await _watch(central, link["token"])
    await _taken(viewer)
    with central.svc.ldb.transaction() as db:  # the hour passes
        db.execute("update public_links set expires_at = ? where id = ?", [time.time(), link["id"]])
    await central.client.app[VIDEO].public.check()  # the periodic check, without its wait
    assert await _text(viewer) == {"type": "end", "reason": "public_link_ended"}
    assert (await central.client.get(f"/p/{link['token']}")).status == 404
    status, err = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": central.seed["orgs"]["canteen_a"], "cameras": ["demo-canteen-a/cam1"],
              "expires_at": time.time() - 5},
    )  # fmt: skip
    assert status == 400 and "expires_at" in err["error"]["message"]
