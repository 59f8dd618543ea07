"""Replay, timeline, export, wall and relay status routes of the video relay."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from central.alerts.store import AlertQuery
from central.api.common import (
    audit,
    current_user,
    json_response,
    parse_time,
    read_body,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.archive.export import archived_for_export, export_from_archive
from central.archive.replay import (
    ArchiveReplay,
    archived_stream,
    edge_holds,
    edge_stream,
    serve_archive_replay,
)
from central.archive.sources import agent_online, replay_sources
from central.errors import InvalidInputError, NotFoundError
from central.keys import ARCHIVE, VIDEO
from central.regulation.roles import Permission
from central.regulation.scope import in_scope
from central.video.api_live import (
    QUOTA_CLOSE_CODE,
    camera_in_scope,
    ends_with_session,
    refuse_viewer,
    replay_key,
    serve_viewer,
    websocket,
)
from central.video.quotas import QuotaExceeded, quota_error_message
from central.video.recordings import EdgeRefused, EdgeUnavailable
from central.video.status import site_status
from central.video.thumbnails import EdgeTimeout, ThumbnailBusy
from central.video.upstream import StreamKey
from central.video.wall import reported_uplinks, wall_cameras
from fsv_contract.lanes import Lane, lane_id
from fsv_contract.video import MAX_EXPORT_S, MAX_RANGE_QUERY_S

routes = RouteTable()


class ReplayQuery(BaseModel):
    """Where and how fast to replay."""

    start: str = Field(description="UTC epoch seconds or ISO 8601 with a zone")
    speed: float = Field(1.0, ge=0.25, le=16.0, description="x real time")
    stream: Lane | None = Field(
        None,
        description="this recording of the camera (none: from the city archive the main "
        "stream where it holds it, else the sub stream; from the edge its main stream); "
        "`sub` from the edge: its sub lane where it recorded the sub stream, else main",
    )


class RangeQuery(BaseModel):
    """A time range, e.g. one local day."""

    start: str = Field(description="UTC epoch seconds or ISO 8601 with a zone")
    end: str = Field(description="UTC epoch seconds or ISO 8601 with a zone")


class ThumbnailQuery(BaseModel):
    """The moment to preview."""

    at: str = Field(description="UTC epoch seconds or ISO 8601 with a zone")


class ExportBody(BaseModel):
    """A clip to cut from a camera's recording."""

    site_id: str = Field(max_length=63)
    camera_id: str = Field(max_length=63)
    start: float = Field(ge=0, description="UTC epoch seconds")
    end: float = Field(ge=0, description="UTC epoch seconds")


class ExportFileQuery(BaseModel):
    """Which export and which of its two files."""

    id: str = Field(max_length=64)
    part: Literal["clip", "manifest"] = "clip"


class WallQuery(BaseModel):
    """Which cameras the wall shows."""

    org_id: int | None = Field(None, description="only cameras under this organisation")
    station: str | None = Field(None, max_length=63, description="only cameras at this station")


def _range(q: RangeQuery, limit: float) -> tuple[float, float]:
    start, end = parse_time(q.start), parse_time(q.end)
    assert start is not None and end is not None
    if not 0 < end - start <= limit:
        raise InvalidInputError(f"end must follow start by at most {limit:.0f} s")
    return start, end


