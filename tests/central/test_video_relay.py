"""The relay: one upstream per camera stream, instant start, linger and stop, restart, scope."""

from __future__ import annotations

import asyncio
import io
import json

import av
import pytest
from central_support import Central, call
from video_support import (
    add_camera,
    commands,
    connect_edge,
    footage_chunks,
    push,
    read_until_keyframe,
    wait_command,
)

from central.keys import VIDEO
from fsv_contract.video import FrameKind, unpack_frame
from testbed.footage import Footage
from tests.edge_agent.uplink.conftest import decoded_counters

pytestmark = pytest.mark.asyncio
LIVE = "/api/v1/video/live/demo-canteen-a/cam1"


async def test_twenty_viewers_share_one_upstream_and_start_at_a_keyframe(
    central: Central, footage: Footage
) -> None:
    add_camera(central)
    headers = await central.token("inspector-a")
    first = await central.client.ws_connect(LIVE, headers=headers)
    token = (await wait_command(central, "stream_start"))["args"]["token"]
    edge = await connect_edge(central, token)
    hello, chunks = footage_chunks(footage.short_h264)
    await push(edge, hello, chunks)
    viewers = [first] + [await central.client.ws_connect(LIVE, headers=headers) for _ in range(19)]
    for viewer in viewers:
        got = await read_until_keyframe(viewer)
        assert json.loads(got[0])["type"] == "hello"
        kinds = [unpack_frame(g)[0] for g in got[1:] if isinstance(g, bytes)]
        assert kinds[0].kind is FrameKind.INIT and kinds[1].keyframe
    hub = central.client.app[VIDEO].hub
    assert len(hub.upstreams()) == 1
    assert len(hub.upstreams()[0].viewers) == 20
    assert len(commands(central, "stream_start")) == 1
    status, page = await call(
        central, "admin", "GET", "/api/v1/audit", params={"action": "live_view"}
    )
    assert status == 200 and len(page["items"]) == 20 and page["next"] is None
    for viewer in viewers:
        await viewer.close()
    await edge.close()


async def test_the_uplink_stops_after_the_last_viewer_leaves(
    central: Central, footage: Footage
) -> None:
    add_camera(central)
    hub = central.client.app[VIDEO].hub
    hub.linger_s = 0.3
    viewer = await central.client.ws_connect(LIVE, headers=await central.token("inspector-a"))
    token = (await wait_command(central, "stream_start"))["args"]["token"]
    edge = await connect_edge(central, token)
    hello, chunks = footage_chunks(footage.short_h264, frames=10)
    await push(edge, hello, chunks)
    await read_until_keyframe(viewer)
    await viewer.close()
    async with asyncio.timeout(5):
        stop = await edge.receive()
        assert json.loads(stop.data) == {"type": "stop"}
        while not edge.closed:
            await edge.receive()
    assert hub.upstreams() == []


async def test_a_silent_uplink_is_restarted_with_a_new_token(
    central: Central, footage: Footage
) -> None:
    add_camera(central)
    hub = central.client.app[VIDEO].hub
    hub.stall_s = 0.5
    viewer = await central.client.ws_connect(LIVE, headers=await central.token("inspector-a"))
    first = (await wait_command(central, "stream_start"))["args"]["token"]
    edge = await connect_edge(central, first)
    hello, chunks = footage_chunks(footage.short_h264, frames=10)
    await push(edge, hello, chunks)
    second = (await wait_command(central, "stream_start", count=2))["args"]["token"]
    assert second != first
    async with asyncio.timeout(5):
        while not edge.closed:
            await edge.receive()
    resp = await central.client.get("/api/v1/video/uplink", headers={"X-FSV-Uplink-Token": first})
    assert resp.status == 403
    edge2 = await connect_edge(central, second)
    await push(edge2, hello, chunks)
    got = await read_until_keyframe(viewer)
    assert any(isinstance(g, bytes) and g[0] == FrameKind.INIT for g in got)
    await viewer.close()
    await edge2.close()


async def test_a_county_b_user_cannot_open_a_county_a_camera(central: Central) -> None:
    add_camera(central)
    status, body = await call(central, "inspector-b", "GET", LIVE)
    assert status == 404
    status, _ = await call(
        central,
        "inspector-b",
        "GET",
        "/api/v1/video/replay/demo-canteen-a/cam1",
        params={"start": "1e9"},
    )
    assert status == 404
    assert commands(central, "stream_start") == []
    status, _ = await call(central, "inspector-a", "GET", LIVE)
    assert status == 400  # in scope, but not a WebSocket upgrade


async def test_hls_serves_whole_gops_that_decode(central: Central, footage: Footage) -> None:
    add_camera(central)
    headers = await central.token("inspector-a")
    base = "/api/v1/video/hls/demo-canteen-a/cam1"
    playlist_req = asyncio.create_task(central.client.get(f"{base}/sub.m3u8", headers=headers))
    token = (await wait_command(central, "stream_start"))["args"]["token"]
    edge = await connect_edge(central, token)
    hello, chunks = footage_chunks(footage.short_h264)
    await push(edge, hello, chunks)
    resp = await playlist_req
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    lines = (await resp.text()).splitlines()
    assert "#EXT-X-VERSION:7" in lines
    init_name = next(x for x in lines if x.startswith("#EXT-X-MAP")).split('"')[1]
    segments = [x for x in lines if x.endswith(".m4s")]
    assert len(segments) == 2  # three GOPs pushed; the last is still open
    init = await (await central.client.get(f"{base}/{init_name}", headers=headers)).read()
    data = init
    for name in segments:
        seg = await central.client.get(f"{base}/{name}", headers=headers)
        assert seg.status == 200
        data += await seg.read()
    counters = [c for _, c in decoded_counters(data)]
    assert counters == list(range(0, 100))
    with av.open(
        io.BytesIO(
            init + await (await central.client.get(f"{base}/{segments[1]}", headers=headers)).read()
        )
    ) as container:
        first = next(container.demux(container.streams.video[0]))
        assert first.is_keyframe  # every segment starts with a keyframe
    missing = await central.client.get(f"{base}/sub-9-99.m4s", headers=headers)
    assert missing.status == 404
    await edge.close()
