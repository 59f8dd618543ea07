"""Live video routes: viewers' WebSockets, HLS for phones and Safari, and the edges' uplink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from central.alerts.updates import SESSION_CLOSE_CODE
from central.api.common import (
    audit,
    current_session,
    current_user,
    read_query,
    run_db,
    same_origin,
    services,
)
from central.api.registry import RouteTable
from central.errors import ForbiddenError, NotFoundError
from central.keys import CONFIG, VIDEO
from central.regulation.roles import Permission
from central.regulation.users import User
from central.video.hub import VideoHub
from central.video.line_fit import line_refusal
from central.video.quotas import QuotaExceeded, quota_error_message
from central.video.upstream import StreamKey, Upstream
from central.video.viewers import SocketViewer
from fsv_contract.errors import InvalidPayload
from fsv_contract.video import TOKEN_HEADER, TOKEN_PATTERN, End, Hello, Stats, parse_control
from fsv_contract.video import unpack_frame as unpack

log = logging.getLogger(__name__)

routes = RouteTable()
MAX_UPLINK_FRAME = 16 << 20
HLS_LEASE_S = 30.0  # an HLS player that stops polling for this long is gone
HLS_WAIT_S = 12.0  # how long the first playlist request waits for a finished segment
QUOTA_CLOSE_CODE = 4429  # a WebSocket viewer refused by a video quota (HTTP 429's number)
THIN_LINE_CLOSE_CODE = 4503  # the site's uplink cannot carry the stream asked for
_HLS_NAME = re.compile(
    r"^(?P<stream>sub|main)(?:\.m3u8|-init-(?P<gen>\d+)\.mp4|-(?P<g>\d+)-(?P<seq>\d+)\.m4s)$"
)


class LiveQuery(BaseModel):
    """Which stream of the camera."""

    stream: Literal["sub", "main"] = Field("sub", description="sub (default, light) or main (HD)")


async def camera_in_scope(request: web.Request) -> tuple[User, dict[str, Any]]:
    """The caller (allowed to watch video) and the path's camera; 404 outside their scope."""
    user = current_user(request, Permission.WATCH_VIDEO)
    m = request.match_info
    cam = await run_db(services(request).orgs.get_camera, user.scope, m["site_id"], m["camera_id"])
    return user, cam


def websocket(
    request: web.Request, max_msg: int = 4096, *, browser: bool = True
) -> web.WebSocketResponse:
    """A WebSocket response, or 400 if the request is no upgrade.

    Sockets browsers open (`browser`) are refused (403) when another site's page opens them,
    like the pages' update socket (central.api.common.same_origin).
    """
    if browser and not same_origin(request, request.app[CONFIG].web.base_url):
        raise ForbiddenError("this socket may only be opened from central's own pages")
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=max_msg)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="this endpoint expects a WebSocket upgrade")
    return ws


@contextlib.asynccontextmanager
async def ends_with_session(request: web.Request, ws: web.WebSocketResponse) -> AsyncIterator[None]:
    """While the block runs, the prepared socket is closed (SESSION_CLOSE_CODE) as soon as the
    session that opened it ends: logout, expiry, a disabled user, a reset password, a new role.

    A lost phone's video stops with its session, like the pages' update sockets.
    """
    closing: list[asyncio.Task[bool]] = []

    def close() -> None:
        reason = b"session ended"
        closing.append(asyncio.ensure_future(ws.close(code=SESSION_CLOSE_CODE, message=reason)))

    untie = services(request).updates.hold(current_session(request).token_hash, close)
    try:
        yield
    finally:
        untie()
        await asyncio.gather(*closing, return_exceptions=True)


async def serve_viewer(
    ws: web.WebSocketResponse,
    hub: VideoHub,
    key: StreamKey,
    org_path: str,
    start: float | None = None,
    speed: float = 1.0,
    user_id: int | None = None,
    viewer: SocketViewer | None = None,
) -> None:
    """Attach a WebSocket viewer (`viewer`, or a new one) to the upstream of `key` until one
    of them ends."""
    viewer = viewer or SocketViewer(ws)
    upstream = await hub.open(key, start, speed)
    upstream.org_path = org_path
    if upstream.opened_by is None:
        upstream.opened_by = user_id
    upstream.add_viewer(viewer)
    pump = asyncio.create_task(viewer.pump(), name=f"viewer {key.label()}")
    try:
        async for _msg in ws:
            pass  # viewers only listen; pings are answered by aiohttp
    finally:
        hub.release(upstream, viewer)
        viewer.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


