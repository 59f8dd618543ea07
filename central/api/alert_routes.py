"""The alert inbox: list, detail, workflow steps, rectification upload, evidence and media."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import BodyPartReader, web
from pydantic import AwareDatetime, BaseModel, Field

from central.alerts.evidence import discard_unreferenced, sniff_image, store_evidence
from central.alerts.store import MAX_DEADLINE_DAYS, AlertQuery
from central.alerts.workflow import Action, State, allowed_actions, decide
from central.api.common import (
    audit,
    client_ip,
    current_user,
    json_response,
    parse_time,
    path_int,
    read_body,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import InvalidInputError
from central.regulation.roles import GRANTS, Permission, Role, can
from central.regulation.users import User
from central.web.security import media_headers

routes = RouteTable()
MAX_NOTE = 4000


class AlertListQuery(BaseModel):
    """Filters and page of the alert list; times are epoch seconds or ISO 8601 (UTC)."""

    org_id: int | None = Field(None, description="only this organisation's subtree")
    site_id: str | None = None
    camera_id: str | None = None
    station: str | None = None
    kind: str | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    state: str | None = Field(None, description="comma-separated states")
    overdue: bool | None = None
    text: str | None = Field(
        None, max_length=100, description="words in the enterprise name, site, camera or rule"
    )
    since: str | None = Field(None, alias="from", description="event start at or after")
    until: str | None = Field(None, alias="to", description="event start before")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


class TransitionIn(BaseModel):
    """A workflow step other than the rectification submission (which uploads photos)."""

    action: Literal["acknowledge", "request_rectification", "close", "reopen"]
    note: str = Field("", max_length=MAX_NOTE)
    deadline: AwareDatetime | float | None = Field(
        None,
        description="rectification requests: by when, as ISO 8601 with a zone or epoch seconds,"
        f" at most {MAX_DEADLINE_DAYS} days ahead",
    )
    deadline_days: float | None = Field(
        None, gt=0, le=MAX_DEADLINE_DAYS, description="or: by when, in days from now"
    )

    def deadline_epoch(self, now: float) -> float | None:
        """The deadline as epoch seconds (from `deadline` or `deadline_days`)."""
        if self.deadline is not None and self.deadline_days is not None:
            raise InvalidInputError("give either deadline or deadline_days, not both")
        if self.deadline_days is not None:
            return now + self.deadline_days * 86400
        if isinstance(self.deadline, datetime):
            return self.deadline.timestamp()
        return self.deadline


@routes.route("GET", "/api/v1/alerts", summary="Alert inbox", tag="alerts", query=AlertListQuery)
async def list_alerts(request: web.Request) -> web.Response:
    """A page of alerts in scope, newest first, with filters."""
    user = current_user(request)
    q = read_query(request, AlertListQuery)
    svc = services(request)
    org_path = None
    if q.org_id is not None:
        org_path = (await run_db(svc.orgs.get_org, user.scope, q.org_id))["org_path"]
    query = AlertQuery(
        org_path=org_path,
        site_id=q.site_id,
        camera_id=q.camera_id,
        station=q.station,
        kind=q.kind,
        severity=q.severity,
        text=(q.text or "").strip() or None,
        states=tuple(s for s in (q.state or "").split(",") if s),
        since=parse_time(q.since),
        until=parse_time(q.until),
        overdue=q.overdue,
        limit=q.limit,
        offset=q.offset,
    )
    return json_response(await run_db(svc.alerts.list_alerts, user.scope, query))


@routes.route(
    "GET", "/api/v1/alerts/{alert_id}", summary="One alert with its history", tag="alerts"
)
async def get_alert(request: web.Request) -> web.Response:
    """Detail, transitions (who, when, what), evidence list and the caller's next actions."""
    user = current_user(request)
    alert = await run_db(services(request).alerts.get, user.scope, request.match_info["alert_id"])
    actions = allowed_actions(State(alert["state"]), GRANTS[user.role])
    return json_response({**shown_to(user, alert), "allowed_actions": [a.value for a in actions]})


