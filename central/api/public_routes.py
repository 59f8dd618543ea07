"""Public kitchen links: managed by canteen staff and regulators, read by anyone with the QR."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    audit,
    client_ip,
    current_user,
    error_response,
    json_response,
    path_int,
    read_body,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import NotFoundError
from central.keys import CONFIG, VIDEO
from central.regulation.public import MAX_VIEWERS, qr_svg
from central.regulation.roles import Permission
from central.regulation.throttle import client_block
from central.web import i18n
from central.web.public_page import render as render_public

routes = RouteTable()


class PublicLinkIn(BaseModel):
    """Cameras (``site/camera``) of one canteen to show publicly."""

    org_id: int
    cameras: list[str] = Field(min_length=1, max_length=16)
    label: str = Field("", max_length=100)
    expires_at: float | None = Field(
        None, description="UTC seconds when the link stops working by itself (none: never)"
    )
    max_viewers: int | None = Field(
        None, ge=1, le=MAX_VIEWERS, description="video connections the link carries at once"
    )


def public_url(request: web.Request, token: str) -> str:
    """The address printed in the QR code."""
    return f"{services(request).web.base_url.rstrip('/')}/p/{token}"


def query_token(request: web.Request) -> str:
    """The link's token from `?token=` ("" if none): central keeps only its digest."""
    return request.query.get("token", "")


@routes.route("GET", "/api/v1/public-links", summary="Public links in scope", tag="public")
async def list_links(request: web.Request) -> web.Response:
    """Links with their state (active or revoked); no token (shown once, when made)."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    links = await run_db(services(request).public.list_links, user.scope)
    return json_response({"items": links})


@routes.route(
    "POST",
    "/api/v1/public-links",
    summary="Publish canteen cameras",
    tag="public",
    body=PublicLinkIn,
    statuses=(201,),
)
async def create_link(request: web.Request) -> web.Response:
    """Create a public read-only link of a canteen's chosen cameras.

    The answer carries the token and its address this once: central keeps only a digest.
    """
    user = current_user(request, Permission.MANAGE_PUBLIC)
    body = await read_body(request, PublicLinkIn)
    link = await run_db(
        services(request).public.create,
        user.scope,
        body.org_id,
        body.cameras,
        body.label,
        user.id,
        expires_at=body.expires_at,
        max_viewers=body.max_viewers,
    )
    await audit(
        request,
        "public_link_create",
        f"public_link:{link['id']}",
        {
            "cameras": body.cameras,
            "expires_at": body.expires_at,
            "max_viewers": link["max_viewers"],
        },
        org_path=link["org_path"],
    )
    return json_response({**link, "url": public_url(request, link["token"])}, status=201)


@routes.route(
    "DELETE", "/api/v1/public-links/{link_id}", summary="Revoke a public link", tag="public"
)
async def revoke_link(request: web.Request) -> web.Response:
    """The link stops working at once: its page, its info and the video its viewers watch."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    link = await run_db(services(request).public.revoke, user.scope, path_int(request, "link_id"))
    request.app[VIDEO].public.end(link["id"])
    await audit(
        request, "public_link_revoke", f"public_link:{link['id']}", org_path=link["org_path"]
    )
    return json_response(link)


@routes.route(
    "GET",
    "/api/v1/public-links/{link_id}/qr.svg",
    summary="QR code of a link (?token=: the token shown when it was made)",
    tag="public",
    produces=("image/svg+xml",),
    statuses=(200, 400, 404),
)
async def link_qr(request: web.Request) -> web.Response:
    """An SVG QR code to print for the kitchen door."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    link = await run_db(
        services(request).public.with_token,
        user.scope,
        path_int(request, "link_id"),
        query_token(request),
    )
    svg = await run_db(qr_svg, public_url(request, link["token"]))
    return web.Response(body=svg, content_type="image/svg+xml")


async def rate_limited(request: web.Request) -> web.Response | None:
    """A 429 response when the caller's address asked for public views too often, else None
    (an IPv6 caller counts as its /64 network, as the login throttle counts it)."""
    svc = services(request)
    if await svc.public_rate.allow_now(client_block(client_ip(request))):
        return None
    resp = error_response(429, "too many requests, try again in a minute")
    resp.headers["Retry-After"] = "60"
    return resp


@routes.route(
    "GET",
    "/api/v1/public/{token}",
    summary="Public view of a canteen (no login)",
    tag="public",
    auth=False,
    statuses=(200, 404, 429),
)
async def public_info(request: web.Request) -> web.Response:
    """The canteen's public info and published cameras, nothing else."""
    if (limited := await rate_limited(request)) is not None:
        return limited
    return json_response(
        await run_db(services(request).public.resolve, request.match_info["token"])
    )


async def public_page(request: web.Request) -> web.Response:
    """The HTML page behind the QR code (rate-limited, read-only)."""
    if (limited := await rate_limited(request)) is not None:
        return limited
    lang = i18n.lang_of(request)
    token = request.match_info["token"]
    try:
        view = await run_db(services(request).public.resolve, token)
    except NotFoundError:
        return web.Response(
            status=404,
            text=i18n.t(lang, "public.not_found"),
            headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
        )
    page = render_public(lang, request.app[CONFIG].web.timezone, token, view)
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
    )