@routes.route(
    "GET",
    "/api/v1/video/recordings/{site_id}/{camera_id}",
    tag="video",
    query=RangeQuery,
    summary="Recorded ranges, gaps, alert markers and the source of each range (edge, archive)",
    statuses=(200, 404, 502, 504),
)
async def video_recordings(request: web.Request) -> web.Response:
    """The replay timeline of one camera for a range (at most two days)."""
    user, cam = await camera_in_scope(request)
    start, end = _range(read_query(request, RangeQuery), MAX_RANGE_QUERY_S)
    site, camera = cam["site_id"], cam["camera_id"]
    archive = request.app[ARCHIVE]
    try:
        answer = await request.app[VIDEO].recordings.get(site, camera, start, end)
        on_edge = [(float(r["start"]), float(r["end"])) for r in answer.get("ranges", [])]
        sources = await asyncio.to_thread(
            replay_sources, archive, site, camera, start, end, on_edge
        )
        # Footage the edge no longer holds (retention, a wiped disk) but the archive does.
        only_archived = [
            {**s, "codec": None}
            for s in sources
            if s["source"] == "archive"
            and not any(a < s["end"] and s["start"] < b for a, b in on_edge)
        ]
        if only_archived:
            answer = {
                **answer,
                "ranges": sorted(answer["ranges"] + only_archived, key=lambda r: r["start"]),
            }
    except EdgeUnavailable as e:
        # The edge is away: what the city archive holds still plays (and is shown as such).
        sources = await asyncio.to_thread(replay_sources, archive, site, camera, start, end, None)
        archived = [s for s in sources if s["source"] == "archive"]
        if not archived:
            raise web.HTTPGatewayTimeout(text=str(e)) from e
        answer = {"ranges": archived, "gaps": [], "edge": "unavailable"}
    except EdgeRefused as e:
        raise web.HTTPBadGateway(text=str(e)) from e
    query = AlertQuery(
        site_id=cam["site_id"], camera_id=cam["camera_id"], since=start, until=end, limit=500
    )
    page = await run_db(services(request).alerts.list_alerts, user.scope, query)
    alerts = [
        {k: a.get(k) for k in ("id", "kind", "state", "severity", "start", "end")}
        for a in page["items"]
    ]
    return json_response({**answer, "sources": sources, "alerts": alerts})


@routes.route(
    "GET",
    "/api/v1/video/replay/{site_id}/{camera_id}",
    tag="video",
    query=ReplayQuery,
    summary="WebSocket: replay of a camera's recording from a time (keyframe at or before it)",
    produces=("application/octet-stream",),
    statuses=(101, 400, 404),
)
async def video_replay(request: web.Request) -> web.StreamResponse:
    """A replay upstream of its own; audited as `replay`."""
    user, cam = await camera_in_scope(request)
    q = read_query(request, ReplayQuery)
    start = parse_time(q.start)
    assert start is not None
    ws = websocket(request)
    video = request.app[VIDEO]
    # The city archive first where it holds the footage (it costs the site's line nothing,
    # so only the user's own replay count applies to it).
    archive = request.app[ARCHIVE]
    stream = await asyncio.to_thread(
        archived_stream, archive, cam["site_id"], cam["camera_id"], start, q.stream
    )
    # What the edge replays where the archive has nothing: the sub lane only when asked for.
    from_edge = await asyncio.to_thread(
        edge_stream, archive, cam["site_id"], cam["camera_id"], start, q.stream
    )
    key = replay_key(cam["site_id"], cam["camera_id"], from_edge)
    from_archive = stream is not None
    try:
        lease = await video.quotas.viewer(user.id, "replay", key, uses_uplink=not from_archive)
    except QuotaExceeded as e:
        return await refuse_viewer(request, ws, e)
    try:
        target = f"{cam['site_id']}/{cam['camera_id']}"
        shown = stream or (from_edge if from_edge == "sub" else None)  # the edge's sub lane
        detail = {"start": start, "speed": q.speed, **({"stream": shown} if shown else {})}
        await audit(request, "replay", target, detail, org_path=cam["org_path"])
        await ws.prepare(request)
        async with ends_with_session(request, ws):
            await _replay(request, ws, cam, key, stream, from_edge, start, q.speed)
    finally:
        lease.release()
    return ws


