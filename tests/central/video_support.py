"""Helpers of the video relay tests: a scripted edge uplink pushing real fMP4 from the footage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientWebSocketResponse
from central_support import Central

from central.keys import DATABASE
from edge_agent.uplink.fmp4 import Chunk, Fmp4Remuxer, MediaPacket, probe_stream
from fsv_contract.video import TOKEN_HEADER, UPLINK_PATH, FrameKind, Hello
from tests.edge_agent.uplink.conftest import annexb_events


def footage_chunks(path: Any, frames: int = 150) -> tuple[Hello, list[Chunk]]:
    """The hello and chunks an edge would send for the first `frames` frames of a clip."""
    events = annexb_events(path)[:frames]
    info = probe_stream("h264", None, events[0].data, events[0].time_base)
    remuxer = Fmp4Remuxer(info)
    chunks: list[Chunk] = []
    for e in events:
        chunks += remuxer.add(MediaPacket(e.data, e.dts, e.pts, 0, e.keyframe, e.wall))
    chunks += remuxer.close()
    hello = Hello(
        camera="cam1",
        stream="sub",
        mode="live",
        codec="h264",
        mime=remuxer.mime,
        width=remuxer.width,
        height=remuxer.height,
        origin_wall=events[0].wall,
    )
    return hello, chunks


def commands(central: Central, verb: str) -> list[dict[str, Any]]:
    """Commands central logged for `verb`, oldest first, args decoded."""
    db = central.client.app[DATABASE]
    with db.lock:
        rows = list(db.db.query("select * from commands where verb = ? order by issued_at", [verb]))
    return [{**r, "args": json.loads(r["args"])} for r in rows]


async def wait_command(
    central: Central, verb: str, count: int = 1, within: float = 5.0
) -> dict[str, Any]:
    """The `count`-th command of `verb` once central sent it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        rows = await asyncio.to_thread(commands, central, verb)
        if len(rows) >= count:
            return rows[count - 1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"central sent no {verb} #{count}")


async def connect_edge(central: Central, token: str) -> ClientWebSocketResponse:
    """An edge's uplink socket, authorised by `token`."""
    return await central.client.ws_connect(UPLINK_PATH, headers={TOKEN_HEADER: token})


async def push(
    ws: ClientWebSocketResponse, hello: Hello, chunks: list[Chunk], pace_s: float = 0.0
) -> None:
    """Send the hello, then the chunks (`pace_s` apart after the init)."""
    await ws.send_str(hello.model_dump_json())
    for chunk in chunks:
        await ws.send_bytes(chunk.frame())
        if pace_s and chunk.header.kind is FrameKind.FRAGMENT:
            await asyncio.sleep(pace_s)


async def read_until_keyframe(
    ws: ClientWebSocketResponse, within: float = 5.0
) -> list[str | bytes]:
    """What a viewer gets up to and including its first keyframe fragment."""
    got: list[str | bytes] = []
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            got.append(msg.data)
            if isinstance(msg.data, bytes) and msg.data[0] == FrameKind.FRAGMENT:
                return got


def add_camera(central: Central, site: str = "demo-canteen-a", camera: str = "cam1") -> None:
    """Register a camera of a seeded site."""
    central.svc.orgs.upsert_camera(site, camera, name=f"{camera} 后厨", station="kitchen_prep")


async def until(check: Any, within: float = 10.0, step: float = 0.05) -> None:
    """Poll `check()` until true; AssertionError after `within` seconds."""
    for _ in range(int(within / step) + 1):
        if check():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"still false after {within} s: {check}")
