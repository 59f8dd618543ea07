"""A viewer's live and replay sockets end with the session that opened them (a lost phone)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import ClientWebSocketResponse
from central_support import Central, call
from video_support import (
    add_camera,
    connect_edge,
    footage_chunks,
    push,
    read_until_keyframe,
    wait_command,
)

from central.alerts.updates import SESSION_CLOSE_CODE
from central.keys import VIDEO
from central.regulation.scope import Scope
from testbed.footage import Footage

pytestmark = pytest.mark.asyncio
LIVE = "/api/v1/video/live/demo-canteen-a/cam1"
REPLAY = "/api/v1/video/replay/demo-canteen-a/cam1"


async def _watching(
    central: Central, footage: Footage, path: str, headers: dict[str, str], count: int = 1
) -> tuple[ClientWebSocketResponse, ClientWebSocketResponse]:
    """A viewer of `path` that got its first keyframe, and the edge that feeds it."""
    params = {"start": "1e9"} if path == REPLAY else None
    viewer = await central.client.ws_connect(path, headers=headers, params=params)
    token = (await wait_command(central, "stream_start", count))["args"]["token"]
    edge = await connect_edge(central, token)
    hello, chunks = footage_chunks(footage.short_h264)
    await push(edge, hello, chunks)
    await read_until_keyframe(viewer)
    return viewer, edge


async def _closed_with(viewer: ClientWebSocketResponse, within: float = 5.0) -> int | None:
    """The code of the close frame central sends the viewer (the client's own close_code may
    read 1006 when central drops the connection before the client's reply)."""
    async with asyncio.timeout(within):
        while True:
            msg = await viewer.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data)
            assert msg.type is not aiohttp.WSMsgType.CLOSED, "dropped without a close frame"


async def test_logging_out_cuts_the_sessions_live_video_at_once(
    central: Central, footage: Footage
) -> None:
    add_camera(central)
    headers = await central.token("staff-canteen-a")
    viewer, edge = await _watching(central, footage, LIVE, headers)
    other = await central.client.post(
        "/api/v1/auth/login",
        json={"username": "inspector-a", "password": central.passwords["inspector-a"],
              "kind": "bearer"},
    )  # fmt: skip
    still = {"Authorization": f"Bearer {(await other.json())['token']}"}
    kept = await central.client.ws_connect(LIVE, headers=still)  # joins the same upstream
    await read_until_keyframe(kept)
    resp = await central.client.post("/api/v1/auth/logout", headers=headers)
    assert resp.status == 200
    central.forget("staff-canteen-a")
    assert await _closed_with(viewer) == SESSION_CLOSE_CODE
    assert not kept.closed  # another session's viewer goes on watching
    await kept.close()
    await edge.close()


@pytest.mark.parametrize("path", [LIVE, REPLAY])
async def test_disabling_a_user_cuts_their_open_live_and_replay_sockets(
    central: Central, footage: Footage, path: str
) -> None:
    add_camera(central)
    viewer, edge = await _watching(central, footage, path, await central.token("staff-canteen-a"))
    users = {u.username: u.id for u in central.svc.users.list_users(Scope.everything())}
    status, _ = await call(
        central, "admin", "PATCH", f"/api/v1/users/{users['staff-canteen-a']}",
        json={"disabled": True},
    )  # fmt: skip
    assert status == 200
    closed = await central.svc.updates.close_ended_sessions(central.svc.ldb, 3600.0)
    assert closed == 1  # the periodic session check (every 30 s) found the ended session
    assert await _closed_with(viewer) == SESSION_CLOSE_CODE
    hub = central.client.app[VIDEO].hub
    assert all(not u.viewers for u in hub.upstreams())
    await edge.close()
