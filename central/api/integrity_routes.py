"""Footage integrity for regulators: per-camera anchoring and audits, and audits on demand."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    audit,
    current_user,
    json_response,
    path_int,
    read_body,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import NotFoundError
from central.integrity.summary import camera_integrity
from central.keys import INTEGRITY
from central.regulation.roles import Permission
from central.regulation.scope import in_scope
from fsv_contract.payloads import LEVEL_PATTERN

routes = RouteTable()


class IntegrityQuery(BaseModel):
    """Which site (default: every site in the caller's scope)."""

    site_id: str | None = Field(None, pattern=LEVEL_PATTERN)


class AuditIn(BaseModel):
    """An audit to run now: random anchored segments of one site (or one camera)."""

    site_id: str = Field(pattern=LEVEL_PATTERN)
    camera_id: str | None = Field(None, pattern=LEVEL_PATTERN)
    samples: int = Field(3, ge=1, le=50, description="segments per camera")


@routes.route(
    "GET",
    "/api/v1/integrity/cameras",
    summary="Per camera: anchored hours, audited segments, last audit result",
    tag="integrity",
    query=IntegrityQuery,
)
async def integrity_cameras(request: web.Request) -> web.Response:
    """Anchored footage and audit results of every camera in the caller's scope."""
    user = current_user(request, Permission.VIEW_REPORTS)
    q = read_query(request, IntegrityQuery)
    rows = await run_db(camera_integrity, services(request).ldb, user.scope, q.site_id)
    return json_response({"items": rows})


async def _site_in_scope(request: web.Request, site_id: str) -> str:
    user = current_user(request, Permission.VIEW_REPORTS)
    org_path = await run_db(services(request).orgs.site_org_path, site_id)
    if org_path is None or not in_scope(user.scope, org_path):
        raise NotFoundError(f"site {site_id} not found")
    return org_path


@routes.route(
    "POST",
    "/api/v1/integrity/audits",
    summary="Audit a site now: it must prove random anchored segments",
    tag="integrity",
    body=AuditIn,
    statuses=(202, 404),
)
async def request_integrity_audit(request: web.Request) -> web.Response:
    """Queue an audit; poll GET /api/v1/integrity/audits/{id} for its result."""
    body = await read_body(request, AuditIn)
    org_path = await _site_in_scope(request, body.site_id)
    user = current_user(request)
    audit_id = await run_db(
        request.app[INTEGRITY].request, body.site_id, body.camera_id, body.samples, user.username
    )
    detail: dict[str, Any] = {"audit": audit_id, "camera": body.camera_id, "samples": body.samples}
    await audit(request, "integrity_audit", f"site:{body.site_id}", detail, org_path=org_path)
    return json_response({"id": audit_id, "state": "requested"}, status=202)


@routes.route(
    "GET",
    "/api/v1/integrity/audits/{audit_id}",
    summary="One audit: state, segments proved, problems found",
    tag="integrity",
    statuses=(200, 404),
)
async def integrity_audit(request: web.Request) -> web.Response:
    """An audit's state (requested, sent, done, unanswered, failed) and per-segment results."""
    row = await run_db(request.app[INTEGRITY].get, path_int(request, "audit_id"))
    if row is None:
        raise NotFoundError("audit not found")
    await _site_in_scope(request, row["site"])
    return json_response(row)