async def _replay(
    request: web.Request, ws: web.WebSocketResponse, cam: dict[str, Any], key: StreamKey,
    stream: Lane | None, from_edge: Lane, start: float, speed: float,
) -> None:  # fmt: skip
    """Serve a prepared replay socket: from the city archive first where it holds `stream`,
    then (or only) from the edge."""
    video, archive = request.app[VIDEO], request.app[ARCHIVE]
    user = current_user(request)
    if stream is not None:
        site, camera = cam["site_id"], cam["camera_id"]
        edge = edge_holds(archive, site, lane_id(camera, from_edge))
        replay = ArchiveReplay(archive, site, camera, start, speed, edge, stream)
        handoff = await serve_archive_replay(ws, replay, from_edge)
        if handoff is None:
            return
        try:  # the edge goes on where the archive's footage ends: now it uses the line
            await video.quotas.check_site(user.id, site)
        except QuotaExceeded as e:
            await ws.send_str(quota_error_message(e))
            await ws.close(code=QUOTA_CLOSE_CODE, message=b"video quota")
            return
        start = handoff
    await serve_viewer(ws, video.hub, key, cam["org_path"], start, speed, user.id)


@routes.route(
    "GET",
    "/api/v1/video/thumbnail/{site_id}/{camera_id}",
    tag="video",
    query=ThumbnailQuery,
    summary="A small JPEG of the keyframe near a moment (cached; archive first, else the edge)",
    produces=("image/jpeg",),
    statuses=(200, 404, 503, 504),
)
async def video_thumbnail(request: web.Request) -> web.Response:
    """The scrubbing preview of the bucket a moment falls in; `X-Thumbnail-Source` says where
    it was made (archive, edge), `X-Thumbnail-Cache` whether central kept it from an earlier
    request (hit, miss). Not audited: a 192-px keyframe is a preview, not footage."""
    _user, cam = await camera_in_scope(request)
    at = parse_time(read_query(request, ThumbnailQuery).at)
    assert at is not None
    site, camera = cam["site_id"], cam["camera_id"]
    archive = request.app[ARCHIVE]
    online = await asyncio.to_thread(agent_online, archive, site)
    try:
        data, source, cached = await request.app[VIDEO].thumbnails.get(
            archive, site, camera, at, online
        )
    except ThumbnailBusy as e:
        raise web.HTTPServiceUnavailable(text=str(e), headers={"Retry-After": "1"}) from e
    except EdgeTimeout as e:
        raise web.HTTPGatewayTimeout(text=str(e)) from e
    headers = {
        "X-Thumbnail-Source": source,
        "X-Thumbnail-Cache": "hit" if cached else "miss",
        "Cache-Control": "private, max-age=3600",
    }
    return web.Response(body=data, content_type="image/jpeg", headers=headers)


@routes.route(
    "POST",
    "/api/v1/video/exports",
    tag="video",
    body=ExportBody,
    summary="Export a clip (packet copy) with a signed manifest of its segment hash chain",
    statuses=(201, 400, 404, 429),
)
async def video_export_create(request: web.Request) -> web.Response:
    """Ask the edge for the clip (with the edge away, cut it from the city archive if that
    holds the range: `source` and `stream` say so); poll the job, then download it. Audited
    as `clip_export`."""
    body = await read_body(request, ExportBody)
    user = current_user(request, Permission.WATCH_VIDEO)
    cam = await run_db(services(request).orgs.get_camera, user.scope, body.site_id, body.camera_id)
    if not 0 < body.end - body.start <= MAX_EXPORT_S:
        raise InvalidInputError(f"a clip lasts at most {MAX_EXPORT_S:.0f} s")
    video = request.app[VIDEO]
    archive = request.app[ARCHIVE]
    site, camera = cam["site_id"], cam["camera_id"]
    held = await video.quotas.check_export(user.id, site)  # 429 when used up
    try:
        # The edge away: the city archive's copy is cut here, if it holds the range.
        online = await asyncio.to_thread(agent_online, archive, site)
        found = None if online else await asyncio.to_thread(
            archived_for_export, archive, site, camera, body.start, body.end
        )  # fmt: skip
        if found is not None:
            cut = functools.partial(export_from_archive, archive, site, camera, body.start,
                                    body.end)  # fmt: skip
            job = await video.exports.create_from_archive(
                cam, body.start, body.end, user.id, user.username, cut
            )
        else:
            job = await video.exports.create(cam, body.start, body.end, user.id, user.username)
    finally:
        held.release()
    await audit(
        request,
        "clip_export",
        f"{body.site_id}/{body.camera_id}",
        {
            "export_id": job["id"],
            "start": body.start,
            "end": body.end,
            "source": job["source"],
            "stream": job["stream"],
        },  # fmt: skip
        org_path=cam["org_path"],
    )
    return json_response(job, status=201)


