"""The printable QR poster of a public kitchen link, for the canteen's door."""

from __future__ import annotations

from aiohttp import web

from central.api.common import current_user, path_int, run_db, services
from central.api.public_routes import public_url, query_token
from central.api.registry import RouteTable
from central.errors import ConflictError
from central.keys import CONFIG
from central.regulation.roles import Permission
from central.web.poster import poster_page

routes = RouteTable()


@routes.route(
    "GET",
    "/api/v1/public-links/{link_id}/poster",
    summary="Printable A4 poster of a link (HTML; ?token=: the token shown when it was made)",
    tag="public",
    produces=("text/html",),
    statuses=(200, 400, 404, 409),
)
async def link_poster(request: web.Request) -> web.Response:
    """An A4 page: the canteen's name, a call to scan, the QR code (SVG) and the address."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    svc = services(request)
    link = await run_db(
        svc.public.with_token, user.scope, path_int(request, "link_id"), query_token(request)
    )
    if not link["active"]:
        raise ConflictError("this public link was revoked or has expired: no poster for it")
    org = await run_db(svc.orgs.get_org, user.scope, link["org_id"])
    url = public_url(request, link["token"])
    return poster_page(request, link, org, url, request.app[CONFIG].web.timezone)
