"""Quotas on video work: replays and live streams per user, a user's share of a site's uplink,
exports per hour per user and per site; refusals are a 429 message the pages show."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from central_support import Central, call, make_config
from video_support import add_camera, commands

from central.api.common import SERVICES
from central.app import create_app
from central.keys import VIDEO
from central.regulation.seed import seed_demo
from central.video.api_live import QUOTA_CLOSE_CODE, replay_key

pytestmark = pytest.mark.asyncio
SITE = "demo-canteen-a"


async def start(aiohttp_client: Any, tmp_path: Path, **quota: Any) -> Central:
    client = await aiohttp_client(create_app(make_config(tmp_path, video_quota=quota)))
    central = Central(client, await asyncio.to_thread(seed_demo, client.app[SERVICES]))
    add_camera(central, SITE, "cam1")
    add_camera(central, SITE, "cam2")
    return central


async def open_replay(central: Central, user: str, camera: str = "cam1") -> ClientWebSocketResponse:
    return await central.client.ws_connect(
        f"/api/v1/video/replay/{SITE}/{camera}",
        params={"start": str(time.time() - 600)},
        headers=await central.token(user),
    )


async def refusal(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The in-band 429 of a refused viewer socket, checked to close with 4429."""
    async with asyncio.timeout(10):
        msg = await ws.receive()
        assert msg.type == WSMsgType.TEXT, msg
        body: dict[str, Any] = json.loads(msg.data)
        while not ws.closed:
            await ws.receive()
    assert ws.close_code == QUOTA_CLOSE_CODE
    assert body["type"] == "error" and body["status"] == 429
    return body


async def accepted(central: Central, ws: ClientWebSocketResponse) -> None:
    """The socket was taken (no refusal arrives while the upstream starts)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await ws.receive()
    assert not ws.closed


async def test_replays_per_user_and_freed_on_close(aiohttp_client: Any, tmp_path: Path) -> None:
    central = await start(aiohttp_client, tmp_path, replays_per_user=2, site_streams=8)
    first = await open_replay(central, "staff-canteen-a")
    second = await open_replay(central, "staff-canteen-a", "cam2")
    await accepted(central, first)
    await accepted(central, second)
    body = await refusal(await open_replay(central, "staff-canteen-a"))
    assert "2 replays" in body["message"] and "at most 2" in body["message"]
    assert len(await asyncio.to_thread(commands, central, "stream_start")) == 2
    await first.close()
    hub = central.client.app[VIDEO].hub
    for _ in range(200):  # the closed replay's upstream ends with its only viewer
        if len(hub.upstreams()) < 2:
            break
        await asyncio.sleep(0.05)
    third = await open_replay(central, "staff-canteen-a")
    await accepted(central, third)
    await second.close()
    await third.close()


async def test_a_users_share_and_the_sites_uplink(aiohttp_client: Any, tmp_path: Path) -> None:
    central = await start(
        aiohttp_client, tmp_path, replays_per_user=10, site_streams=4, user_site_share=0.5
    )
    mine = [await open_replay(central, "staff-canteen-a") for _ in range(2)]
    body = await refusal(await open_replay(central, "staff-canteen-a"))
    assert "your share is 2" in body["message"]
    others = [await open_replay(central, "inspector-a") for _ in range(2)]
    for ws in mine + others:
        await accepted(central, ws)
    body = await refusal(await open_replay(central, "admin"))
    assert "already carries 4" in body["message"]
    # A replay the city archive serves costs the site's line nothing: only the user's count.
    quotas = central.client.app[VIDEO].quotas
    lease = await quotas.viewer(1, "replay", replay_key(SITE, "cam1"), uses_uplink=False)
    lease.release()
    # A live stream nobody watches yet is a new upstream too; an HLS player gets HTTP 429.
    live = await central.client.ws_connect(
        f"/api/v1/video/live/{SITE}/cam1", headers=await central.token("city-monitor")
    )
    await refusal(live)
    status, err = await call(
        central, "city-monitor", "GET", f"/api/v1/video/hls/{SITE}/cam1/sub.m3u8"
    )
    assert status == 429 and "video quota" in err["error"]["message"]
    assert len(await asyncio.to_thread(commands, central, "stream_start")) == 4
    for ws in mine + others:
        await ws.close()


async def test_live_viewers_per_user(aiohttp_client: Any, tmp_path: Path) -> None:
    central = await start(aiohttp_client, tmp_path, live_per_user=2)
    headers = await central.token("inspector-a")
    sockets = [
        await central.client.ws_connect(f"/api/v1/video/live/{SITE}/{cam}", headers=headers)
        for cam in ("cam1", "cam2")
    ]
    for ws in sockets:
        await accepted(central, ws)
    extra = await central.client.ws_connect(f"/api/v1/video/live/{SITE}/cam1", headers=headers)
    body = await refusal(extra)
    assert "2 live streams" in body["message"]
    # Another user joins the running stream: it costs the uplink nothing.
    other = await central.client.ws_connect(
        f"/api/v1/video/live/{SITE}/cam1", headers=await central.token("staff-canteen-a")
    )
    await accepted(central, other)
    assert len(await asyncio.to_thread(commands, central, "stream_start")) == 2
    for ws in [*sockets, other]:
        await ws.close()


async def test_exports_per_hour_per_user_and_site(aiohttp_client: Any, tmp_path: Path) -> None:
    central = await start(
        aiohttp_client,
        tmp_path,
        exports_per_hour_per_user=2,
        exports_per_hour_per_site=3,
        site_streams=50,
        user_site_share=1.0,
    )
    now = time.time()

    async def export(user: str) -> tuple[int, Any]:
        body = {"site_id": SITE, "camera_id": "cam1", "start": now - 600, "end": now - 570}
        result: tuple[int, Any] = await call(
            central, user, "POST", "/api/v1/video/exports", json=body
        )
        return result

    assert (await export("staff-canteen-a"))[0] == 201
    assert (await export("staff-canteen-a"))[0] == 201
    status, err = await export("staff-canteen-a")
    assert status == 429 and "2 exports in the last hour" in err["error"]["message"]
    assert (await export("inspector-a"))[0] == 201
    status, err = await export("admin")
    assert status == 429 and f"site {SITE} had 3 exports" in err["error"]["message"]
    assert len(await asyncio.to_thread(commands, central, "export_clip")) == 3
