"""The pages' live-update socket: alert and camera changes in the caller's scope."""

from __future__ import annotations

import time

from aiohttp import web

from central.alerts.updates import LIMIT_CLOSE_CODE, Subscriber, scope_root
from central.api.common import current_session, same_origin, services
from central.api.registry import RouteTable
from central.errors import ForbiddenError
from central.keys import CONFIG

routes = RouteTable()


@routes.route(
    "GET",
    "/api/v1/updates",
    tag="alerts",
    summary="WebSocket: new and changed alerts and camera counters in the caller's scope",
    statuses=(101, 400, 401, 403),
)
async def updates(request: web.Request) -> web.StreamResponse:
    """One socket per page: a hello (naming the node, with several), then `alert`
    (created/changed) and `camera` messages.

    Closes with 4008 when the client falls behind (reconnect and list again), 4401 when the
    session ends, 4429 when the user already has too many open, 1001 at shutdown, 1012 when
    changes of other nodes may have been missed (list again).
    """
    session = current_session(request)
    svc = services(request)
    if not same_origin(request, svc.web.base_url):
        raise ForbiddenError("this socket may only be opened from central's own pages")
    # No per-message deflate: messages are small and compressing each one again for every
    # socket would cost more CPU than the bytes it saves.
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096, compress=False)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="this endpoint expects a WebSocket upgrade")
    user = session.user
    hub = svc.updates
    await ws.prepare(request)
    if not hub.admit(user.id):
        await ws.close(code=LIMIT_CLOSE_CODE, message=b"too many update sockets")
        return ws
    root = scope_root(user.scope)
    sub = Subscriber(ws, root, session.token_hash, user.id, transport=request.transport)
    hello = {"type": "hello", "scope": root, "user": user.username, "time": time.time()}
    cluster = request.app[CONFIG].cluster
    if cluster.nodes > 1:  # which node the socket is on (as X-FSV-Node says on responses)
        hello["node"] = cluster.node_id
    await hub.serve(sub, hello)
    return ws
