"""Archive routes: the edge's transfer (site login) and the regulators' policy, timeline, files.

Edge side (documented in docs/mqtt.md, like media uploads):
- `GET /api/v1/archive/wants?limit=N`: what the archive still wants of the caller's site;
- `PUT /api/v1/archive/segments/{camera}/{path}` with `X-Content-SHA256` and `X-Offset`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    audit,
    current_user,
    json_response,
    read_body,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.archive.policy import SitePolicy
from central.archive.sources import timeline
from central.archive.transfer import ArchiveError, safe_path
from central.errors import ForbiddenError, NotFoundError
from central.ingest.routes import _site_of as site_of
from central.ingest.routes import upload_slot
from central.keys import ARCHIVE
from central.regulation.roles import Permission, Role
from fsv_contract.lanes import split_lane

routes = RouteTable()
SHA256_HEADER = "X-Content-SHA256"
OFFSET_HEADER = "X-Offset"
HAVE_HEADER = "X-Have-Bytes"
_SHA = re.compile(r"^[0-9a-f]{64}$")
BLOCK = 256 * 1024


# --- the edge's transfer ----------------------------------------------------------------------


async def get_wants(request: web.Request) -> web.Response:
    """What the archive still wants of the caller's site, oldest first."""
    site = await site_of(request)
    try:
        limit = max(1, min(500, int(request.query.get("limit", "20"))))
    except ValueError as e:
        raise web.HTTPBadRequest(text="limit must be a number") from e
    archive = request.app[ARCHIVE]
    policy = await asyncio.to_thread(archive.policy, site)
    segments = await asyncio.to_thread(archive.wanted, site, limit)
    return json_response({"policy": policy.model_dump(), "segments": segments})


async def put_segment(request: web.Request) -> web.Response:
    """Take (part of) a segment; 201 stored, 200 already held, 202 more bytes expected."""
    site = await site_of(request)
    with await upload_slot(request, site):
        return await _put_segment(request, site)


async def _put_segment(request: web.Request, site: str) -> web.Response:
    camera, path = request.match_info["camera"], request.match_info["path"]
    sha = request.headers.get(SHA256_HEADER, "").lower()
    try:
        offset = int(request.headers.get(OFFSET_HEADER, "0"))
    except ValueError as e:
        raise web.HTTPBadRequest(text=f"{OFFSET_HEADER} must be a number of bytes") from e
    if not _SHA.match(sha) or offset < 0:
        raise web.HTTPBadRequest(text=f"{SHA256_HEADER} (hex) and {OFFSET_HEADER} are required")
    archive = request.app[ARCHIVE]
    try:
        seg = await asyncio.to_thread(archive.begin, site, camera, path, sha, offset)
        if seg is None:
            return web.Response(status=200, text="already archived")
        have = offset
        while block := await request.content.read(BLOCK):
            have = await asyncio.to_thread(archive.append, site, seg, block)
        done = await asyncio.to_thread(archive.finish, site, seg)
    except ArchiveError as e:
        headers = {HAVE_HEADER: str(e.have)} if e.have is not None else {}
        return web.Response(status=e.status, text=str(e), headers=headers)
    if not done:
        headers = {HAVE_HEADER: str(have)}
        return web.Response(status=202, text=f"holding {have} bytes", headers=headers)
    return web.Response(status=201, text="archived")


def add_edge_routes(app: web.Application) -> None:
    """Register the edge's transfer routes (site login; not in the regulators' OpenAPI)."""
    app.router.add_get("/api/v1/archive/wants", get_wants)
    app.router.add_put("/api/v1/archive/segments/{camera}/{path:.+}", put_segment)


# --- regulators --------------------------------------------------------------------------------


class TimelineQuery(BaseModel):
    """A time range (UTC seconds)."""

    start: float = Field(ge=0, le=4e9, description="UTC seconds")
    end: float = Field(ge=0, le=4e9, description="UTC seconds")


async def _camera(request: web.Request, permission: Permission) -> dict[str, Any]:
    user = current_user(request, permission)
    m = request.match_info
    return await run_db(services(request).orgs.get_camera, user.scope, m["site_id"], m["camera_id"])


