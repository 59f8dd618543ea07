"""The public kitchen link's live video: the sub stream of a published camera, no login.

The same relay as the live wall (one upstream per camera, shared with regulators), reached
only through a live public link and only for the cameras it publishes. Each link carries at
most its `max_viewers` connections; a revoked or expired link ends its viewers mid-stream.
"""

from __future__ import annotations

from aiohttp import web

from central.api.common import audit, run_db, services
from central.api.public_routes import rate_limited
from central.api.registry import RouteTable
from central.errors import InvalidInputError, NotFoundError
from central.keys import VIDEO
from central.video.api_live import refuse_thin_line, refuse_viewer, serve_viewer, websocket
from central.video.line_fit import line_refusal
from central.video.quotas import QuotaExceeded
from central.video.upstream import StreamKey
from central.video.viewers import SocketViewer

routes = RouteTable()
PUBLIC_STREAM = "sub"  # the light stream only: a public view never asks for the main one


@routes.route(
    "GET",
    "/api/v1/public/{token}/live/{site_id}/{camera_id}",
    tag="public",
    auth=False,
    summary="WebSocket: live sub stream of a camera a public link publishes (no login)",
    produces=("application/octet-stream",),
    statuses=(101, 400, 404, 429),
)
async def public_live(request: web.Request) -> web.StreamResponse:
    """Join (or start) the camera's live sub stream; audited as `public_view`."""
    if (limited := await rate_limited(request)) is not None:
        return limited
    if request.query:
        raise InvalidInputError("a public link shows the sub stream only and takes no parameters")
    m = request.match_info
    link = await run_db(services(request).public.link, m["token"])
    ref = f"{m['site_id']}/{m['camera_id']}"
    if ref not in link["cameras"]:
        raise NotFoundError("this public link does not exist or was revoked")
    ws = websocket(request)
    video = request.app[VIDEO]
    key = StreamKey(m["site_id"], m["camera_id"], PUBLIC_STREAM, "live")
    viewer = SocketViewer(ws)
    try:
        video.public.join(link["id"], link["max_viewers"], viewer)
    except QuotaExceeded as e:
        return await refuse_viewer(request, ws, e)
    try:
        running = video.hub.find(key)
        if running is None or running.state == "ended":
            await video.quotas.check_site(None, key.site)
            too_thin = await line_refusal(services(request).ldb, video.hub, key)
            if too_thin is not None:
                return await refuse_thin_line(request, ws, too_thin)
        await audit(request, "public_view", ref, {"link": link["id"]}, org_path=link["org_path"])
        await ws.prepare(request)
        await serve_viewer(ws, video.hub, key, link["org_path"], viewer=viewer)
    except QuotaExceeded as e:
        return await refuse_viewer(request, ws, e)
    finally:
        video.public.leave(link["id"], viewer)
    return ws
