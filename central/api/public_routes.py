"""Public kitchen links: managed by canteen staff and regulators, read by anyone with the QR."""

from __future__ import annotations

import html
import time

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
from central.regulation.public import qr_svg
from central.regulation.roles import Permission
from central.web import i18n

routes = RouteTable()


class PublicLinkIn(BaseModel):
    """Cameras (``site/camera``) of one canteen to show publicly."""

    org_id: int
    cameras: list[str] = Field(min_length=1, max_length=16)
    label: str = Field("", max_length=100)


def public_url(request: web.Request, token: str) -> str:
    """The address printed in the QR code."""
    return f"{services(request).web.base_url.rstrip('/')}/p/{token}"


@routes.route("GET", "/api/v1/public-links", summary="Public links in scope", tag="public")
async def list_links(request: web.Request) -> web.Response:
    """Links with their state (active or revoked)."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    links = await run_db(services(request).public.list_links, user.scope)
    return json_response({"items": [{**x, "url": public_url(request, x["token"])} for x in links]})


@routes.route(
    "POST",
    "/api/v1/public-links",
    summary="Publish canteen cameras",
    tag="public",
    body=PublicLinkIn,
    statuses=(201,),
)
async def create_link(request: web.Request) -> web.Response:
    """Create a public read-only link of a canteen's chosen cameras."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    body = await read_body(request, PublicLinkIn)
    link = await run_db(
        services(request).public.create, user.scope, body.org_id, body.cameras, body.label, user.id
    )
    await audit(
        request,
        "public_link_create",
        f"public_link:{link['id']}",
        {"cameras": body.cameras},
        org_path=link["org_path"],
    )
    return json_response({**link, "url": public_url(request, link["token"])}, status=201)


@routes.route(
    "DELETE", "/api/v1/public-links/{link_id}", summary="Revoke a public link", tag="public"
)
async def revoke_link(request: web.Request) -> web.Response:
    """The link stops working at once."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    link = await run_db(services(request).public.revoke, user.scope, path_int(request, "link_id"))
    await audit(
        request, "public_link_revoke", f"public_link:{link['id']}", org_path=link["org_path"]
    )
    return json_response(link)


@routes.route(
    "GET",
    "/api/v1/public-links/{link_id}/qr.svg",
    summary="QR code of a link",
    tag="public",
    produces=("image/svg+xml",),
)
async def link_qr(request: web.Request) -> web.Response:
    """An SVG QR code to print for the kitchen door."""
    user = current_user(request, Permission.MANAGE_PUBLIC)
    link = await run_db(services(request).public.get, user.scope, path_int(request, "link_id"))
    svg = await run_db(qr_svg, public_url(request, link["token"]))
    return web.Response(body=svg, content_type="image/svg+xml")


def _limited(request: web.Request) -> web.Response | None:
    svc = services(request)
    if svc.public_rate.allow(client_ip(request), time.monotonic()):
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
    if (limited := _limited(request)) is not None:
        return limited
    return json_response(
        await run_db(services(request).public.resolve, request.match_info["token"])
    )


async def public_page(request: web.Request) -> web.Response:
    """The HTML page behind the QR code (rate-limited, read-only)."""
    if (limited := _limited(request)) is not None:
        return limited
    lang = i18n.lang_of(request)
    try:
        view = await run_db(services(request).public.resolve, request.match_info["token"])
    except NotFoundError:
        return web.Response(status=404, text=i18n.t(lang, "public.not_found"))
    e = html.escape
    c = view["canteen"]
    cams = "".join(
        f'<figure class="cam"><div class="player" data-camera="{e(x["ref"])}" '
        f'data-public-token="{e(request.match_info["token"])}">'
        f"{e(i18n.t(lang, 'camera.online' if x['online'] else 'camera.offline'))}</div>"
        f"<figcaption>{e(x['name'])}</figcaption></figure>"
        for x in view["cameras"]
    )
    brand = i18n.t(lang, "public.bright_kitchen")
    licence = i18n.t(lang, "public.licence", no=c["licence_no"])
    page = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(c['name'])} · {e(brand)}</title>"
        '<link rel="stylesheet" href="/static/style.css"></head><body class="public">'
        f"<header><h1>{e(c['name'])}</h1><p>{e(brand)}</p></header><main>"
        f'<section class="info"><p>{e(c["address"])}</p><p>{e(licence)}</p>'
        f'<p>{e(c["public_info"])}</p></section><section class="cams">{cams}</section>'
        "</main></body></html>"
    )
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
    )