@routes.route(
    "GET",
    "/api/v1/video/live/{site_id}/{camera_id}",
    tag="video",
    query=LiveQuery,
    summary="WebSocket: live fMP4 of a camera (JSON hello, then init and fragments)",
    produces=("application/octet-stream",),
    statuses=(101, 400, 404),
)
async def video_live(request: web.Request) -> web.StreamResponse:
    """Join (or start) the camera's live upstream; audited as `live_view`."""
    user, cam = await camera_in_scope(request)
    q = read_query(request, LiveQuery)
    ws = websocket(request)
    key = StreamKey(cam["site_id"], cam["camera_id"], q.stream, "live")
    video = request.app[VIDEO]
    try:
        lease = await video.quotas.viewer(user.id, "live", key)
    except QuotaExceeded as e:
        return await refuse_viewer(request, ws, e)
    too_thin = await line_refusal(services(request).ldb, video.hub, key)
    if too_thin is not None:
        lease.release()
        return await refuse_thin_line(request, ws, too_thin)
    try:
        target = f"{cam['site_id']}/{cam['camera_id']}"
        await audit(request, "live_view", target, {"stream": q.stream}, org_path=cam["org_path"])
        await ws.prepare(request)
        async with ends_with_session(request, ws):
            await serve_viewer(ws, video.hub, key, cam["org_path"], user_id=user.id)
    finally:
        lease.release()
    return ws


async def refuse_viewer(
    request: web.Request, ws: web.WebSocketResponse, error: QuotaExceeded
) -> web.WebSocketResponse:
    """Tell a WebSocket viewer why it gets no video (the page shows it), then close (4429)."""
    await ws.prepare(request)
    await ws.send_str(quota_error_message(error))
    await ws.close(code=QUOTA_CLOSE_CODE, message=b"video quota")
    return ws


async def refuse_thin_line(
    request: web.Request, ws: web.WebSocketResponse, message: str
) -> web.WebSocketResponse:
    """Tell a viewer at once that the site's uplink cannot carry the stream (no stall)."""
    await ws.prepare(request)
    await ws.send_str(json.dumps({"type": "error", "status": 503, "message": message}))
    await ws.close(code=THIN_LINE_CLOSE_CODE, message=b"uplink too thin")
    return ws


# --- HLS ------------------------------------------------------------------------------------


@routes.route(
    "GET",
    "/api/v1/video/hls/{site_id}/{camera_id}/{name}",
    tag="video",
    summary="HLS (fMP4) of a camera's live stream: sub.m3u8 or main.m3u8, then its parts",
    produces=("application/vnd.apple.mpegurl", "video/mp4"),
    statuses=(200, 404, 429, 504),
)
async def video_hls(request: web.Request) -> web.StreamResponse:
    """The playlist keeps the upstream alive (a lease); init and segments come from its window."""
    user, cam = await camera_in_scope(request)
    match = _HLS_NAME.match(request.match_info["name"])
    if match is None:
        raise NotFoundError("no such HLS file")
    hub = request.app[VIDEO].hub
    key = StreamKey(cam["site_id"], cam["camera_id"], match["stream"], "live")
    headers = {"Cache-Control": "no-cache"}
    if match["seq"] is None and match["gen"] is None:
        upstream = await _hls_lease(request, hub, key, user, cam)
        playlist = await _wait_playlist(upstream, match["stream"])
        return web.Response(
            text=playlist, content_type="application/vnd.apple.mpegurl", headers=headers
        )
    found = hub.find(key)
    window = found.hls if found is not None else None
    if window is None:
        raise NotFoundError("this stream is not being relayed over HLS")
    if match["gen"] is not None:
        if int(match["gen"]) != window.generation or window.init is None:
            raise NotFoundError("that init segment is gone")
        return web.Response(body=window.init, content_type="video/mp4", headers=headers)
    segment = window.segment(int(match["seq"])) if int(match["g"]) == window.generation else None
    if segment is None:
        raise NotFoundError("that segment left the window")
    return web.Response(body=segment.data, content_type="video/mp4", headers=headers)