def shown_to(user: User, alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as `user` sees it: the address each step came from only for those who read
    the audit log (the enterprise never learns where its inspectors acted from)."""
    if can(user.role, Permission.VIEW_AUDIT):
        return alert
    steps = [{k: v for k, v in t.items() if k != "ip"} for t in alert["transitions"]]
    return {**alert, "transitions": steps}


@routes.route(
    "POST",
    "/api/v1/alerts/{alert_id}/transitions",
    summary="Acknowledge, request, close, reopen",
    tag="alerts",
    body=TransitionIn,
    statuses=(201, 409),
)
async def transition(request: web.Request) -> web.Response:
    """Apply one workflow step."""
    user = current_user(request)
    alert_id = request.match_info["alert_id"]
    body = await read_body(request, TransitionIn)
    deadline = body.deadline_epoch(time.time())
    svc = services(request)
    row = await run_db(
        svc.alerts.transition,
        user,
        alert_id,
        Action(body.action),
        note=body.note,
        deadline=deadline,
        ip=client_ip(request),
    )
    alert = await run_db(svc.alerts.get, user.scope, alert_id)
    await audit(
        request,
        "alert_transition",
        f"alert:{alert_id}",
        {
            "action": body.action,
            "from": row["from_state"],
            "to": row["to_state"],
            "note": body.note,
            "deadline": deadline,
        },
        org_path=alert["org_path"],
    )
    return json_response(shown_to(user, alert), status=201)


@routes.route(
    "POST",
    "/api/v1/alerts/{alert_id}/rectification",
    summary="Submit a rectification: a note and evidence photos (multipart)",
    tag="alerts",
    multipart=("note", "photos"),
    statuses=(201, 409, 413),
)
async def submit_rectification(request: web.Request) -> web.Response:
    """Enterprise staff upload what they did and photos proving it."""
    user = current_user(request, Permission.SUBMIT_RECTIFICATION)
    alert_id = request.match_info["alert_id"]
    svc = services(request)
    alert = await run_db(svc.alerts.get, user.scope, alert_id)  # 404 before reading uploads
    note, photos = await _read_upload(request)
    # A refused request leaves nothing on disk: every photo and the step are checked before
    # the first file is written, and a step refused meanwhile (a race) takes its files along.
    for _name, data in photos:
        sniff_image(data)
    if not photos:
        raise InvalidInputError("a rectification needs at least one evidence photo")
    decide(State(alert["state"]), Action.SUBMIT_RECTIFICATION, note=note, deadline=None)
    evidence: list[dict[str, Any]] = []
    try:
        for name, data in photos:
            evidence.append(
                await run_db(store_evidence, svc.evidence_dir, alert_id, name, data, user.id)
            )
        row = await run_db(
            svc.alerts.transition,
            user,
            alert_id,
            Action.SUBMIT_RECTIFICATION,
            note=note,
            ip=client_ip(request),
            evidence=evidence,
        )
    except BaseException:
        await asyncio.shield(run_db(discard_unreferenced, svc.ldb, svc.evidence_dir, evidence))
        raise
    await audit(
        request,
        "alert_transition",
        f"alert:{alert_id}",
        {
            "action": row["action"],
            "from": row["from_state"],
            "to": row["to_state"],
            "note": note,
            "evidence": [e["sha256"] for e in evidence],
        },
        org_path=alert["org_path"],
    )
    alert = await run_db(svc.alerts.get, user.scope, alert_id)
    return json_response(shown_to(user, alert), status=201)


async def _read_upload(request: web.Request) -> tuple[str, list[tuple[str, bytes]]]:
    cfg = services(request).web
    if not request.content_type.startswith("multipart/"):
        raise InvalidInputError("send multipart/form-data with `note` and `photos`")
    reader = await request.multipart()
    note, photos = "", list[tuple[str, bytes]]()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise InvalidInputError("nested multipart is not accepted")
        if part.name == "note":
            note = (await _read_limited(part, MAX_NOTE * 4)).decode("utf-8", "replace")
        elif part.name == "photos":
            if len(photos) >= cfg.evidence_max_files:
                raise InvalidInputError(f"at most {cfg.evidence_max_files} photos")
            photos.append((part.filename or "", await _read_limited(part, cfg.evidence_max_bytes)))
        else:
            raise InvalidInputError(f"unknown form field {part.name!r}")
    if "\x00" in note or any("\x00" in name for name, _ in photos):
        raise InvalidInputError("the note or a photo's name holds a NUL character")
    return note, photos


async def _read_limited(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(data))
    return bytes(data)


@routes.route(
    "GET",
    "/api/v1/alerts/{alert_id}/evidence/{evidence_id}",
    summary="An evidence photo",
    tag="alerts",
    produces=("image/jpeg", "image/png", "image/webp"),
)
async def get_evidence(request: web.Request) -> web.StreamResponse:
    """The photo bytes (audited)."""
    user = current_user(request)
    alert_id = request.match_info["alert_id"]
    svc = services(request)
    row = await run_db(
        svc.alerts.evidence_file, user.scope, alert_id, path_int(request, "evidence_id")
    )
    await audit(request, "evidence_view", f"alert:{alert_id}", {"evidence": row["id"]})
    headers = media_headers(row["content_type"], row["filename"] or "photo")
    return web.FileResponse(Path(row["path"]), headers=headers)


@routes.route(
    "GET",
    "/api/v1/alerts/{alert_id}/media/{name}",
    summary="The alert's snapshot or clip as uploaded by the edge",
    tag="alerts",
    produces=("image/jpeg", "image/png", "image/webp", "video/mp4"),
)
async def get_media(request: web.Request) -> web.StreamResponse:
    """Download the snapshot or the evidence clip (a clip download is an audited export)."""
    user = current_user(request)
    alert_id, name = request.match_info["alert_id"], request.match_info["name"]
    svc = services(request)
    alert, row = await run_db(svc.alerts.media_file, user.scope, alert_id, name)
    is_clip = (alert.get("clip") or {}).get("name") == name
    await audit(
        request,
        "clip_export" if is_clip else "evidence_view",
        f"alert:{alert_id}",
        {"media": name, "sha256": row["sha256"]},
        org_path=alert["org_path"],
    )
    return web.FileResponse(Path(row["path"]), headers=media_headers(row["content_type"], name))


@routes.route(
    "GET",
    "/api/v1/alerts/{alert_id}/deliveries",
    summary="Push deliveries of an alert",
    tag="alerts",
)
async def deliveries(request: web.Request) -> web.Response:
    """Which receivers got the alert, or why not."""
    user = current_user(request)
    alert_id = request.match_info["alert_id"]
    svc = services(request)
    await run_db(svc.alerts.get, user.scope, alert_id)
    rows = await run_db(svc.push.deliveries, alert_id)
    if user.role is not Role.ADMIN:
        # The receivers' hosts, ports and replies are the admins' business only.
        rows = [reduced_delivery(r) for r in rows]
    return json_response({"items": rows})


def reduced_delivery(row: dict[str, Any]) -> dict[str, Any]:
    """What a non-admin sees of a delivery: its kind, delivered, pending or failed, and when."""
    return {
        "target": row["target"],
        "status": {"ok": "delivered", "pending": "pending"}.get(row["status"], "failed"),
        "updated_at": row["updated_at"],
    }