@routes.route(
    "GET",
    "/api/v1/archive/policies/{site_id}",
    tag="archive",
    summary="A site's archive policy (evidence, sub or main with stations and windows)",
    statuses=(200, 404),
)
async def get_policy(request: web.Request) -> web.Response:
    """The policy in force (the configured default when the site has none)."""
    user = current_user(request, Permission.VIEW)
    site = await run_db(services(request).orgs.get_site, user.scope, request.match_info["site_id"])
    archive = request.app[ARCHIVE]
    policy = await asyncio.to_thread(archive.policy, site["id"])
    backlog = await asyncio.to_thread(archive.backlog, site["id"])
    return json_response({"site_id": site["id"], **policy.model_dump(), "backlog": backlog})


@routes.route(
    "PUT",
    "/api/v1/archive/policies/{site_id}",
    tag="archive",
    body=SitePolicy,
    summary="Set a site's archive policy (organisation managers)",
    statuses=(200, 400, 403, 404),
)
async def put_policy(request: web.Request) -> web.Response:
    """Replace the policy; audited as `org_update` (detail `archive_policy`)."""
    user = current_user(request, Permission.MANAGE_ORGS)
    site = await run_db(services(request).orgs.get_site, user.scope, request.match_info["site_id"])
    policy = await read_body(request, SitePolicy)
    await asyncio.to_thread(request.app[ARCHIVE].store.set_policy, site["id"], policy,
                            user.username)  # fmt: skip
    await audit(request, "org_update", site["id"], {"archive_policy": policy.model_dump()},
                org_path=site["org_path"])  # fmt: skip
    return json_response({"site_id": site["id"], **policy.model_dump()})


@routes.route(
    "GET",
    "/api/v1/archive/timeline/{site_id}/{camera_id}",
    tag="archive",
    query=TimelineQuery,
    summary="Which parts of a time range come from the archive, the edge, or nowhere",
    statuses=(200, 400, 404),
)
async def get_timeline(request: web.Request) -> web.Response:
    """Parts of [start, end) with their source: `archive` (file URL), `edge`, `none`."""
    cam = await _camera(request, Permission.WATCH_VIDEO)
    q = read_query(request, TimelineQuery)
    if q.end <= q.start or q.end - q.start > 31 * 86400:
        raise web.HTTPBadRequest(text="end must follow start, at most 31 days later")
    parts = await asyncio.to_thread(
        timeline, request.app[ARCHIVE], cam["site_id"], cam["camera_id"], q.start, q.end
    )
    return json_response({"site_id": cam["site_id"], "camera_id": cam["camera_id"],
                          "parts": parts})  # fmt: skip


@routes.route(
    "GET",
    "/api/v1/archive/files/{site_id}/{camera_id}/{path:.+}",
    tag="archive",
    summary="An archived segment (fragmented MP4, as recorded and anchored); `X-Stream` says "
    "which of the camera's streams (main, or sub under policy `sub`)",
    produces=("video/mp4",),
    statuses=(200, 404),
)
async def get_file(request: web.Request) -> web.StreamResponse:
    """Serve a stored segment; audited as `replay` (detail `source: archive`)."""
    cam = await _camera(request, Permission.WATCH_VIDEO)
    archive = request.app[ARCHIVE]
    try:
        path = safe_path(request.match_info["path"])
    except ArchiveError as e:
        raise NotFoundError(str(e)) from e
    lane = path.split("/", 1)[0]  # the lane's folder: the camera's main or sub stream
    camera, stream = split_lane(lane)
    if camera != cam["camera_id"]:
        raise NotFoundError("that segment is not of this camera")
    stored = await asyncio.to_thread(archive.store.stored, cam["site_id"], lane, path)
    if stored is None:
        raise NotFoundError("the archive does not hold that segment")
    await audit(request, "replay", f"{cam['site_id']}/{cam['camera_id']}",
                {"source": "archive", "path": path, "stream": stream},
                org_path=cam["org_path"])  # fmt: skip
    return web.FileResponse(
        archive.file(cam["site_id"], path),
        headers={"Content-Type": "video/mp4", "Content-Disposition": "inline; filename=seg.mp4",
                 "X-Stream": stream},
    )  # fmt: skip


@routes.route(
    "GET",
    "/api/v1/archive/status",
    tag="archive",
    summary="The archive's footage per site, disk, forecast and refused transfers (admins)",
    statuses=(200, 403),
)
async def get_status(request: web.Request) -> web.Response:
    """Totals per site, disk use, days left at the current intake, refusals."""
    user = current_user(request)
    if user.role is not Role.ADMIN:
        raise ForbiddenError("only an admin may read the archive status")
    status = await asyncio.to_thread(request.app[ARCHIVE].status)
    return json_response(status)