async def _hls_lease(
    request: web.Request, hub: VideoHub, key: StreamKey, user: User, cam: dict[str, Any]
) -> Upstream:
    running = hub.find(key)
    if running is None or running.state == "ended":
        await request.app[VIDEO].quotas.check_site(user.id, key.site)
        too_thin = await line_refusal(services(request).ldb, hub, key)
        if too_thin is not None:
            raise web.HTTPServiceUnavailable(text=too_thin)
    upstream = await hub.open(key)
    upstream.org_path = cam["org_path"]
    if upstream.opened_by is None:
        upstream.opened_by = user.id
    if upstream.hls is None:
        target = f"{cam['site_id']}/{cam['camera_id']}"
        await audit(
            request,
            "live_view",
            target,
            {"stream": key.stream, "hls": True},
            user=user,
            org_path=cam["org_path"],
        )
    upstream.enable_hls()
    upstream.hls_lease_until = time.monotonic() + HLS_LEASE_S
    return upstream


async def _wait_playlist(upstream: Upstream, stream: str) -> str:
    deadline = time.monotonic() + HLS_WAIT_S
    while True:
        window = upstream.hls
        text = window.playlist(stream) if window is not None else None
        if text is not None:
            return text
        if upstream.state == "ended":
            raise web.HTTPBadGateway(text=f"the stream ended: {upstream.ended_reason}")
        if time.monotonic() > deadline:
            raise web.HTTPGatewayTimeout(text="the camera's video did not arrive in time")
        await asyncio.sleep(0.1)


# --- the edges' uplink ----------------------------------------------------------------------


class EdgeSocket:
    """The edge's end of an upstream, as the hub closes it."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def close(self, reason: str) -> None:
        """Tell the edge to stop, then close."""
        if not self.ws.closed:
            try:
                await self.ws.send_str('{"type":"stop"}')
            except (ConnectionError, RuntimeError):
                pass
            await self.ws.close()


@routes.route(
    "GET",
    "/api/v1/video/uplink",
    tag="video",
    auth=False,
    summary=f"WebSocket for edges: media pushed with a one-time {TOKEN_HEADER} header",
    statuses=(101, 403),
)
async def video_uplink(request: web.Request) -> web.StreamResponse:
    """An edge dials in with the token of a `stream_start`, `export_clip` or `thumbnail` command."""
    token = request.headers.get(TOKEN_HEADER, "")
    video = request.app[VIDEO]
    upstream = video.hub.claim(token) if re.match(TOKEN_PATTERN, token) else None
    export_id = video.exports.claim(token) if upstream is None and token else None
    preview = video.thumbnails.claim(token) if upstream is None and export_id is None else None
    if upstream is None and export_id is None and preview is None:
        raise web.HTTPForbidden(text="unknown or used uplink token")
    ws = websocket(request, MAX_UPLINK_FRAME, browser=False)
    await ws.prepare(request)
    if export_id is not None:
        await video.exports.receive(ws, export_id)
    elif preview is not None:
        await video.thumbnails.receive(ws, preview)
    else:
        assert upstream is not None
        await _relay(ws, video.hub, upstream)
    return ws


async def _relay(ws: web.WebSocketResponse, hub: VideoHub, upstream: Upstream) -> None:
    edge = EdgeSocket(ws)
    hub.connected(upstream, edge)
    end: End | None = None
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                header, payload = unpack(msg.data)
                upstream.on_frame(header, msg.data, payload)
            elif msg.type == WSMsgType.TEXT:
                control = parse_control(msg.data)
                if isinstance(control, Hello):
                    upstream.on_hello(control, control.model_dump_json())  # checked, not raw
                elif isinstance(control, Stats):
                    upstream.on_stats(control.dropped)
                elif isinstance(control, End):
                    end = control
    except InvalidPayload as e:
        log.warning("%s: bad uplink frame, closing: %s", upstream.key.label(), e)
        await ws.close()
    finally:
        hub.disconnected(upstream, edge, end)


def replay_key(site: str, camera: str, stream: str = "main") -> StreamKey:
    """A replay's own upstream key (replays are never shared): of the camera's main stream
    recording, or (`sub`) of its sub lane's."""
    return StreamKey(site, camera, stream, f"replay:{uuid.uuid4().hex}")