@routes.route("GET", "/api/v1/video/exports", tag="video", summary="Recent clip exports")
async def video_exports(request: web.Request) -> web.Response:
    """Exports in the caller's scope, newest first."""
    user = current_user(request, Permission.WATCH_VIDEO)
    items = await run_db(request.app[VIDEO].exports.recent, user.scope)
    return json_response({"items": items})


@routes.route(
    "GET",
    "/api/v1/video/exports/file",
    tag="video",
    query=ExportFileQuery,
    summary="Download an exported clip or its signed manifest",
    produces=("video/mp4", "application/json"),
    statuses=(200, 404),
)
async def video_export_file(request: web.Request) -> web.StreamResponse:
    """The file of a finished export; every download is audited."""
    user = current_user(request, Permission.WATCH_VIDEO)
    q = read_query(request, ExportFileQuery)
    exports = request.app[VIDEO].exports
    job = await run_db(exports.get, user.scope, q.id)
    if job["status"] != "done":
        raise NotFoundError(f"export {q.id} is {job['status']}, not ready")
    path = exports.clip_path(q.id) if q.part == "clip" else exports.manifest_path(q.id)
    await audit(
        request,
        "clip_export",
        f"{job['site_id']}/{job['camera_id']}",
        {"export_id": q.id, "download": q.part},
        org_path=job["org_path"],
    )
    name = f"{job['site_id']}-{job['camera_id']}-{int(job['start'])}"
    suffix, kind = (".mp4", "video/mp4") if q.part == "clip" else (".json", "application/json")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": kind,
            "Content-Disposition": f'attachment; filename="{name}{suffix}"',
        },
    )


@routes.route(
    "GET",
    "/api/v1/video/wall",
    tag="video",
    query=WallQuery,
    summary="Cameras for the live wall: names, station, enterprise, state, open alerts",
)
async def video_wall(request: web.Request) -> web.Response:
    """Cameras in scope with what each wall tile shows, and each site's uplink health."""
    user = current_user(request, Permission.WATCH_VIDEO)
    q = read_query(request, WallQuery)
    svc = services(request)
    under = (await run_db(svc.orgs.get_org, user.scope, q.org_id))["org_path"] if q.org_id else None
    cams = await run_db(wall_cameras, svc.ldb, user.scope, under, q.station)
    reported = await run_db(reported_uplinks, svc.ldb, user.scope)
    sites = site_status(request.app[VIDEO].hub.upstreams(), user.scope, reported)
    return json_response({"items": cams, "sites": sites})


@routes.route(
    "GET",
    "/api/v1/video/status",
    tag="video",
    summary="Upstreams now and each site's uplink: rate in, keeping up or starved",
)
async def video_status(request: web.Request) -> web.Response:
    """What the relay carries in the caller's scope."""
    user = current_user(request, Permission.WATCH_VIDEO)
    hub = request.app[VIDEO].hub
    mine: list[dict[str, Any]] = [
        u.status() for u in hub.upstreams() if u.org_path and in_scope(user.scope, u.org_path)
    ]
    reported = await run_db(reported_uplinks, services(request).ldb, user.scope)
    sites = site_status(hub.upstreams(), user.scope, reported)
    return json_response({"upstreams": mine, "sites": sites})
